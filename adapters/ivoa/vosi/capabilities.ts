/**
 * VOSI capabilities (VOSI 1.0/1.1 over VOResource 1.0/1.1 and VODataService), with the
 * TAPRegExt 1.0/1.1 description of TAP services, plus the choices a client makes from them:
 * which interface to use for a credential and where the TAP and VOSI endpoints live.
 */
import type { SiteCredential } from '../../../registry/model/adapter.js';
import { NS, isIvoaOrNone, isTapRegExtNs } from '../xml/namespaces.js';
import { parseXml, wrongRoot, type XmlElement } from '../xml/tree.js';
import { XML_MAX_NODES_SMALL } from '../xml/limits.js';
import { parseXsdInteger, textOf } from '../xml/values.js';
import { stripSlash } from '../../url.js';

const WHAT = 'VOSI capabilities document';

/** Well-known standardIDs the broker looks up. */
export const STANDARD_IDS = {
  tap: 'ivo://ivoa.net/std/TAP',
  vosiCapabilities: 'ivo://ivoa.net/std/VOSI#capabilities',
  vosiAvailability: 'ivo://ivoa.net/std/VOSI#availability',
  vosiTables: 'ivo://ivoa.net/std/VOSI#tables',
  vosiTables11: 'ivo://ivoa.net/std/VOSI#tables-1.1',
  daliExamples: 'ivo://ivoa.net/std/DALI#examples',
  sia2: 'ivo://ivoa.net/std/SIA#query-2.0',
  /** CANFAR skaha (non-IVOA standardIDs published by OpenCADC). */
  skahaSession: 'http://www.opencadc.org/std/platform#session-1',
  skahaImage: 'http://www.opencadc.org/std/platform#image-1',
  skahaContext: 'http://www.opencadc.org/std/platform#context-1',
  skahaRepository: 'http://www.opencadc.org/std/platform#repository-1',
  skahaSessionsV0: 'vos://cadc.nrc.ca~vospace/CADC/std/Proc#sessions-1.0',
} as const;

/** Authentication schemes an interface can declare (IVOA SSO plus OpenCADC's token). */
export type SecurityKind =
  | 'anonymous'
  | 'BasicAA'
  | 'tls-with-password'
  | 'tls-with-certificate'
  | 'cookie'
  | 'token'
  | 'OAuth'
  | 'saml2.0'
  | 'OpenID'
  | 'other';

/** One securityMethod; no standardID (an empty element) means anonymous access. */
export interface SecurityMethod {
  standardID?: string;
  kind: SecurityKind;
}

/** An accessURL with its `use` attribute (full, base, post, dir). */
export interface AccessUrl {
  url: string;
  use?: string;
}

/** One vr:Interface of a capability. */
export interface CapabilityInterface {
  /** xsi:type local name, e.g. "ParamHTTP", "DALIInterface", "WebBrowser". */
  type?: string;
  /** Namespace URI of the xsi:type, when its prefix was bound. */
  typeNs?: string;
  role?: string;
  version?: string;
  /** Trimmed of the whitespace padding some services put around URLs. */
  accessUrls: AccessUrl[];
  mirrorUrls: string[];
  /** As declared; empty means the interface is anonymous (VOResource). */
  securityMethods: SecurityMethod[];
  /** DALIInterface endpoint names (sync, async, tables, examples...). */
  endpoints: string[];
}

/** A TAPRegExt data model. */
export interface TapDataModel {
  ivoId: string;
  name: string;
}

/** One version of a query language. */
export interface TapLanguageVersion {
  version: string;
  ivoId?: string;
}

/** One optional language feature (a UDF signature, a geometry function...). */
export interface TapFeature {
  form: string;
  description?: string;
}

/** Language features of one type (e.g. ivo://ivoa.net/std/TAPRegExt#features-adqlgeo). */
export interface TapFeatureGroup {
  type: string;
  features: TapFeature[];
}

/** A query language the service accepts. */
export interface TapLanguage {
  name: string;
  versions: TapLanguageVersion[];
  description?: string;
  features: TapFeatureGroup[];
}

/** An output format (RESPONSEFORMAT value = mime or any alias). */
export interface TapOutputFormat {
  mime: string;
  aliases: string[];
  ivoId?: string;
  /** TAPRegExt 1.1: the declaration holds only for this mode. */
  forMode?: string;
}

/** An upload method (ivo://ivoa.net/std/TAPRegExt#upload-inline, -http, -https, -ftp). */
export interface TapUploadMethod {
  ivoId: string;
  forMode?: string;
}

/** Time limits in seconds (retentionPeriod, executionDuration). */
export interface TimeLimits {
  default?: number;
  hard?: number;
  forMode?: string;
}

/** The unit of a data limit (TAPRegExt spells them "row" and "byte"). */
export type DataLimitUnit = 'row' | 'byte';

/** A data size limit. */
export interface DataLimit {
  value: number;
  unit: DataLimitUnit;
}

/** Data limits (outputLimit, uploadLimit). */
export interface DataLimits {
  default?: DataLimit;
  hard?: DataLimit;
  forMode?: string;
}

/** The mode a TAP query runs in, for TAPRegExt 1.1 forMode declarations. */
export type TapMode = 'sync' | 'async';

/** The TAPRegExt content of a tr:TableAccess capability. */
export interface TableAccess {
  dataModels: TapDataModel[];
  languages: TapLanguage[];
  outputFormats: TapOutputFormat[];
  uploadMethods: TapUploadMethod[];
  /** The mode-independent declaration (no forMode); see `limits` for per-mode ones. */
  retentionPeriod?: TimeLimits;
  executionDuration?: TimeLimits;
  outputLimit?: DataLimits;
  uploadLimit?: DataLimits;
  /** Every declaration in document order, including TAPRegExt 1.1 forMode ones. */
  limits: {
    retentionPeriod: TimeLimits[];
    executionDuration: TimeLimits[];
    outputLimit: DataLimits[];
    uploadLimit: DataLimits[];
  };
}

/** One vr:Capability. */
export interface Capability {
  standardID?: string;
  /** xsi:type local name, e.g. "TableAccess", "SimpleImageAccess". */
  type?: string;
  typeNs?: string;
  description?: string;
  interfaces: CapabilityInterface[];
  /** Present for TAP capabilities that carry TAPRegExt metadata. */
  tableAccess?: TableAccess;
}

// --- parsing -------------------------------------------------------------------------------

const SECURITY_IDS: Record<string, SecurityKind> = {
  'ivo://ivoa.net/sso#basicaa': 'BasicAA',
  'http://www.w3.org/protocols/http/1.0/spec.html#basicaa': 'BasicAA',
  'ivo://ivoa.net/sso#tls-with-password': 'tls-with-password',
  'ivo://ivoa.net/sso#tls-with-certificate': 'tls-with-certificate',
  'ivo://ivoa.net/sso#clientcert': 'tls-with-certificate',
  'ivo://ivoa.net/sso#cookie': 'cookie',
  'ivo://ivoa.net/sso#token': 'token',
  'ivo://ivoa.net/sso#bearer': 'token',
  'ivo://ivoa.net/sso#oauth': 'OAuth',
  'ivo://ivoa.net/sso#saml2.0': 'saml2.0',
  'ivo://ivoa.net/sso#openid': 'OpenID',
};

/** Classifies a securityMethod standardID; none or empty means anonymous. */
export function securityKindOf(standardID: string | undefined): SecurityKind {
  const id = standardID?.trim() ?? '';
  if (id === '') return 'anonymous';
  // IVOA identifiers compare case-insensitively.
  return SECURITY_IDS[id.toLowerCase()] ?? 'other';
}

/** The kinds an interface accepts: its methods, or anonymous when it declares none. */
export function interfaceSecurityKinds(iface: CapabilityInterface): SecurityKind[] {
  return iface.securityMethods.length === 0 ? ['anonymous'] : iface.securityMethods.map((m) => m.kind);
}

function typeOf(el: XmlElement): { type?: string; typeNs?: string } {
  const t = el.xsiType;
  if (t === undefined) return {};
  return t.uri === undefined ? { type: t.local } : { type: t.local, typeNs: t.uri };
}

function kids(el: XmlElement, local: string): XmlElement[] {
  return el.childrenNamed(local, isIvoaOrNone);
}

function kid(el: XmlElement, local: string): XmlElement | undefined {
  return el.child(local, isIvoaOrNone);
}

function optAttr(el: XmlElement, name: string): string | undefined {
  const v = el.attr(name)?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function parseInterface(el: XmlElement): CapabilityInterface {
  const accessUrls: AccessUrl[] = [];
  for (const a of kids(el, 'accessURL')) {
    const url = textOf(a);
    if (url === undefined) continue;
    const use = optAttr(a, 'use');
    accessUrls.push(use === undefined ? { url } : { url, use });
  }
  const mirrorUrls = kids(el, 'mirrorURL')
    .map(textOf)
    .filter((u): u is string => u !== undefined);
  const securityMethods = kids(el, 'securityMethod').map((m): SecurityMethod => {
    const standardID = optAttr(m, 'standardID');
    return standardID === undefined ? { kind: 'anonymous' } : { standardID, kind: securityKindOf(standardID) };
  });
  const endpoints = kids(el, 'endpoint')
    .map((e) => textOf(kid(e, 'name')))
    .filter((n): n is string => n !== undefined);
  const iface: CapabilityInterface = { ...typeOf(el), accessUrls, mirrorUrls, securityMethods, endpoints };
  const role = optAttr(el, 'role');
  const version = optAttr(el, 'version');
  if (role !== undefined) iface.role = role;
  if (version !== undefined) iface.version = version;
  return iface;
}

function parseTimeLimits(el: XmlElement): TimeLimits {
  const out: TimeLimits = {};
  const d = parseXsdInteger(textOf(kid(el, 'default')));
  const h = parseXsdInteger(textOf(kid(el, 'hard')));
  if (d !== undefined) out.default = d;
  if (h !== undefined) out.hard = h;
  const forMode = optAttr(el, 'forMode');
  if (forMode !== undefined) out.forMode = forMode;
  return out;
}

function parseDataLimit(el: XmlElement | undefined): DataLimit | undefined {
  if (el === undefined) return undefined;
  const value = parseXsdInteger(textOf(el));
  // The schema says "row"/"byte"; services also write the plurals.
  const unit = el.attr('unit')?.trim().toLowerCase().replace(/s$/, '');
  if (value === undefined || (unit !== 'row' && unit !== 'byte')) return undefined;
  return { value, unit };
}

function parseDataLimits(el: XmlElement): DataLimits {
  const out: DataLimits = {};
  const d = parseDataLimit(kid(el, 'default'));
  const h = parseDataLimit(kid(el, 'hard'));
  if (d !== undefined) out.default = d;
  if (h !== undefined) out.hard = h;
  const forMode = optAttr(el, 'forMode');
  if (forMode !== undefined) out.forMode = forMode;
  return out;
}

function parseLanguage(el: XmlElement): TapLanguage {
  const versions = kids(el, 'version').flatMap((v): TapLanguageVersion[] => {
    const version = textOf(v);
    if (version === undefined) return [];
    const ivoId = optAttr(v, 'ivo-id');
    return [ivoId === undefined ? { version } : { version, ivoId }];
  });
  const features = kids(el, 'languageFeatures').map(
    (g): TapFeatureGroup => ({
      type: optAttr(g, 'type') ?? '',
      features: kids(g, 'feature').flatMap((f): TapFeature[] => {
        const form = textOf(kid(f, 'form'));
        if (form === undefined) return [];
        const description = textOf(kid(f, 'description'));
        return [description === undefined ? { form } : { form, description }];
      }),
    }),
  );
  const lang: TapLanguage = { name: textOf(kid(el, 'name')) ?? '', versions, features };
  const description = textOf(kid(el, 'description'));
  if (description !== undefined) lang.description = description;
  return lang;
}

function general<T extends { forMode?: string }>(list: T[]): T | undefined {
  return list.find((l) => l.forMode === undefined);
}

function parseTableAccess(el: XmlElement): TableAccess {
  const dataModels = kids(el, 'dataModel').map((d): TapDataModel => ({ ivoId: optAttr(d, 'ivo-id') ?? '', name: textOf(d) ?? '' }));
  const outputFormats = kids(el, 'outputFormat').flatMap((f): TapOutputFormat[] => {
    const mime = textOf(kid(f, 'mime'));
    if (mime === undefined) return [];
    const out: TapOutputFormat = {
      mime,
      aliases: kids(f, 'alias')
        .map(textOf)
        .filter((a): a is string => a !== undefined),
    };
    const ivoId = optAttr(f, 'ivo-id');
    const forMode = optAttr(f, 'forMode');
    if (ivoId !== undefined) out.ivoId = ivoId;
    if (forMode !== undefined) out.forMode = forMode;
    return [out];
  });
  const uploadMethods = kids(el, 'uploadMethod').flatMap((u): TapUploadMethod[] => {
    const ivoId = optAttr(u, 'ivo-id');
    if (ivoId === undefined) return [];
    const forMode = optAttr(u, 'forMode');
    return [forMode === undefined ? { ivoId } : { ivoId, forMode }];
  });
  const limits = {
    retentionPeriod: kids(el, 'retentionPeriod').map(parseTimeLimits),
    executionDuration: kids(el, 'executionDuration').map(parseTimeLimits),
    outputLimit: kids(el, 'outputLimit').map(parseDataLimits),
    uploadLimit: kids(el, 'uploadLimit').map(parseDataLimits),
  };
  const ta: TableAccess = { dataModels, languages: kids(el, 'language').map(parseLanguage), outputFormats, uploadMethods, limits };
  const rp = general(limits.retentionPeriod);
  const ed = general(limits.executionDuration);
  const ol = general(limits.outputLimit);
  const ul = general(limits.uploadLimit);
  if (rp !== undefined) ta.retentionPeriod = rp;
  if (ed !== undefined) ta.executionDuration = ed;
  if (ol !== undefined) ta.outputLimit = ol;
  if (ul !== undefined) ta.uploadLimit = ul;
  return ta;
}

const TAP_ID = /^ivo:\/\/ivoa\.net\/std\/tap(?:#.*)?$/i;

/** True for the TAP standardID (any fragment, any case). */
export function isTapStandardId(standardID: string | undefined): boolean {
  return standardID !== undefined && TAP_ID.test(standardID);
}

function parseCapability(el: XmlElement): Capability {
  const cap: Capability = { ...typeOf(el), interfaces: kids(el, 'interface').map(parseInterface) };
  const standardID = optAttr(el, 'standardID');
  if (standardID !== undefined) cap.standardID = standardID;
  const description = textOf(kid(el, 'description'));
  if (description !== undefined) cap.description = description;
  const isTableAccess = cap.type === 'TableAccess' && (cap.typeNs === undefined || isTapRegExtNs(cap.typeNs));
  // A TAP capability whose xsi:type was dropped still carries TAPRegExt children worth reading.
  const looksLikeTap = isTapStandardId(standardID) && (kid(el, 'language') !== undefined || kid(el, 'outputFormat') !== undefined);
  if (isTableAccess || looksLikeTap) cap.tableAccess = parseTableAccess(el);
  return cap;
}

/**
 * Parses a VOSI capabilities document. The root is `capabilities` in the VOSICapabilities
 * namespace, or in no namespace at all (Rubin's SIA service writes it that way).
 */
export function parseCapabilities(input: string | Uint8Array): Capability[] {
  const root = parseXml(input, WHAT, { maxNodes: XML_MAX_NODES_SMALL });
  if (root.local !== 'capabilities' || (root.uri !== NS.vosiCapabilities && root.uri !== '')) {
    throw wrongRoot(WHAT, `<capabilities> in namespace ${NS.vosiCapabilities}`, root);
  }
  return kids(root, 'capability').map(parseCapability);
}

// --- choosing ------------------------------------------------------------------------------

/** A credential kind from SiteCredential, or a security kind named directly. */
export type CredentialKind = SiteCredential['kind'] | SecurityKind | 'x509';

// Which declared schemes can carry each credential, best first.
const ACCEPTS: Record<string, SecurityKind[]> = {
  anonymous: ['anonymous'],
  bearer: ['token', 'OAuth'],
  header: ['token'],
  cookie: ['cookie'],
  basic: ['BasicAA', 'tls-with-password'],
  BasicAA: ['BasicAA', 'tls-with-password'],
  x509: ['tls-with-certificate'],
};

function acceptedKinds(credential: CredentialKind): SecurityKind[] {
  return ACCEPTS[credential] ?? [credential as SecurityKind];
}

/** The interface picked for a credential, and how it is to be used. */
export interface ChosenInterface {
  interface: CapabilityInterface;
  /** First accessURL, trimmed. */
  url: string;
  /** The scheme to use on this interface ("anonymous" = send no credential). */
  security: SecurityKind;
  /** False when no interface accepts the credential and an anonymous or other one was taken. */
  credentialMatched: boolean;
}

function versionKey(v: string | undefined): number[] {
  return (v ?? '0').split('.').map((p) => Number.parseInt(p, 10) || 0);
}

function compareVersions(a: string | undefined, b: string | undefined): number {
  const x = versionKey(a);
  const y = versionKey(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Picks the interface of `cap` to use with a credential: one that declares a matching
 * security method, else an anonymous one, else any (credentialMatched false). Ties go to
 * role="std", then to the higher interface version, then to document order. Browser
 * interfaces are skipped since the broker is not a browser.
 */
export function chooseInterface(cap: Capability, credential: CredentialKind = 'anonymous'): ChosenInterface | undefined {
  const accepted = acceptedKinds(credential);
  let best: { rank: number; iface: CapabilityInterface; security: SecurityKind } | undefined;
  for (const iface of cap.interfaces) {
    if (iface.accessUrls.length === 0 || iface.type === 'WebBrowser') continue;
    const kinds = interfaceSecurityKinds(iface);
    const hit = accepted.findIndex((k) => kinds.includes(k));
    const [rank, security]: [number, SecurityKind] =
      hit >= 0 ? [hit, accepted[hit]] : kinds.includes('anonymous') ? [100, 'anonymous'] : [1000, kinds[0]];
    if (best === undefined || rank < best.rank) {
      best = { rank, iface, security };
      continue;
    }
    if (rank > best.rank) continue;
    const stdNew = iface.role === 'std' ? 0 : 1;
    const stdOld = best.iface.role === 'std' ? 0 : 1;
    if (stdNew < stdOld || (stdNew === stdOld && compareVersions(iface.version, best.iface.version) > 0)) {
      best = { rank, iface, security };
    }
  }
  if (best === undefined) return undefined;
  return {
    interface: best.iface,
    url: best.iface.accessUrls[0].url,
    security: best.security,
    credentialMatched: best.rank < 100,
  };
}

/** Every capability with this standardID (IVOA identifiers compare case-insensitively). */
export function findCapabilities(caps: readonly Capability[], standardID: string): Capability[] {
  const want = standardID.toLowerCase();
  return caps.filter((c) => c.standardID?.toLowerCase() === want);
}

/** The URL to call for a standardID with a credential, or undefined when not advertised. */
export function resolveCapabilityUrl(
  caps: readonly Capability[],
  standardID: string,
  credential: CredentialKind = 'anonymous',
): ChosenInterface | undefined {
  let best: ChosenInterface | undefined;
  for (const cap of findCapabilities(caps, standardID)) {
    const c = chooseInterface(cap, credential);
    if (c !== undefined && (best === undefined || (c.credentialMatched && !best.credentialMatched))) best = c;
  }
  return best;
}

/** The TAP capability: standardID TAP, preferring one with TAPRegExt metadata; else any tr:TableAccess. */
export function findTapCapability(caps: readonly Capability[]): Capability | undefined {
  const tap = caps.filter((c) => isTapStandardId(c.standardID));
  return tap.find((c) => c.tableAccess !== undefined) ?? tap[0] ?? caps.find((c) => c.tableAccess !== undefined);
}

/** Where a TAP service's endpoints are, for one credential. */
export interface TapEndpoints {
  /** TAP base URL (no trailing slash). */
  base: string;
  sync: string;
  async: string;
  /** VOSI tables: advertised URL, else {base}/tables as TAP 1.0 prescribes. */
  tables: string;
  /** "1.1" when VOSI tables-1.1 is advertised (detail=min and /tables/{name} work). */
  tablesVersion: '1.0' | '1.1';
  /** Only when advertised: TAP 1.1 made these optional, and DaCHS serves them elsewhere. */
  availability?: string;
  capabilities?: string;
  examples?: string;
  /** Scheme to use on the TAP interface; "anonymous" = send no credential. */
  security: SecurityKind;
  credentialMatched: boolean;
  /** mirrorURLs of the chosen TAP interface (DaCHS lists https mirrors of http URLs). */
  mirrors: string[];
}


/**
 * Resolves the TAP endpoints for a credential kind (anonymous, cookie, bearer/token, basic,
 * x509/tls-with-certificate). Sync and async hang off the chosen interface's base URL; VOSI
 * endpoints come from their own capabilities because services like DaCHS publish them at
 * different URLs than {base}/tables. Undefined when there is no usable TAP interface.
 */
export function tapEndpoints(caps: readonly Capability[], preferredSecurity: CredentialKind = 'anonymous'): TapEndpoints | undefined {
  const tap = findTapCapability(caps);
  if (tap === undefined) return undefined;
  const chosen = chooseInterface(tap, preferredSecurity);
  if (chosen === undefined) return undefined;
  const base = stripSlash(chosen.url);
  const tables11 = resolveCapabilityUrl(caps, STANDARD_IDS.vosiTables11, preferredSecurity);
  const tables10 = resolveCapabilityUrl(caps, STANDARD_IDS.vosiTables, preferredSecurity);
  const tables = tables11 ?? tables10;
  const out: TapEndpoints = {
    base,
    sync: `${base}/sync`,
    async: `${base}/async`,
    tables: tables === undefined ? `${base}/tables` : stripSlash(tables.url),
    tablesVersion: tables11 !== undefined ? '1.1' : '1.0',
    security: chosen.security,
    credentialMatched: chosen.credentialMatched,
    mirrors: chosen.interface.mirrorUrls,
  };
  const availability = resolveCapabilityUrl(caps, STANDARD_IDS.vosiAvailability, preferredSecurity);
  const capabilities = resolveCapabilityUrl(caps, STANDARD_IDS.vosiCapabilities, preferredSecurity);
  const examples =
    resolveCapabilityUrl(caps, STANDARD_IDS.daliExamples, preferredSecurity)?.url ??
    browserUrl(caps, STANDARD_IDS.daliExamples) ??
    daliEndpoint(tap, chosen.interface, 'examples');
  if (availability !== undefined) out.availability = availability.url;
  if (capabilities !== undefined) out.capabilities = capabilities.url;
  if (examples !== undefined) out.examples = examples;
  return out;
}

// A DALIInterface lists its endpoints; a sibling ParamHTTP interface with the same access URL
// does not, so look at the chosen interface first and then at the others.
function daliEndpoint(tap: Capability, chosen: CapabilityInterface, name: string): string | undefined {
  const iface = [chosen, ...tap.interfaces].find((i) => i.endpoints.includes(name) && i.accessUrls.length > 0);
  return iface === undefined ? undefined : `${stripSlash(iface.accessUrls[0].url)}/${name}`;
}

// DALI examples are usually published as a WebBrowser interface, which chooseInterface skips.
function browserUrl(caps: readonly Capability[], standardID: string): string | undefined {
  for (const cap of findCapabilities(caps, standardID)) {
    for (const iface of cap.interfaces) if (iface.accessUrls.length > 0) return iface.accessUrls[0].url;
  }
  return undefined;
}

function limitFor<T extends { forMode?: string }>(list: readonly T[], mode: TapMode | undefined, pick: (l: T) => number | undefined): number | undefined {
  if (mode !== undefined) {
    const specific = list.find((l) => l.forMode === mode && pick(l) !== undefined);
    if (specific !== undefined) return pick(specific);
  }
  const gen = list.find((l) => l.forMode === undefined && pick(l) !== undefined);
  if (gen !== undefined) return pick(gen);
  if (mode !== undefined) return undefined;
  // No mode asked and only per-mode declarations: the smallest holds whichever mode is used.
  const values = list.map(pick).filter((v): v is number => v !== undefined);
  return values.length === 0 ? undefined : Math.min(...values);
}

function rowsOrBytes(limits: DataLimits, unit: DataLimitUnit): number | undefined {
  if (limits.hard?.unit === unit) return limits.hard.value;
  if (limits.default?.unit === unit) return limits.default.value;
  return undefined;
}

/** True when the TAP service declares at least one upload method (TAPRegExt: none = no uploads). */
export function supportsUpload(caps: readonly Capability[], mode?: TapMode): boolean {
  const methods = findTapCapability(caps)?.tableAccess?.uploadMethods ?? [];
  return methods.some((m) => mode === undefined || m.forMode === undefined || m.forMode === mode);
}

/** The most rows a query can return: the hard output limit in rows, else the default in rows. */
export function maxRec(caps: readonly Capability[], mode?: TapMode): number | undefined {
  const list = findTapCapability(caps)?.tableAccess?.limits.outputLimit ?? [];
  return limitFor(list, mode, (l) => rowsOrBytes(l, 'row'));
}

/** The largest upload in bytes: the hard upload limit in bytes, else the default in bytes. */
export function uploadLimitBytes(caps: readonly Capability[], mode?: TapMode): number | undefined {
  const list = findTapCapability(caps)?.tableAccess?.limits.uploadLimit ?? [];
  return limitFor(list, mode, (l) => rowsOrBytes(l, 'byte'));
}
