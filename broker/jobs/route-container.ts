/** submitJob's routing: plan a container job and describe it for each eligible site's compute API. */
import { randomUUID } from 'node:crypto';
import type { SiteContainerJob } from '../../registry/model/adapter.js';
import { invalidArgument } from '../../registry/model/errors.js';
import { imageMatches, plan, type Caller, type PlannerSnapshot, type PlanRegion } from '../planner/index.js';
import { eligibleCandidates, planRecord, type PlanRecord } from './placement.js';
import type { JobCandidate } from './plan.js';

/** submitJob's input as GraphQL gives it. */
export interface ContainerJobInput {
  image: string;
  command: string;
  args?: string[] | null;
  env?: { name: string; value: string }[] | null;
  cores: number;
  memoryGb: number;
  gpus?: number | null;
  walltimeS?: number | null;
  datasets?: string[] | null;
  region?: PlanRegion | null;
  arch?: string | null;
  site?: string | null;
  idempotencyKey?: string | null;
}

/** A container job ready for JobService.submit. */
export interface RoutedContainerJob {
  candidates: JobCandidate[];
  plan: PlanRecord;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ARGS = 256;

/** Plan a container job and build the site job for every eligible site, best first. */
export function routeContainerJob(snapshot: PlannerSnapshot, input: ContainerJobInput, caller: Caller): RoutedContainerJob {
  checkInput(input);
  const arch = input.arch ?? 'amd64';
  const thePlan = plan(
    snapshot,
    {
      kind: 'CONTAINER',
      datasets: (input.datasets ?? []).map((d) => d.trim().toLowerCase()),
      region: input.region,
      image: input.image,
      arch,
      cores: input.cores,
      memoryGb: input.memoryGb,
      gpus: input.gpus ?? 0,
      walltimeS: input.walltimeS,
    },
    caller,
  );
  const chosen = eligibleCandidates(thePlan, 'container job', input.site);
  const name = `constellation-${randomUUID().slice(0, 8)}`;
  const candidates = chosen.map((c): JobCandidate => {
    const site = snapshot.site(c.site)!;
    // The site runs its own spelling of the image (a digest alone names nothing it can pull).
    const image = site.images.find((i) => imageMatches(i, input.image) && (i.arch ?? 'amd64') === arch && (i.compute === null || c.pool === null || i.compute.includes(c.pool)));
    const siteJob: SiteContainerJob = {
      image: image?.ref ?? input.image,
      command: input.command,
      args: input.args ?? [],
      env: Object.fromEntries((input.env ?? []).map((e) => [e.name, e.value])),
      cores: input.cores,
      memoryGb: input.memoryGb,
      gpus: input.gpus ?? 0,
      name,
      ...(input.walltimeS ? { walltimeS: input.walltimeS } : {}),
    };
    return { kind: 'CONTAINER', siteId: c.site, siteJob };
  });
  return { candidates, plan: planRecord(thePlan, candidates[0].siteId) };
}

function checkInput(input: ContainerJobInput): void {
  if (!input.image?.trim()) throw invalidArgument('input.image', 'must name an image (reference, sha256 digest, or ref@digest)');
  if (!input.command?.trim()) throw invalidArgument('input.command', 'must be a non-empty command');
  if ((input.args?.length ?? 0) > MAX_ARGS) throw invalidArgument('input.args', `may hold at most ${MAX_ARGS} arguments`);
  if (!(Number.isInteger(input.cores) && input.cores >= 1)) throw invalidArgument('input.cores', `must be a whole number of cores ≥ 1, got ${input.cores}`);
  if (!(Number.isFinite(input.memoryGb) && input.memoryGb > 0)) throw invalidArgument('input.memoryGb', `must be a number of GB > 0, got ${input.memoryGb}`);
  if (input.gpus !== undefined && input.gpus !== null && !(Number.isInteger(input.gpus) && input.gpus >= 0)) throw invalidArgument('input.gpus', `must be a whole number ≥ 0, got ${input.gpus}`);
  if (input.walltimeS !== undefined && input.walltimeS !== null && !(Number.isInteger(input.walltimeS) && input.walltimeS > 0)) {
    throw invalidArgument('input.walltimeS', `must be a whole number of seconds > 0, got ${input.walltimeS}`);
  }
  const seen = new Set<string>();
  (input.env ?? []).forEach((e, i) => {
    if (!ENV_NAME.test(e.name)) throw invalidArgument(`input.env[${i}].name`, `"${e.name}" is not a valid environment variable name`);
    if (seen.has(e.name)) throw invalidArgument(`input.env[${i}].name`, `"${e.name}" is given twice`);
    seen.add(e.name);
  });
}

