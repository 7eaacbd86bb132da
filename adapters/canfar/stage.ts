/**
 * Staging into a CADC/CANFAR user's VOSpace (vault) as a file in the user's home node, with the
 * user's own credential, the way the vos client's `vcp` does it
 * (../shared/reference/platforms.md §5, "ivo://cadc.nrc.ca/vault … User VOSpace" and
 * "ivo://cadc.nrc.ca/gms … Groups", [C5][C13]):
 *  1. who the credential belongs to: GET {gms}/whoami (standard ivo://ivoa.net/std/UMS#whoami-0.1)
 *     answers with a redirect to {gms}/users/{name}?idType=HTTP; the home node is vos://{authority}~vault/{name};
 *  2. a VOSpace 2.1 sync transfer (ivo://ivoa.net/std/VOSpace#sync-2.1): POST a vos:transfer
 *     document (target, direction pushToVoSpace, protocol httpsput with the token security method)
 *     and read the transfer document it redirects to for the put endpoints;
 *  3. PUT the bytes to the first endpoint that takes them.
 * Every URL comes from the registry's resource-caps and VOSI capabilities, and each passes the
 * site's outbound policy (a put endpoint on a storage host needs that host in allowHosts).
 */
import type { AdapterContext } from '../../registry/model/adapter.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import type { SiteHttp } from '../http.js';
import { parseCapabilities, resolveCapabilityUrl } from '../ivoa/vosi/capabilities.js';
import { parseXml } from '../ivoa/xml/tree.js';
import { checkStageName, fileFormat, stageFailure, type StageInput, type StagedAt, type StageWriter } from '../staging.js';
import { parseResourceCaps } from './resource-caps.js';

/** Standard ids the writer looks up in the services' capabilities. */
export const VOSPACE_STANDARDS = {
  syncTransfer: 'ivo://ivoa.net/std/VOSpace#sync-2.1',
  whoami: 'ivo://ivoa.net/std/UMS#whoami-0.1',
} as const;

const VOS_NS = 'http://www.ivoa.net/xml/VOSpace/v2.0';
const PUT_PROTOCOL = 'ivo://ivoa.net/vospace/core#httpsput';
const TOKEN_SECURITY = 'ivo://ivoa.net/sso#token';
const DEFAULT_VAULT = 'ivo://cadc.nrc.ca/vault';
const DEFAULT_GMS = 'ivo://cadc.nrc.ca/gms';
// A CADC user name as it appears in a users/{name} URL: one plain path segment.
const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** The vault writer: files, CSV or VOTable by the name's extension. */
export const canfarStageWriter: StageWriter = {
  nameKind: 'file',
  formatFor: fileFormat,
  write: stageToVault,
};

/** Writes `input` as file `input.name` in the credential owner's vault home; returns its vos:// URI. */
export async function stageToVault(http: SiteHttp, ctx: AdapterContext, input: StageInput): Promise<StagedAt> {
  const name = checkStageName(input.name, 'file', 'stageTo.name');
  let target = `VOSpace file ${name}`;
  if (ctx.credential.kind === 'anonymous') {
    throw new ConstellationError('UPSTREAM_AUTH', `site "${ctx.site.id}" needs your CADC/CANFAR credential to stage to ${target}, and none is linked: link one with linkSiteCredential or log in again`);
  }
  try {
    const { sync, whoami, authority } = await endpoints(http, ctx);
    const user = await whoAmI(http, ctx, whoami);
    const uri = `vos://${authority}/${encodeURIComponent(user)}/${encodeURIComponent(name)}`;
    target = `VOSpace file ${uri}`;
    const puts = await negotiate(http, ctx, sync, uri);
    await putBytes(http, ctx, puts, input);
    return { site: ctx.site.id, location: uri, bytes: input.data.byteLength };
  } catch (err) {
    throw stageFailure(ctx, target, err);
  }
}

/** The sync-transfer and whoami URLs (federation.yaml options win), and the vault's vos:// authority. */
async function endpoints(http: SiteHttp, ctx: AdapterContext): Promise<{ sync: string; whoami: string; authority: string }> {
  const o = ctx.site.options ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const configured = (o.resources && typeof o.resources === 'object' ? o.resources : {}) as Record<string, unknown>;
  const vaultId = str(configured.vault) ?? DEFAULT_VAULT;
  const gmsId = str(configured.gms) ?? DEFAULT_GMS;
  const authority = vosAuthority(vaultId);
  let sync = str(o.vaultSyncUrl);
  let whoami = str(o.whoamiUrl);
  if (sync === undefined || whoami === undefined) {
    const caps = parseResourceCaps(await http.text(resourceCapsUrl(ctx), { signal: ctx.signal, meter: ctx.meter }));
    const lookup = async (ivoid: string, standard: string): Promise<string> => {
      const capsUrl = caps.get(ivoid);
      if (capsUrl === undefined) throw new ConstellationError('UPSTREAM', `CADC resource-caps does not list ${ivoid}`);
      // VOSI capabilities are public: no credential is sent there.
      const chosen = resolveCapabilityUrl(parseCapabilities(await http.text(capsUrl, { signal: ctx.signal, meter: ctx.meter })), standard, ctx.credential.kind);
      if (chosen === undefined) throw new ConstellationError('UPSTREAM', `${ivoid} has no ${standard} capability`);
      return chosen.url;
    };
    sync ??= await lookup(vaultId, VOSPACE_STANDARDS.syncTransfer);
    whoami ??= await lookup(gmsId, VOSPACE_STANDARDS.whoami);
  }
  return { sync, whoami, authority };
}

/** vos:// authority of a VOSpace service: ivo://cadc.nrc.ca/vault is cadc.nrc.ca~vault. */
export function vosAuthority(ivoid: string): string {
  const m = /^ivo:\/\/([^/?#]+)\/([^?#]+)$/i.exec(ivoid);
  if (!m) throw new ConstellationError('INVALID_CONFIG', `${ivoid} is not an ivo:// resource identifier`);
  return `${m[1]}~${m[2].replace(/\//g, '~')}`;
}

/** The user the credential belongs to, from the whoami redirect's users/{name} URL. */
async function whoAmI(http: SiteHttp, ctx: AdapterContext, url: string): Promise<string> {
  const res = await http.request(url, { credential: ctx.credential, signal: ctx.signal, meter: ctx.meter, followRedirects: false, accept: [301, 302, 303, 307], headers: { accept: 'text/xml' } });
  await res.dump();
  const location = res.headers.location;
  if (res.status < 300 || !location) throw new ConstellationError('UPSTREAM_MALFORMED', `the whoami service answered ${res.status} without naming the user (a redirect to users/{name} was expected)`);
  let m: RegExpExecArray | null;
  try {
    m = /\/users\/([^/]+)$/.exec(new URL(location, url).pathname);
  } catch {
    m = null;
  }
  let user: string | undefined;
  try {
    user = m ? decodeURIComponent(m[1]) : undefined;
  } catch {
    user = undefined;
  }
  if (user === undefined || !USER_NAME.test(user)) throw new ConstellationError('UPSTREAM_MALFORMED', 'the whoami service redirected to a URL without a valid user name');
  return user;
}

/** Posts the transfer request and returns the put endpoints of the transfer document. */
async function negotiate(http: SiteHttp, ctx: AdapterContext, syncUrl: string, uri: string): Promise<string[]> {
  const res = await http.request(syncUrl, {
    method: 'POST',
    credential: ctx.credential,
    signal: ctx.signal,
    meter: ctx.meter,
    headers: { 'content-type': 'text/xml', accept: 'text/xml' },
    body: transferDocument(uri),
    accept: [303],
  });
  let doc: string;
  if (res.status === 303) {
    await res.dump();
    const location = res.headers.location;
    if (!location) throw new ConstellationError('UPSTREAM_MALFORMED', 'the VOSpace transfer service redirected without a Location');
    doc = await http.text(new URL(location, syncUrl).toString(), { credential: ctx.credential, signal: ctx.signal, meter: ctx.meter, headers: { accept: 'text/xml' } });
  } else {
    doc = await res.text();
  }
  return putEndpoints(doc);
}

/** The vos:transfer request document for pushing to `uri` (as cadcutils' Transfer.transfer builds it). */
export function transferDocument(uri: string): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<?xml version="1.0" encoding="UTF-8"?>
<vos:transfer xmlns:vos="${VOS_NS}" version="2.1">
  <vos:target>${esc(uri)}</vos:target>
  <vos:direction>pushToVoSpace</vos:direction>
  <vos:protocol uri="${PUT_PROTOCOL}"><vos:securityMethod uri="${TOKEN_SECURITY}"/></vos:protocol>
  <vos:protocol uri="${PUT_PROTOCOL}"/>
</vos:transfer>
`;
}

/** The endpoints of a transfer document's put protocols, in order; UPSTREAM_MALFORMED when there are none. */
export function putEndpoints(doc: string): string[] {
  const root = parseXml(doc, 'VOSpace transfer document');
  if (root.local !== 'transfer' || root.uri !== VOS_NS) throw new ConstellationError('UPSTREAM_MALFORMED', `the VOSpace transfer service answered with <${root.name.slice(0, 40)}>, not a vos:transfer document`);
  const urls = root
    .childrenNamed('protocol', VOS_NS)
    .filter((p) => /#https?put$/.test(p.attr('uri') ?? ''))
    .map((p) => p.child('endpoint', VOS_NS)?.trimmedText)
    .filter((u): u is string => u !== undefined && u !== '');
  if (urls.length === 0) throw new ConstellationError('UPSTREAM_MALFORMED', 'the VOSpace transfer document offers no put endpoint');
  return [...new Set(urls)];
}

/** PUT to each endpoint in turn until one takes the bytes; a refusal of the credential ends at once. */
async function putBytes(http: SiteHttp, ctx: AdapterContext, urls: string[], input: StageInput): Promise<void> {
  const contentType = input.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-votable+xml';
  let last: unknown;
  for (const url of urls) {
    try {
      const res = await http.request(url, { method: 'PUT', credential: ctx.credential, signal: ctx.signal, meter: ctx.meter, headers: { 'content-type': contentType }, body: input.data });
      await res.dump();
      return;
    } catch (err) {
      if (isConstellationError(err) && ['UPSTREAM_AUTH', 'UPSTREAM_POLICY', 'UPSTREAM_TIMEOUT'].includes(err.kind)) throw err;
      last = err;
    }
  }
  throw last;
}

function resourceCapsUrl(ctx: AdapterContext): string {
  const configured = ctx.site.options?.resourceCaps;
  if (typeof configured === 'string' && configured !== '') return configured;
  const base = ctx.site.url.replace(/\/+$/, '');
  return base.endsWith('/resource-caps') ? base : `${base}/resource-caps`;
}
