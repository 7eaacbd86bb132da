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

/** Stream a COMPLETED job's result from its site in `format` (owner checked when given). */
export async function jobResult(jobs: JobService, id: string, format: ResultFormat, owner?: string, signal?: AbortSignal): Promise<ResultStream> {
  const job = await jobs.get(id, owner);
  if (!job) throw new ConstellationError('NOT_FOUND', `no job ${id}`);
  if (job.state !== 'COMPLETED') {
    throw new ConstellationError('NOT_FOUND', `job ${job.id} has no result: it is ${job.state}${job.errorMessage ? ` (${job.errorMessage})` : ''}`);
  }
  return convertResult(await jobs.result(job, signal), format);
}

/** Convert a site's VOTable result to `format` as a stream. */
export function convertResult(result: SiteResult, format: ResultFormat): ResultStream {
  if (format === 'votable') return { contentType: result.contentType || 'application/x-votable+xml', body: result.body };
  if (format === 'csv') return { contentType: 'text/csv; charset=utf-8; header=present', body: encode(toCsv(result.body)) };
  return { contentType: 'application/json; charset=utf-8', body: encode(toJson(result.body)) };
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
