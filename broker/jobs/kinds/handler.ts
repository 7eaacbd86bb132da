/**
 * What the job service, the results route and the GraphQL resolvers need to know of one kind of
 * job. Each kind implements it in its own file here and is listed once in ./index.ts, so a new
 * kind (a thread step) is one file and one line, not an edit at every place that ran a job.
 */
import type { AdapterContext, SiteJobStatus } from '../../../registry/model/adapter.js';
import type { CandidateOf, JobKind } from '../../../registry/model/job-plan.js';
import type { JobRow } from '../../../registry/store/queries/jobs.js';
import type { SiteBinding } from '../site-binding.js';

/** What a site answers to a submit: its id for the job and the job's status there. */
export interface SiteSubmission {
  siteJobId: string;
  status: SiteJobStatus;
}

/**
 * What a site holds of a submit the broker stopped in the middle of: the job (adopt it), nothing
 * (send it again), or that cannot be told (fail rather than run it twice).
 */
export type LostSubmit = { outcome: 'found'; submission: SiteSubmission } | { outcome: 'absent' } | { outcome: 'unknown' };

/** The behaviour of one kind of job. */
export interface JobKindHandler<K extends JobKind = JobKind> {
  readonly kind: K;
  /** The GraphQL object type of this kind's candidates (an implementation of the JobCandidate interface). */
  readonly candidateType: string;
  /** Create the job at the candidate's site; `runId` is the broker's job id, which a site may be asked for again. */
  submit(site: SiteBinding, ctx: AdapterContext, candidate: CandidateOf<K>, runId: string): Promise<SiteSubmission>;
  /** True when the site's answer to the submit is the whole result, read and kept by the broker at once. */
  keepsAnswer(candidate: CandidateOf<K>, status: SiteJobStatus): boolean;
  /** After a broker stopped between sending the job and recording the answer: what the site holds under `runId`. */
  findLost(site: SiteBinding, ctx: AdapterContext, candidate: CandidateOf<K>, runId: string, since: Date): Promise<LostSubmit>;
  /** True when a completed job's result is the one the broker kept (served from the database, never fetched again). */
  resultKept(candidate: CandidateOf<K>): boolean;
  /** Why a completed job at a site that serves no results has none to fetch. */
  readonly noResult: string;
  /** Where a completed job's result is fetched (GraphQL Job.results), or null when there is none to fetch. */
  resultsLink(job: JobRow): string | null;
}
