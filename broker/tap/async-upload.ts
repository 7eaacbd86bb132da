/**
 * The uploaded table an async job keeps. An inline upload (UPLOAD=name,param:part) is kept as
 * sent; one given by URL (UPLOAD=name,https://…) is read when the parameter is given and kept the
 * same way, so that a signed URL's secret (its query string, a user in it) is used once and
 * stored nowhere: the job's UPLOAD parameter keeps the URL without them, and RUN reads the kept table.
 */
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import type { KeptUpload } from './job-store.js';
import { QUERY_PARAMS, UPLOAD_MAX_BYTES, type UrlReader } from './request.js';

const HTTP_URL = /^https?:\/\//i;

/** `url` without what may carry a secret: its user and password, query string and fragment (unparsable: only its scheme). */
export function strippedUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return `${/^[a-z]+:/i.exec(url)?.[0] ?? ''}//[not a URL]`;
  }
}

/** An UPLOAD value with each http(s) URL in it stripped (strippedUrl). */
export function strippedUploadParam(value: string): string {
  return value
    .split(';')
    .map((item) => {
      const comma = item.indexOf(',');
      if (comma < 0) return item;
      const uri = item.slice(comma + 1).trim();
      return HTTP_URL.test(uri) ? `${item.slice(0, comma)},${strippedUrl(uri)}` : item;
    })
    .join(';');
}

/** The TAP parameters a job keeps, by upper-case name (an UPLOAD URL stripped). */
export function keptParams(values: ReadonlyMap<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of QUERY_PARAMS) {
    const v = values.get(name);
    if (v !== undefined) out[name] = name === 'UPLOAD' ? strippedUploadParam(v) : v;
  }
  return out;
}

/**
 * The one upload a request carries, to keep: a file part (size checked), or the table at a URL
 * (read now, bounded by the upload limit). Its VOTable is checked when the job runs, like the rest.
 */
export async function uploadToKeep(values: ReadonlyMap<string, string>, files: ReadonlyMap<string, Buffer>, readUrl: UrlReader): Promise<KeptUpload | undefined> {
  const upload = values.get('UPLOAD');
  if (!upload) return undefined;
  const first = upload.split(';')[0].trim();
  const comma = first.indexOf(',');
  if (comma < 0) return undefined;
  const table = first.slice(0, comma).trim();
  const uri = first.slice(comma + 1).trim();
  if (HTTP_URL.test(uri)) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(table)) throw invalidArgument('UPLOAD', `table name "${table.slice(0, 40)}" is not an ADQL regular identifier`);
    return { name: table, votable: await readUrl(table, uri) };
  }
  if (!uri.startsWith('param:')) return undefined;
  const partName = uri.slice('param:'.length);
  const part = files.get(partName);
  if (!part) return undefined;
  if (part.byteLength > UPLOAD_MAX_BYTES) throw new ConstellationError('PAYLOAD_TOO_LARGE', `UPLOAD ${partName} is ${part.byteLength} bytes; this service accepts uploaded tables of at most ${UPLOAD_MAX_BYTES} bytes`);
  return { name: partName, votable: part.toString('utf8') };
}

/**
 * The parameters a job runs with: those kept, its UPLOAD pointing at the kept table (a URL
 * upload was read when given; RUN does not read it again), and the kept table as its file part.
 */
export function runInputs(tap: { params: Record<string, string>; uploadName: string | null; uploadVotable: string | null }): { values: Map<string, string>; files: Map<string, string> } {
  const values = new Map(Object.entries(tap.params));
  const files = new Map<string, string>();
  if (tap.uploadName !== null && tap.uploadVotable !== null) {
    files.set(tap.uploadName, tap.uploadVotable);
    const upload = values.get('UPLOAD');
    if (upload !== undefined) {
      values.set('UPLOAD', upload.split(';').map((item) => {
        const comma = item.indexOf(',');
        return comma >= 0 && HTTP_URL.test(item.slice(comma + 1).trim()) ? `${item.slice(0, comma)},param:${tap.uploadName}` : item;
      }).join(';'));
    }
  }
  return { values, files };
}
