/**
 * A simulated NOIRLab Astro Data Lab: the keyless standard TAP at /tap (sync and async), the
 * query manager (/query/services, /query/profiles, and /query/query, which refuses the
 * anonymous token as the real one does) and the AuthManager's /auth/isValidToken.
 */
import { SimSite } from './sim-site.js';
import { mountTapService, type SimTable } from './tap-service.js';

/** Data Lab's public token. */
export const DATALAB_ANONYMOUS = 'anonymous.0.0.anon_access';

/** A user token in the AuthManager's `user.uid.gid.hash` form that the simulator accepts. */
export const DATALAB_TEST_TOKEN = 'someuser.3666.3666.$1$PKCFmMzy$OPpZg/ThBmZe/V8LVPvpi/';

export interface DatalabSiteOptions {
  /** User tokens the AuthManager accepts; defaults to [DATALAB_TEST_TOKEN]. */
  tokens?: string[];
  /** How long an async TAP job sits QUEUED before it executes (mountTapService's default when absent). */
  asyncDelayMs?: number;
}

/** A running simulated Data Lab. */
export interface DatalabSite {
  readonly sim: SimSite;
  readonly url: string;
  close(): Promise<void>;
}

/** Tables of the /tap service, spelled as Data Lab spells them. */
export const DATALAB_TABLES: SimTable[] = [
  {
    name: 'gaia_dr3.gaia_source',
    description: 'Gaia DR3 source catalogue',
    rows: 1811709771,
    heldRows: 400,
    position: { ra: 'ra', dec: 'dec' },
    columns: [
      { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
      { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'parallax', datatype: 'double', unit: 'mas', ucd: 'pos.parallax.trig' },
      { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt' },
    ],
  },
  {
    name: 'ls_dr10.tractor',
    description: 'Legacy Surveys DR10 Tractor catalogue',
    rows: 3122097497,
    heldRows: 300,
    position: { ra: 'ra', dec: 'dec' },
    region: { raMin: 0, raMax: 360, decMin: -90, decMax: 35 },
    columns: [
      { name: 'ls_id', datatype: 'long', ucd: 'meta.id;meta.main' },
      { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'type', datatype: 'char', ucd: 'src.morph.type' },
      { name: 'mag_g', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt.B' },
    ],
  },
  {
    name: 'allwise.source',
    description: 'AllWISE Source Catalog',
    rows: 747634026,
    heldRows: 200,
    position: { ra: 'ra', dec: 'dec' },
    columns: [
      { name: 'source_id', datatype: 'char', ucd: 'meta.id;meta.main' },
      { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
      { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
      { name: 'w1mpro', datatype: 'double', unit: 'mag', ucd: 'phot.mag;em.IR.3-4um' },
      { name: 'cc_flags', datatype: 'char', ucd: 'meta.code.qual' },
    ],
  },
];

/** Start a simulated Data Lab on 127.0.0.1. */
export async function startDatalabSite(options: DatalabSiteOptions = {}): Promise<DatalabSite> {
  const sim = new SimSite();
  const tokens = new Set(options.tokens ?? [DATALAB_TEST_TOKEN]);
  const tokenOf = (headers: Record<string, string | string[] | undefined>, query?: Record<string, string>) => {
    const h = headers['x-dl-authtoken'];
    return query?.token ?? (Array.isArray(h) ? h[0] : h);
  };
  const isValid = (token: string) => token === DATALAB_ANONYMOUS || tokens.has(token);

  // /tap answers without a token (Data Lab's TOPCAT instructions set none). What the live
  // service does with a token the AuthManager does not know is unverified; the sim refuses it,
  // so tests can tell that the token a client sends reaches TAP.
  sim.app.addHook('onRequest', async (request, reply) => {
    if (!/^\/tap(\/|$)/.test(request.url.split('?')[0])) return;
    const token = tokenOf(request.headers);
    if (token !== undefined && !isValid(token)) return reply.code(401).type('text/plain').send('Error: invalid token');
  });
  mountTapService(sim, { path: '/tap', tables: DATALAB_TABLES, maxRec: 100000, hardMaxRec: 1000000, uploadLimitBytes: 100_000_000, asyncDelayMs: options.asyncDelayMs });

  // mode=list answers in the query manager's text format, mode=resolve in JSON.
  sim.app.get('/query/services', async (request, reply) => {
    const q = request.query as Record<string, string>;
    const base = `http://${request.headers.host}`;
    const services = { ivoa_tap: `${base}/tap`, ls_dr10_scs: `${base}/scs/ls_dr10`, gaia_dr3_scs: `${base}/scs/gaia_dr3` };
    if (q.mode === 'resolve') return reply.send(q.name ? { [q.name]: services[q.name as keyof typeof services] ?? null } : services);
    return reply.type('text/plain').send(Object.entries(services).map(([name, url]) => `${name}  ${url.includes('/scs/') ? 'scs' : 'tap'}  ${url}`).join('\n') + '\n');
  });

  sim.app.get('/query/profiles', async (_request, reply) => reply.type('text/plain').send('default\ndb01\ndb02\n'));

  sim.app.get('/query/query', async (request, reply) => {
    const q = request.query as Record<string, string>;
    const token = tokenOf(request.headers);
    if (!token || token === DATALAB_ANONYMOUS || !tokens.has(token)) {
      return reply.code(401).type('text/plain').send('Error: anonymous access is not allowed for the query manager');
    }
    const sql = q.sql ?? q.adql;
    if (!sql) return reply.code(400).type('text/plain').send('Error: no query given');
    const table = DATALAB_TABLES.find((t) => sql.toLowerCase().includes(t.name.toLowerCase()));
    if (!table) return reply.code(400).type('text/plain').send('Error: relation does not exist');
    return reply.type('text/csv').send(`${table.columns.map((c) => c.name).join(',')}\n`);
  });

  sim.app.get('/auth/isValidToken', async (request, reply) => {
    const token = tokenOf(request.headers, request.query as Record<string, string>);
    return reply.type('text/plain').send(token !== undefined && isValid(token) ? 'True' : 'False');
  });

  await sim.start();
  return { sim, url: sim.url, close: () => sim.close() };
}
