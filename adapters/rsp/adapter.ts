/**
 * Rubin Science Platform (data.lsst.cloud): Repertoire discovery names the TAP services
 * (tap for dp02/dp1, ssotap for dp03); each is harvested over VOSI, and queried (sync or UWS
 * async), with the user's Gafaelfawr `gt-…` token. RSP data are proprietary, and RSP has no
 * batch API: the only compute is the interactive Nublado lab pool, which comes from
 * federation.yaml options.
 */
import type { SiteHttp, HttpResponse } from '../http.js';
import type { Adapter, AdapterContext, HarvestValidators, HealthOutcome, HealthStatus, HarvestOutcome } from '../../registry/model/adapter.js';
import type { ComputePoolDoc, DatasetDoc, ServiceDoc } from '../../registry/model/capability.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { isTapStandardId } from '../ivoa/vosi/capabilities.js';
import { parseAvailability } from '../ivoa/vosi/availability.js';
import { harvestOutcome, harvestedDocument } from '../tap/adapter.js';
import { harvestState, TapHarvester, type HarvestState } from '../tap/harvest.js';
import { createTapJobHooks } from '../tap/jobs.js';
import { joinUrl, stripSlash } from '../url.js';

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

// Common spellings of the position columns, for tables whose UCDs do not name them.
const POSITION_NAMES = { ra: ['ra', 'coord_ra', 'ra_icrs', 'ramean'], dec: ['dec', 'decl', 'coord_dec', 'de_icrs', 'decmean'] };

// How long one Repertoire answer routes submissions: services move rarely, and a burst of
// submissions should cost one discovery request, not one each.
const DISCOVERY_TTL_MS = 10 * 60_000;

/** The Rubin Science Platform adapter (kind 'rsp'). */
export function createRspAdapter(http: SiteHttp): Adapter {
  const harvester = new TapHarvester(http);
  // Gafaelfawr takes the token as a bearer or as HTTP Basic, so the credential goes as given.
  const hooks = createTapJobHooks(http, { baseFor: tapBaseResolver(http) });
  return {
    kind: 'rsp',
    harvest: (ctx, previous) => harvest(harvester, ctx, previous),
    health: (ctx) => health(http, ctx),
    ...hooks,
  };
}

/**
 * Finds the base URL of a harvested TAP service (its Repertoire service name) by asking
 * Repertoire again at submit time. The hooks see the site and the query, not the stored
 * capability document, and a map filled by this process's harvests would be empty after a
 * broker restart until the next scheduled harvest; discovery is public and small, answers
 * the same way in any process, and follows Rubin when it moves a service. Only submission
 * needs it: a submitted job is known by its absolute UWS URL.
 */
function tapBaseResolver(http: SiteHttp): (ctx: AdapterContext, service: string) => Promise<string> {
  const cache = new Map<string, { expires: number; discovery: Promise<unknown> }>();

  function discover(url: string, ctx: AdapterContext): Promise<unknown> {
    const hit = cache.get(url);
    if (hit && hit.expires > Date.now()) return hit.discovery;
    const discovery = http.json(url, { signal: ctx.signal, meter: ctx.meter });
    const entry = { expires: Date.now() + DISCOVERY_TTL_MS, discovery };
    cache.set(url, entry);
    discovery.catch(() => {
      if (cache.get(url) === entry) cache.delete(url);
    });
    return discovery;
  }

  return async (ctx, service) => {
    const options = readOptions(ctx.site.options);
    const base = stripSlash(ctx.site.url);
    let discovery: unknown;
    let failure: unknown;
    try {
      discovery = await discover(joinUrl(base, options.discoveryPath), ctx);
    } catch (err) {
      failure = err;
    }
    // Without an answer the configured paths stand in, as they do for health.
    const tap = tapServicesFromDiscovery(discovery, options, base).find((t) => t.id === service);
    if (tap) return tap.url;
    if (failure !== undefined) throw failure;
    throw new ConstellationError('INVALID_ARGUMENT', `RSP site ${ctx.site.id} has no TAP service "${service}"`);
  };
}

async function harvest(harvester: TapHarvester, ctx: AdapterContext, previous?: HarvestValidators): Promise<RspHarvestOutcome> {
  const options = readOptions(ctx.site.options);
  const base = stripSlash(ctx.site.url);
  const state = harvestState(ctx, previous);
  let rateLimit: RspRateLimit | undefined;
  state.onResponse = (res) => {
    rateLimit = readRateLimit(res) ?? rateLimit;
  };

  // Repertoire discovery is public; the token goes only where it is needed.
  const discoveryUrl = joinUrl(base, options.discoveryPath);
  const discovery = parseJson(discoveryUrl, await harvester.fetchDocument(discoveryUrl, ctx, state, { kind: 'anonymous' }, 'application/json'));
  const services: ServiceDoc[] = [];
  const datasets: DatasetDoc[] = [];
  for (const tap of tapServicesFromDiscovery(discovery, options, base)) {
    const part = await harvester.harvestService(
      {
        serviceId: tap.id,
        base: tap.url,
        title: `RSP ${tap.id === 'ssotap' ? 'Solar System Objects TAP' : 'TAP'}${tap.datasets.length ? `: ${tap.datasets.join(', ')}` : ''}`,
        // Gafaelfawr accepts the token as a bearer or as HTTP Basic, whatever the VOSI document declares.
        auth: ['bearer', 'basic'],
        access: options.access,
        positionNames: POSITION_NAMES,
      },
      ctx,
      state,
    );
    services.push(part.service);
    datasets.push(...part.datasets);
  }

  // The quota only shapes the document through the notebook pool; otherwise it is a side read
  // that must not make an unchanged site look modified.
  let quota: RspQuota | undefined;
  if (options.userInfoPath && ctx.credential.kind !== 'anonymous') {
    quota = await readQuota(harvester, joinUrl(base, options.userInfoPath), ctx, options.notebook ? state : harvestState(ctx)).catch(() => undefined);
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
      services.push({ id: 'nublado', type: 'nublado', url: joinUrl(base, options.nubladoPath), title: 'Nublado lab controller (interactive JupyterLab only)', auth: ['bearer'] });
      pool.service = 'nublado';
    }
    compute.push(pool);
  }

  const outcome: RspHarvestOutcome = harvestOutcome(harvestedDocument(ctx, services, datasets, { compute }), state);
  if (rateLimit) outcome.rateLimit = rateLimit;
  if (quota) outcome.quota = quota;
  return outcome;
}

async function health(http: SiteHttp, ctx: AdapterContext): Promise<HealthOutcome> {
  const options = readOptions(ctx.site.options);
  const base = stripSlash(ctx.site.url);
  const problems: string[] = [];
  let discovery: unknown;
  try {
    discovery = await http.json(joinUrl(base, options.discoveryPath), { signal: ctx.signal, retry: false });
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
    if (options.tapPath) found.set('tap', { id: 'tap', url: joinUrl(siteUrl, options.tapPath), datasets: [] });
    if (options.ssotapPath) found.set('ssotap', { id: 'ssotap', url: joinUrl(siteUrl, options.ssotapPath), datasets: [] });
  }
  return [...found.values()];
}

async function readQuota(harvester: TapHarvester, url: string, ctx: AdapterContext, state: HarvestState): Promise<RspQuota | undefined> {
  const info = record(parseJson(url, await harvester.fetchDocument(url, ctx, state, ctx.credential, 'application/json')));
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


function parseJson(url: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConstellationError('UPSTREAM_MALFORMED', `${url} did not return JSON: ${(err as Error).message}`, { cause: err });
  }
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
