/**
 * A job's plan as stored (the `plan` jsonb column) and as read back: checked once where it
 * leaves the database, and typed by the job's kind, so the job service never trusts a cast.
 */
import type { SiteContainerJob, SiteQuery } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { JobKind, JobRow } from '../../registry/store/queries/jobs.js';

/** One site a job may run at, in the order to try them. */
export interface JobCandidate {
  siteId: string;
  siteQuery?: SiteQuery;
  siteJob?: SiteContainerJob;
}

/** The plan column: the candidates a job runs under, and the planner's own description. */
export interface StoredPlan {
  candidates: JobCandidate[];
  plan?: unknown;
}

/** A candidate read back, discriminated by what it runs. */
export type PlannedCandidate = { kind: 'QUERY'; siteId: string; siteQuery: SiteQuery } | { kind: 'CONTAINER'; siteId: string; siteJob: SiteContainerJob };

/** The candidates of a stored job, checked against its kind. */
export function candidatesOf(job: Pick<JobRow, 'id' | 'kind' | 'plan'>): PlannedCandidate[] {
  const corrupt = (why: string) => new ConstellationError('INTERNAL', `the stored plan of job ${job.id} is not a plan (${why})`);
  const plan = job.plan as { candidates?: unknown } | null;
  if (plan === null || typeof plan !== 'object' || !Array.isArray(plan.candidates)) throw corrupt('no candidate list');
  return plan.candidates.map((c: unknown, i): PlannedCandidate => {
    const candidate = c as Partial<JobCandidate> | null;
    if (candidate === null || typeof candidate !== 'object' || typeof candidate.siteId !== 'string') throw corrupt(`candidate ${i} names no site`);
    return candidateOf(job.kind, candidate as JobCandidate, () => corrupt(`candidate ${i} (${candidate.siteId}) has no ${job.kind === 'QUERY' ? 'siteQuery' : 'siteJob'}`));
  });
}

function candidateOf(kind: JobKind, c: JobCandidate, missing: () => Error): PlannedCandidate {
  if (kind === 'QUERY') {
    const q = c.siteQuery;
    if (!q || typeof q.adql !== 'string' || (q.mode !== 'sync' && q.mode !== 'async')) throw missing();
    return { kind, siteId: c.siteId, siteQuery: q };
  }
  if (!c.siteJob || typeof c.siteJob.image !== 'string') throw missing();
  return { kind, siteId: c.siteId, siteJob: c.siteJob };
}

/** The query a job's current candidate runs, if it is a query. */
export function currentQuery(job: Pick<JobRow, 'id' | 'kind' | 'plan' | 'candidateIndex'>): SiteQuery | undefined {
  const candidate = candidatesOf(job)[job.candidateIndex];
  return candidate?.kind === 'QUERY' ? candidate.siteQuery : undefined;
}
