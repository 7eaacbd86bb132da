/**
 * Harvesting one standards TAP service into capability-document pieces: VOSI capabilities,
 * availability and tables (with per-table detail when the tableset lists no columns), with
 * conditional requests so an unchanged site costs a few 304s. Shared by the generic TAP,
 * ESA, MAST, RSP and Data Lab adapters.
 */
import type { AdapterContext, HarvestValidators, SiteCredential } from '../../registry/model/adapter.js';
import type { AuthMethod, ColumnDoc, DatasetDoc, ServiceDoc } from '../../registry/model/capability.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { defaultDatasetId } from '../../registry/model/mapping.js';
import type { ByteMeter, SiteHttp, HttpResponse } from '../http.js';
import { parseAvailability } from '../ivoa/vosi/availability.js';
import {
  findTapCapability,
  interfaceSecurityKinds,
  maxRec,
  parseCapabilities,
  STANDARD_IDS,
  supportsUpload,
  tapEndpoints,
  uploadLimitBytes,
  type Capability,
  type SecurityKind,
  type TapEndpoints,
} from '../ivoa/vosi/capabilities.js';
import { allTables, columnDoc, parseVosiTable, parseVosiTablesAsync, type VosiTable } from '../ivoa/vosi/tables.js';

/** One TAP service to harvest. */
export interface TapTarget {
  /** Service id in the capability document ("tap", or a MAST collection name). */
  serviceId: string;
  /** The TAP base URL ({base}/capabilities, {base}/sync...). */
  base: string;
  title?: string;
  /** A limit the site applies whatever its capabilities say (MAST caps queries at 100,000 rows). */
  maxRecCap?: number;
  /** Query string for the tables request, e.g. "only_tables=true" (ESA TAP+). */
  tablesQuery?: string;
  /**
   * How one table's columns are fetched when the tableset lists none: VOSI 1.1
   * {tables}/{name} (default), or ESA TAP+ {tables}?tables={name} (a one-table tableset).
   */
  tableDetail?: 'vosi' | 'esa';
  /** Credential for this service; defaults to the context's. */
  credential?: SiteCredential;
  /** Auth methods to record for the service, instead of those its capabilities declare. */
  auth?: AuthMethod[];
  /** Access rights given to every dataset, instead of public-when-anonymous. */
  access?: DatasetDoc['access'];
  /** Column names to take as the position when no UCD names it (lower case). */
  positionNames?: { ra: string[]; dec: string[] };
}

/** What one service contributes to the document. */
export interface TapHarvestPart {
  service: ServiceDoc;
  datasets: DatasetDoc[];
  endpoints: TapEndpoints;
}

/** Conditional-request bookkeeping shared by every request of one harvest. */
export interface HarvestState {
  previous?: HarvestValidators;
  validators: HarvestValidators;
  /** Set when any document came back with a body (not 304). */
  modified: boolean;
  meter: ByteMeter;
  /** Sees every response of the harvest (304s included), e.g. to read rate-limit headers. */
  onResponse?: (res: HttpResponse) => void;
}

const DETAIL_CONCURRENCY = 4;

const AUTH_OF: Partial<Record<SecurityKind, AuthMethod>> = {
  anonymous: 'anonymous',
  BasicAA: 'basic',
  'tls-with-password': 'basic',
  cookie: 'cookie',
  token: 'bearer',
  OAuth: 'bearer',
  'tls-with-certificate': 'x509',
};

const TYPE_BYTES: Record<string, number> = {
  boolean: 1, bit: 1, unsignedByte: 1, short: 2, int: 4, long: 8, char: 1, unicodeChar: 2, float: 4, double: 8, floatComplex: 8, doubleComplex: 16,
};

/** A rough width of one row in bytes from the column types (variable strings count 16). */
export function estimateRowBytes(columns: readonly ColumnDoc[]): number | undefined {
  if (columns.length === 0) return undefined;
  let total = 0;
  for (const c of columns) {
    const unit = TYPE_BYTES[c.datatype ?? ''] ?? 8;
    const n = c.arraysize === undefined ? 1 : Number.parseInt(c.arraysize, 10);
    total += unit * (Number.isFinite(n) && n > 0 ? n : 16);
  }
  return Math.max(1, Math.round(total));
}

function hasUcdWords(ucd: string | undefined, ...words: string[]): boolean {
  const set = new Set((ucd ?? '').toLowerCase().split(';').map((w) => w.trim()));
  return words.every((w) => set.has(w));
}

/**
 * The main position columns, from the UCDs pos.eq.ra;meta.main and pos.eq.dec;meta.main (or
 * the only pos.eq.ra / pos.eq.dec), else from the given lower-case column names.
 */
export function positionOf(columns: readonly ColumnDoc[], names?: { ra: string[]; dec: string[] }): { ra: string; dec: string } | undefined {
  const pick = (axis: string, fallback: string[] = []) =>
    columns.find((c) => hasUcdWords(c.ucd, axis, 'meta.main')) ?? oneOf(columns.filter((c) => hasUcdWords(c.ucd, axis))) ?? columns.find((c) => fallback.includes(c.name.toLowerCase()));
  const ra = pick('pos.eq.ra', names?.ra);
  const dec = pick('pos.eq.dec', names?.dec);
  return ra && dec ? { ra: ra.name, dec: dec.name } : undefined;
}

function oneOf<T>(xs: T[]): T | undefined {
  return xs.length === 1 ? xs[0] : undefined;
}

function clip(s: string | undefined, n = 4000): string | undefined {
  const t = s?.trim();
  return t ? t.slice(0, n) : undefined;
}

/** Harvests TAP services for one adapter; keeps the last bodies so 304 answers can be reused. */
export class TapHarvester {
  private readonly cache = new Map<string, { etag?: string; lastModified?: string; body: string }>();

  constructor(private readonly http: SiteHttp) {}

  /**
   * GET a document, conditionally when an earlier body with the same validators is cached;
   * records the validators and whether anything changed.
   */
  async fetchDocument(url: string, ctx: AdapterContext, state: HarvestState, credential: SiteCredential, accept = 'application/xml, text/xml;q=0.9, */*;q=0.1'): Promise<string> {
    const prev = state.previous?.[url];
    const cached = this.cache.get(url);
    const usable = prev !== undefined && cached !== undefined && (prev.etag ?? '') === (cached.etag ?? '') && (prev.lastModified ?? '') === (cached.lastModified ?? '');
    const res = await this.http.request(url, {
      credential,
      signal: ctx.signal,
      meter: state.meter,
      headers: { accept },
      conditional: usable ? prev : undefined,
    });
    state.onResponse?.(res);
    if (res.notModified && usable) {
      await res.dump();
      state.validators[url] = prev;
      return cached.body;
    }
    const body = await res.text();
    if (res.notModified) throw new ConstellationError('UPSTREAM', `${url} answered 304 to an unconditional request`);
    state.modified = true;
    const v: { etag?: string; lastModified?: string } = {};
    if (res.headers.etag) v.etag = res.headers.etag;
    if (res.headers['last-modified']) v.lastModified = res.headers['last-modified'];
    if (v.etag !== undefined || v.lastModified !== undefined) {
      state.validators[url] = v;
      this.cache.set(url, { ...v, body });
    }
    return body;
  }

  /** The parsed capabilities of a TAP base and the endpoints to use with the credential. */
  async capabilities(target: TapTarget, ctx: AdapterContext, state: HarvestState): Promise<{ caps: Capability[]; endpoints: TapEndpoints }> {
    const credential = target.credential ?? ctx.credential;
    const caps = parseCapabilities(await this.fetchDocument(`${target.base}/capabilities`, ctx, state, credential));
    const endpoints = tapEndpoints(caps, credential.kind);
    if (endpoints === undefined) {
      throw new ConstellationError('UPSTREAM_MALFORMED', `${target.base}/capabilities declares no usable TAP capability`);
    }
    return { caps, endpoints };
  }

  /** Harvests one TAP service: its service entry and one dataset per table (TAP_SCHEMA left out). */
  async harvestService(target: TapTarget, ctx: AdapterContext, state: HarvestState): Promise<TapHarvestPart> {
    const credential = target.credential ?? ctx.credential;
    const { caps, endpoints } = await this.capabilities(target, ctx, state);
    if (endpoints.availability !== undefined) {
      // Availability is live state, never cached: a service that says it is down has no trustworthy tableset.
      const res = await this.http.request(endpoints.availability, { credential, signal: ctx.signal, meter: state.meter });
      state.onResponse?.(res);
      const av = parseAvailability(await res.text());
      if (!av.available) {
        throw new ConstellationError('UPSTREAM_UNAVAILABLE', `${target.base} says it is not available${av.notes.length ? `: ${av.notes.join('; ')}` : ''}`);
      }
    }
    const tablesUrl = target.tablesQuery ? `${endpoints.tables}?${target.tablesQuery}` : endpoints.tables;
    const tableset = await parseVosiTablesAsync(await this.fetchDocument(tablesUrl, ctx, state, credential));
    const tables: VosiTable[] = [];
    for (const schema of tableset.schemas) {
      if (schema.name.toLowerCase() === 'tap_schema' || schema.name.toLowerCase() === 'tap_upload') continue;
      for (const t of schema.tables) {
        const name = t.name.includes('.') || schema.name === '' ? t.name : `${schema.name}.${t.name}`;
        if (/^tap_schema\./i.test(name)) continue;
        tables.push({ ...t, name, public: t.public ?? schema.public });
      }
    }
    await this.fillDetails(tables, endpoints.tables, target.tableDetail ?? 'vosi', ctx, state, credential);

    const tap = findTapCapability(caps);
    const auth = target.auth ?? authOf(tap);
    const service: ServiceDoc = { id: target.serviceId, type: 'tap', url: endpoints.base, standardId: STANDARD_IDS.tap };
    if (target.title) service.title = target.title;
    service.upload = supportsUpload(caps);
    service.async = true;
    const limit = maxRec(caps);
    const capped = target.maxRecCap === undefined ? limit : Math.min(limit ?? Infinity, target.maxRecCap);
    if (capped !== undefined) service.maxRec = capped;
    const upLimit = uploadLimitBytes(caps);
    if (upLimit !== undefined) service.uploadLimitBytes = upLimit;
    const languages = tapLanguages(tap);
    if (languages.length) service.languages = [...new Set(languages)].slice(0, 50);
    const formats = (tap?.tableAccess?.outputFormats ?? []).map((f) => f.mime);
    if (formats.length) service.formats = [...new Set(formats)].slice(0, 50);
    if (auth.length) service.auth = auth;
    const anonymous = auth.length === 0 || auth.includes('anonymous');

    const datasets: DatasetDoc[] = [];
    for (const t of tables) {
      const id = defaultDatasetId(t.name);
      if (id === undefined) continue;
      const columns = t.columns.map(columnDoc);
      const access = target.access ? { ...target.access, groups: [...(target.access.groups ?? [])] } : { public: anonymous && t.public !== false };
      const d: DatasetDoc = { id, service: target.serviceId, table: t.name, access };
      const title = clip(t.title, 500);
      if (title) d.title = title;
      const description = clip(t.description);
      if (description) d.description = description;
      if (t.nrows !== undefined) d.rows = t.nrows;
      const rowBytes = estimateRowBytes(columns);
      if (rowBytes !== undefined) d.rowBytes = rowBytes;
      const position = positionOf(columns, target.positionNames);
      if (position) d.position = position;
      if (columns.length) d.columns = uniqueColumns(columns);
      datasets.push(d);
    }
    return { service, datasets, endpoints };
  }

  private async fillDetails(tables: VosiTable[], tablesBase: string, how: 'vosi' | 'esa', ctx: AdapterContext, state: HarvestState, credential: SiteCredential): Promise<void> {
    const todo = tables.filter((t) => t.needsDetail);
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const t = todo[next++];
        const detail = how === 'esa' ? await this.esaDetail(t.name, tablesBase, ctx, state, credential) : parseVosiTable(await this.fetchDocument(`${tablesBase}/${encodeURIComponent(t.name)}`, ctx, state, credential));
        t.columns = detail.columns;
        t.needsDetail = false;
        t.nrows ??= detail.nrows;
        t.description ??= detail.description;
      }
    };
    await Promise.all(Array.from({ length: Math.min(DETAIL_CONCURRENCY, todo.length) }, worker));
  }

  private async esaDetail(name: string, tablesBase: string, ctx: AdapterContext, state: HarvestState, credential: SiteCredential): Promise<VosiTable> {
    const set = await parseVosiTablesAsync(await this.fetchDocument(`${tablesBase}?tables=${encodeURIComponent(name)}`, ctx, state, credential));
    const found = allTables(set).find((t) => t.name === name || t.name.toLowerCase() === name.toLowerCase());
    if (found === undefined) throw new ConstellationError('UPSTREAM_MALFORMED', `${tablesBase}?tables=${name} does not describe table ${name}`);
    return found;
  }
}

// A table listing the same column twice would fail validation; keep the first.
function uniqueColumns(columns: ColumnDoc[]): ColumnDoc[] {
  const seen = new Set<string>();
  return columns.filter((c) => (seen.has(c.name) ? false : (seen.add(c.name), true))).slice(0, 5000);
}

function authOf(tap: Capability | undefined): AuthMethod[] {
  return authMethodsOf((tap?.interfaces ?? []).filter((i) => i.type !== 'WebBrowser').flatMap(interfaceSecurityKinds));
}

/** Our auth methods for VOSI security kinds, each once, in the order first met. */
export function authMethodsOf(kinds: readonly SecurityKind[]): AuthMethod[] {
  return [...new Set(kinds.map((k) => AUTH_OF[k]).filter((a): a is AuthMethod => a !== undefined))];
}

/** The query languages a TAP capability names, as "NAME-version" (or the bare name). */
export function tapLanguages(tap: Capability | undefined): string[] {
  return (tap?.tableAccess?.languages ?? []).flatMap((l) => (l.versions.length ? l.versions.map((v) => `${l.name}-${v.version}`) : [l.name]));
}

/** A fresh state for one harvest. */
export function harvestState(ctx: AdapterContext, previous?: HarvestValidators): HarvestState {
  return { previous, validators: {}, modified: false, meter: ctx.meter ?? { bytes: 0 } };
}

/** Health of a TAP base: its availability document when advertised, else whether capabilities answer. */
export async function tapHealth(http: SiteHttp, base: string, ctx: AdapterContext): Promise<{ status: 'UP' | 'DOWN'; message?: string }> {
  try {
    const caps = parseCapabilities(await http.text(`${base}/capabilities`, { credential: ctx.credential, signal: ctx.signal, meter: ctx.meter }));
    const ep = tapEndpoints(caps, ctx.credential.kind);
    if (ep?.availability === undefined) return { status: 'UP', message: 'capabilities reachable (no availability endpoint)' };
    const av = parseAvailability(await http.text(ep.availability, { credential: ctx.credential, signal: ctx.signal, meter: ctx.meter }));
    const note = av.notes.join('; ');
    return av.available ? { status: 'UP', ...(note ? { message: note } : {}) } : { status: 'DOWN', message: note || 'the service says it is not available' };
  } catch (err) {
    return { status: 'DOWN', message: (err as Error).message };
  }
}
