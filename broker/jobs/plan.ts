/**
 * A job's candidates as the job service uses them: read once with the row (registry/model/job-plan.ts),
 * typed by the job's kind; a plan that came back damaged is its coded error, thrown where the
 * candidates are needed.
 */
import type { JobCandidate, JobPlan } from '../../registry/model/job-plan.js';
import type { JobRow } from '../../registry/store/queries/jobs.js';

export type { CandidateOf, ContainerCandidate, JobCandidate, JobPlan, PlanRecord, QueryCandidate } from '../../registry/model/job-plan.js';

/** The plan of a stored job; throws its INTERNAL error when the stored plan is damaged. */
export function planOf(job: Pick<JobRow, 'plan'>): JobPlan {
  if (!job.plan.intact) throw job.plan.error;
  return job.plan;
}

/** The candidates of a stored job, in the order to try them; throws when its plan is damaged. */
export function candidatesOf(job: Pick<JobRow, 'plan'>): readonly JobCandidate[] {
  return planOf(job).candidates;
}

/** The candidate that holds (or last tried) the job, if its index is in the plan. */
export function currentCandidate(job: Pick<JobRow, 'plan' | 'candidateIndex'>): JobCandidate | undefined {
  return candidatesOf(job)[job.candidateIndex];
}
