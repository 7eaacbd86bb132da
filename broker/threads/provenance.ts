/**
 * A thread's provenance (issue 11, point 5): every site asked, the exact query each received,
 * the site job ids, rows and bytes in and out, durations, the digest of the capability document
 * each site had when the thread was planned, and the broker version. As plain JSON, and as W3C
 * PROV-JSON (entities, activities, agents and their relations). No credential is ever part of it.
 */
import { createHash } from 'node:crypto';
import type { JobRow } from '../../registry/store/queries/jobs.js';
import type { ThreadDocument } from '../../registry/store/queries/thread-provenance.js';
import type { ThreadRow, ThreadStepRow } from '../../registry/store/queries/threads.js';

/** The query a step's job sent to its site. */
export interface ProvenanceQuery {
  service: string;
  mode: 'sync' | 'async';
  adql: string;
  /** The uploaded table (an upload join): its name, size and sha256, not its rows. */
  upload: { name: string; bytes: number; sha256: string } | null;
}

/** One step as provenance records it. */
export interface ProvenanceStep {
  ordinal: number;
  kind: string;
  tile: { order: number | null; cell: number };
  site: string | null;
  state: string;
  jobId: string | null;
  siteJobId: string | null;
  query: ProvenanceQuery | null;
  rowsIn: number | null;
  rowsOut: number | null;
  bytesIn: number | null;
  bytesOut: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  checksum: string | null;
}

/** A thread's provenance as plain JSON. */
export interface ThreadProvenance {
  thread: {
    id: string;
    owner: string;
    state: string;
    strategy: string | null;
    request: unknown;
    rerunOf: string | null;
    createdAt: string;
    finishedAt: string | null;
    durationMs: number | null;
  };
  broker: { software: 'constellation'; version: string | null };
  /** Every site asked (a step's job ran there), in order of first use. */
  sitesAsked: string[];
  /** The capability document each runbook site had when the thread was planned. */
  documents: ThreadDocument[];
  inputs: { side: 'left' | 'right'; dataset: string; site: string; table: string }[];
  steps: ProvenanceStep[];
  result: { rows: number | null; bytes: number | null; checksum: string | null; url: string | null };
}

/** Build a thread's provenance from its row, steps and their jobs. */
export function threadProvenance(thread: ThreadRow, steps: readonly ThreadStepRow[], jobs: ReadonlyMap<string, JobRow>): ThreadProvenance {
  const book = thread.record.intact ? thread.record.runbook : null;
  const out: ProvenanceStep[] = steps.map((s) => {
    const job = s.jobId ? jobs.get(s.jobId) : undefined;
    return {
      ordinal: s.ordinal,
      kind: s.kind,
      tile: { order: s.tileOrder, cell: Number(s.tileCell) },
      site: job?.siteId ?? s.siteId,
      state: s.state,
      jobId: s.jobId,
      siteJobId: job?.siteJobId ?? null,
      query: job ? queryOf(job) : null,
      rowsIn: numberOrNull(s.rowsIn),
      rowsOut: numberOrNull(s.rowsOut),
      bytesIn: numberOrNull(s.bytesIn),
      bytesOut: numberOrNull(s.bytesOut),
      startedAt: s.startedAt?.toISOString() ?? null,
      finishedAt: s.finishedAt?.toISOString() ?? null,
      durationMs: s.startedAt && s.finishedAt ? s.finishedAt.getTime() - s.startedAt.getTime() : null,
      checksum: s.checksum,
    };
  });
  const sitesAsked = [...new Set(out.filter((s) => s.jobId !== null && s.site !== null).map((s) => s.site ?? ''))];
  const inputs: ThreadProvenance['inputs'] = [];
  if (book) {
    const seen = new Set<string>();
    for (const side of ['left', 'right'] as const) {
      const tables = [book[side], ...book.alternates[side]];
      for (const s of out) {
        const t = tables.find((x) => x.site === s.site);
        if (!t || s.kind === 'match' || !readsSide(s.kind, side, book.strategy, book.uploadSide, s.ordinal)) continue;
        const key = `${side}|${t.site}`;
        if (seen.has(key)) continue;
        seen.add(key);
        inputs.push({ side, dataset: t.dataset, site: t.site, table: t.table });
      }
    }
  }
  return {
    thread: {
      id: thread.id,
      owner: thread.owner,
      state: thread.state,
      strategy: book?.strategy ?? null,
      request: thread.request,
      rerunOf: thread.rerunOf,
      createdAt: thread.createdAt.toISOString(),
      finishedAt: thread.finishedAt?.toISOString() ?? null,
      durationMs: thread.finishedAt ? thread.finishedAt.getTime() - thread.createdAt.getTime() : null,
    },
    broker: { software: 'constellation', version: thread.brokerVersion },
    sitesAsked,
    documents: thread.documents,
    inputs,
    steps: out,
    result: {
      rows: numberOrNull(thread.resultRows),
      bytes: numberOrNull(thread.resultBytes),
      checksum: thread.resultChecksum,
      url: thread.state === 'COMPLETED' ? `/results/${thread.id}` : null,
    },
  };
}

/** Whether a step of `kind` reads (or joins) `side`'s dataset at its site. */
function readsSide(kind: string, side: 'left' | 'right', strategy: string, uploadSide: 'left' | 'right' | null, ordinal: number): boolean {
  if (kind === 'site-join') return true;
  if (kind === 'upload-join') return side !== (uploadSide ?? 'left');
  if (strategy === 'UPLOAD') return side === (uploadSide ?? 'left');
  return (ordinal % 2 === 0 ? 'left' : 'right') === side;
}

function queryOf(job: JobRow): ProvenanceQuery | null {
  if (!job.plan.intact) return null;
  const candidate = job.plan.candidates[job.candidateIndex];
  if (!candidate || candidate.kind !== 'QUERY') return null;
  const q = candidate.siteQuery;
  const upload = q.upload
    ? { name: q.upload.name, bytes: Buffer.byteLength(q.upload.votable), sha256: createHash('sha256').update(q.upload.votable).digest('hex') }
    : null;
  return { service: q.service, mode: q.mode, adql: q.adql, upload };
}

// bigint columns arrive as strings from pg; provenance shows numbers.
function numberOrNull(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}

/** PROV-JSON (https://www.w3.org/submissions/prov-json/) of a thread's provenance. */
export function provJson(p: ThreadProvenance): Record<string, unknown> {
  const t = `cst:thread/${p.thread.id}`;
  const entity: Record<string, Record<string, unknown>> = {};
  const activity: Record<string, Record<string, unknown>> = {};
  const agent: Record<string, Record<string, unknown>> = {};
  const used: Record<string, Record<string, unknown>> = {};
  const wasGeneratedBy: Record<string, Record<string, unknown>> = {};
  const wasAssociatedWith: Record<string, Record<string, unknown>> = {};
  const wasDerivedFrom: Record<string, Record<string, unknown>> = {};
  const actedOnBehalfOf: Record<string, Record<string, unknown>> = {};
  let n = 0;
  const id = (prefix: string) => `_:${prefix}${++n}`;
  const broker = 'cst:broker';
  const user = `cst:user/${encodeURIComponent(p.thread.owner)}`;
  agent[broker] = { 'prov:type': 'prov:SoftwareAgent', 'prov:label': 'constellation broker', 'cst:version': p.broker.version ?? 'unknown' };
  agent[user] = { 'prov:type': 'prov:Person', 'cst:owner': p.thread.owner };
  actedOnBehalfOf[id('aobo')] = { 'prov:delegate': broker, 'prov:responsible': user };
  const docs = new Map(p.documents.map((d) => [d.siteId, d]));
  const inputId = (site: string, dataset: string) => `cst:dataset/${encodeURIComponent(dataset)}@${encodeURIComponent(site)}`;
  for (const i of p.inputs) {
    const doc = docs.get(i.site);
    entity[inputId(i.site, i.dataset)] = {
      'prov:type': 'cst:InputDataset',
      'cst:dataset': i.dataset,
      'cst:site': i.site,
      'cst:table': i.table,
      'cst:side': i.side,
      ...(doc ? { 'cst:capabilityDocument': doc.documentId, 'cst:capabilityDocumentSha256': doc.digest } : {}),
    };
  }
  const result = `${t}/result`;
  entity[result] = {
    'prov:type': 'cst:CrossmatchResult',
    ...(p.result.rows !== null ? { 'cst:rows': p.result.rows } : {}),
    ...(p.result.bytes !== null ? { 'cst:bytes': p.result.bytes } : {}),
    ...(p.result.checksum !== null ? { 'cst:checksum': p.result.checksum } : {}),
    ...(p.result.url !== null ? { 'prov:location': p.result.url } : {}),
  };
  const matchActivity = `${t}/match`;
  const stepResults: string[] = [];
  for (const s of p.steps) {
    const a = `${t}/step/${s.ordinal}`;
    const out = `${a}/result`;
    activity[a] = {
      'prov:type': `cst:${s.kind}`,
      ...(s.startedAt ? { 'prov:startTime': s.startedAt } : {}),
      ...(s.finishedAt ? { 'prov:endTime': s.finishedAt } : {}),
      'cst:state': s.state,
      'cst:tile': s.tile.order === null ? 'whole region' : `${s.tile.order}/${s.tile.cell}`,
      ...(s.site ? { 'cst:site': s.site } : {}),
      ...(s.jobId ? { 'cst:job': s.jobId } : {}),
      ...(s.siteJobId ? { 'cst:siteJob': s.siteJobId } : {}),
      ...(s.query ? { 'cst:query': s.query.adql, 'cst:service': s.query.service } : {}),
      ...(s.query?.upload ? { 'cst:uploadSha256': s.query.upload.sha256, 'cst:uploadBytes': s.query.upload.bytes } : {}),
      ...(s.durationMs !== null ? { 'cst:durationMs': s.durationMs } : {}),
    };
    wasAssociatedWith[id('waw')] = { 'prov:activity': a, 'prov:agent': broker };
    entity[out] = {
      'prov:type': 'cst:StepResult',
      ...(s.rowsOut !== null ? { 'cst:rows': s.rowsOut } : {}),
      ...(s.bytesIn !== null ? { 'cst:bytesIn': s.bytesIn } : {}),
      ...(s.bytesOut !== null ? { 'cst:bytesOut': s.bytesOut } : {}),
      ...(s.checksum !== null ? { 'cst:checksum': s.checksum } : {}),
    };
    wasGeneratedBy[id('wgb')] = { 'prov:entity': out, 'prov:activity': a, ...(s.finishedAt ? { 'prov:time': s.finishedAt } : {}) };
    for (const i of p.inputs) {
      if (i.site !== s.site || s.kind === 'match') continue;
      used[id('u')] = { 'prov:activity': a, 'prov:entity': inputId(i.site, i.dataset) };
      wasDerivedFrom[id('wdf')] = { 'prov:generatedEntity': out, 'prov:usedEntity': inputId(i.site, i.dataset), 'prov:activity': a };
    }
    // An upload join used the read whose rows it was sent (the step before it in its tile).
    if (s.kind === 'upload-join') {
      const read = p.steps.find((r) => r.ordinal === s.ordinal - 1);
      if (read) used[id('u')] = { 'prov:activity': a, 'prov:entity': `${t}/step/${read.ordinal}/result` };
    }
    if (s.kind !== 'match' && !(s.kind === 'site-read' && p.steps.some((x) => x.kind === 'upload-join' && x.ordinal === s.ordinal + 1))) stepResults.push(out);
  }
  // The match: the broker's own (BROKER's match step) or its assembly of the joins' pairs.
  if (!p.steps.some((s) => s.kind === 'match')) {
    activity[matchActivity] = { 'prov:type': 'cst:assemble', ...(p.thread.finishedAt ? { 'prov:endTime': p.thread.finishedAt } : {}) };
    wasAssociatedWith[id('waw')] = { 'prov:activity': matchActivity, 'prov:agent': broker };
  }
  const matchId = p.steps.find((s) => s.kind === 'match');
  const finalActivity = matchId ? `${t}/step/${matchId.ordinal}` : matchActivity;
  for (const r of stepResults) {
    used[id('u')] = { 'prov:activity': finalActivity, 'prov:entity': r };
    wasDerivedFrom[id('wdf')] = { 'prov:generatedEntity': result, 'prov:usedEntity': r, 'prov:activity': finalActivity };
  }
  if (p.thread.state === 'COMPLETED') wasGeneratedBy[id('wgb')] = { 'prov:entity': result, 'prov:activity': finalActivity, ...(p.thread.finishedAt ? { 'prov:time': p.thread.finishedAt } : {}) };
  // A re-run is not derived from the run it repeats (it read the sites again); it only names it.
  if (p.thread.rerunOf) entity[result]['cst:rerunOf'] = `cst:thread/${p.thread.rerunOf}`;
  return {
    prefix: { cst: 'https://constellation.invalid/ns#' },
    entity, activity, agent, used, wasGeneratedBy, wasAssociatedWith, wasDerivedFrom, actedOnBehalfOf,
  };
}
