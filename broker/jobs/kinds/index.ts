/** Every kind of job the broker runs, by name: a new kind is one file in this folder and one line here. */
import type { JobKind } from '../../../registry/model/job-plan.js';
import { containerKind } from './container.js';
import type { JobKindHandler } from './handler.js';
import { queryKind } from './query.js';

export type { JobKindHandler, LostSubmit, SiteSubmission } from './handler.js';

const KINDS: { readonly [K in JobKind]: JobKindHandler<K> } = {
  QUERY: queryKind,
  CONTAINER: containerKind,
};

/** The handler of one kind of job. */
export function kindOf<K extends JobKind>(kind: K): JobKindHandler<K> {
  return KINDS[kind];
}
