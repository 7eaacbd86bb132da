/**
 * A cross-match thread as the database keeps it (issue 11): the strategy plan it was started
 * under (every candidate, shown as Thread.plan) and its runbook (what it runs: sites, tables in
 * each site's own names, tiles, output columns). Both are jsonb, read back here once; a damaged
 * record is a coded error, never a cast that fails later.
 */
import { ConstellationError } from './errors.js';

/** How a cross-match is carried out. */
export type ThreadStrategy = 'SAME_SITE' | 'UPLOAD' | 'BROKER';

/** BEST: nearest right row per left row; ALL: every pair within the radius. */
export type ThreadMatchMode = 'BEST' | 'ALL';

/** The states of a thread and of its steps. */
export type ThreadState = 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'ERROR' | 'ABORTED';

/** What a step does: read one side at a site, join at a site, join against uploaded rows, or match in the broker. */
export type ThreadStepKind = 'site-read' | 'site-join' | 'upload-join' | 'match';

/** One reason a strategy candidate was refused (the planner's typed reason). */
export interface StrategyReasonRecord {
  code: string;
  site?: string;
  side?: 'left' | 'right';
  message: string;
}

/** One strategy candidate as the thread keeps it (the planner's StrategyCandidate). */
export interface StrategyCandidateRecord {
  strategy: ThreadStrategy;
  sites: { left: string | null; right: string | null };
  upload: { side: 'left' | 'right'; from: string; to: string } | null;
  rows: { left: number; right: number; pairs: number };
  bytes: { fetchedLeft: number; fetchedRight: number; uploaded: number; pairs: number; total: number };
  steps: number;
  tiling: { order: number | null; cells: number[]; perStep: { leftRows: number; rightRows: number; pairsReturned: number; uploadBytes: number } } | null;
  eligible: boolean;
  reasons: StrategyReasonRecord[];
}

/** The plan a thread was started under: every candidate, and which one runs. */
export interface ThreadPlanRecord {
  /** Index into `candidates` of the chosen one. */
  chosen: number;
  candidates: StrategyCandidateRecord[];
  forced: ThreadStrategy | null;
  formula: string;
  /** The member site the request came from (the fast lane), if any. */
  callerSite: string | null;
}

/** One side as a site names it. */
export interface RunbookTable {
  /** Canonical dataset id. */
  dataset: string;
  site: string;
  service: string;
  /** Local table name. */
  table: string;
  /** Local position column names. */
  ra: string;
  dec: string;
  /** Chosen columns, by local name. */
  columns: string[];
  healpixUdf: boolean;
}

/** What a thread runs. */
export interface ThreadRunbook {
  strategy: ThreadStrategy;
  mode: ThreadMatchMode;
  radiusArcsec: number;
  region: { cone: { ra: number; dec: number; radiusDeg: number } | null; moc: string };
  left: RunbookTable;
  right: RunbookTable;
  /** UPLOAD only: the side whose rows are uploaded to the other side's site. */
  uploadSide: 'left' | 'right' | null;
  tiles: { order: number | null; cells: number[] };
  /** Result column names, left side's chosen columns then the right side's, in order. */
  output: { left: string[]; right: string[] };
  /** Other sites holding each side, whose limits are no tighter: a read fails over to them in order. */
  alternates: { left: RunbookTable[]; right: RunbookTable[] };
}

/** A thread's jsonb read back. */
export type StoredThreadRecord = { intact: true; plan: ThreadPlanRecord; runbook: ThreadRunbook } | { intact: false; error: ConstellationError };

const STRATEGY = new Set(['SAME_SITE', 'UPLOAD', 'BROKER']);

/** Read a thread's plan and runbook columns; never throws (a damaged record is INTERNAL, saying what is wrong). */
export function readThreadRecord(threadId: string, plan: unknown, runbook: unknown): StoredThreadRecord {
  const damaged = (what: string): StoredThreadRecord => ({ intact: false, error: new ConstellationError('INTERNAL', `the stored ${what} of thread ${threadId} is malformed`) });
  const p = planOf(plan);
  if (p === undefined) return damaged('plan');
  const r = runbookOf(runbook);
  if (r === undefined) return damaged('runbook');
  return { intact: true, plan: p, runbook: r };
}

function planOf(raw: unknown): ThreadPlanRecord | undefined {
  if (!isObject(raw) || typeof raw.chosen !== 'number' || !Array.isArray(raw.candidates) || typeof raw.formula !== 'string') return undefined;
  if (!(raw.forced === null || isStrategy(raw.forced))) return undefined;
  // Absent in plans recorded before the fast lane reached threads.
  const callerSite = raw.callerSite ?? null;
  if (!nullableText(callerSite)) return undefined;
  const candidates: StrategyCandidateRecord[] = [];
  for (const c of raw.candidates) {
    const read = candidateOf(c);
    if (read === undefined) return undefined;
    candidates.push(read);
  }
  if (candidates[raw.chosen] === undefined) return undefined;
  return { chosen: raw.chosen, candidates, forced: raw.forced, formula: raw.formula, callerSite };
}

function candidateOf(c: unknown): StrategyCandidateRecord | undefined {
  if (!isObject(c) || !isStrategy(c.strategy) || typeof c.eligible !== 'boolean' || typeof c.steps !== 'number' || !Array.isArray(c.reasons)) return undefined;
  const sites = c.sites;
  if (!isObject(sites) || !nullableText(sites.left) || !nullableText(sites.right)) return undefined;
  const rows = numbers(c.rows, ['left', 'right', 'pairs']);
  const bytes = numbers(c.bytes, ['fetchedLeft', 'fetchedRight', 'uploaded', 'pairs', 'total']);
  if (!rows || !bytes) return undefined;
  let upload: StrategyCandidateRecord['upload'] = null;
  if (c.upload !== null) {
    const u = c.upload;
    if (!isObject(u) || !isSide(u.side) || typeof u.from !== 'string' || typeof u.to !== 'string') return undefined;
    upload = { side: u.side, from: u.from, to: u.to };
  }
  let tiling: StrategyCandidateRecord['tiling'] = null;
  if (c.tiling !== null) {
    const t = c.tiling;
    if (!isObject(t) || !(t.order === null || typeof t.order === 'number') || !numberList(t.cells)) return undefined;
    const perStep = numbers(t.perStep, ['leftRows', 'rightRows', 'pairsReturned', 'uploadBytes']);
    if (!perStep) return undefined;
    tiling = { order: t.order, cells: t.cells, perStep: { leftRows: perStep.leftRows, rightRows: perStep.rightRows, pairsReturned: perStep.pairsReturned, uploadBytes: perStep.uploadBytes } };
  }
  const reasons: StrategyReasonRecord[] = [];
  for (const r of c.reasons) {
    if (!isObject(r) || typeof r.code !== 'string' || typeof r.message !== 'string') return undefined;
    reasons.push({ code: r.code, message: r.message, ...(typeof r.site === 'string' ? { site: r.site } : {}), ...(isSide(r.side) ? { side: r.side } : {}) });
  }
  return {
    strategy: c.strategy,
    sites: { left: sites.left, right: sites.right },
    upload,
    rows: { left: rows.left, right: rows.right, pairs: rows.pairs },
    bytes: { fetchedLeft: bytes.fetchedLeft, fetchedRight: bytes.fetchedRight, uploaded: bytes.uploaded, pairs: bytes.pairs, total: bytes.total },
    steps: c.steps,
    tiling,
    eligible: c.eligible,
    reasons,
  };
}

function runbookOf(raw: unknown): ThreadRunbook | undefined {
  if (!isObject(raw) || !isStrategy(raw.strategy) || (raw.mode !== 'BEST' && raw.mode !== 'ALL') || typeof raw.radiusArcsec !== 'number') return undefined;
  const region = raw.region;
  if (!isObject(region) || typeof region.moc !== 'string') return undefined;
  let cone: ThreadRunbook['region']['cone'] = null;
  if (region.cone !== null) {
    const c = numbers(region.cone, ['ra', 'dec', 'radiusDeg']);
    if (!c) return undefined;
    cone = { ra: c.ra, dec: c.dec, radiusDeg: c.radiusDeg };
  }
  const left = tableOf(raw.left);
  const right = tableOf(raw.right);
  if (!left || !right) return undefined;
  if (!(raw.uploadSide === null || isSide(raw.uploadSide))) return undefined;
  const tiles = raw.tiles;
  if (!isObject(tiles) || !(tiles.order === null || typeof tiles.order === 'number') || !numberList(tiles.cells)) return undefined;
  const output = raw.output;
  if (!isObject(output) || !textList(output.left) || !textList(output.right)) return undefined;
  const alternates: ThreadRunbook['alternates'] = { left: [], right: [] };
  if (raw.alternates !== undefined) {
    const a = raw.alternates;
    if (!isObject(a)) return undefined;
    for (const side of ['left', 'right'] as const) {
      const list: unknown = a[side];
      if (!Array.isArray(list)) return undefined;
      for (const t of list) {
        const table = tableOf(t);
        if (!table) return undefined;
        alternates[side].push(table);
      }
    }
  }
  return {
    strategy: raw.strategy,
    mode: raw.mode,
    radiusArcsec: raw.radiusArcsec,
    region: { cone, moc: region.moc },
    left,
    right,
    uploadSide: raw.uploadSide,
    tiles: { order: tiles.order, cells: tiles.cells },
    output: { left: output.left, right: output.right },
    alternates,
  };
}

function tableOf(raw: unknown): RunbookTable | undefined {
  if (!isObject(raw)) return undefined;
  const { dataset, site, service, table, ra, dec, columns, healpixUdf } = raw;
  if (typeof dataset !== 'string' || typeof site !== 'string' || typeof service !== 'string' || typeof table !== 'string') return undefined;
  if (typeof ra !== 'string' || typeof dec !== 'string' || !textList(columns) || typeof healpixUdf !== 'boolean') return undefined;
  return { dataset, site, service, table, ra, dec, columns, healpixUdf };
}

function numbers<K extends string>(raw: unknown, keys: readonly K[]): Record<K, number> | undefined {
  if (!isObject(raw)) return undefined;
  const out: Partial<Record<K, number>> = {};
  for (const k of keys) {
    const v = raw[k];
    if (typeof v !== 'number') return undefined;
    out[k] = v;
  }
  return isComplete(out, keys) ? out : undefined;
}

function isComplete<K extends string>(o: Partial<Record<K, number>>, keys: readonly K[]): o is Record<K, number> {
  return keys.every((k) => typeof o[k] === 'number');
}

function isStrategy(v: unknown): v is ThreadStrategy {
  return typeof v === 'string' && STRATEGY.has(v);
}

function isSide(v: unknown): v is 'left' | 'right' {
  return v === 'left' || v === 'right';
}

function nullableText(v: unknown): v is string | null {
  return v === null || typeof v === 'string';
}

function numberList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'number');
}

function textList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
