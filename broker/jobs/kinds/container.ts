/** CONTAINER jobs: an image run on a site's batch pool (skaha headless sessions, SciServer JOBM). */
import { ConstellationError } from '../../../registry/model/errors.js';
import type { Caller, PlannerSnapshot } from '../../planner/index.js';
import { routeContainerJob, type ContainerJobInput, type RoutedContainerJob } from '../route-container.js';
import type { JobKindHandler } from './handler.js';

/** The CONTAINER kind, and how a submitJob input is routed. */
export const containerKind: JobKindHandler<'CONTAINER'> & { route(input: ContainerJobInput, snapshot: PlannerSnapshot, caller: Caller): RoutedContainerJob } = {
  kind: 'CONTAINER',
  candidateType: 'ContainerCandidate',
  route: (input, snapshot, caller) => routeContainerJob(snapshot, input, caller),
  async submit(site, ctx, candidate) {
    if (!site.adapter.submitContainerJob) throw new ConstellationError('INVALID_ARGUMENT', `site ${candidate.siteId} does not run container jobs`);
    return site.adapter.submitContainerJob(ctx, candidate.siteJob);
  },
  keepsAnswer: () => false,
  // A container job cannot be told apart from a second copy of it, so it is never sent twice.
  findLost: async () => ({ outcome: 'unknown' }),
  resultKept: () => false,
  noResult: 'container jobs write their outputs at the site',
  resultsLink: () => null,
};
