/** A TAP query request (TAP 1.1 section 2.3, DALI): its parameters checked and read once, before anything is planned or sent. */
import { parseAdqlOrThrow, type Query } from '../../adapters/ivoa/adql/index.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import type { TapParams } from './form.js';
import { responseFormatOf, type ResponseFormat } from './formats.js';
import type { Upload } from './route.js';

/** Largest uploaded table accepted (bytes of VOTable); TAPRegExt advertises it. */
export const UPLOAD_MAX_BYTES = 8 * 1024 * 1024;
/** MAXREC when the caller gives none, and the largest accepted (TAPRegExt outputLimit default and hard). */
export const DEFAULT_MAXREC = 100_000;
export const HARD_MAXREC = 10_000_000;
const MAX_QUERY_CHARS = 100_000;

/** Reads an upload given by URL (upload-http): its text, bounded to UPLOAD_MAX_BYTES. */
export type UrlReader = (name: string, url: string) => Promise<string>;

/** A query request, checked. */
export interface TapQueryRequest {
  adql: string;
  query: Query;
  maxrec: number;
  format: ResponseFormat;
  uploads: Upload[];
}

/** The names of the parameters a job keeps (the rest are ignored, as DALI says). */
export const QUERY_PARAMS = ['REQUEST', 'LANG', 'QUERY', 'MAXREC', 'RESPONSEFORMAT', 'FORMAT', 'UPLOAD', 'RUNID'] as const;

/** Check `values` (and the uploads among `files`) as a query; INVALID_ARGUMENT (or PAYLOAD_TOO_LARGE) names the parameter at fault. */
export async function readQueryRequest(values: ReadonlyMap<string, string>, files: ReadonlyMap<string, Buffer | string>, fetchUrl?: UrlReader): Promise<TapQueryRequest> {
  const request = values.get('REQUEST');
  if (request !== undefined && request.toLowerCase() !== 'doquery') throw invalidArgument('REQUEST', `must be doQuery, not "${request.slice(0, 40)}"`);
  const lang = values.get('LANG');
  if (lang !== undefined && !/^ADQL(-2\.[01])?$/i.test(lang.trim())) throw invalidArgument('LANG', `"${lang.slice(0, 40)}" is not a query language of this service; use ADQL (ADQL-2.0 or ADQL-2.1)`);
  const adql = values.get('QUERY');
  if (adql === undefined || adql.trim() === '') throw invalidArgument('QUERY', 'is missing: give the ADQL query to run');
  if (adql.length > MAX_QUERY_CHARS) throw invalidArgument('QUERY', `is ${adql.length} characters long; at most ${MAX_QUERY_CHARS} are accepted`);
  const maxrec = maxrecOf(values.get('MAXREC'));
  const format = responseFormatOf(values.get('RESPONSEFORMAT') ?? values.get('FORMAT'));
  const uploads = await uploadsOf(values.get('UPLOAD'), files, fetchUrl);
  let query: Query;
  try {
    query = parseAdqlOrThrow(adql);
  } catch (err) {
    throw new ConstellationError('INVALID_ARGUMENT', `QUERY is not valid ADQL: ${(err as Error).message}`, { cause: err });
  }
  return { adql, query, maxrec, format, uploads };
}

/** MAXREC as a number: a non-negative integer up to the hard limit. */
export function maxrecOf(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_MAXREC;
  if (!/^\s*\d+\s*$/.test(value)) throw invalidArgument('MAXREC', `must be a non-negative integer, not "${value.slice(0, 40)}"`);
  const n = Number(value);
  if (n > HARD_MAXREC) throw invalidArgument('MAXREC', `is ${n}; this service returns at most ${HARD_MAXREC} rows`);
  return n;
}

/** The tables UPLOAD names (`name,param:part;…`), each checked to be a VOTable of at most UPLOAD_MAX_BYTES. */
async function uploadsOf(value: string | undefined, files: ReadonlyMap<string, Buffer | string>, fetchUrl: UrlReader | undefined): Promise<Upload[]> {
  if (value === undefined || value.trim() === '') return [];
  const out: Upload[] = [];
  for (const item of value.split(';')) {
    const comma = item.indexOf(',');
    if (comma < 0) throw invalidArgument('UPLOAD', `"${item.slice(0, 60)}" is not name,URI`);
    const name = item.slice(0, comma).trim();
    const uri = item.slice(comma + 1).trim();
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(name)) throw invalidArgument('UPLOAD', `table name "${name.slice(0, 40)}" is not an ADQL regular identifier`);
    let part: Buffer | string | undefined;
    if (/^https?:\/\//i.test(uri) && fetchUrl) part = await fetchUrl(name, uri);
    else if (!uri.startsWith('param:')) throw invalidArgument('UPLOAD', `${name}: "${uri.slice(0, 60)}" is neither param:<part> (an inline upload) nor an http(s) URL`);
    else part = files.get(uri.slice('param:'.length));
    if (part === undefined) throw invalidArgument('UPLOAD', `${name}: the request has no file part named "${uri.slice('param:'.length)}"`);
    const bytes = typeof part === 'string' ? Buffer.byteLength(part) : part.byteLength;
    if (bytes > UPLOAD_MAX_BYTES) throw new ConstellationError('PAYLOAD_TOO_LARGE', `UPLOAD ${name} is ${bytes} bytes; this service accepts uploaded tables of at most ${UPLOAD_MAX_BYTES} bytes`);
    const text = typeof part === 'string' ? part : part.toString('utf8');
    let columns: string[];
    try {
      const doc = await readVOTableToArray([new TextEncoder().encode(text)]);
      if (doc.tables.length === 0) throw new Error('it holds no TABLE');
      columns = doc.tables[0].meta.fields.map((f) => f.name.toLowerCase());
    } catch (err) {
      throw invalidArgument('UPLOAD', `${name} is not a VOTable: ${(err as Error).message.slice(0, 300)}`, 'upload-votable');
    }
    if (out.some((u) => u.name.toLowerCase() === name.toLowerCase())) throw invalidArgument('UPLOAD', `names the table ${name} twice`);
    out.push({ name, columns, votable: text });
  }
  if (out.length > 1) throw invalidArgument('UPLOAD', `names ${out.length} tables; this service sends one uploaded table with a query`);
  return out;
}
