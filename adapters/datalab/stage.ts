/**
 * Staging into a Data Lab user's MyDB (the PostgreSQL user tables Data Lab's TAP and query
 * manager read as mydb://), the way the datalab client's queryClient.mydb_import does it
 * (../shared/reference/platforms.md §4, "/query/{…,import,…}" and "/storage/…", [D1][D3]):
 *  1. the CSV goes to the user's transfer area in chunks: POST {storage}/xfer with
 *     X-DL-FileName, X-DL-InitXfer (True on the first chunk) and X-DL-AuthToken;
 *  2. POST {query}/import?table=…&filename=…&delimiter=,&csv_header=True loads it as a table.
 * The query manager answers 200 with text; text starting with "Error" is a failure.
 */
import { randomBytes } from 'node:crypto';
import type { AdapterContext, SiteCredential } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { SiteHttp } from '../http.js';
import { checkStageName, stageFailure, type StageInput, type StagedAt, type StageWriter } from '../staging.js';
import { joinUrl, stripSlash } from '../url.js';
import { DATALAB_ANONYMOUS_TOKEN, DATALAB_TOKEN_HEADER } from './adapter.js';

// The datalab client's chunk size (storeClient.chunked_upload: CHUNK_SIZE = 4 MiB).
const CHUNK_BYTES = 4 * 1024 * 1024;

/** The mydb writer: tables only, CSV always. */
export const datalabStageWriter: StageWriter = {
  nameKind: 'table',
  formatFor: () => 'csv',
  write: stageToMyDb,
};

/** Loads `input` (CSV with a header line) as table `input.name` in the token owner's MyDB; returns "mydb://<name>". */
export async function stageToMyDb(http: SiteHttp, ctx: AdapterContext, input: StageInput): Promise<StagedAt> {
  const name = checkStageName(input.name, 'table', 'stageTo.name');
  const target = `mydb table ${name}`;
  if (input.format !== 'csv') throw new ConstellationError('INTERNAL', `Data Lab's mydb import takes CSV, not ${input.format}`);
  const credential = userToken(ctx, target);
  const { storage, query } = urls(ctx);
  // A name of our own in the transfer area, so two stagings never write the same file.
  const fileName = `constellation_${name}_${randomBytes(6).toString('hex')}.csv`;
  try {
    for (let at = 0, first = true; first || at < input.data.byteLength; at += CHUNK_BYTES, first = false) {
      const res = await http.request(`${storage}/xfer`, {
        method: 'POST',
        credential,
        signal: ctx.signal,
        meter: ctx.meter,
        retry: false,
        headers: { 'content-type': 'application/octet-stream', 'x-dl-filename': fileName, 'x-dl-initxfer': first ? 'True' : 'False' },
        body: input.data.subarray(at, at + CHUNK_BYTES),
      });
      checkAnswer(await res.text(), 'the storage manager', 'xfer');
    }
    const params = new URLSearchParams({ table: name, filename: fileName, delimiter: ',', drop: 'False', profile: profile(ctx), csv_header: 'True' });
    const res = await http.request(`${query}/import?${params}`, { method: 'POST', credential, signal: ctx.signal, meter: ctx.meter, retry: false, headers: { accept: 'text/plain' } });
    checkAnswer(await res.text(), 'the query manager', 'import');
  } catch (err) {
    throw stageFailure(ctx, target, err);
  }
  return { site: ctx.site.id, location: `mydb://${name}`, bytes: input.data.byteLength };
}

/** The query manager's "Error: …" text as a coded error (bounded, control characters dropped). */
function checkAnswer(text: string, who: string, call: string): void {
  if (text.slice(0, 5).toLowerCase() !== 'error') return;
  const excerpt = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, 200);
  if (/token|auth|login|not allowed/i.test(excerpt)) throw new ConstellationError('UPSTREAM_AUTH', `${who} refused ${call}: ${excerpt}`);
  throw new ConstellationError('UPSTREAM', `${who} refused ${call}: ${excerpt}`);
}

/** The user's own token in X-DL-AuthToken; the anonymous token has no MyDB, so it is refused here. */
function userToken(ctx: AdapterContext, target: string): SiteCredential {
  const c = ctx.credential;
  const token = c.kind === 'bearer' ? c.token : c.kind === 'header' && c.name.toLowerCase() === DATALAB_TOKEN_HEADER.toLowerCase() ? c.value : undefined;
  if (token === undefined || token === DATALAB_ANONYMOUS_TOKEN) {
    throw new ConstellationError('UPSTREAM_AUTH', `site "${ctx.site.id}" needs your Data Lab token to stage to ${target}, and none is linked: link one with linkSiteCredential`);
  }
  return { kind: 'header', name: DATALAB_TOKEN_HEADER, value: token };
}

function urls(ctx: AdapterContext): { storage: string; query: string } {
  const o = ctx.site.options ?? {};
  const str = (v: unknown, d: string) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : d);
  const base = stripSlash(ctx.site.url);
  return { storage: joinUrl(base, str(o.storagePath, '/storage')), query: joinUrl(base, str(o.queryPath, '/query')) };
}

function profile(ctx: AdapterContext): string {
  const p = ctx.site.options?.queryProfile;
  return typeof p === 'string' && p !== '' ? p : 'default';
}
