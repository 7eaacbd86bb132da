/** Reading and checking federation.yaml and the environment into a frozen Config. */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { ErrorObject } from 'ajv/dist/2020.js';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { createAjv } from '../../registry/model/ajv.js';
import { DEFAULT_MAX_REMOVED_SHARE } from '../../registry/harvest-guard.js';
import { DEFAULT_LIMITS } from '../../adapters/http.js';
import { ConstellationError, type Violation } from '../../registry/model/errors.js';
import { DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SUBMIT_TIMEOUT_MS, LEASE_MARGIN_MS } from '../jobs/timings.js';
import { isValidSchedule } from '../scheduler/cron.js';
import { MOC_LIMITS } from '../../registry/coverage/limits.js';
import { MocSyntaxError, parseMocAscii } from '../../registry/coverage/moc.js';
import schema from './federation.schema.json' with { type: 'json' };
import type { Config, IdentityConfig, SiteConfig } from './config.js';

const ajv = createAjv();
const validateFederation = ajv.compile(schema);

/** Environment variables the broker reads (documented in the README). */
export interface BrokerEnv {
  HOST?: string;
  PORT?: string;
  DATABASE_URL?: string;
  CONSTELLATION_CONFIG?: string;
  CONSTELLATION_DATA?: string;
  LOG_LEVEL?: string;
  CONSTELLATION_BODY_LIMIT?: string;
  CONSTELLATION_CACHE_MB?: string;
  /** Which proxies in front of the broker to believe (true, a hop count, or addresses). */
  CONSTELLATION_TRUST_PROXY?: string;
  /** The access log: on (default) or off. */
  CONSTELLATION_ACCESS_LOG?: string;
  /** The share of GraphQL reads the access log writes, 0 (default) to 1. */
  CONSTELLATION_ACCESS_LOG_SAMPLE?: string;
}

/** Read `path` (or CONSTELLATION_CONFIG, or ./federation.yaml) and the environment into a Config. */
export async function loadConfig(env: BrokerEnv = process.env, path?: string): Promise<Config> {
  const file = resolve(path ?? env.CONSTELLATION_CONFIG ?? 'federation.yaml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConstellationError('INVALID_CONFIG', `cannot read federation file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, env, file);
}

/** Parse federation YAML text; every problem is reported with its key path and line. */
export function parseConfig(text: string, env: BrokerEnv = {}, file?: string): Config {
  const where = file ?? 'federation.yaml';
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const violations = doc.errors.map((e) => {
      const pos = lines.linePos(e.pos[0]);
      return { path: `line ${pos.line}, column ${pos.col}`, rule: 'yaml', message: e.message.split('\n')[0] };
    });
    throw new ConstellationError('INVALID_CONFIG', `${where}: invalid YAML: ${violations[0].path}: ${violations[0].message}`, { violations });
  }
  const raw = doc.toJS() as unknown;
  const violations: Violation[] = [];
  if (!validateFederation(raw)) {
    for (const e of validateFederation.errors ?? []) violations.push(toViolation(e, doc.contents, lines));
  }
  if (Array.isArray((raw as RawFederation | null)?.sites)) {
    // Cross-key rules run even when the schema failed, so one pass reports every problem.
    violations.push(...semanticViolations(raw as RawFederation, doc.contents, lines));
  }
  if (violations.length > 0) {
    throw new ConstellationError('INVALID_CONFIG', `${where}: ${violations.length} problem(s); first: ${violations[0].path}: ${violations[0].message}`, { violations });
  }
  const fed = raw as RawFederation;
  const base = file ? dirname(file) : process.cwd();
  const port = env.PORT === undefined ? 4000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConstellationError('INVALID_CONFIG', `PORT must be an integer 0-65535, got "${env.PORT}"`);
  }
  const bodyLimit = env.CONSTELLATION_BODY_LIMIT === undefined ? 16 * 1024 * 1024 : Number(env.CONSTELLATION_BODY_LIMIT);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) {
    throw new ConstellationError('INVALID_CONFIG', `CONSTELLATION_BODY_LIMIT must be an integer number of bytes >= 1024, got "${env.CONSTELLATION_BODY_LIMIT}"`);
  }
  const cacheMb = env.CONSTELLATION_CACHE_MB === undefined ? 64 : Number(env.CONSTELLATION_CACHE_MB);
  if (!Number.isFinite(cacheMb) || cacheMb < 0) {
    throw new ConstellationError('INVALID_CONFIG', `CONSTELLATION_CACHE_MB must be a number of megabytes >= 0, got "${env.CONSTELLATION_CACHE_MB}"`);
  }
  const accessLog = accessLogConfig(env);
  const config: Config = {
    configPath: file,
    federation: fed.federation,
    ...(fed.identity ? { identity: identityConfig(fed.identity) } : {}),
    registration: { open: fed.registration?.open ?? false },
    harvest: { concurrency: fed.harvest?.concurrency ?? 4, jitterS: fed.harvest?.jitterS ?? 60, timeoutS: fed.harvest?.timeoutS ?? 60,
      maxRemovedShare: fed.harvest?.maxRemovedShare ?? DEFAULT_MAX_REMOVED_SHARE, leaseS: fed.harvest?.leaseS ?? 30 },
    jobs: jobsConfig(fed.jobs),
    results: {
      maxBytes: fed.results?.maxBytes ?? 64 * 1024 * 1024,
      retentionDays: fed.results?.retentionDays ?? 7,
      firstByteTimeoutS: fed.results?.firstByteTimeoutS ?? 15,
    },
    crossmatch: { maxParallelPerSite: fed.crossmatch?.maxParallelPerSite ?? 2, memoryMb: fed.crossmatch?.memoryMb ?? 512, leaseS: fed.crossmatch?.leaseS ?? 30, sweepS: fed.crossmatch?.sweepS ?? 5 },
    limits: { documentBytes: fed.limits?.documentBytes ?? DEFAULT_LIMITS.documentBytes, errorBodyBytes: fed.limits?.errorBodyBytes ?? DEFAULT_LIMITS.errorBodyBytes,
      resultBytes: fed.limits?.resultBytes ?? DEFAULT_LIMITS.resultBytes },
    sites: fed.sites.map((s): SiteConfig => ({
      ...s,
      credentials: s.credentials ?? { strategy: 'anonymous' },
      seed: s.seed === undefined ? undefined : resolve(base, s.seed),
      datasets: s.datasets ?? {},
    })),
    server: { host: env.HOST ?? '127.0.0.1', port, trustProxy: trustProxy(env.CONSTELLATION_TRUST_PROXY) },
    database: { url: env.DATABASE_URL || undefined, dataDir: resolve(env.CONSTELLATION_DATA ?? '.constellation') },
    logLevel: env.LOG_LEVEL ?? 'info',
    accessLog,
    bodyLimit,
    responseCacheBytes: Math.round(cacheMb * 1024 * 1024),
  };
  return deepFreeze(config);
}

type RawFederation = {
  federation: Config['federation'];
  identity?: Partial<Omit<IdentityConfig, 'roles'>> & Pick<IdentityConfig, 'issuer' | 'audience'> & { roles?: Partial<IdentityConfig['roles']> };
  registration?: { open?: boolean };
  harvest?: Partial<Config['harvest']>;
  jobs?: Partial<Config['jobs']>;
  results?: Partial<Config['results']>;
  crossmatch?: Partial<Config['crossmatch']>;
  limits?: Partial<Config['limits']>;
  sites: (Omit<SiteConfig, 'credentials' | 'datasets'> & { credentials?: SiteConfig['credentials']; datasets?: SiteConfig['datasets'] })[];
};

/** CONSTELLATION_ACCESS_LOG (on, off) and CONSTELLATION_ACCESS_LOG_SAMPLE (the share of GraphQL reads logged, 0 to 1). */
function accessLogConfig(env: BrokerEnv): Config['accessLog'] {
  const mode = env.CONSTELLATION_ACCESS_LOG ?? 'on';
  if (mode !== 'on' && mode !== 'off') throw new ConstellationError('INVALID_CONFIG', `CONSTELLATION_ACCESS_LOG must be "on" or "off", got "${mode.slice(0, 40)}"`);
  const raw = env.CONSTELLATION_ACCESS_LOG_SAMPLE ?? '0';
  const sample = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!(sample >= 0 && sample <= 1)) throw new ConstellationError('INVALID_CONFIG', `CONSTELLATION_ACCESS_LOG_SAMPLE must be a share from 0 to 1, got "${raw.slice(0, 40)}"`);
  return { enabled: mode === 'on', graphqlReadSample: sample };
}

/** CONSTELLATION_TRUST_PROXY: unset or "false" (none), "true" (every proxy), a hop count, or addresses/CIDRs separated by commas. */
function trustProxy(raw: string | undefined): boolean | number | string {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw;
}

/** The identity section with its defaults: RS256/PS256/ES256/EdDSA, 30 s skew, `groups`, anonymous submits allowed. */
function identityConfig(raw: NonNullable<RawFederation['identity']>): IdentityConfig {
  return {
    ...raw,
    scopes: raw.scopes ?? 'openid profile email offline_access',
    groupsClaim: raw.groupsClaim ?? 'groups',
    algorithms: raw.algorithms ?? ['RS256', 'PS256', 'ES256', 'EdDSA'],
    clockSkewS: raw.clockSkewS ?? 30,
    roles: { admin: raw.roles?.admin ?? [], operators: raw.roles?.operators ?? {} },
    anonymous: raw.anonymous ?? 'submit',
  };
}

/** The job timings with the derived ones filled in (the poll lease always outlasts the poll it covers). */
function jobsConfig(jobs: RawFederation['jobs']): Config['jobs'] {
  const margin = LEASE_MARGIN_MS / 1000;
  const requestTimeoutS = jobs?.requestTimeoutS ?? (jobs?.leaseS === undefined ? DEFAULT_REQUEST_TIMEOUT_MS / 1000 : Math.min(DEFAULT_REQUEST_TIMEOUT_MS / 1000, jobs.leaseS - margin));
  return {
    pollIntervalS: jobs?.pollIntervalS ?? 2,
    leaseS: jobs?.leaseS ?? requestTimeoutS + margin,
    requestTimeoutS,
    submitTimeoutS: jobs?.submitTimeoutS ?? DEFAULT_SUBMIT_TIMEOUT_MS / 1000,
    ...(jobs?.giveUpAfterS ? { giveUpAfterS: jobs.giveUpAfterS } : {}),
  };
}

function semanticViolations(fed: RawFederation, root: unknown, lines: LineCounter): Violation[] {
  const out: Violation[] = [];
  const jobs = fed.jobs;
  if (jobs && typeof jobs === 'object' && typeof jobs.leaseS === 'number' && typeof jobs.requestTimeoutS === 'number') {
    const minimum = jobs.requestTimeoutS + LEASE_MARGIN_MS / 1000;
    if (jobs.leaseS < minimum) {
      out.push(located('/jobs/leaseS', 'lease', `${jobs.leaseS} s is shorter than the longest poll it covers (jobs.requestTimeoutS ${jobs.requestTimeoutS} s) plus ${LEASE_MARGIN_MS / 1000} s; the minimum is ${minimum}`, root, lines));
    }
  }
  const seen = new Map<string, number>();
  fed.sites.forEach((s, i) => {
    if (typeof s !== 'object' || s === null) return;
    const first = seen.get(s.id);
    if (first !== undefined) out.push(located(`/sites/${i}/id`, 'unique', `duplicate site id "${s.id}" (first at sites[${first}])`, root, lines));
    else seen.set(s.id, i);
    if (typeof s.harvest?.schedule === 'string' && !isValidSchedule(s.harvest.schedule)) {
      out.push(located(`/sites/${i}/harvest/schedule`, 'cron', `"${s.harvest.schedule}" is not a valid cron schedule`, root, lines));
    }
    const canonical = new Map<string, string>();
    for (const [local, m] of Object.entries(typeof s.datasets === 'object' && s.datasets ? s.datasets : {})) {
      if (typeof m?.coverage === 'string') {
        const problem = mocProblem(m.coverage);
        if (problem !== null) out.push(located(`/sites/${i}/datasets/${local}/coverage`, 'moc', problem, root, lines));
      }
      if (typeof m?.id !== 'string') continue;
      const other = canonical.get(m.id);
      if (other !== undefined) {
        out.push(located(`/sites/${i}/datasets/${local}/id`, 'unique', `tables "${other}" and "${local}" both map to "${m.id}"`, root, lines));
      } else canonical.set(m.id, local);
    }
  });
  (fed.sites ?? []).forEach((s, i) => {
    if (typeof s !== 'object' || s === null || !Array.isArray(s.networks)) return;
    s.networks.forEach((cidr, j) => {
      if (typeof cidr === 'string' && !isCidr(cidr)) out.push(located(`/sites/${i}/networks/${j}`, 'cidr', `"${cidr}" is not an IPv4 or IPv6 address range (for example 192.0.2.0/24)`, root, lines));
    });
  });
  const operators = fed.identity?.roles?.operators;
  if (operators && typeof operators === 'object' && Array.isArray(fed.sites)) {
    for (const siteId of Object.keys(operators)) {
      if (!seen.has(siteId)) out.push(located(`/identity/roles/operators/${siteId}`, 'site-reference', `names site "${siteId}", which is not among sites[]`, root, lines));
    }
  }
  const needsProvider = (fed.sites ?? []).findIndex((s) => typeof s === 'object' && s !== null && (s.credentials?.strategy === 'token-exchange' || s.credentials?.strategy === 'client-credentials'));
  if (needsProvider >= 0 && !fed.identity) {
    out.push(located(`/sites/${needsProvider}/credentials/strategy`, 'identity', `"${fed.sites[needsProvider].credentials?.strategy}" needs the identity section (the OpenID provider that issues the tokens)`, root, lines));
  }
  return out;
}

/** True when `cidr` is an IPv4 or IPv6 network in CIDR notation. */
function isCidr(cidr: string): boolean {
  const [address, bits] = cidr.split('/');
  const family = isIP(address);
  const prefix = Number(bits);
  return family !== 0 && Number.isInteger(prefix) && prefix >= 0 && prefix <= (family === 4 ? 32 : 128);
}

function toViolation(e: ErrorObject, root: unknown, lines: LineCounter): Violation {
  let pointer = e.instancePath;
  let message = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') {
    const key = (e.params as { additionalProperty: string }).additionalProperty;
    message = `unknown key "${key}"`;
    pointer = `${pointer}/${key}`;
  } else if (e.keyword === 'required') {
    message = `required key "${(e.params as { missingProperty: string }).missingProperty}" is missing`;
  } else if (e.keyword === 'enum') {
    message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return located(pointer, e.keyword, message, root, lines);
}

/** A violation whose path reads like the YAML ("sites[2].harvest.schedule (line 14)"). */
function located(pointer: string, rule: string, message: string, root: unknown, lines: LineCounter): Violation {
  const tokens = pointer.split('/').slice(1);
  let node = root as YamlNode | undefined;
  let path = '';
  let lastNode = node;
  for (const t of tokens) {
    path += /^\d+$/.test(t) ? `[${t}]` : (path ? '.' : '') + t;
    if (node && (isMap(node) || isSeq(node))) {
      const next = (node as { get(k: unknown, keep: true): unknown }).get(/^\d+$/.test(t) && isSeq(node) ? Number(t) : t, true) as YamlNode | undefined;
      node = next;
      if (next) lastNode = next;
    } else node = undefined;
  }
  const range = (lastNode as { range?: [number, number, number] } | undefined)?.range;
  const line = range ? ` (line ${lines.linePos(range[0]).line})` : '';
  return { path: (path || '(root)') + line, rule, message };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Why a MOC ASCII text is refused (its parser's message), or null when it parses within the limits documents get. */
function mocProblem(text: string): string | null {
  try {
    parseMocAscii(text, MOC_LIMITS);
    return null;
  } catch (err) {
    if (err instanceof MocSyntaxError) return `is not a valid MOC: ${err.message}`;
    throw err;
  }
}
