/**
 * A simulated Rubin Science Platform: Repertoire discovery (public), TAP at /api/tap (dp02,
 * dp1) and /api/ssotap (dp03), sync and async, behind a Gafaelfawr-like gate (Bearer token,
 * or HTTP Basic with the token as user name or password; 401 without a valid token, 403
 * without the read:tap scope), per-window rate limits with X-RateLimit-* and 429 +
 * Retry-After, and Gafaelfawr user-info with a quota.
 */
import { SimSite } from './sim-site.js';
import { mountTapService, type SimTable } from './tap-service.js';

/** A token in Gafaelfawr's `gt-<key>.<secret>` form that the simulator accepts by default. */
export const RSP_TEST_TOKEN = 'gt-c2ltdWxhdGVkS2V5.c2ltdWxhdGVkU2VjcmV0';

export interface RspSiteOptions {
  /** Tokens Gafaelfawr accepts; defaults to [RSP_TEST_TOKEN]. */
  tokens?: string[];
  /** Scopes of the tokens listed here; any other accepted token has every scope. */
  scopes?: Record<string, string[]>;
  /** TAP requests allowed per window before 429 (Gafaelfawr's per-user "tap" quota). */
  rateLimit?: { limit: number; windowS: number };
  /** Serve ssotap's tables with detail=min only, so clients must fetch each table. */
  ssotapDetail?: 'full' | 'min';
  /** How long an async TAP job sits QUEUED before it executes (mountTapService's default when absent). */
  asyncDelayMs?: number;
}

/** A running simulated RSP. */
export interface RspSite {
  readonly sim: SimSite;
  readonly url: string;
  /** How many 429, 401 and 403 answers Gafaelfawr gave. */
  readonly stats: { rateLimited: number; unauthorised: number; forbidden: number };
  close(): Promise<void>;
}

const FLUX = { datatype: 'double', unit: 'nJy', ucd: 'phot.flux' } as const;

/** Tables of the main TAP service, names spelled as the RSP spells them. */
export const RSP_TAP_TABLES: SimTable[] = [
  {
    name: 'dp02_dc2_catalogs.Object',
    description: 'Astrometric and photometric measurements of objects detected on coadded images (DESC DC2).',
    rows: 278318452,
    heldRows: 400,
    position: { ra: 'coord_ra', dec: 'coord_dec' },
    region: { raMin: 50, raMax: 75, decMin: -45, decMax: -27 },
    columns: [
      { name: 'objectId', datatype: 'long', ucd: 'meta.id;src', description: 'Unique id' },
      { name: 'coord_ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'coord_dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'detect_isPrimary', datatype: 'boolean', ucd: 'meta.code' },
      { name: 'refExtendedness', datatype: 'double', ucd: 'src.class.starGalaxy' },
      { name: 'g_cModelFlux', ...FLUX },
      { name: 'r_cModelFlux', ...FLUX },
      { name: 'i_cModelFlux', ...FLUX },
    ],
  },
  {
    name: 'dp02_dc2_catalogs.Source',
    description: 'Measurements of sources detected on single-visit images.',
    rows: 1246110862,
    heldRows: 300,
    position: { ra: 'coord_ra', dec: 'coord_dec' },
    region: { raMin: 50, raMax: 75, decMin: -45, decMax: -27 },
    columns: [
      { name: 'sourceId', datatype: 'long', ucd: 'meta.id;src' },
      { name: 'coord_ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'coord_dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'ccdVisitId', datatype: 'long', ucd: 'meta.id;obs.image' },
      { name: 'psfFlux', ...FLUX },
    ],
  },
  {
    name: 'dp1.Object',
    description: 'LSSTComCam objects.',
    rows: 2299757,
    heldRows: 200,
    position: { ra: 'coord_ra', dec: 'coord_dec' },
    region: { raMin: 37, raMax: 60, decMin: -50, decMax: -27 },
    columns: [
      { name: 'objectId', datatype: 'long', ucd: 'meta.id;src' },
      { name: 'coord_ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'coord_dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'refBand', datatype: 'char', ucd: 'instr.filter' },
    ],
  },
];

/** Tables of the Solar System Objects TAP service. */
export const RSP_SSOTAP_TABLES: SimTable[] = [
  {
    name: 'dp03_catalogs_10yr.SSObject',
    description: 'Linked Solar System objects (no fixed sky position).',
    rows: 4528701,
    heldRows: 200,
    columns: [
      { name: 'ssObjectId', datatype: 'long', ucd: 'meta.id;src' },
      { name: 'discoverySubmissionDate', datatype: 'double', unit: 'd', ucd: 'time.epoch' },
      { name: 'numObs', datatype: 'int', ucd: 'meta.number' },
      { name: 'g_H', datatype: 'float', unit: 'mag', ucd: 'phys.magAbs' },
    ],
  },
  {
    name: 'dp03_catalogs_10yr.DiaSource',
    description: 'Single-epoch detections of Solar System objects.',
    rows: 681872867,
    heldRows: 300,
    position: { ra: 'ra', dec: 'decl' },
    columns: [
      { name: 'diaSourceId', datatype: 'long', ucd: 'meta.id;src' },
      { name: 'ssObjectId', datatype: 'long', ucd: 'meta.id' },
      { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra' },
      { name: 'decl', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec' },
      { name: 'mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag' },
    ],
  },
];

// What lsst-tap-service declares on its TAP interfaces.
const RSP_SECURITY = ['ivo://ivoa.net/sso#BasicAA', 'ivo://ivoa.net/sso#cookie', 'ivo://ivoa.net/sso#OAuth'];

/** Start a simulated RSP on 127.0.0.1. */
export async function startRspSite(options: RspSiteOptions = {}): Promise<RspSite> {
  const sim = new SimSite();
  const tokens = new Set(options.tokens ?? [RSP_TEST_TOKEN]);
  const stats = { rateLimited: 0, unauthorised: 0, forbidden: 0 };
  const authorize = (headers: Record<string, string | string[] | undefined>) => tokenOf(headers.authorization) !== undefined && tokens.has(tokenOf(headers.authorization)!);
  let window = { start: 0, used: 0 };

  // Gafaelfawr sits in front of every protected route: authentication first, then the
  // per-user rate limit, exactly as its ingress auth subrequest does.
  sim.app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0];
    const isTap = /^\/api\/(tap|ssotap)(\/|$)/.test(path);
    if (!isTap && !path.startsWith('/auth/api/')) return;
    if (!authorize(request.headers)) {
      stats.unauthorised++;
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="127.0.0.1", error="invalid_token", error_description="Invalid token"')
        .type('text/plain')
        .send('Authentication required');
    }
    const scopes = options.scopes?.[tokenOf(request.headers.authorization)!];
    if (isTap && scopes && !scopes.includes('read:tap')) {
      stats.forbidden++;
      return reply
        .code(403)
        .header('www-authenticate', 'Bearer realm="127.0.0.1", error="insufficient_scope", error_description="Token does not have required scopes", scope="read:tap"')
        .type('text/plain')
        .send('Permission denied');
    }
    if (!isTap || !options.rateLimit) return;
    const { limit, windowS } = options.rateLimit;
    const now = Date.now();
    if (now - window.start >= windowS * 1000) window = { start: now, used: 0 };
    const resetS = Math.ceil((window.start + windowS * 1000) / 1000);
    reply.header('x-ratelimit-limit', String(limit)).header('x-ratelimit-reset', String(resetS)).header('x-ratelimit-resource', 'tap');
    if (window.used >= limit) {
      stats.rateLimited++;
      const retryAfter = Math.max(1, Math.ceil((window.start + windowS * 1000 - now) / 1000));
      return reply
        .code(429)
        .header('retry-after', String(retryAfter))
        .header('x-ratelimit-remaining', '0')
        .header('x-ratelimit-used', String(window.used))
        .type('text/plain')
        .send('Rate limit exceeded');
    }
    window.used++;
    reply.header('x-ratelimit-remaining', String(limit - window.used)).header('x-ratelimit-used', String(window.used));
  });

  const { asyncDelayMs } = options;
  mountTapService(sim, { path: '/api/tap', tables: RSP_TAP_TABLES, maxRec: 50000, hardMaxRec: 1000000, uploadLimitBytes: 32_000_000, securityMethods: RSP_SECURITY, authorize, asyncDelayMs });
  mountTapService(sim, { path: '/api/ssotap', tables: RSP_SSOTAP_TABLES, maxRec: 50000, tablesDetail: options.ssotapDetail ?? 'full', securityMethods: RSP_SECURITY, authorize, asyncDelayMs });

  sim.app.get('/repertoire/discovery', async (request, reply) => {
    const base = `http://${request.headers.host}`;
    return reply.header('access-control-allow-origin', '*').send(discoveryDocument(base));
  });

  sim.app.get('/auth/api/v1/user-info', async () => ({
    username: 'someuser',
    name: 'Some User',
    uid: 4123456,
    gid: 4123456,
    groups: [{ name: 'g_users', id: 4100001 }],
    quota: { api: { tap: 1000, sia: 70 }, notebook: { cpu: 4.0, memory: 32.0, spawn: true }, tap: { qserv: { concurrent: 12 } } },
  }));

  await sim.start();
  return { sim, url: sim.url, stats, close: () => sim.close() };
}

/** The token in an Authorization header: Bearer, or Basic with it as user name or password. */
function tokenOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const [scheme, rest] = [value.slice(0, value.indexOf(' ')).toLowerCase(), value.slice(value.indexOf(' ') + 1).trim()];
  if (scheme === 'bearer') return rest;
  if (scheme === 'basic') {
    const decoded = Buffer.from(rest, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    // TOPCAT users put x-oauth-basic as the user and the token as the password.
    return user.startsWith('gt-') ? user : password;
  }
  return undefined;
}

// The Repertoire 2 shape: services per dataset; standard ids are no longer published, and
// datasets the deployment does not serve through TAP carry other services or none.
function discoveryDocument(base: string): unknown {
  return {
    applications: ['datalinker', 'gafaelfawr', 'nublado', 'portal', 'repertoire', 'ssotap', 'tap', 'vo-cutouts'],
    datasets: {
      dp02: {
        butler_config: `${base}/api/butler/repo/dp02/butler.yaml`,
        description: 'Data Preview 0.2 (DESC DC2 simulation)',
        docs_url: 'https://dp0-2.lsst.io/',
        services: {
          tap: { url: `${base}/api/tap`, versions: {} },
          'vo-cutouts': { url: `${base}/api/cutout`, versions: { 'sync-1.0': { url: `${base}/api/cutout/sync` } } },
        },
      },
      dp03: { description: 'Data Preview 0.3 (Solar System)', services: { ssotap: { url: `${base}/api/ssotap` } } },
      dp1: {
        description: 'Data Preview 1 (LSSTComCam)',
        services: { tap: { url: `${base}/api/tap`, versions: {} }, sia: { url: `${base}/api/sia/dp1`, versions: {} } },
      },
      prompt: { description: 'Prompt products', services: { ppdbtap: { url: `${base}/api/ppdbtap`, versions: {} } } },
      dp2: { description: 'Not yet served' },
    },
    environment_name: 'idfprod',
    influxdb_databases: {},
    services: { internal: { gafaelfawr: { url: `${base}/auth`, versions: {} } }, ui: { nublado: `${base}/nb`, portal: `${base}/portal/app` } },
  };
}
