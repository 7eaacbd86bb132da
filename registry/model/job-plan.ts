/**
 * A job's plan as the database keeps it (the `plan` jsonb column) and as the broker reads it
 * back: the candidates a job may run at, typed by the job's kind, and the planner's verdict on
 * every site. Parsed once where a row is read; a damaged plan becomes a coded error the job
 * service reports, never a cast that fails later.
 */
import type { SiteContainerJob, SiteQuery } from './adapter.js';
import { ConstellationError, invalidArgument } from './errors.js';

/** The kinds of job the broker runs (the jobs.kind column). */
export type JobKind = 'QUERY' | 'CONTAINER';

/** Every job kind. */
export const JOB_KINDS: readonly JobKind[] = ['QUERY', 'CONTAINER'];

/** True when `value` names a job kind. */
export function isJobKind(value: unknown): value is JobKind {
  return typeof value === 'string' && (JOB_KINDS as readonly string[]).includes(value);
}

/** A query job's candidate: the site and the query as that site must receive it. */
export interface QueryCandidate {
  kind: 'QUERY';
  siteId: string;
  siteQuery: SiteQuery;
}

/** A container job's candidate: the site and the job as that site's compute API takes it. */
export interface ContainerCandidate {
  kind: 'CONTAINER';
  siteId: string;
  siteJob: SiteContainerJob;
}

/** One site a job may run at, discriminated by the job's kind. */
export type JobCandidate = QueryCandidate | ContainerCandidate;

/** The candidate type of one kind. */
export type CandidateOf<K extends JobKind> = Extract<JobCandidate, { kind: K }>;

/** Planner reason codes, as a plan record keeps them (the planner's vocabulary). */
export const REASON_CODES = [
  'SITE_DOWN', 'NO_REPLICA', 'NOT_COVERED', 'FORBIDDEN', 'NO_SERVICE', 'NO_IMAGE', 'NO_CAPACITY', 'LIMIT_EXCEEDED',
  'COST', 'DATA_TO_MOVE', 'UNKNOWN_SIZE', 'STALE', 'LOCAL',
] as const;

/** Why a site was rejected (hard filters) or how its score came about (explanations). */
export type ReasonCode = (typeof REASON_CODES)[number];

/** One recorded reason: its code, the dataset it is about (when any), and a sentence for people. */
export interface RecordedReason {
  code: ReasonCode;
  dataset?: string;
  message: string;
}

/** The planner's verdict on one site, as a job keeps it (without the cost breakdown). */
export interface RecordedVerdict {
  site: string;
  eligible: boolean;
  score: number;
  estimatedRows: number | null;
  estimatedBytesMoved: number | null;
  reasons: RecordedReason[];
}

/** What a job keeps of the plan it was routed under. */
export interface PlanRecord {
  registryVersion: number;
  /** The site tried first; null when no candidate was eligible. */
  chosen: string | null;
  /** The verdict on each site holding a requested dataset (every site, in records made before sitesWithoutData). */
  candidates: RecordedVerdict[];
  /** How many sites held none of the requested datasets (0 in records made before it was kept). */
  sitesWithoutData: number;
}

/** A job's plan: its candidates in the order to try them, and the planner's record (absent for jobs given candidates directly). */
export interface JobPlan {
  candidates: readonly JobCandidate[];
  record: PlanRecord | null;
}

/** A plan as read back: intact, or damaged with the coded error that says how. */
export type StoredJobPlan = ({ intact: true } & JobPlan) | { intact: false; error: ConstellationError };

/** The jsonb a plan is stored as; the candidates' kind is the job's, so it is not repeated. */
export function storedPlanJson(plan: JobPlan): unknown {
  return {
    candidates: plan.candidates.map(({ kind: _kind, ...rest }) => rest),
    ...(plan.record ? { plan: plan.record } : {}),
  };
}

/** Read the `plan` column of job `jobId` of kind `kind`; never throws (a damaged plan is INTERNAL, saying what is wrong). */
export function readJobPlan(jobId: string, kind: JobKind, raw: unknown): StoredJobPlan {
  const damaged = (why: string): StoredJobPlan => ({ intact: false, error: new ConstellationError('INTERNAL', `the stored plan of job ${jobId} is not a plan (${why})`) });
  if (!isObject(raw) || !Array.isArray(raw.candidates)) return damaged('no candidate list');
  const candidates: JobCandidate[] = [];
  for (const [i, c] of raw.candidates.entries()) {
    const read = readCandidate(kind, c);
    if (typeof read === 'string') return damaged(`candidate ${i}${siteNote(c)} ${read}`);
    candidates.push(read);
  }
  const record = raw.plan === undefined || raw.plan === null ? null : planRecordOf(raw.plan);
  if (record === undefined) return damaged('its planner record is malformed');
  return { intact: true, candidates, record };
}

/**
 * A candidate handed to the job service, checked for the job's kind: INVALID_ARGUMENT naming
 * `candidates[index]` and what it lacks.
 */
export function submittedCandidate(kind: JobKind, value: unknown, index: number): JobCandidate {
  const read = readCandidate(kind, value);
  if (typeof read === 'string') throw invalidArgument(`candidates[${index}]`, `${siteNote(value)} ${read}`.trim());
  return read;
}

// What each kind's candidate carries and how it is read: a new kind adds one entry.
const PAYLOADS: { [K in JobKind]: { field: string; read: (siteId: string, payload: Record<string, unknown>) => CandidateOf<K> | string } } = {
  QUERY: {
    field: 'siteQuery',
    read: (siteId, q) => {
      const query = siteQueryOf(q);
      return typeof query === 'string' ? query : { kind: 'QUERY', siteId, siteQuery: query };
    },
  },
  CONTAINER: {
    field: 'siteJob',
    read: (siteId, j) => {
      const job = siteJobOf(j);
      return typeof job === 'string' ? job : { kind: 'CONTAINER', siteId, siteJob: job };
    },
  },
};

/** `value` as a candidate of `kind`, or what is wrong with it. */
function readCandidate(kind: JobKind, value: unknown): JobCandidate | string {
  if (!isObject(value) || typeof value.siteId !== 'string') return 'names no site';
  const { field, read } = PAYLOADS[kind];
  const payload = value[field];
  if (!isObject(payload)) return `has no ${field}`;
  const candidate = read(value.siteId, payload);
  return typeof candidate === 'string' ? `has a malformed ${field} (${candidate})` : candidate;
}

function siteNote(value: unknown): string {
  return isObject(value) && typeof value.siteId === 'string' ? ` (${value.siteId})` : '';
}

/** A site query, or what is wrong with it. */
function siteQueryOf(q: Record<string, unknown>): SiteQuery | string {
  if (typeof q.adql !== 'string') return 'adql is not text';
  if (typeof q.service !== 'string') return 'service is not text';
  if (q.mode !== 'sync' && q.mode !== 'async') return 'mode is neither sync nor async';
  const out: SiteQuery = { adql: q.adql, service: q.service, mode: q.mode };
  if (typeof q.maxrec === 'number') out.maxrec = q.maxrec;
  else if (q.maxrec !== undefined) return 'maxrec is not a number';
  if (typeof q.format === 'string') out.format = q.format;
  else if (q.format !== undefined) return 'format is not text';
  if (isObject(q.upload) && typeof q.upload.name === 'string' && typeof q.upload.votable === 'string') out.upload = { name: q.upload.name, votable: q.upload.votable };
  else if (q.upload !== undefined) return 'upload is not a named VOTable';
  return out;
}

/** A site container job, or what is wrong with it. */
function siteJobOf(j: Record<string, unknown>): SiteContainerJob | string {
  const { image, command, name, cores, memoryGb, gpus, args, env, walltimeS } = j;
  if (typeof image !== 'string') return 'image is not text';
  if (typeof command !== 'string') return 'command is not text';
  if (typeof name !== 'string') return 'name is not text';
  if (typeof cores !== 'number' || typeof memoryGb !== 'number' || typeof gpus !== 'number') return 'cores, memoryGb or gpus is not a number';
  if (!Array.isArray(args)) return 'args is not a list';
  const argList: string[] = [];
  for (const a of args) {
    if (typeof a !== 'string') return 'args is not a list of text';
    argList.push(a);
  }
  if (!isObject(env)) return 'env is not a map';
  const envMap: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (typeof v !== 'string') return `env ${k} is not text`;
    envMap[k] = v;
  }
  if (walltimeS !== undefined && typeof walltimeS !== 'number') return 'walltimeS is not a number';
  return { image, command, args: argList, env: envMap, cores, memoryGb, gpus, name, ...(typeof walltimeS === 'number' ? { walltimeS } : {}) };
}

/** The planner's record, or undefined when it is malformed. */
function planRecordOf(raw: unknown): PlanRecord | undefined {
  if (!isObject(raw) || typeof raw.registryVersion !== 'number' || !(raw.chosen === null || typeof raw.chosen === 'string') || !Array.isArray(raw.candidates)) return undefined;
  const candidates: RecordedVerdict[] = [];
  for (const c of raw.candidates) {
    if (!isObject(c) || typeof c.site !== 'string' || typeof c.eligible !== 'boolean' || typeof c.score !== 'number' || !Array.isArray(c.reasons)) return undefined;
    const reasons: RecordedReason[] = [];
    for (const r of c.reasons) {
      if (!isObject(r) || !isReasonCode(r.code) || typeof r.message !== 'string') return undefined;
      reasons.push({ code: r.code, message: r.message, ...(typeof r.dataset === 'string' ? { dataset: r.dataset } : {}) });
    }
    candidates.push({ site: c.site, eligible: c.eligible, score: c.score, estimatedRows: numberOrNull(c.estimatedRows), estimatedBytesMoved: numberOrNull(c.estimatedBytesMoved), reasons });
  }
  const sitesWithoutData = raw.sitesWithoutData ?? 0;
  if (typeof sitesWithoutData !== 'number' || !Number.isInteger(sitesWithoutData) || sitesWithoutData < 0) return undefined;
  return { registryVersion: raw.registryVersion, chosen: raw.chosen, candidates, sitesWithoutData };
}

function isReasonCode(value: unknown): value is ReasonCode {
  return typeof value === 'string' && (REASON_CODES as readonly string[]).includes(value);
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
