/**
 * Staging into a SciServer user's MyDB: the result, as CSV with a header line, becomes a new
 * CasJobs table, written with the user's own Keystone token. The call is SciScript's
 * CasJobs.uploadCSVDataToTable (../shared/reference/platforms.md §2, "{CasJobs}/contexts/{ctx}/Tables[/{name}]",
 * [S5]): POST {CasJobs}/contexts/MyDB/Tables/{name}?TaskName=… with the CSV as the body and
 * X-Auth-Token; any answer but 200 is a failure.
 */
import type { AdapterContext, SiteCredential } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { SiteHttp } from '../http.js';
import { checkStageName, stageFailure, type StageInput, type StagedAt, type StageWriter } from '../staging.js';
import { stripSlash } from '../url.js';
import { SCISERVER_TOKEN_HEADER } from './adapter.js';

/** The CasJobs context that is the user's own database. */
export const MYDB_CONTEXT = 'MyDB';

// TaskName only labels the request in CasJobs's logs and history (SciScript sends one too).
const TASK = 'Constellation.CasJobs.stage';

/** The MyDB writer: tables only, CSV always. */
export const sciserverStageWriter: StageWriter = {
  nameKind: 'table',
  formatFor: () => 'csv',
  write: stageToMyDb,
};

/** Writes `input` (CSV) as table `input.name` in the credential owner's MyDB; returns "MyDB.<name>". */
export async function stageToMyDb(http: SiteHttp, ctx: AdapterContext, input: StageInput): Promise<StagedAt> {
  const name = checkStageName(input.name, 'table', 'stageTo.name');
  const target = `MyDB table ${name}`;
  if (input.format !== 'csv') throw new ConstellationError('INTERNAL', `CasJobs takes CSV uploads, not ${input.format}`);
  const base = casjobsUrl(ctx);
  const credential = keystoneToken(ctx, target);
  const url = `${base}/contexts/${MYDB_CONTEXT}/Tables/${encodeURIComponent(name)}?TaskName=${encodeURIComponent(TASK)}`;
  try {
    const res = await http.request(url, {
      method: 'POST',
      credential,
      signal: ctx.signal,
      meter: ctx.meter,
      // A second POST could append the rows twice.
      retry: false,
      headers: { 'content-type': 'text/csv; charset=utf-8', accept: 'application/json, text/plain' },
      body: input.data,
    });
    await res.dump();
    if (res.status !== 200) throw new ConstellationError('UPSTREAM', `CasJobs answered the upload with ${res.status}, not 200`);
  } catch (err) {
    throw stageFailure(ctx, target, err);
  }
  return { site: ctx.site.id, location: `${MYDB_CONTEXT}.${name}`, bytes: input.data.byteLength };
}

function casjobsUrl(ctx: AdapterContext): string {
  const v = ctx.site.options?.casjobsUrl;
  if (typeof v !== 'string' || v === '') {
    throw new ConstellationError('INVALID_CONFIG', `SciServer site "${ctx.site.id}" has no options.casjobsUrl, so nothing can be staged to MyDB there`);
  }
  return stripSlash(v);
}

/** The user's Keystone token as CasJobs takes it (X-Auth-Token). */
function keystoneToken(ctx: AdapterContext, target: string): SiteCredential {
  const c = ctx.credential;
  if (c.kind === 'header') return c;
  if (c.kind === 'bearer') return { kind: 'header', name: SCISERVER_TOKEN_HEADER, value: c.token };
  throw new ConstellationError('UPSTREAM_AUTH', `site "${ctx.site.id}" needs your SciServer (Keystone) token to stage to ${target}, and none is linked: link one with linkSiteCredential`);
}
