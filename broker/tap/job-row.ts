/**
 * A tap_jobs row read back, parsed once where it is read: every column checked for its type, the
 * jsonb columns (params, thread_join) taken apart field by field. A row that does not parse is
 * INTERNAL naming the job and the column, never a value of the wrong shape passed on.
 */
import { ConstellationError } from '../../registry/model/errors.js';
import type { ConeFilter, CrossSiteJoin, OutputColumn } from './crossmatch-join.js';

/** The phases a TAP job has of its own (once it links to a broker job or thread, theirs rule). */
export type TapOwnPhase = 'PENDING' | 'EXECUTING' | 'COMPLETED' | 'ERROR' | 'ABORTED';

/** What a job that ran as a cross-match thread keeps of its join: how the thread's rows become the query's. */
export type StoredJoin = Pick<CrossSiteJoin, 'outputs' | 'filters' | 'sepIndex' | 'strict' | 'top'> & { input: { radiusArcsec: number } };

/** One TAP job as stored. */
export interface TapJobRow {
  id: string;
  owner: string;
  /** The TAP parameters (upper-case names) as kept: an UPLOAD URL without its query string or user. */
  params: Record<string, string>;
  uploadName: string | null;
  uploadVotable: string | null;
  /** Its own phase: PENDING until it runs; EXECUTING while a query of local tables runs; how it ended without a broker job or thread. */
  phase: TapOwnPhase;
  /** The broker job it became on RUN. */
  jobId: string | null;
  /** The cross-match thread it became on RUN instead (a positional join across sites), and how its rows map to the query's. */
  threadId: string | null;
  threadJoin: StoredJoin | null;
  errorMessage: string | null;
  executionDuration: number;
  destruction: Date;
  createdAt: Date;
  /** When RUN claimed it (before it links to a broker job or thread it reports QUEUED). */
  startedAt: Date | null;
  /** Whether a result of a query of local tables is kept. */
  hasResult: boolean;
}

const PHASES: readonly TapOwnPhase[] = ['PENDING', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED'];

/** The parse failure of `column` of job `id`. */
function bad(id: unknown, column: string, why: string): ConstellationError {
  return new ConstellationError('INTERNAL', `TAP job ${typeof id === 'string' ? id : '?'}: column ${column} ${why}`);
}

/** `row` (selected with job-store.ts COLUMNS) as a TapJobRow, or INTERNAL naming the column that is not what it must be. */
export function parseTapJobRow(row: Record<string, unknown>): TapJobRow {
  const id = row.id;
  const str = (column: string): string => {
    const v = row[column];
    if (typeof v !== 'string') throw bad(id, column, `is ${typeof v}, not text`);
    return v;
  };
  const strOrNull = (column: string): string | null => (row[column] === null || row[column] === undefined ? null : str(column));
  const date = (column: string): Date => {
    const v = row[column];
    if (!(v instanceof Date)) throw bad(id, column, 'is not a timestamp');
    return v;
  };
  const phase = str('phase');
  const own = PHASES.find((p) => p === phase);
  if (!own) throw bad(id, 'phase', `is "${phase.slice(0, 20)}", not a phase`);
  const duration = row.executionDuration;
  if (typeof duration !== 'number' || !Number.isInteger(duration)) throw bad(id, 'execution_duration', 'is not an integer');
  return {
    id: str('id'),
    owner: str('owner'),
    params: parseParams(id, row.params),
    uploadName: strOrNull('uploadName'),
    uploadVotable: strOrNull('uploadVotable'),
    phase: own,
    jobId: strOrNull('jobId'),
    threadId: strOrNull('threadId'),
    threadJoin: row.threadJoin === null || row.threadJoin === undefined ? null : parseJoin(id, row.threadJoin),
    errorMessage: strOrNull('errorMessage'),
    executionDuration: duration,
    destruction: date('destruction'),
    createdAt: date('createdAt'),
    startedAt: row.startedAt === null || row.startedAt === undefined ? null : date('startedAt'),
    hasResult: row.hasResult === true,
  };
}

/** The params column: an object of text values. */
function parseParams(id: unknown, v: unknown): Record<string, string> {
  if (!isRecord(v)) throw bad(id, 'params', 'is not a JSON object');
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== 'string') throw bad(id, 'params', `has ${k.slice(0, 40)} of type ${typeof value}, not text`);
    out[k] = value;
  }
  return out;
}

/** The thread_join column: the parts of a CrossSiteJoin that reading the thread's result needs. */
function parseJoin(id: unknown, v: unknown): StoredJoin {
  const fail = (why: string) => bad(id, 'thread_join', why);
  if (!isRecord(v)) throw fail('is not a JSON object');
  const int = (x: unknown, what: string): number => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw fail(`has ${what} that is not a non-negative integer`);
    return x;
  };
  const num = (x: unknown, what: string): number => {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw fail(`has ${what} that is not a number`);
    return x;
  };
  if (!Array.isArray(v.outputs)) throw fail('has no outputs list');
  const outputs = v.outputs.map((o: unknown, i: number): OutputColumn => {
    if (!isRecord(o) || typeof o.name !== 'string') throw fail(`has output ${i} without a name`);
    if (o.from === 'sep') return { name: o.name, from: 'sep' };
    if (o.from === 'column') return { name: o.name, from: 'column', index: int(o.index, `output ${i}'s index`) };
    throw fail(`has output ${i} from neither a column nor the separation`);
  });
  if (!Array.isArray(v.filters)) throw fail('has no filters list');
  const filters = v.filters.map((f: unknown, i: number): ConeFilter => {
    if (!isRecord(f) || !isRecord(f.cone)) throw fail(`has filter ${i} without a cone`);
    return {
      raIndex: int(f.raIndex, `filter ${i}'s raIndex`),
      decIndex: int(f.decIndex, `filter ${i}'s decIndex`),
      cone: { ra: num(f.cone.ra, `filter ${i}'s ra`), dec: num(f.cone.dec, `filter ${i}'s dec`), radiusDeg: num(f.cone.radiusDeg, `filter ${i}'s radius`) },
    };
  });
  if (typeof v.strict !== 'boolean') throw fail('has no strict flag');
  if (!isRecord(v.input)) throw fail('has no input');
  return {
    outputs,
    filters,
    sepIndex: int(v.sepIndex, 'sepIndex'),
    strict: v.strict,
    ...(v.top === undefined || v.top === null ? {} : { top: int(v.top, 'top') }),
    input: { radiusArcsec: num(v.input.radiusArcsec, 'input.radiusArcsec') },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
