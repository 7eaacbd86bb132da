/**
 * Rubin Science Platform (data.lsst.cloud): Repertoire discovery names the TAP services
 * (tap for dp02/dp1, ssotap for dp03); each is harvested over VOSI with the user's Gafaelfawr
 * `gt-…` token. RSP data are proprietary, and RSP has no batch API: the only compute is the
 * interactive Nublado lab pool, which comes from federation.yaml options.
 */
import type { HttpClient, HttpResponse } from '../http.js';
import type { Adapter, AdapterContext, HarvestOutcome, HealthOutcome, HealthStatus, SiteCredential } from '../../registry/model/adapter.js';
import type { AuthMethod, CapabilityDocument, ColumnDoc, ComputePoolDoc, DatasetDoc, ServiceDoc } from '../../registry/model/capability.js';
import { defaultDatasetId } from '../../registry/model/mapping.js';
import { isConstellationError } from '../../registry/model/errors.js';
import {
  STANDARD_IDS,
  findTapCapability,
  isTapStandardId,
  maxRec,
  parseCapabilities,
  supportsUpload,
  tapEndpoints,
  uploadLimitBytes,
  type Capability,
} from '../ivoa/vosi/capabilities.js';
import { allTables, columnDoc, parseVosiTable, parseVosiTables, tablesNeedingDetail, type VosiTable } from '../ivoa/vosi/tables.js';
import { parseAvailability } from '../ivoa/vosi/availability.js';

/** The last X-RateLimit-* values Gafaelfawr sent during a harvest. */
export interface RspRateLimit {
  limit?: number;
  remaining?: number;
  /** As sent: Gafaelfawr writes seconds since the epoch. */
  reset?: number;
  used?: number;
  resource?: string;
}

/** The caller's quota from Gafaelfawr user-info, as far as the broker uses it. */
export interface RspQuota {
  /** Concurrent Qserv TAP queries allowed (quota.tap.qserv.concurrent). */
  tapConcurrent?: number;
  notebookCpu?: number;
  notebookMemoryGb?: number;
}

/** A harvest outcome with what Gafaelfawr told the broker about its limits. */
export interface RspHarvestOutcome extends HarvestOutcome {
  rateLimit?: RspRateLimit;
  quota?: RspQuota;
}

/** A TAP service named by discovery (or by options when discovery names none). */
export interface RspTapService {
  /** Repertoire service name, used as the service id ('tap', 'ssotap'). */
  id: string;
  url: string;
  /** Repertoire datasets served by it (dp02, dp1, …). */
  datasets: string[];
}

interface RspOptions {
  discoveryPath: string;
  tapPath?: string;
  ssotapPath?: string;
  userInfoPath?: string;
  nubladoPath?: string;
  discoveryDatasets?: string[];
  access: DatasetDoc['access'];
  notebook?: { id: string; cores: number; memoryGb: number; maxCoresPerJob?: number; maxMemoryGbPerJob?: number };
}

// The group that holds Rubin data rights; datasets default to it unless options say otherwise.
const DEFAULT_ACCESS: DatasetDoc['access'] = { public: false, groups: ['rubin-data-rights'] };

/** The Rubin Science Platform adapter (kind 'rsp'). */
export function createRspAdapter(http: HttpClient): Adapter {
  return {
    kind: 'rsp',
    harvest: (ctx) => harvest(http, ctx),
    health: (ctx) => health(http, ctx),
  };
}

async function harvest(http: HttpClient, ctx: AdapterContext): Promise<RspHarvestOutcome> {
  const meter = ctx.meter ?? { bytes: 0 };
  const start = meter.bytes;
  const options = readOptions(ctx.site.options);
  const base = stripSlash(ctx.site.url);
  let rateLimit: RspRateLimit | undefined;
  const get = async (url: string, credential: SiteCredential): Promise<string> => {
    const res = await http.request(url, { credential, meter, signal: ctx.signal, headers: { accept: 'application/xml, text/xml, */*' } });
    rateLimit = readRateLimit(res) ?? rateLimit;
    return res.text();
  };

  // Repertoire discovery is public; the token goes only where it is needed.
  const discovery = await http.json(join(base, options.discoveryPath), { meter, signal: ctx.signal });
  const taps = tapServicesFromDiscovery(discovery, options, base);

  const services: ServiceDoc[] = [];
  const datasets: DatasetDoc[] = [];
  const ids = new Set<string>();
  for (const tap of taps) {
    const { service, tables } = await harvestTap(get, tap, ctx.credential);
    services.push(service);
    for (const table of tables) {
      const doc = datasetDoc(table, tap.id, options.access);
      if (doc === undefined || ids.has(doc.id)) continue;
      ids.add(doc.id);
      datasets.push(doc);
    }
  }

  let quota: RspQuota | undefined;
  if (options.userInfoPath && ctx.credential.kind !== 'anonymous') {
    quota = await readQuota(http, join(base, options.userInfoPath), ctx, meter).catch(() => undefined);
  }

  const compute: ComputePoolDoc[] = [];
  if (options.notebook) {
    const nb = options.notebook;
    const pool: ComputePoolDoc = { id: nb.id, kind: 'notebook', cores: nb.cores, memoryGb: nb.memoryGb };
    // A user's own notebook quota is a harder per-lab limit than the configured size.
    const maxCores = min(nb.maxCoresPerJob, quota?.notebookCpu === undefined ? undefined : Math.floor(quota.notebookCpu));
    const maxMem = min(nb.maxMemoryGbPerJob, quota?.notebookMemoryGb);
    if (maxCores !== undefined) pool.maxCoresPerJob = maxCores;
    if (maxMem !== undefined) pool.maxMemoryGbPerJob = maxMem;
    if (options.nubladoPath) {
      services.push({ id: 'nublado', type: 'nublado', url: join(base, options.nubladoPath), title: 'Nublado lab controller (interactive JupyterLab only)', auth: ['bearer'] });
      pool.service = 'nublado';
    }
    compute.push(pool);
  }

  const document: CapabilityDocument = {
    schemaVersion: 1,
    site: { id: ctx.site.id, name: ctx.site.name, platform: 'rsp', url: ctx.site.url },
    services,
    datasets,
    compute,
    images: [],
    asOf: new Date().toISOString(),
  };
  const outcome: RspHarvestOutcome = { document, bytes: meter.bytes - start };
  if (rateLimit) outcome.rateLimit = rateLimit;
  if (quota) outcome.quota = quota;
  return outcome;
}

async function health(http: HttpClient, ctx: AdapterContext): Promise<HealthOutcome> {
  const options = readOptions(ctx.site.options);
  const base = stripSlash(ctx.site.url);
  const problems: string[] = [];
  let discovery: unknown;
  try {
    discovery = await http.json(join(base, options.discoveryPath), { signal: ctx.signal, retry: false });
  } catch (err) {
    problems.push(`discovery: ${messageOf(err)}`);
  }
  const taps = tapServicesFromDiscovery(discovery, options, base);
  let up = 0;
  for (const tap of taps) {
    try {
      const text = await http.text(`${tap.url}/availability`, { credential: ctx.credential, signal: ctx.signal, retry: false });
      const availability = parseAvailability(text);
      if (availability.available) up++;
      else problems.push(`${tap.id}: unavailable${availability.notes.length ? ` (${availability.notes.join('; ')})` : ''}`);
    } catch (err) {
      problems.push(`${tap.id}: ${messageOf(err)}`);
    }
  }
  const status: HealthStatus = problems.length === 0 ? 'UP' : up > 0 || discovery !== undefined ? 'DEGRADED' : 'DOWN';
  return problems.length === 0 ? { status } : { status, message: problems.join('; ') };
}

/**
 * The TAP services a Repertoire discovery document names, one per service name; falls back
 * to the configured tapPath and ssotapPath when the document names none (or is unusable).
 */
export function tapServicesFromDiscovery(discovery: unknown, options: { discoveryDatasets?: string[]; tapPath?: string; ssotapPath?: string }, siteUrl: string): RspTapService[] {
  const found = new Map<string, RspTapService>();
  const datasets = record(record(discovery)?.datasets);
  const wanted = options.discoveryDatasets?.map((d) => d.toLowerCase());
  for (const [datasetName, dataset] of Object.entries(datasets ?? {})) {
    if (wanted && !wanted.includes(datasetName.toLowerCase())) continue;
    for (const [name, svc] of Object.entries(record(record(dataset)?.services) ?? {})) {
      const service = record(svc);
      if (!service) continue;
      const versions = Object.values(record(service.versions) ?? {}).map(record);
      // Repertoire 2 no longer publishes ivoa_standard_id, so the service name is the main clue.
      const isTap = /tap$/i.test(name) || versions.some((v) => isTapStandardId(str(v?.ivoa_standard_id)));
      if (!isTap) continue;
      const url = str(service.url) ?? versions.map((v) => str(v?.url)).find((u) => u !== undefined);
      if (!url) continue;
      const existing = found.get(name);
      if (existing) existing.datasets.push(datasetName);
      else found.set(name, { id: name, url: stripSlash(url), datasets: [datasetName] });
    }
  }
  if (found.size === 0) {
    if (options.tapPath) found.set('tap', { id: 'tap', url: join(siteUrl, options.tapPath), datasets: [] });
    if (options.ssotapPath) found.set('ssotap', { id: 'ssotap', url: join(siteUrl, options.ssotapPath), datasets: [] });
  }
  return [...found.values()];
}

async function harvestTap(
  get: (url: string, credential: SiteCredential) => Promise<string>,
  tap: RspTapService,
  credential: SiteCredential,
): Promise<{ service: ServiceDoc; tables: VosiTable[] }> {
  const caps = parseCapabilities(await get(`${tap.url}/capabilities`, credential));
  const endpoints = tapEndpoints(caps, credential.kind);
  const tablesUrl = endpoints?.tables ?? `${tap.url}/tables`;
  const tableset = parseVosiTables(await get(tablesUrl, credential));
  const detailed = new Map<string, VosiTable>();
  await eachLimited(tablesNeedingDetail(tableset), 4, async (name) => {
    detailed.set(name, parseVosiTable(await get(`${tablesUrl}/${encodeURIComponent(name)}`, credential)));
  });
  const tables = allTables(tableset).map((t) => {
    const d = detailed.get(t.name);
    // The detail document may omit what the summary gave (row counts, descriptions).
    return d === undefined ? t : { ...t, ...d, nrows: d.nrows ?? t.nrows, description: d.description ?? t.description };
  });
  return { service: serviceDoc(tap, caps), tables };
}

function serviceDoc(tap: RspTapService, caps: Capability[]): ServiceDoc {
  const service: ServiceDoc = {
    id: tap.id,
    type: 'tap',
    url: tap.url,
    standardId: STANDARD_IDS.tap,
    title: `RSP ${tap.id === 'ssotap' ? 'Solar System Objects TAP' : 'TAP'}${tap.datasets.length ? `: ${tap.datasets.join(', ')}` : ''}`,
    upload: supportsUpload(caps),
    async: true,
    // Gafaelfawr accepts the token as a bearer or as HTTP Basic, whatever the VOSI document declares.
    auth: ['bearer', 'basic'] satisfies AuthMethod[],
  };
  const rows = maxRec(caps);
  const upload = uploadLimitBytes(caps);
  if (rows !== undefined) service.maxRec = rows;
  if (upload !== undefined) service.uploadLimitBytes = upload;
  const access = findTapCapability(caps)?.tableAccess;
  if (access) {
    const languages = access.languages.flatMap((l) => (l.versions.length ? l.versions.map((v) => `${l.name}-${v.version}`) : [l.name]));
    const formats = [...new Set(access.outputFormats.map((f) => f.mime))];
    if (languages.length) service.languages = languages.slice(0, 50);
    if (formats.length) service.formats = formats.slice(0, 50);
  }
  return service;
}

function datasetDoc(table: VosiTable, service: string, access: DatasetDoc['access']): DatasetDoc | undefined {
  if (table.name.toLowerCase().replace(/"/g, '').startsWith('tap_schema.')) return undefined;
  const id = defaultDatasetId(table.name);
  if (id === undefined) return undefined;
  const doc: DatasetDoc = { id, service, table: table.name, access: { ...access, groups: [...(access.groups ?? [])] } };
  if (table.title) doc.title = table.title.slice(0, 500);
  if (table.description) doc.description = table.description.slice(0, 4000);
  if (table.nrows !== undefined) doc.rows = table.nrows;
  const columns = table.columns.map(columnDoc);
  if (columns.length) {
    doc.columns = columns;
    const position = positionOf(columns);
    if (position) doc.position = position;
    const width = rowBytes(columns);
    if (width > 0) doc.rowBytes = width;
  }
  return doc;
}

/** The main RA/Dec columns by UCD (pos.eq.ra;meta.main first), else by common names. */
export function positionOf(columns: ColumnDoc[]): { ra: string; dec: string } | undefined {
  const pick = (axis: 'ra' | 'dec', names: string[]) => {
    const words = (c: ColumnDoc) => (c.ucd ?? '').toLowerCase().split(';').map((w) => w.trim());
    return (
      columns.find((c) => words(c).includes(`pos.eq.${axis}`) && words(c).includes('meta.main')) ??
      columns.find((c) => words(c).includes(`pos.eq.${axis}`)) ??
      columns.find((c) => names.includes(c.name.toLowerCase()))
    )?.name;
  };
  const ra = pick('ra', ['ra', 'coord_ra', 'ra_icrs', 'ramean']);
  const dec = pick('dec', ['dec', 'decl', 'coord_dec', 'de_icrs', 'decmean']);
  return ra && dec ? { ra, dec } : undefined;
}

const WIDTH: Record<string, number> = { boolean: 1, bit: 1, unsignedByte: 1, short: 2, int: 4, long: 8, char: 1, unicodeChar: 2, float: 4, double: 8, floatComplex: 8, doubleComplex: 16 };

// A rough row width for the planner's bytes-moved estimate; variable-length strings count 16.
function rowBytes(columns: ColumnDoc[]): number {
  let total = 0;
  for (const c of columns) {
    const width = WIDTH[c.datatype ?? ''] ?? 8;
    const size = c.arraysize === undefined ? 1 : c.arraysize.split('x').reduce((n, part) => n * (Number.parseInt(part, 10) || 16), 1);
    total += width * size;
  }
  return total;
}

async function readQuota(http: HttpClient, url: string, ctx: AdapterContext, meter: { bytes: number }): Promise<RspQuota | undefined> {
  const info = record(await http.json(url, { credential: ctx.credential, meter, signal: ctx.signal, retry: false }));
  const quota = record(info?.quota);
  if (!quota) return undefined;
  const out: RspQuota = {};
  const concurrent = num(record(record(quota.tap)?.qserv)?.concurrent);
  const cpu = num(record(quota.notebook)?.cpu);
  const memory = num(record(quota.notebook)?.memory);
  if (concurrent !== undefined) out.tapConcurrent = concurrent;
  if (cpu !== undefined) out.notebookCpu = cpu;
  if (memory !== undefined) out.notebookMemoryGb = memory;
  return out;
}

function readRateLimit(res: HttpResponse): RspRateLimit | undefined {
  const h = res.headers;
  if (h['x-ratelimit-limit'] === undefined && h['x-ratelimit-remaining'] === undefined) return undefined;
  const out: RspRateLimit = {};
  const limit = num(h['x-ratelimit-limit']);
  const remaining = num(h['x-ratelimit-remaining']);
  const reset = num(h['x-ratelimit-reset']);
  const used = num(h['x-ratelimit-used']);
  if (limit !== undefined) out.limit = limit;
  if (remaining !== undefined) out.remaining = remaining;
  if (reset !== undefined) out.reset = reset;
  if (used !== undefined) out.used = used;
  if (h['x-ratelimit-resource']) out.resource = h['x-ratelimit-resource'];
  return out;
}

function readOptions(raw: Record<string, unknown> | undefined): RspOptions {
  const o = raw ?? {};
  const out: RspOptions = { discoveryPath: str(o.discoveryPath) ?? '/repertoire/discovery', access: DEFAULT_ACCESS };
  const tapPath = str(o.tapPath);
  const ssotapPath = str(o.ssotapPath);
  const userInfoPath = str(o.userInfoPath);
  const nubladoPath = str(o.nubladoPath);
  if (tapPath) out.tapPath = tapPath;
  if (ssotapPath) out.ssotapPath = ssotapPath;
  if (userInfoPath) out.userInfoPath = userInfoPath;
  if (nubladoPath) out.nubladoPath = nubladoPath;
  if (Array.isArray(o.discoveryDatasets)) out.discoveryDatasets = o.discoveryDatasets.filter((d): d is string => typeof d === 'string');
  const access = record(o.access);
  if (access && typeof access.public === 'boolean') {
    const groups = Array.isArray(access.groups) ? access.groups.filter((g): g is string => typeof g === 'string' && g !== '') : [];
    out.access = { public: access.public, groups };
  }
  const nb = record(o.notebook);
  const cores = num(nb?.cores);
  const memoryGb = num(nb?.memoryGb);
  if (nb && cores !== undefined && memoryGb !== undefined) {
    out.notebook = { id: str(nb.id) ?? 'nublado', cores: Math.floor(cores), memoryGb };
    const maxCores = num(nb.maxCoresPerJob);
    const maxMem = num(nb.maxMemoryGbPerJob);
    if (maxCores !== undefined) out.notebook.maxCoresPerJob = Math.floor(maxCores);
    if (maxMem !== undefined) out.notebook.maxMemoryGbPerJob = maxMem;
  }
  return out;
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function join(base: string, path: string): string {
  return /^https?:\/\//.test(path) ? stripSlash(path) : `${stripSlash(base)}${path.startsWith('/') ? '' : '/'}${stripSlash(path)}`;
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function min(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

function messageOf(err: unknown): string {
  return isConstellationError(err) ? `${err.kind}: ${err.message}` : String(err);
}
