/**
 * SciServer (JHU IDIES): RACM/JOBM compute domains become compute pools and images, CasJobs
 * contexts become T-SQL services with their tables as datasets, container jobs run as JOBM
 * Docker jobs and queries as CasJobs queries (casjobs-jobs.ts). Everything is authorised by a
 * Keystone token in X-Auth-Token.
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
  SiteResult,
} from '../../registry/model/adapter.js';
import type { ComputePoolDoc, DatasetDoc, ImageDoc, ServiceDoc } from '../../registry/model/capability.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { defaultDatasetId } from '../../registry/model/mapping.js';
import type { ByteMeter, SiteHttp } from '../http.js';
import { harvestedDocument } from '../tap/adapter.js';
import { casjobsServiceId, createCasJobsHooks, isCasJobsJobId } from './casjobs-jobs.js';

/** The header SciServer reads the Keystone token from. */
export const SCISERVER_TOKEN_HEADER = 'X-Auth-Token';

/** A RACM compute domain (UserDockerComputeDomainModel), as far as the adapter reads it. */
export interface RacmComputeDomain {
  id?: number;
  name: string;
  description?: string;
  apiEndpoint: string;
  images?: { id?: number; name: string; description?: string }[];
  volumes?: { id?: number; name: string; writable?: boolean }[];
  userVolumes?: { id: number; name?: string; allowedActions?: string[] }[];
}

/** Capacity figures for a pool, which RACM does not publish and federation.yaml may supply. */
interface PoolCapacity {
  cores?: number;
  memoryGb?: number;
  gpus?: number;
  freeCores?: number;
  queueWaitS?: number;
  maxWalltimeS?: number;
  maxCoresPerJob?: number;
  maxMemoryGbPerJob?: number;
}

interface SciserverOptions {
  racmUrl: string;
  casjobsUrl?: string;
  casjobsContexts: string[];
  /** Pool id → RACM compute-domain name. */
  computeDomains: Record<string, string>;
  imageRefEncoding: 'uri-component' | 'none';
  loginUrl: string;
  computeCapacity: Record<string, PoolCapacity>;
}

/** JOBM status bit flags and their names, lowest first. */
export const JOBM_STATUS = [
  [1, 'PENDING'],
  [2, 'QUEUED'],
  [4, 'ACCEPTED'],
  [8, 'STARTED'],
  [16, 'FINISHED'],
  [32, 'SUCCESS'],
  [64, 'ERROR'],
  [128, 'CANCELED'],
] as const;

const JOBM_STATE: Record<string, JobState> = {
  PENDING: 'PENDING',
  QUEUED: 'QUEUED',
  ACCEPTED: 'QUEUED',
  STARTED: 'EXECUTING',
  // FINISHED (16) is below the terminal threshold: the container is done, results are still being written.
  FINISHED: 'EXECUTING',
  SUCCESS: 'COMPLETED',
  ERROR: 'ERROR',
  CANCELED: 'ABORTED',
};

/** Maps a JOBM status value onto a JobState and its phase word; the highest flag set wins. */
export function jobmJobState(status: number): { state: JobState; sitePhase: string } | undefined {
  if (!Number.isInteger(status) || status <= 0) return undefined;
  for (let i = JOBM_STATUS.length - 1; i >= 0; i--) {
    const [bit, name] = JOBM_STATUS[i];
    if ((status & bit) !== 0) return { state: JOBM_STATE[name], sitePhase: name };
  }
  return undefined;
}

/** True when a JOBM status is final (SUCCESS, ERROR or CANCELED: value ≥ 32). */
export function jobmIsTerminal(status: number): boolean {
  return status >= 32;
}

/** A pool id for a RACM domain name with no mapping: lower case, dashes for anything else. */
export function slugPoolId(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 100);
}

/** Quotes a word for the POSIX shell JOBM runs the command in. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

// Keystone tokens live for hours; logging in again for every poll would mint one per request.
const LOGIN_TTL_MS = 30 * 60_000;
// Compute domains change when operators add images; a job submitted later re-reads them after this.
const DOMAINS_TTL_MS = 5 * 60_000;

/** A token credential as SciServer takes it (X-Auth-Token), or undefined for credentials that need a login first. */
function tokenHeader(c: SiteCredential): SiteCredential | undefined {
  if (c.kind === 'header') return c;
  if (c.kind === 'bearer') return { kind: 'header', name: SCISERVER_TOKEN_HEADER, value: c.token };
  return undefined;
}

/** Creates the SciServer adapter over one SiteHttp. */
export function createSciserverAdapter(http: SiteHttp): Adapter {
  const logins = new Map<string, { token: string; at: number }>();
  const domainsBySite = new Map<string, { domains: RacmComputeDomain[]; at: number }>();

  /** The credential as SciServer takes it: a Keystone token in X-Auth-Token. */
  async function tokenCredential(ctx: AdapterContext, o: SciserverOptions): Promise<SiteCredential> {
    const c = ctx.credential;
    const token = tokenHeader(c);
    if (token) return token;
    if (c.kind !== 'basic') throw new ConstellationError('UPSTREAM_AUTH', `SciServer site ${ctx.site.id} needs a Keystone token (X-Auth-Token); none is configured`);
    const key = `${o.loginUrl}\u0000${c.username}\u0000${c.password}`;
    const cached = logins.get(key);
    if (cached && Date.now() - cached.at < LOGIN_TTL_MS) return { kind: 'header', name: SCISERVER_TOKEN_HEADER, value: cached.token };
    const fresh = await keystoneLogin(http, o.loginUrl, c.username, c.password, ctx.signal);
    logins.set(key, { token: fresh, at: Date.now() });
    return { kind: 'header', name: SCISERVER_TOKEN_HEADER, value: fresh };
  }

  async function fetchDomains(ctx: AdapterContext, o: SciserverOptions, credential: SiteCredential, meter?: ByteMeter): Promise<RacmComputeDomain[]> {
    const url = `${o.racmUrl}/jobm/rest/computedomains?batch=true&interactive=false`;
    const domains = checkDomains(await http.json<unknown>(url, { credential, signal: ctx.signal, meter }), url);
    domainsBySite.set(ctx.site.id, { domains, at: Date.now() });
    return domains;
  }

  const casjobs = createCasJobsHooks(http, {
    settings(ctx) {
      const o = sciserverOptions(ctx);
      return { casjobsUrl: o.casjobsUrl, contexts: o.casjobsContexts };
    },
    credential: (ctx) => tokenCredential(ctx, sciserverOptions(ctx)),
  });

  return {
    kind: 'sciserver',

    async harvest(ctx: AdapterContext): Promise<HarvestOutcome> {
      const o = sciserverOptions(ctx);
      const meter = ctx.meter ?? { bytes: 0 };
      const start = meter.bytes;
      const credential = await tokenCredential(ctx, o);
      const domains = await fetchDomains(ctx, o, credential, meter);

      const services: ServiceDoc[] = [
        { id: 'racm', type: 'racm', url: o.racmUrl, title: 'RACM / JOBM: compute domains and Docker jobs', auth: ['token-header'] },
      ];
      const { compute, images } = poolsAndImages(domains, o);

      const datasets: DatasetDoc[] = [];
      const ids = new Set<string>();
      if (o.casjobsUrl !== undefined) {
        const contexts = await Promise.all(
          o.casjobsContexts.map(async (name) => {
            const url = `${o.casjobsUrl}/contexts/${encodeURIComponent(name)}/Tables`;
            return { name, url, tables: await http.json<unknown>(url, { credential, signal: ctx.signal, meter }) };
          }),
        );
        for (const { name, url, tables } of contexts) {
          const serviceId = casjobsServiceId(name);
          services.push({
            id: serviceId,
            type: 'casjobs',
            url: `${o.casjobsUrl}/contexts/${encodeURIComponent(name)}`,
            title: `CasJobs context ${name} (T-SQL)`,
            upload: false,
            async: true,
            languages: ['T-SQL'],
            auth: ['token-header'],
          });
          datasets.push(...casjobsDatasets(tables, url, name, serviceId, ids));
        }
      }

      return { document: harvestedDocument(ctx, services, datasets, { compute, images }), bytes: meter.bytes - start };
    },

    async health(ctx: AdapterContext): Promise<HealthOutcome> {
      const o = sciserverOptions(ctx);
      // Reachability is the question, so no login is made and an auth refusal still counts as UP.
      const credential = tokenHeader(ctx.credential);
      try {
        const res = await http.request(`${o.racmUrl}/jobm/rest/computedomains?batch=true&interactive=false`, {
          credential, signal: ctx.signal, meter: ctx.meter, retry: false, accept: [401, 403, 404],
        });
        await res.dump();
        return res.status < 300 ? { status: 'UP' } : { status: 'UP', message: `RACM answered ${res.status}` };
      } catch (err) {
        if (!isConstellationError(err)) throw err;
        return { status: 'DOWN', message: err.message };
      }
    },

    async submitContainerJob(ctx: AdapterContext, job: SiteContainerJob): Promise<{ siteJobId: string; status: SiteJobStatus }> {
      const o = sciserverOptions(ctx);
      const credential = await tokenCredential(ctx, o);
      const cached = domainsBySite.get(ctx.site.id);
      const domains = cached && Date.now() - cached.at < DOMAINS_TTL_MS ? cached.domains : await fetchDomains(ctx, o, credential, ctx.meter);
      const imageName = decodeRef(job.image, o);
      const domain = chooseDomain(domains, imageName, job, o);
      const body = {
        command: shellCommand(job),
        submitterDID: job.name,
        dockerComputeEndpoint: domain.apiEndpoint,
        dockerImageName: imageName,
        resultsFolderURI: '',
        // As SciScript does by default: every data volume of the domain, every user volume with the access it allows.
        volumeContainers: (domain.volumes ?? []).map((v) => ({ name: v.name })),
        userVolumes: (domain.userVolumes ?? []).map((v) => ({ userVolumeId: v.id, needsWriteAccess: (v.allowedActions ?? []).includes('write') })),
      };
      const url = `${o.racmUrl}/jobm/rest/jobs/docker`;
      const res = await http.request(url, {
        method: 'POST',
        credential,
        signal: ctx.signal,
        meter: ctx.meter,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
      });
      const model = await res.json<{ id?: unknown; status?: unknown }>();
      if (typeof model?.id !== 'number' && typeof model?.id !== 'string') {
        throw new ConstellationError('UPSTREAM_MALFORMED', `JOBM answered the job submission without an id`);
      }
      const mapped = typeof model.status === 'number' ? jobmJobState(model.status) : undefined;
      return { siteJobId: String(model.id), status: mapped ?? { state: 'PENDING', sitePhase: 'PENDING' } };
    },

    submitQuery: casjobs.submitQuery,

    async jobStatus(ctx: AdapterContext, siteJobId: string): Promise<SiteJobStatus> {
      if (isCasJobsJobId(siteJobId)) return casjobs.jobStatus(ctx, siteJobId);
      const o = sciserverOptions(ctx);
      const credential = await tokenCredential(ctx, o);
      const res = await http.request(`${o.racmUrl}/jobm/rest/jobs/${encodeURIComponent(siteJobId)}`, {
        credential, signal: ctx.signal, meter: ctx.meter, accept: [404], headers: { accept: 'application/json' },
      });
      if (res.status === 404) {
        await res.dump();
        throw new ConstellationError('NOT_FOUND', `JOBM has no job ${siteJobId}`);
      }
      const job = await res.json<{ status?: unknown; messages?: unknown; resultsFolderURI?: unknown }>();
      const mapped = typeof job?.status === 'number' ? jobmJobState(job.status) : undefined;
      if (mapped === undefined) throw new ConstellationError('UPSTREAM_MALFORMED', `JOBM job ${siteJobId} has no valid status (${JSON.stringify(job?.status)})`);
      const out: SiteJobStatus = { ...mapped };
      if (typeof job.resultsFolderURI === 'string' && job.resultsFolderURI !== '') out.resultUrl = job.resultsFolderURI;
      if (mapped.state === 'ERROR') out.error = jobMessages(job.messages) ?? `JOBM job ${siteJobId} ended in ERROR`;
      return out;
    },

    async cancelJob(ctx: AdapterContext, siteJobId: string): Promise<void> {
      if (isCasJobsJobId(siteJobId)) return casjobs.cancelJob(ctx, siteJobId);
      const o = sciserverOptions(ctx);
      const credential = await tokenCredential(ctx, o);
      const res = await http.request(`${o.racmUrl}/jobm/rest/jobs/${encodeURIComponent(siteJobId)}/cancel`, {
        method: 'POST', credential, signal: ctx.signal, meter: ctx.meter, headers: { accept: 'application/json' },
      });
      await res.dump();
    },

    async jobResult(ctx: AdapterContext, siteJobId: string): Promise<SiteResult> {
      if (isCasJobsJobId(siteJobId)) return casjobs.jobResult(ctx, siteJobId);
      throw new ConstellationError('NOT_FOUND', `JOBM job ${siteJobId} writes its outputs to its results folder at the site; there is no result stream`);
    },
  };
}

// --- helpers ---------------------------------------------------------------------------------

function sciserverOptions(ctx: AdapterContext): SciserverOptions {
  const raw = ctx.site.options ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v.replace(/\/+$/, '') : undefined);
  const origin = new URL(ctx.site.url).origin;
  const record = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const computeDomains: Record<string, string> = {};
  for (const [k, v] of Object.entries(record(raw.computeDomains))) if (typeof v === 'string') computeDomains[k] = v;
  const computeCapacity: Record<string, PoolCapacity> = {};
  for (const [k, v] of Object.entries(record(raw.computeCapacity))) computeCapacity[k] = record(v) as PoolCapacity;
  return {
    racmUrl: str(raw.racmUrl) ?? `${ctx.site.url.replace(/\/+$/, '')}/racm`,
    casjobsUrl: str(raw.casjobsUrl),
    casjobsContexts: Array.isArray(raw.casjobsContexts) ? raw.casjobsContexts.filter((c): c is string => typeof c === 'string') : [],
    computeDomains,
    imageRefEncoding: raw.imageRefEncoding === 'none' ? 'none' : 'uri-component',
    loginUrl: str(raw.loginUrl) ?? `${origin}/login-portal/keystone/v3/tokens`,
    computeCapacity,
  };
}

/** Logs in to Keystone (SciScript's Authentication.login) and returns the X-Subject-Token. */
async function keystoneLogin(http: SiteHttp, loginUrl: string, name: string, password: string, signal?: AbortSignal): Promise<string> {
  const res = await http.request(loginUrl, {
    method: 'POST',
    signal,
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ auth: { identity: { password: { user: { name, password } } } } }),
  });
  await res.dump();
  const token = res.headers['x-subject-token'];
  if (!token) throw new ConstellationError('UPSTREAM_AUTH', 'SciServer Keystone login answered without an X-Subject-Token');
  return token;
}

function checkDomains(value: unknown, url: string): RacmComputeDomain[] {
  if (!Array.isArray(value)) throw new ConstellationError('UPSTREAM_MALFORMED', `RACM ${url} did not return a JSON array of compute domains`);
  value.forEach((d, i) => {
    const ok = d && typeof d === 'object' && typeof d.name === 'string' && typeof d.apiEndpoint === 'string';
    if (!ok) {
      throw new ConstellationError('UPSTREAM_MALFORMED', `RACM compute domain ${i} lacks a name or apiEndpoint`, {
        violations: [{ path: `/${i}`, rule: 'compute-domain', message: 'name and apiEndpoint are required' }],
      });
    }
  });
  return value as RacmComputeDomain[];
}

function poolIdsFor(domains: RacmComputeDomain[], o: SciserverOptions): string[] {
  const byName = new Map(Object.entries(o.computeDomains).map(([pool, name]) => [name, pool]));
  const used = new Set<string>();
  return domains.map((d, i) => {
    let id = byName.get(d.name) ?? (slugPoolId(d.name) || `domain-${d.id ?? i}`);
    if (used.has(id)) id = `${id}-${d.id ?? i}`;
    used.add(id);
    return id;
  });
}

function poolsAndImages(domains: RacmComputeDomain[], o: SciserverOptions): { compute: ComputePoolDoc[]; images: ImageDoc[] } {
  const poolIds = poolIdsFor(domains, o);
  const compute = domains.map((_d, i): ComputePoolDoc => {
    const cap = o.computeCapacity[poolIds[i]] ?? {};
    // RACM publishes no CPU or memory figures; 0 stands for "unknown" unless federation.yaml gives them.
    const pool: ComputePoolDoc = { id: poolIds[i], kind: 'batch', service: 'racm', cores: num(cap.cores) ?? 0, memoryGb: num(cap.memoryGb) ?? 0 };
    for (const k of ['gpus', 'freeCores', 'queueWaitS', 'maxWalltimeS', 'maxCoresPerJob', 'maxMemoryGbPerJob'] as const) {
      const v = num(cap[k]);
      if (v !== undefined) pool[k] = v;
    }
    return pool;
  });
  const byRef = new Map<string, ImageDoc>();
  domains.forEach((d, i) => {
    for (const img of d.images ?? []) {
      if (typeof img?.name !== 'string') continue;
      const ref = encodeRef(img.name, o);
      if (ref === undefined) continue;
      const doc = byRef.get(ref) ?? { ref, types: ['batch', 'headless'], compute: [] };
      if (!doc.compute!.includes(poolIds[i])) doc.compute!.push(poolIds[i]);
      byRef.set(ref, doc);
    }
  });
  return { compute, images: [...byRef.values()] };
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

function encodeRef(name: string, o: SciserverOptions): string | undefined {
  const ref = o.imageRefEncoding === 'uri-component' ? encodeURIComponent(name) : name;
  // An image ref may not hold whitespace; without encoding such names cannot be published.
  return ref !== '' && /^\S+$/.test(ref) && ref.length <= 500 ? ref : undefined;
}

function decodeRef(ref: string, o: SciserverOptions): string {
  if (o.imageRefEncoding !== 'uri-component') return ref;
  try {
    return decodeURIComponent(ref);
  } catch {
    return ref;
  }
}

function chooseDomain(domains: RacmComputeDomain[], imageName: string, job: SiteContainerJob, o: SciserverOptions): RacmComputeDomain {
  const poolIds = poolIdsFor(domains, o);
  const offering = domains.map((d, i) => ({ d, pool: poolIds[i] })).filter(({ d }) => (d.images ?? []).some((img) => img.name === imageName));
  if (offering.length === 0) {
    throw new ConstellationError('INVALID_ARGUMENT', `no SciServer compute domain offers image "${imageName}"`);
  }
  // Where federation.yaml says how big a job a domain takes, pick the first that fits.
  const fits = offering.find(({ pool }) => {
    const cap = o.computeCapacity[pool];
    return cap !== undefined && (cap.maxCoresPerJob ?? Infinity) >= job.cores && (cap.maxMemoryGbPerJob ?? Infinity) >= job.memoryGb;
  });
  return (fits ?? offering[0]).d;
}

function shellCommand(job: SiteContainerJob): string {
  const env = Object.entries(job.env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new ConstellationError('INVALID_ARGUMENT', `environment variable name "${k}" is not valid in a shell`);
    return `${k}=${shellQuote(v)}`;
  });
  const words = [job.command, ...job.args].map(shellQuote);
  return [...(env.length > 0 ? ['env', ...env] : []), ...words].join(' ');
}

function jobMessages(messages: unknown): string | undefined {
  if (!Array.isArray(messages)) return undefined;
  const texts = messages
    .map((m) => (typeof m === 'string' ? m : m && typeof m === 'object' && typeof (m as { content?: unknown }).content === 'string' ? (m as { content: string }).content : undefined))
    .filter((t): t is string => t !== undefined && t.trim() !== '');
  return texts.length > 0 ? texts.join('; ').slice(0, 2000) : undefined;
}

function casjobsDatasets(value: unknown, url: string, context: string, service: string, ids: Set<string>): DatasetDoc[] {
  if (!Array.isArray(value)) throw new ConstellationError('UPSTREAM_MALFORMED', `CasJobs ${url} did not return a JSON array of tables`);
  const out: DatasetDoc[] = [];
  for (const t of value as { Name?: unknown; Rows?: unknown }[]) {
    if (typeof t?.Name !== 'string' || t.Name.trim() === '') continue;
    // CasJobs lists bare names of the context's default schema, dbo.
    const table = t.Name.includes('.') ? t.Name : `dbo.${t.Name}`;
    let id = defaultDatasetId(table);
    // The same dbo table in a second context (DR16 and DR17) would clash; the context names it apart.
    if (id !== undefined && ids.has(id)) id = defaultDatasetId(`${context}.${t.Name.split('.').pop()}`);
    if (id === undefined || ids.has(id)) continue;
    ids.add(id);
    const d: DatasetDoc = { id, service, table, access: { public: true } };
    const rows = typeof t.Rows === 'number' ? t.Rows : typeof t.Rows === 'string' ? Number(t.Rows) : NaN;
    if (Number.isInteger(rows) && rows >= 0) d.rows = rows;
    out.push(d);
  }
  return out;
}
