/**
 * A simulated ESA Gaia archive: TAP+ at /tap-server/tap (VODataService tableset with
 * esatapplus attributes, ?only_tables=true, ?tables=name) and the archive's form login at
 * /tap-server/login that sets a JSESSIONID cookie.
 */
import { randomBytes } from 'node:crypto';
import { SimSite } from './sim-site.js';
import { mountTapService, type SimColumn, type SimTable, type TapService } from './tap-service.js';

const GAIA_COLUMNS: SimColumn[] = [
  { name: 'solution_id', datatype: 'long', description: 'Solution Identifier' },
  { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main', description: 'Unique source identifier' },
  { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main', description: 'Right ascension' },
  { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main', description: 'Declination' },
  { name: 'parallax', datatype: 'double', unit: 'mas', ucd: 'pos.parallax.trig' },
  { name: 'pmra', datatype: 'double', unit: 'mas.yr**-1', ucd: 'pos.pm;pos.eq.ra' },
  { name: 'pmdec', datatype: 'double', unit: 'mas.yr**-1', ucd: 'pos.pm;pos.eq.dec' },
  { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt' },
  { name: 'phot_bp_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt.B' },
  { name: 'phot_rp_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt.R' },
];

/** The Gaia-like tables the simulated archive holds. */
export const ESA_TABLES: SimTable[] = [
  {
    name: 'gaiadr3.gaia_source',
    description: 'Gaia DR3 source catalogue (simulated)',
    columns: GAIA_COLUMNS,
    rows: 400,
    position: { ra: 'ra', dec: 'dec' },
    region: { raMin: 40, raMax: 50, decMin: 0, decMax: 10 },
  },
  {
    name: 'gaiadr2.gaia_source',
    description: 'Gaia DR2 source catalogue (simulated)',
    columns: GAIA_COLUMNS,
    rows: 300,
    position: { ra: 'ra', dec: 'dec' },
    region: { raMin: 40, raMax: 50, decMin: 0, decMax: 10 },
  },
  {
    name: 'gaiadr3.panstarrs1_best_neighbour',
    columns: [
      { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
      { name: 'original_ext_source_id', datatype: 'long' },
      { name: 'angular_distance', datatype: 'double', unit: 'arcsec' },
    ],
    rows: 50,
  },
];

export interface EsaSiteOptions {
  /** Accounts for the form login (username → password). */
  users?: Record<string, string>;
  /** Require a logged-in session for every TAP request (capabilities and availability stay open). */
  requireLogin?: boolean;
  tables?: SimTable[];
}

/** A running simulated archive. */
export interface EsaSite {
  site: SimSite;
  tap: TapService;
  /** The site URL as federation.yaml gives it ({origin}/tap-server). */
  url: string;
  /** Session ids handed out by /login. */
  sessions: Set<string>;
  close(): Promise<void>;
}

function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  const text = Array.isArray(header) ? header.join('; ') : header ?? '';
  return new RegExp(`(?:^|;\\s*)${name}=([^;]+)`).exec(text)?.[1];
}

/** Starts a simulated ESA Gaia archive on 127.0.0.1. */
export async function startEsaSite(options: EsaSiteOptions = {}): Promise<EsaSite> {
  const site = new SimSite();
  const sessions = new Set<string>();
  const users = options.users ?? { gaiauser: 'gaiapass' };
  const tap = mountTapService(site, {
    path: '/tap-server/tap',
    tables: options.tables ?? ESA_TABLES,
    maxRec: 2000,
    hardMaxRec: 3_000_000,
    uploadLimitBytes: 100 * 1024 * 1024,
    esaTapPlus: true,
    authorize: options.requireLogin ? (headers) => sessions.has(cookieValue(headers.cookie, 'JSESSIONID') ?? '') : undefined,
  });
  void site.app.register(async (app) => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.post('/login', async (req, reply) => {
      const form = new URLSearchParams(typeof req.body === 'string' ? req.body : '');
      const user = form.get('username') ?? '';
      if (users[user] === undefined || users[user] !== form.get('password')) {
        return reply.code(401).type('text/plain').send('Invalid username or password');
      }
      const id = randomBytes(16).toString('hex').toUpperCase();
      sessions.add(id);
      return reply.header('set-cookie', `JSESSIONID=${id}; Path=/tap-server; HttpOnly`).type('text/plain').send('OK');
    });
    app.post('/logout', async (req, reply) => {
      sessions.delete(cookieValue(req.headers.cookie, 'JSESSIONID') ?? '');
      return reply.type('text/plain').send('OK');
    });
  }, { prefix: '/tap-server' });
  await site.start();
  return {
    site,
    tap,
    url: `${site.url}/tap-server`,
    sessions,
    async close() {
      await tap.close();
      await site.close();
    },
  };
}
