/** UWS 1.1 documents for the facade's async jobs: the job, the job list, and how a job's phase is told. */
import type { JobRow } from '../../registry/store/queries/jobs.js';
import type { ThreadRow } from '../../registry/store/queries/threads.js';
import type { TapJobRow } from './job-store.js';
import { xmlEscape } from './xml.js';

/** The UWS phases the facade reports. */
export type UwsPhase = 'PENDING' | 'QUEUED' | 'EXECUTING' | 'COMPLETED' | 'ERROR' | 'ABORTED';

const NS = 'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

/** What a TAP job that runs as a cross-match thread reads of it. */
export type TapThread = Pick<ThreadRow, 'id' | 'state' | 'finishedAt' | 'errorMessage'>;

/**
 * A TAP job's phase: its own until it runs (QUEUED once RUN claimed it, until it is linked;
 * EXECUTING while a query of local tables runs), then its broker job's (a broker job not yet at
 * a site is QUEUED), or its cross-match thread's (RUNNING is EXECUTING; a thread gone is ERROR).
 * PHASE_SQL says the same in SQL (the job list filters on it): the two change together.
 */
export function phaseOf(tap: Pick<TapJobRow, 'phase' | 'jobId' | 'startedAt'> & Partial<Pick<TapJobRow, 'threadJoin'>>, job: Pick<JobRow, 'state'> | undefined | null, thread?: Pick<ThreadRow, 'state'> | null): UwsPhase {
  if (tap.threadJoin) {
    if (!thread) return 'ERROR';
    return thread.state === 'RUNNING' ? 'EXECUTING' : thread.state;
  }
  if (!tap.jobId) return tap.phase === 'PENDING' && tap.startedAt ? 'QUEUED' : tap.phase;
  if (!job) return 'ERROR';
  return job.state === 'PENDING' ? 'QUEUED' : job.state;
}

/** phaseOf in SQL, over tap_jobs t LEFT JOIN jobs j (t.job_id) LEFT JOIN threads th (t.thread_id). */
export const PHASE_SQL = `CASE
  WHEN t.thread_join IS NOT NULL THEN CASE WHEN th.id IS NULL THEN 'ERROR' WHEN th.state = 'RUNNING' THEN 'EXECUTING' ELSE th.state END
  WHEN t.job_id IS NOT NULL THEN CASE WHEN j.id IS NULL THEN 'ERROR' WHEN j.state = 'PENDING' THEN 'QUEUED' ELSE j.state END
  WHEN t.phase = 'PENDING' AND t.started_at IS NOT NULL THEN 'QUEUED'
  ELSE t.phase END`;

/** Every phase UWS 1.1 names (a job list may filter on any; this service reports the first six). */
export const UWS_PHASE_NAMES = ['PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED', 'UNKNOWN', 'HELD', 'SUSPENDED', 'ARCHIVED'] as const;

/** Whether `phase` is one this service reports (a job list's filter on another matches nothing). */
export function isReportedPhase(phase: string): phase is UwsPhase {
  return UWS_PHASE_NAMES.slice(0, 6).some((p) => p === phase);
}

/** Whether a phase has ended. */
export function isFinalPhase(phase: UwsPhase): boolean {
  return phase === 'COMPLETED' || phase === 'ERROR' || phase === 'ABORTED';
}

/** The phases that may still change without the caller (WAIT blocks on them). */
export function isActive(phase: UwsPhase): boolean {
  return phase === 'QUEUED' || phase === 'EXECUTING';
}

const time = (d: Date | null | undefined, tag: string) => (d ? `<uws:${tag}>${d.toISOString()}</uws:${tag}>` : `<uws:${tag} xsi:nil="true"/>`);

/** The job document (UWS 1.1 `job`). */
export function jobXml(tap: TapJobRow, job: JobRow | undefined, jobUrl: string, thread?: TapThread | null): string {
  const phase = phaseOf(tap, job, thread);
  const params = Object.entries(tap.params)
    .map(([k, v]) => `<uws:parameter id="${xmlEscape(k.toLowerCase())}">${xmlEscape(v)}</uws:parameter>`)
    .join('');
  const error = errorOf(tap, job, thread);
  const runId = tap.params.RUNID;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<uws:job ${NS} version="1.1">` +
    `<uws:jobId>${tap.id}</uws:jobId>` +
    (runId ? `<uws:runId>${xmlEscape(runId)}</uws:runId>` : '') +
    '<uws:ownerId xsi:nil="true"/>' +
    `<uws:phase>${phase}</uws:phase>` +
    '<uws:quote xsi:nil="true"/>' +
    time(tap.createdAt, 'creationTime') +
    time(job?.startedAt ?? tap.startedAt, 'startTime') +
    time(isFinalPhase(phase) ? (job?.finishedAt ?? thread?.finishedAt ?? tap.startedAt ?? tap.createdAt) : null, 'endTime') +
    `<uws:executionDuration>${tap.executionDuration}</uws:executionDuration>` +
    time(tap.destruction, 'destruction') +
    `<uws:parameters>${params}</uws:parameters>` +
    '<uws:results>' + (phase === 'COMPLETED' ? `<uws:result id="result" xlink:type="simple" xlink:href="${xmlEscape(jobUrl)}/results/result"/>` : '') + '</uws:results>' +
    (phase === 'ERROR' ? `<uws:errorSummary type="fatal" hasDetail="true"><uws:message>${xmlEscape(error)}</uws:message></uws:errorSummary>` : '') +
    '</uws:job>\n'
  );
}

/** Why a job is in ERROR (or ABORTED), as one line. */
export function errorOf(tap: TapJobRow, job: JobRow | undefined, thread?: TapThread | null): string {
  if (tap.threadJoin) {
    if (!thread) return 'the cross-match thread behind this TAP job no longer exists';
    if (thread.state === 'ABORTED') return `the job was aborted (cross-match thread ${thread.id}: ${thread.errorMessage ?? 'aborted'})`;
    return `the cross-match thread ${thread.id} failed: ${thread.errorMessage ?? 'no reason given'}`;
  }
  if (!tap.jobId) return tap.errorMessage ?? (tap.phase === 'ABORTED' ? 'the job was aborted' : '');
  if (!job) return 'the broker job behind this TAP job no longer exists';
  if (job.state === 'ABORTED') return 'the job was aborted';
  return job.errorMessage ?? '';
}

/** The job list (UWS 1.1 `jobs`), each job with its phase and creation time. */
export function jobListXml(jobs: { tap: TapJobRow; phase: UwsPhase }[], listUrl: string): string {
  const refs = jobs
    .map(({ tap, phase }) =>
      `<uws:jobref id="${tap.id}" xlink:type="simple" xlink:href="${xmlEscape(listUrl)}/${tap.id}"><uws:phase>${phase}</uws:phase>` +
      (tap.params.RUNID ? `<uws:runId>${xmlEscape(tap.params.RUNID)}</uws:runId>` : '') +
      `<uws:ownerId xsi:nil="true"/><uws:creationTime>${tap.createdAt.toISOString()}</uws:creationTime></uws:jobref>`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<uws:jobs ${NS} version="1.1">${refs}</uws:jobs>\n`;
}

/** The parameters document. */
export function parametersXml(tap: TapJobRow): string {
  const params = Object.entries(tap.params).map(([k, v]) => `<uws:parameter id="${xmlEscape(k.toLowerCase())}">${xmlEscape(v)}</uws:parameter>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<uws:parameters ${NS}>${params}</uws:parameters>\n`;
}

/** The results document. */
export function resultsXml(phase: UwsPhase, jobUrl: string): string {
  const result = phase === 'COMPLETED' ? `<uws:result id="result" xlink:type="simple" xlink:href="${xmlEscape(jobUrl)}/results/result"/>` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>\n<uws:results ${NS}>${result}</uws:results>\n`;
}
