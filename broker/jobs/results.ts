/**
 * A finished job's result, streamed from its site: the VOTable as the site sends it, or
 * converted on the fly to CSV or JSON, one batch of rows at a time (constant memory).
 */
import { readVOTable, type Cell, type FieldMeta } from '../../adapters/ivoa/votable/index.js';
import type { SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { JobService } from './service.js';

/** The formats a result can be streamed in. */
export type ResultFormat = 'votable' | 'csv' | 'json';

/** A result stream with its media type. */
export interface ResultStream {
  contentType: string;
  body: AsyncIterable<Uint8Array>;
}

/** The format named by a `format` query value or an Accept header; undefined when neither names one. */
export function resultFormatOf(format: string | undefined, accept: string | undefined): ResultFormat | undefined {
  const f = format?.toLowerCase();
  if (f === 'votable' || f === 'xml' || f === 'vot') return 'votable';
  if (f === 'csv') return 'csv';
  if (f === 'json') return 'json';
  if (f !== undefined && f !== '') return undefined;
  if (!accept) return 'votable';
  if (/text\/csv/i.test(accept)) return 'csv';
  if (/application\/json/i.test(accept)) return 'json';
  return 'votable';
}

/** Media types the broker answers with: its own, whatever the site called its answer. */
export const RESULT_TYPES: Readonly<Record<ResultFormat, string>> = {
  votable: 'application/x-votable+xml',
  csv: 'text/csv; charset=utf-8; header=present',
  json: 'application/json; charset=utf-8',
};

/** How long /results waits for a site's first byte by default. */
export const FIRST_BYTE_TIMEOUT_MS = 15_000;

/**
 * Stream a COMPLETED job's result in `format` (owner checked when given). The first chunk is
 * read before this returns, so a result that fails before its first byte (a truncated or
 * malformed VOTable, a QUERY_STATUS error, an answer that is not a VOTable) throws its coded
 * error here, for the route to answer with a status and a JSON body; a later failure can only
 * cut the body short. A site that sends no byte within `firstByteMs` is UPSTREAM_TIMEOUT, and
 * its request is abandoned.
 */
export async function jobResult(
  jobs: JobService,
  id: string,
  format: ResultFormat,
  owner?: string,
  signal?: AbortSignal,
  firstByteMs: number = FIRST_BYTE_TIMEOUT_MS,
): Promise<ResultStream> {
  const job = await jobs.get(id, owner);
  if (!job) throw new ConstellationError('NOT_FOUND', `no job ${id}`);
  if (job.state !== 'COMPLETED') {
    throw new ConstellationError('NOT_FOUND', `job ${job.id} has no result: it is ${job.state}${job.errorMessage ? ` (${job.errorMessage})` : ''}`);
  }
  // The deadline aborts the site's request too; once the first byte is here only the client (or
  // the HTTP client's body timeout) ends the transfer.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), firstByteMs);
  const combined = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
  const timedOut = () => new ConstellationError('UPSTREAM_TIMEOUT', `${job.siteId ?? 'the site'} sent no byte of job ${job.id}'s result within ${firstByteMs / 1000} s`);
  try {
    const late = new Promise<never>((_resolve, reject) => deadline.signal.addEventListener('abort', () => reject(timedOut()), { once: true }));
    late.catch(() => {});
    const started = (async () => startStream(convertResult(siteVotable(await jobs.result(job, combined), job.siteId ?? 'the site'), format)))();
    return await Promise.race([started, late]).catch((err: unknown) => {
      if (deadline.signal.aborted) {
        // The stream may still open after the deadline: release it.
        void started.then((s) => s.body[Symbol.asyncIterator]().return?.(), () => {});
        throw timedOut();
      }
      throw err;
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A site's answer as a VOTable, or UPSTREAM_MALFORMED before its first byte is passed on: the
 * document's root element must be VOTABLE, whatever media type the site gave it (sites mislabel
 * VOTables as text/plain or text/html). A site cannot make the broker serve HTML (or anything
 * else) from its origin; the answer carries only the broker's own media type.
 */
export function siteVotable(result: SiteResult, site: string): SiteResult {
  const label = (result.contentType ?? '').split(';')[0].trim().toLowerCase().slice(0, 80);
  return { contentType: RESULT_TYPES.votable, body: checkRoot(result.body, label ? `${site} (labelled ${label})` : site) };
}

/** Longest prologue (XML declaration, comments, doctype) read while looking for the root element. */
const MAX_PROLOGUE = 64 * 1024;

async function* checkRoot(body: AsyncIterable<Uint8Array>, site: string): AsyncIterable<Uint8Array> {
  const held: Uint8Array[] = [];
  let text = '';
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const it = body[Symbol.asyncIterator]();
  let open = true;
  try {
    for (;;) {
      const next = await it.next();
      if (next.done) {
        open = false;
        break;
      }
      held.push(next.value);
      text += decoder.decode(next.value, { stream: true });
      const root = rootElement(text);
      if (root === undefined && text.length < MAX_PROLOGUE) continue;
      if (root === undefined || !/^([A-Za-z_][\w.-]*:)?VOTABLE$/.test(root)) {
        throw new ConstellationError('UPSTREAM_MALFORMED', `${site} sent a result whose root element is ${root === undefined ? 'not found' : `<${root.slice(0, 40).replace(/[^\w:.-]/g, '?')}>`}, not a VOTable`);
      }
      for (const chunk of held.splice(0)) yield chunk;
      for (;;) {
        const more = await it.next();
        if (more.done) {
          open = false;
          return;
        }
        yield more.value;
      }
    }
    throw new ConstellationError('UPSTREAM_MALFORMED', `${site} sent a result that is not a VOTable${text.trim() === '' ? ' (it is empty)' : ''}`);
  } finally {
    if (open) await it.return?.();
  }
}

/** The name of the first element of an XML text, skipping the declaration, comments, PIs and doctype; undefined until it is seen. */
function rootElement(text: string): string | undefined {
  let i = 0;
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0) return undefined;
    if (text.startsWith('<?', lt)) i = text.indexOf('?>', lt);
    else if (text.startsWith('<!--', lt)) i = text.indexOf('-->', lt);
    else if (text.startsWith('<!', lt)) i = text.indexOf('>', lt);
    else {
      const m = /^<([^\s/>]+)[\s/>]/.exec(text.slice(lt, lt + 200));
      return m ? m[1] : text.length - lt > 200 ? text.slice(lt + 1, lt + 41) : undefined;
    }
    if (i < 0) return undefined;
  }
}

/** Reads `stream`'s first chunk now (throwing its error, if any) and returns the same stream. */
export async function startStream(stream: ResultStream): Promise<ResultStream> {
  const it = stream.body[Symbol.asyncIterator]();
  const first = await it.next();
  return { contentType: stream.contentType, body: resume(first, it) };
}

async function* resume(first: IteratorResult<Uint8Array>, it: AsyncIterator<Uint8Array>): AsyncIterable<Uint8Array> {
  // `open`: the source has neither ended nor failed, so a consumer that stops early (the
  // client left) must release it, and with it the site's response.
  let open = first.done !== true;
  try {
    if (open) yield first.value;
    while (open) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await it.next();
      } catch (err) {
        open = false;
        throw err;
      }
      open = next.done !== true;
      if (open) yield next.value;
    }
  } finally {
    if (open) await it.return?.();
  }
}

/** Convert a site's VOTable result to `format` as a stream, under the broker's own media type. */
export function convertResult(result: SiteResult, format: ResultFormat): ResultStream {
  if (format === 'votable') return { contentType: RESULT_TYPES.votable, body: result.body };
  if (format === 'csv') return { contentType: RESULT_TYPES.csv, body: encode(toCsv(result.body)) };
  return { contentType: RESULT_TYPES.json, body: encode(toJson(result.body)) };
}

async function* encode(parts: AsyncIterable<string>): AsyncIterable<Uint8Array> {
  const encoder = new TextEncoder();
  for await (const p of parts) if (p.length > 0) yield encoder.encode(p);
}

// Only the first table is the result (DALI); later tables, if any, are ignored.
async function* toCsv(body: AsyncIterable<Uint8Array>): AsyncIterable<string> {
  let headed = false;
  for await (const ev of readVOTable(body)) {
    if (ev.type === 'table' && ev.table.index === 0) {
      headed = true;
      yield ev.table.fields.map((f) => csvField(f.name)).join(',') + '\r\n';
    } else if (ev.type === 'rows' && ev.table === 0) {
      let out = '';
      for (const row of ev.rows) out += row.map((c) => csvField(cellText(c))).join(',') + '\r\n';
      yield out;
    }
  }
  if (!headed) throw new ConstellationError('UPSTREAM_MALFORMED', 'the result VOTable has no table');
}

async function* toJson(body: AsyncIterable<Uint8Array>): AsyncIterable<string> {
  let started = false;
  let first = true;
  for await (const ev of readVOTable(body)) {
    if (ev.type === 'table' && ev.table.index === 0) {
      started = true;
      yield `{"metadata":${JSON.stringify(ev.table.fields.map(fieldJson))},"data":[`;
    } else if (ev.type === 'rows' && ev.table === 0) {
      let out = '';
      for (const row of ev.rows) {
        out += (first ? '\n' : ',\n') + '[' + row.map(cellJson).join(',') + ']';
        first = false;
      }
      yield out;
    }
  }
  if (!started) throw new ConstellationError('UPSTREAM_MALFORMED', 'the result VOTable has no table');
  yield '\n]}\n';
}

function fieldJson(f: FieldMeta): Record<string, string> {
  const out: Record<string, string> = { name: f.name, datatype: f.datatype };
  if (f.arraysize) out.arraysize = f.arraysize;
  if (f.unit) out.unit = f.unit;
  if (f.ucd) out.ucd = f.ucd;
  if (f.xtype) out.xtype = f.xtype;
  if (f.description) out.description = f.description;
  return out;
}

/** RFC 4180: quote a field holding a comma, quote, CR or LF (or leading/trailing space), doubling quotes. */
export function csvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A cell as CSV text: null is empty, arrays are space-separated (as in VOTable TABLEDATA). */
export function cellText(cell: Cell): string {
  if (cell === null) return '';
  if (Array.isArray(cell)) return cell.map((v) => (v === null ? '' : cellText(v as Cell))).join(' ');
  return String(cell);
}

/** A cell as JSON: long integers keep every digit, NaN and infinities become null. */
export function cellJson(cell: Cell): string {
  if (cell === null) return 'null';
  if (typeof cell === 'bigint') return cell.toString();
  if (typeof cell === 'number') return Number.isFinite(cell) ? String(cell) : 'null';
  if (typeof cell === 'boolean') return cell ? 'true' : 'false';
  if (typeof cell === 'string') return JSON.stringify(cell);
  return '[' + (cell as (Cell | null)[]).map((v) => cellJson(v)).join(',') + ']';
}
