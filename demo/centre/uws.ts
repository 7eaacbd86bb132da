/** UWS 1.1 jobs of a demo centre: phases, blocking WAIT, the job list with AFTER, and their XML documents. */
import { escapeXml as esc } from './vosi.js';

/** UWS phases the centre uses. */
export type Phase = 'PENDING' | 'QUEUED' | 'EXECUTING' | 'COMPLETED' | 'ERROR' | 'ABORTED';

const ACTIVE: ReadonlySet<Phase> = new Set(['PENDING', 'QUEUED', 'EXECUTING']);

/** A finished job's result. */
export interface JobResult {
  contentType: string;
  body: Buffer;
}

/** One asynchronous query. */
export interface UwsJob {
  id: string;
  phase: Phase;
  /** Parameters by upper-cased name, as submitted. */
  params: Map<string, string>;
  parts: Map<string, Buffer>;
  bytesIn: number;
  creationTime: string;
  startTime?: string;
  endTime?: string;
  result?: JobResult;
  error?: string;
  /** Called on every phase change (releases requests blocked in WAIT). */
  readonly waiters: Set<() => void>;
}

// Jobs are kept until deleted; beyond this many, the oldest finished ones are forgotten.
const MAX_JOBS = 500;
// WAIT=-1 means "as long as the server allows": this one allows 30 s.
const MAX_WAIT_S = 30;

/** The centre's jobs. */
export class JobStore {
  private readonly jobs = new Map<string, UwsJob>();
  private next = 1;

  /** A new PENDING job. */
  create(params: Map<string, string>, parts: Map<string, Buffer>, bytesIn: number): UwsJob {
    const job: UwsJob = { id: `q${this.next++}`, phase: 'PENDING', params, parts, bytesIn, creationTime: new Date().toISOString(), waiters: new Set() };
    this.jobs.set(job.id, job);
    this.evict();
    return job;
  }

  get(id: string): UwsJob | undefined {
    return this.jobs.get(id);
  }

  /** Jobs created after `after` (all when undefined), oldest first. */
  list(after?: Date): UwsJob[] {
    return [...this.jobs.values()].filter((j) => after === undefined || Date.parse(j.creationTime) > after.getTime());
  }

  delete(id: string): boolean {
    const job = this.jobs.get(id);
    if (!job) return false;
    if (ACTIVE.has(job.phase)) setPhase(job, 'ABORTED');
    return this.jobs.delete(id);
  }

  /** Releases every blocked request (the server is closing). */
  releaseAll(): void {
    for (const job of this.jobs.values()) for (const w of [...job.waiters]) w();
  }

  private evict(): void {
    if (this.jobs.size <= MAX_JOBS) return;
    for (const [id, job] of this.jobs) {
      if (this.jobs.size <= MAX_JOBS) return;
      if (!ACTIVE.has(job.phase)) this.jobs.delete(id);
    }
  }
}

/** True while a job may still change phase. */
export function isActive(job: UwsJob): boolean {
  return ACTIVE.has(job.phase);
}

/** Moves a job to `phase`, stamping the times and waking WAITing requests. */
export function setPhase(job: UwsJob, phase: Phase): void {
  job.phase = phase;
  if (phase === 'EXECUTING') job.startTime = new Date().toISOString();
  if (!ACTIVE.has(phase)) job.endTime = new Date().toISOString();
  for (const w of [...job.waiters]) w();
}

/** Resolves when the job leaves its current phase or after `waitS` seconds (UWS 1.1 WAIT; negative = the longest allowed). */
export function waitForChange(job: UwsJob, waitS: number): Promise<void> {
  if (waitS === 0 || !ACTIVE.has(job.phase)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      job.waiters.delete(done);
      resolve();
    };
    const timer = setTimeout(done, (waitS < 0 ? MAX_WAIT_S : Math.min(waitS, MAX_WAIT_S)) * 1000);
    job.waiters.add(done);
  });
}

const UWS_NS = 'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

const time = (tag: string, value: string | undefined) => (value ? `<uws:${tag}>${value}</uws:${tag}>` : `<uws:${tag} xsi:nil="true"/>`);

/** The UWS job document; `jobUrl` is where the job lives. */
export function jobXml(jobUrl: string, job: UwsJob): string {
  const runId = job.params.get('RUNID');
  const params = [...job.params]
    .filter(([k]) => k !== 'PHASE' && k !== 'RUNID')
    .map(([k, v]) => `<uws:parameter id="${esc(k.toLowerCase())}">${esc(v)}</uws:parameter>`)
    .join('');
  const result = job.result ? `<uws:result id="result" xlink:href="${esc(jobUrl)}/results/result" mime-type="${esc(job.result.contentType)}"/>` : '';
  const error = job.error ? `<uws:errorSummary type="fatal" hasDetail="true"><uws:message>${esc(job.error)}</uws:message></uws:errorSummary>` : '';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<uws:job ${UWS_NS} version="1.1">` +
    `<uws:jobId>${esc(job.id)}</uws:jobId>${runId === undefined ? '' : `<uws:runId>${esc(runId)}</uws:runId>`}<uws:ownerId xsi:nil="true"/>` +
    `<uws:phase>${job.phase}</uws:phase><uws:quote xsi:nil="true"/>` +
    `<uws:creationTime>${job.creationTime}</uws:creationTime>${time('startTime', job.startTime)}${time('endTime', job.endTime)}` +
    '<uws:executionDuration>3600</uws:executionDuration><uws:destruction xsi:nil="true"/>' +
    `<uws:parameters>${params}</uws:parameters><uws:results>${result}</uws:results>${error}</uws:job>`
  );
}

/** The UWS job list; `asyncUrl` is the job list's own URL. */
export function jobListXml(asyncUrl: string, jobs: readonly UwsJob[]): string {
  const refs = jobs
    .map((j) => {
      const runId = j.params.get('RUNID');
      return (
        `<uws:jobref id="${esc(j.id)}" xlink:href="${esc(asyncUrl)}/${esc(j.id)}"><uws:phase>${j.phase}</uws:phase>` +
        `${runId === undefined ? '' : `<uws:runId>${esc(runId)}</uws:runId>`}<uws:creationTime>${j.creationTime}</uws:creationTime></uws:jobref>`
      );
    })
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<uws:jobs ${UWS_NS} version="1.1">${refs}</uws:jobs>`;
}
