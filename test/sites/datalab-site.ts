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
  /** Staging: tables imported into each user's MyDB (user → table → CSV text). */
  readonly mydb: Map<string, Map<string, string>>;
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

  const mydb = mountMyDbImport(sim, tokens);
  await sim.start();
  return { sim, url: sim.url, mydb, close: () => sim.close() };
}

/**
 * Staging into MyDB as the datalab client's queryClient.mydb_import does it: chunks POSTed to
 * /storage/xfer (X-DL-FileName, X-DL-InitXfer) land in the token owner's transfer area, then
 * POST /query/import?table=&filename=&drop=&csv_header= loads one as a table of that user's
 * MyDB. The user is the first part of the `user.uid.gid.hash` token. Answers are the query
 * manager's text: "OK", or "Error: …".
 */
function mountMyDbImport(sim: SimSite, tokens: ReadonlySet<string>): Map<string, Map<string, string>> {
  const mydb = new Map<string, Map<string, string>>();
  const transfers = new Map<string, Map<string, Buffer>>();
  const userOf = (headers: Record<string, string | string[] | undefined>): string | undefined => {
    const h = headers['x-dl-authtoken'];
    const token = Array.isArray(h) ? h[0] : h;
    return token !== undefined && tokens.has(token) ? token.split('.')[0] : undefined;
  };
  sim.app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 16 * 1024 * 1024 }, (_req, body, done) => done(null, body));
  sim.app.post('/storage/xfer', async (request, reply) => {
    const user = userOf(request.headers);
    if (user === undefined) return reply.code(401).type('text/plain').send('Error: invalid or anonymous token');
    const name = String(request.headers['x-dl-filename'] ?? '');
    if (!/^[\w.-]+$/.test(name)) return reply.type('text/plain').send('Error: bad file name');
    const area = transfers.get(user) ?? new Map<string, Buffer>();
    const chunk = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    area.set(name, request.headers['x-dl-initxfer'] === 'True' ? chunk : Buffer.concat([area.get(name) ?? Buffer.alloc(0), chunk]));
    transfers.set(user, area);
    return reply.type('text/plain').send('OK');
  });
  sim.app.post('/query/import', async (request, reply) => {
    const user = userOf(request.headers);
    if (user === undefined) return reply.code(401).type('text/plain').send('Error: anonymous access is not allowed for the query manager');
    const q = request.query as Record<string, string>;
    const data = transfers.get(user)?.get(q.filename ?? '');
    if (!q.table || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(q.table)) return reply.type('text/plain').send('Error: invalid table name');
    if (data === undefined) return reply.type('text/plain').send(`Error: file ${q.filename} not found`);
    const tables = mydb.get(user) ?? new Map<string, string>();
    if (tables.has(q.table) && q.drop !== 'True') return reply.type('text/plain').send(`Error: relation "${q.table}" already exists`);
    tables.set(q.table, data.toString('utf8'));
    mydb.set(user, tables);
    transfers.get(user)!.delete(q.filename!);
    return reply.type('text/plain').send('OK');
  });
  return mydb;
}
