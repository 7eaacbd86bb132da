/**
 * CADC / CANFAR: every service is found through the CADC registry's resource-caps map, then
 * through each service's VOSI capabilities; skaha (v1) gives images, resource contexts and
 * cluster capacity, and runs container jobs as headless sessions; argus TAP gives datasets.
 */
import type {
  Adapter,
  AdapterContext,
  HarvestOutcome,
  HealthOutcome,
  JobState,
  SiteContainerJob,
  SiteCredential,
  SiteJobStatus,
} from '../../registry/model/adapter.js';
import type {
  AuthMethod,
  ComputePoolDoc,
  DatasetDoc,
  ImageDoc,
  ImageType,
  ServiceDoc,
} from '../../registry/model/capability.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { defaultDatasetId } from '../../registry/model/mapping.js';
import type { ByteMeter, SiteHttp, RequestOptions } from '../http.js';
import { harvestedDocument } from '../tap/adapter.js';
import { authMethodsOf, tapLanguages } from '../tap/harvest.js';
import { parseAvailability } from '../ivoa/vosi/availability.js';
import {
  STANDARD_IDS,
  findTapCapability,
  interfaceSecurityKinds,
  maxRec,
  parseCapabilities,
  resolveCapabilityUrl,
  supportsUpload,
  tapEndpoints,
  uploadLimitBytes,
  type Capability,
  type ChosenInterface,
  type CredentialKind,
} from '../ivoa/vosi/capabilities.js';
import { allTables, columnDoc, parseVosiTable, parseVosiTablesAsync, type VosiTable } from '../ivoa/vosi/tables.js';
import { parseResourceCaps } from './resource-caps.js';

/** Resource identifiers looked up in resource-caps when federation.yaml names none. */
export const DEFAULT_RESOURCES: Readonly<Record<string, string>> = {
  skaha: 'ivo://cadc.nrc.ca/skaha',
  argus: 'ivo://cadc.nrc.ca/argus',
};

/** Compute pool ids the adapter publishes: headless sessions, and interactive ones. */
export const CANFAR_POOLS = { batch: 'batch', notebook: 'notebook' } as const;

// The skaha Helm chart's default session expiry (4 days); skaha does not publish it.
const DEFAULT_SESSION_EXPIRY_S = 345_600;
// VOSI tables-1.1 detail=min lists are fetched table by table; beyond this, keep the list only.
const MAX_DETAIL_FETCHES = 200;

/** skaha's /v1/context answer (current shape, plus the older flat one). */
interface SkahaContext {
  cores?: { default?: number; defaultRequest?: number; defaultLimit?: number; defaultHeadless?: number; options?: number[] };
  memoryGB?: { default?: number; defaultRequest?: number; defaultLimit?: number; defaultHeadless?: number; options?: number[] };
  gpus?: { options?: number[] };
  maxInteractiveSessions?: number;
  availableCores?: number[];
  availableRAM?: number[];
  availableGPUs?: number[];
}

/** skaha's `/v1/session?view=stats` answer. */
interface SkahaStats {
  instances?: { session?: number; desktopApp?: number; headless?: number; total?: number };
  cores?: { requestedCPUCores?: number; cpuCoresAvailable?: number; maxCPUCores?: { cpuCores?: number; withRam?: string } };
  ram?: { requestedRAM?: string; ramAvailable?: string; maxRAM?: { ram?: string; withCPUCores?: number } };
}

interface SkahaImage {
  id?: unknown;
  types?: unknown;
  digest?: unknown;
}

/** Where skaha's v1 endpoints are, for one credential. */
interface SkahaEndpoints {
  session: string;
  image: string;
  context: string;
  availability: string;
  auth: AuthMethod[];
}

/** The resolved services of one site, kept between harvests so job hooks need no discovery. */
interface Resolved {
  skaha?: SkahaEndpoints;
  context?: SkahaContext;
}

/** Maps a skaha session status (both the OpenAPI and the Session.java spellings) onto a JobState. */
export function skahaJobState(status: string): JobState {
  switch (status.trim().toLowerCase()) {
    case 'pending':
      return 'QUEUED';
    case 'running':
    case 'terminating':
      return 'EXECUTING';
    case 'succeeded':
    case 'completed':
      return 'COMPLETED';
    case 'error':
    case 'failed':
      return 'ERROR';
    default:
      // Kubernetes can report phases skaha does not name (Unknown); keep polling rather than end the job.
      return 'QUEUED';
  }
}

/** Parses a Kubernetes-style quantity ("4096G", "1.5Ti", "512Mi", "16") into gigabytes. */
export function quantityToGb(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(Ei|Pi|Ti|Gi|Mi|Ki|E|P|T|G|M|K)?\s*$/.exec(value);
  if (m === null) return undefined;
  const n = Number(m[1]);
  const scale: Record<string, number> = {
    '': 1e-9, K: 1e-6, M: 1e-3, G: 1, T: 1e3, P: 1e6, E: 1e9,
    Ki: 1024 / 1e9, Mi: 1024 ** 2 / 1e9, Gi: 1024 ** 3 / 1e9, Ti: 1024 ** 4 / 1e9, Pi: 1024 ** 5 / 1e9, Ei: 1024 ** 6 / 1e9,
  };
  return n * scale[m[2] ?? ''];
}

/** Creates the CADC/CANFAR adapter over one SiteHttp. */
export function createCanfarAdapter(http: SiteHttp): Adapter {
  const resolvedBySite = new Map<string, Resolved>();

  // Which interface is chosen depends on the credential kind, so that is part of the key.
  const siteKey = (ctx: AdapterContext) => `${ctx.site.id}\u0000${ctx.site.url}\u0000${ctx.credential.kind}`;

  async function discover(ctx: AdapterContext, meter: ByteMeter): Promise<{ services: Map<string, { ivoid: string; capsUrl: string; caps: Capability[] }> }> {
    const capsMap = parseResourceCaps(await http.text(resourceCapsUrl(ctx), { signal: ctx.signal, meter }));
    const wanted = resources(ctx);
    const present = Object.entries(wanted).filter(([, ivoid]) => capsMap.has(ivoid));
    if (present.length === 0) {
      throw new ConstellationError('UPSTREAM_MALFORMED', `CADC resource-caps lists none of ${Object.values(wanted).join(', ')}`);
    }
    // VOSI capabilities are public by definition, so the user's token is not sent there.
    const fetched = await Promise.all(
      present.map(async ([key, ivoid]) => {
        const capsUrl = capsMap.get(ivoid)!;
        const caps = parseCapabilities(await http.text(capsUrl, { signal: ctx.signal, meter }));
        return [key, { ivoid, capsUrl, caps }] as const;
      }),
    );
    return { services: new Map(fetched) };
  }

  async function skahaFor(ctx: AdapterContext): Promise<SkahaEndpoints> {
    const cached = resolvedBySite.get(siteKey(ctx))?.skaha;
    if (cached) return cached;
    const meter = ctx.meter ?? { bytes: 0 };
    const capsMap = parseResourceCaps(await http.text(resourceCapsUrl(ctx), { signal: ctx.signal, meter }));
    const ivoid = resources(ctx).skaha ?? DEFAULT_RESOURCES.skaha;
    const capsUrl = capsMap.get(ivoid);
    if (capsUrl === undefined) throw new ConstellationError('UPSTREAM', `CADC resource-caps does not list ${ivoid}`);
    const caps = parseCapabilities(await http.text(capsUrl, { signal: ctx.signal, meter }));
    const skaha = skahaEndpoints(caps, capsUrl, ctx.credential);
    remember(ctx, { skaha });
    return skaha;
  }

  function remember(ctx: AdapterContext, patch: Resolved): void {
    const key = siteKey(ctx);
    resolvedBySite.set(key, { ...resolvedBySite.get(key), ...patch });
  }

  async function skahaJson<T>(ctx: AdapterContext, url: string, meter?: ByteMeter): Promise<T> {
    return http.json<T>(url, skahaRequest(ctx, { signal: ctx.signal, meter }));
  }

  return {
    kind: 'canfar',

    async harvest(ctx: AdapterContext): Promise<HarvestOutcome> {
      const meter = ctx.meter ?? { bytes: 0 };
      const start = meter.bytes;
      const { services: found } = await discover(ctx, meter);
      const services: ServiceDoc[] = [];
      const datasets: DatasetDoc[] = [];
      const compute: ComputePoolDoc[] = [];
      const images: ImageDoc[] = [];
      const tableServices = tablesFrom(ctx);

      for (const [key, { ivoid, capsUrl, caps }] of found) {
        if (hasCapability(caps, STANDARD_IDS.skahaSession)) {
          const skaha = skahaEndpoints(caps, capsUrl, ctx.credential);
          const [imageList, context, stats] = await Promise.all([
            skahaJson<unknown>(ctx, skaha.image, meter),
            skahaJson<SkahaContext>(ctx, skaha.context, meter),
            skahaJson<SkahaStats>(ctx, `${skaha.session}?view=stats`, meter),
          ]);
          remember(ctx, { skaha, context });
          services.push({
            id: key,
            type: 'skaha',
            url: serviceBase(capsUrl),
            standardId: STANDARD_IDS.skahaSession,
            title: `Skaha sessions (v1), ${ivoid}`,
            auth: skaha.auth,
          });
          compute.push(...skahaPools(key, context, stats, ctx.site.options));
          images.push(...skahaImages(imageList, skaha.image));
          continue;
        }
        const tap = tapEndpoints(caps, credentialKind(ctx.credential));
        if (tap !== undefined) {
          const tapCap = findTapCapability(caps)!;
          const service: ServiceDoc = {
            id: key,
            type: 'tap',
            url: tap.base,
            standardId: STANDARD_IDS.tap,
            title: `CADC TAP, ${ivoid}`,
            upload: supportsUpload(caps),
            async: true,
            auth: authMethodsOf(tapCap.interfaces.flatMap(interfaceSecurityKinds)),
          };
          const rec = maxRec(caps);
          const upl = uploadLimitBytes(caps);
          const langs = tapLanguages(tapCap);
          if (rec !== undefined) service.maxRec = rec;
          if (upl !== undefined) service.uploadLimitBytes = upl;
          if (langs.length > 0) service.languages = langs;
          services.push(service);
          if (tableServices.includes(key)) {
            const options = tap.security === 'anonymous' || !tap.credentialMatched ? {} : { credential: ctx.credential };
            const tables = await harvestTables(http, tap.tables, tap.tablesVersion, { signal: ctx.signal, meter, ...options });
            const isPublic = tap.security === 'anonymous';
            datasets.push(...tablesToDatasets(tables, key, isPublic, datasets));
          }
          continue;
        }
        // Anything else the registry names (cavern VOSpace, ...) is listed so users can see it.
        services.push({ id: key, type: key === 'arc' || key === 'vault' ? 'vospace' : 'other', url: serviceBase(capsUrl), title: ivoid });
      }

      return { document: harvestedDocument(ctx, services, datasets, { compute, images }), bytes: meter.bytes - start };
    },

    async health(ctx: AdapterContext): Promise<HealthOutcome> {
      try {
        const skaha = await skahaFor(ctx);
        const availability = parseAvailability(await http.text(skaha.availability, { signal: ctx.signal, meter: ctx.meter, retry: false }));
        if (availability.available) return { status: 'UP' };
        return { status: 'DOWN', message: availability.notes.join('; ') || 'skaha reports itself unavailable' };
      } catch (err) {
        if (!isConstellationError(err)) throw err;
        return { status: err.kind === 'UPSTREAM_MALFORMED' ? 'DEGRADED' : 'DOWN', message: err.message };
      }
    },

    async submitContainerJob(ctx: AdapterContext, job: SiteContainerJob): Promise<{ siteJobId: string; status: SiteJobStatus }> {
      const skaha = await skahaFor(ctx);
      let context = resolvedBySite.get(siteKey(ctx))?.context;
      if (context === undefined) {
        context = await skahaJson<SkahaContext>(ctx, skaha.context, ctx.meter);
        remember(ctx, { context });
      }
      const params = new URLSearchParams();
      params.set('name', sessionName(job.name));
      params.set('image', job.image);
      params.set('cores', String(pickOption('cores', job.cores, coreOptions(context))));
      params.set('ram', String(pickOption('memory (GB)', job.memoryGb, ramOptions(context))));
      if (job.gpus > 0) params.set('gpus', String(pickOption('gpus', job.gpus, gpuOptions(context))));
      params.set('type', 'headless');
      params.set('cmd', job.command);
      if (job.args.length > 0) params.set('args', job.args.join(' '));
      for (const [k, v] of Object.entries(job.env)) params.append('env', `${k}=${v}`);
      const res = await http.request(`${skaha.session}?${params}`, skahaRequest(ctx, { method: 'POST', signal: ctx.signal, meter: ctx.meter }));
      const id = (await res.text()).trim();
      if (!/^[A-Za-z0-9._-]{1,128}$/.test(id)) {
        throw new ConstellationError('UPSTREAM_MALFORMED', `skaha answered the session launch with "${id.slice(0, 80)}", not a session id`);
      }
      return { siteJobId: id, status: { state: 'QUEUED', sitePhase: 'Pending' } };
    },

    async jobStatus(ctx: AdapterContext, siteJobId: string): Promise<SiteJobStatus> {
      const skaha = await skahaFor(ctx);
      const res = await http.request(sessionUrl(skaha, siteJobId), skahaRequest(ctx, { signal: ctx.signal, meter: ctx.meter, accept: [404], headers: { accept: 'application/json' } }));
      if (res.status === 404) {
        await res.dump();
        throw new ConstellationError('NOT_FOUND', `skaha has no session ${siteJobId} (deleted or expired)`);
      }
      const session = await res.json<{ status?: unknown }>();
      if (typeof session?.status !== 'string') {
        throw new ConstellationError('UPSTREAM_MALFORMED', `skaha session ${siteJobId} has no status`);
      }
      const state = skahaJobState(session.status);
      return state === 'ERROR'
        ? { state, sitePhase: session.status, error: `skaha session ${siteJobId} ended with status ${session.status}` }
        : { state, sitePhase: session.status };
    },

    async cancelJob(ctx: AdapterContext, siteJobId: string): Promise<void> {
      const skaha = await skahaFor(ctx);
      // A session already gone is as cancelled as it will ever be.
      const res = await http.request(sessionUrl(skaha, siteJobId), skahaRequest(ctx, { method: 'DELETE', signal: ctx.signal, meter: ctx.meter, accept: [404] }));
      await res.dump();
    },
  };
}

// --- discovery helpers ---------------------------------------------------------------------

function resourceCapsUrl(ctx: AdapterContext): string {
  const configured = ctx.site.options?.resourceCaps;
  if (typeof configured === 'string' && configured !== '') return configured;
  const base = ctx.site.url.replace(/\/+$/, '');
  return base.endsWith('/resource-caps') ? base : `${base}/resource-caps`;
}

function resources(ctx: AdapterContext): Record<string, string> {
  const configured = ctx.site.options?.resources;
  if (configured && typeof configured === 'object') {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(configured as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
    if (Object.keys(out).length > 0) return out;
  }
  return { ...DEFAULT_RESOURCES };
}

// youcat holds users' own tables (many, mostly private), so only argus is indexed unless asked.
function tablesFrom(ctx: AdapterContext): string[] {
  const configured = ctx.site.options?.harvestTables;
  return Array.isArray(configured) ? configured.filter((x): x is string => typeof x === 'string') : ['argus'];
}

function hasCapability(caps: readonly Capability[], standardID: string): boolean {
  return caps.some((c) => c.standardID?.toLowerCase() === standardID.toLowerCase());
}

function credentialKind(credential: SiteCredential): CredentialKind {
  return credential.kind;
}

function serviceBase(capsUrl: string): string {
  return capsUrl.replace(/\/capabilities\/?(\?.*)?$/, '');
}

function skahaEndpoints(caps: Capability[], capsUrl: string, credential: SiteCredential): SkahaEndpoints {
  const kind = credentialKind(credential);
  const session = resolveCapabilityUrl(caps, STANDARD_IDS.skahaSession, kind);
  if (session === undefined) throw new ConstellationError('UPSTREAM_MALFORMED', `skaha capabilities at ${capsUrl} advertise no usable session-1 interface`);
  const sessionBase = session.url.replace(/\/+$/, '');
  // Older deployments list only session-1; image and context then sit beside it.
  const sibling = (name: string, chosen: ChosenInterface | undefined) => chosen?.url.replace(/\/+$/, '') ?? sessionBase.replace(/\/session$/, `/${name}`);
  const availability = resolveCapabilityUrl(caps, STANDARD_IDS.vosiAvailability)?.url ?? `${serviceBase(capsUrl)}/availability`;
  const sessionCap = caps.filter((c) => c.standardID?.toLowerCase() === STANDARD_IDS.skahaSession.toLowerCase());
  return {
    session: sessionBase,
    image: sibling('image', resolveCapabilityUrl(caps, STANDARD_IDS.skahaImage, kind)),
    context: sibling('context', resolveCapabilityUrl(caps, STANDARD_IDS.skahaContext, kind)),
    availability,
    auth: authMethodsOf(sessionCap.flatMap((c) => c.interfaces.flatMap(interfaceSecurityKinds))),
  };
}

/** Request options for skaha: the credential, plus the header the canfar client sends with it. */
function skahaRequest(ctx: AdapterContext, options: RequestOptions): RequestOptions {
  const headers: Record<string, string> = { ...options.headers };
  if (ctx.credential.kind === 'bearer') {
    const configured = ctx.site.options?.authenticationType;
    headers['x-skaha-authentication-type'] = typeof configured === 'string' ? configured : 'OIDC';
  }
  return { ...options, headers, credential: ctx.credential };
}

function sessionUrl(skaha: SkahaEndpoints, id: string): string {
  return `${skaha.session}/${encodeURIComponent(id)}`;
}

// skaha accepts short alphanumeric-and-dash names; job names from users are anything.
function sessionName(name: string): string {
  const cleaned = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 15).replace(/-+$/, '');
  return cleaned === '' ? 'constellation' : cleaned;
}

// --- capacity ------------------------------------------------------------------------------

function numbers(list: unknown): number[] {
  return Array.isArray(list) ? list.filter((n): n is number => typeof n === 'number' && Number.isFinite(n)) : [];
}

function coreOptions(c: SkahaContext): number[] {
  return numbers(c.cores?.options ?? c.availableCores);
}

function ramOptions(c: SkahaContext): number[] {
  return numbers(c.memoryGB?.options ?? c.availableRAM);
}

function gpuOptions(c: SkahaContext): number[] {
  return numbers(c.gpus?.options ?? c.availableGPUs);
}

/** skaha only accepts values listed in /v1/context, so a request is rounded up to the next option. */
function pickOption(what: string, wanted: number, options: number[]): number {
  if (options.length === 0) return wanted;
  const fit = [...options].sort((a, b) => a - b).find((o) => o >= wanted);
  if (fit === undefined) {
    throw new ConstellationError('INVALID_ARGUMENT', `skaha offers ${what} of ${options.join(', ')}; ${wanted} is more than the largest`);
  }
  return fit;
}

function skahaPools(service: string, context: SkahaContext, stats: SkahaStats, options: Record<string, unknown> | undefined): ComputePoolDoc[] {
  const totalCores = Math.max(0, Math.floor(stats.cores?.cpuCoresAvailable ?? 0));
  const requestedCores = Math.max(0, stats.cores?.requestedCPUCores ?? 0);
  const totalRam = quantityToGb(stats.ram?.ramAvailable) ?? 0;
  const requestedRam = quantityToGb(stats.ram?.requestedRAM) ?? 0;
  const cores = coreOptions(context);
  const ram = ramOptions(context);
  const gpus = gpuOptions(context);
  const expiry = typeof options?.sessionExpiryS === 'number' ? options.sessionExpiryS : DEFAULT_SESSION_EXPIRY_S;
  const common = {
    service,
    cores: totalCores,
    memoryGb: round1(totalRam),
    freeCores: Math.min(totalCores, Math.max(0, Math.floor(totalCores - requestedCores))),
    freeMemoryGb: round1(Math.max(0, totalRam - requestedRam)),
    maxWalltimeS: expiry,
  };
  const perJob: Partial<ComputePoolDoc> = {};
  // The largest option is what one session may ask; no single node can give more than maxCPUCores.
  const nodeCores = stats.cores?.maxCPUCores?.cpuCores;
  if (cores.length > 0) perJob.maxCoresPerJob = Math.floor(Math.min(Math.max(...cores), nodeCores ?? Infinity));
  if (ram.length > 0) perJob.maxMemoryGbPerJob = Math.max(...ram);
  // skaha does not count the cluster's GPUs; one session may ask for the largest option, so at least that many exist.
  if (gpus.length > 0) perJob.gpus = Math.max(0, Math.floor(Math.max(...gpus)));
  return [
    { id: CANFAR_POOLS.batch, kind: 'batch', ...common, ...perJob },
    { id: CANFAR_POOLS.notebook, kind: 'notebook', ...common, ...perJob },
  ];
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

const IMAGE_TYPES = new Set<ImageType>(['headless', 'notebook', 'desktop', 'carta', 'firefly', 'contributed', 'batch']);
const POOL_OF_TYPE: Partial<Record<ImageType, string>> = {
  headless: CANFAR_POOLS.batch,
  notebook: CANFAR_POOLS.notebook,
  carta: CANFAR_POOLS.notebook,
  firefly: CANFAR_POOLS.notebook,
  contributed: CANFAR_POOLS.notebook,
};

function skahaImages(list: unknown, url: string): ImageDoc[] {
  if (!Array.isArray(list)) throw new ConstellationError('UPSTREAM_MALFORMED', `skaha ${url} did not return a JSON array of images`);
  const out: ImageDoc[] = [];
  const seen = new Set<string>();
  for (const raw of list as SkahaImage[]) {
    if (typeof raw?.id !== 'string' || !/^\S+$/.test(raw.id) || seen.has(raw.id)) continue;
    // skaha also lists types the broker cannot schedule (desktop-app); those are dropped, not the image.
    const types = numbersOrStrings(raw.types).filter((t): t is ImageType => IMAGE_TYPES.has(t as ImageType));
    if (types.length === 0) continue;
    seen.add(raw.id);
    const image: ImageDoc = { ref: raw.id, types: [...new Set(types)] };
    if (typeof raw.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(raw.digest)) image.digest = raw.digest;
    image.compute = [...new Set(types.map((t) => POOL_OF_TYPE[t]).filter((p): p is string => p !== undefined))];
    out.push(image);
  }
  return out;
}

function numbersOrStrings(list: unknown): string[] {
  return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
}

// --- TAP tables ----------------------------------------------------------------------------

async function harvestTables(http: SiteHttp, url: string, version: '1.0' | '1.1', options: RequestOptions): Promise<VosiTable[]> {
  const tables = allTables(await parseVosiTablesAsync(await http.text(url, options)));
  const thin = tables.filter((t) => t.needsDetail);
  if (version !== '1.1' || thin.length === 0 || thin.length > MAX_DETAIL_FETCHES) return tables;
  const detailed = new Map<string, VosiTable>();
  for (let i = 0; i < thin.length; i += 4) {
    const batch = await Promise.all(thin.slice(i, i + 4).map(async (t) => parseVosiTable(await http.text(`${url}/${encodeURIComponent(t.name)}`, options))));
    for (const t of batch) detailed.set(t.name, t);
  }
  return tables.map((t) => detailed.get(t.name) ?? t);
}

// TAP_SCHEMA and UWS describe the service itself and exist at every TAP site; they are not data.
const SERVICE_SCHEMAS = /^(tap_schema|uws)\./i;

function tablesToDatasets(tables: VosiTable[], service: string, isPublic: boolean, already: DatasetDoc[]): DatasetDoc[] {
  const ids = new Set(already.map((d) => d.id));
  const out: DatasetDoc[] = [];
  for (const t of tables) {
    if (SERVICE_SCHEMAS.test(t.name)) continue;
    const id = defaultDatasetId(t.name);
    if (id === undefined || ids.has(id)) continue;
    ids.add(id);
    const d: DatasetDoc = { id, service, table: t.name, access: { public: isPublic } };
    if (t.description !== undefined) d.description = t.description.slice(0, 4000);
    if (t.title !== undefined) d.title = t.title.slice(0, 500);
    if (t.nrows !== undefined) d.rows = t.nrows;
    if (t.columns.length > 0) {
      d.columns = t.columns.map(columnDoc);
      const ra = positionColumn(t, 'ra');
      const dec = positionColumn(t, 'dec');
      if (ra && dec) d.position = { ra, dec };
    }
    out.push(d);
  }
  return out;
}

// The main position is the column marked meta.main, else the only one of its kind (ObsCore's s_ra).
function positionColumn(t: VosiTable, axis: 'ra' | 'dec'): string | undefined {
  const withUcd = t.columns.filter((c) => (c.ucd ?? '').toLowerCase().split(';').includes(`pos.eq.${axis}`));
  const main = withUcd.find((c) => (c.ucd ?? '').toLowerCase().split(';').includes('meta.main'));
  return (main ?? (withUcd.length === 1 ? withUcd[0] : undefined))?.name;
}
