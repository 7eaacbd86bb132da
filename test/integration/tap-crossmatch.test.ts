/**
 * A positional join of two catalogues held at different sites, asked of /tap/sync, runs as a
 * cross-match thread (issue 12): two simulated TAP sites (alpha a Gaia-like table, beta a
 * Pan-STARRS-like one) with planted pairs across RA 0/360, and every answer compared with a
 * brute-force match of the held rows. Then the joins that cannot be mapped, each refused with
 * a VOTable error document and nothing sent to either site, and the thread's owner. The same
 * join as an async (UWS) job runs as its owner's thread too: its phase the thread's, WAIT
 * following it, ABORT and DELETE cancelling it, its result mapped as sync maps it, and a job
 * past its DESTRUCTION deleted by the periodic clean-up (its running thread cancelled).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray, type Row } from '../../adapters/ivoa/votable/index.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { waitUntil, WAITING_TEST_MS } from '../support/wait.js';
import { destroyExpiredTapJobs } from '../../broker/tap/expiry.js';

const RADIUS = 2;
const CONE = { ra: 0, dec: 0, radiusDeg: 0.6 };
const PATCH = { raMin: 0, raMax: 0.8, decMin: -0.6, decMax: 0.6 };

/** Known pairs 0.1 to 0.9 × the radius apart, half across RA 0/360, one left row with a second partner. */
function plantedPairs(): { gaia: Row[]; ps: Row[] } {
  const gaia: Row[] = [];
  const ps: Row[] = [];
  for (let k = 0; k < 24; k++) {
    const dec = ((k % 6) - 2.5) * 0.15;
    const ra = k % 2 === 0 ? 359.99999 - k * 0.01 : 0.3 + k * 0.01;
    const sepDeg = ((0.1 + (0.8 * k) / 23) * RADIUS) / 3600;
    const angle = k % 2 === 0 ? 0 : (k * Math.PI) / 7;
    const dDec = sepDeg * Math.sin(angle);
    const dRa = (sepDeg * Math.cos(angle)) / Math.cos((dec * Math.PI) / 180);
    gaia.push([BigInt(1_000_000 + k), ra, dec, 15]);
    ps.push([BigInt(2_000_000 + k), (ra + dRa + 360) % 360, dec + dDec, 16]);
  }
  ps.push([3_000_003n, gaia[3][1], Number(gaia[3][2]) + (0.95 * RADIUS) / 3600, 17]);
  return { gaia, ps };
}
const PLANTED = plantedPairs();

const GAIA: SimTable = {
  name: 'gaia_dr3.gaia_source',
  rows: 300,
  heldRows: 250,
  position: { ra: 'ra', dec: 'dec' },
  region: PATCH,
  planted: PLANTED.gaia,
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'phot_g_mean_mag', datatype: 'double', unit: 'mag' },
  ],
};
const PS: SimTable = {
  name: 'ps1_dr2.mean_object',
  rows: 300,
  heldRows: 250,
  position: { ra: 'ra', dec: 'dec' },
  region: PATCH,
  planted: PLANTED.ps,
  columns: [
    { name: 'objid', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'rmag', datatype: 'double', unit: 'mag' },
  ],
};

/** Great-circle separation in arcseconds (unit vectors; atan2 form). */
function sepArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const v = (ra: number, dec: number) => {
    const a = (ra * Math.PI) / 180;
    const d = (dec * Math.PI) / 180;
    return [Math.cos(d) * Math.cos(a), Math.cos(d) * Math.sin(a), Math.sin(d)];
  };
  const [x1, y1, z1] = v(ra1, dec1);
  const [x2, y2, z2] = v(ra2, dec2);
  const cross = Math.hypot(y1 * z2 - z1 * y2, z1 * x2 - x1 * z2, x1 * y2 - y1 * x2);
  return (Math.atan2(cross, x1 * x2 + y1 * y2 + z1 * z2) * 180 * 3600) / Math.PI;
}

type Cone = typeof CONE;
const inCone = (c: Cone) => (r: Row) => sepArcsec(c.ra, c.dec, Number(r[1]), Number(r[2])) <= c.radiusDeg * 3600;

/** Every pair "source_id objid" within the radius (as a SQL join means), the Gaia rows in `left`, the PS rows in `right` (cones; null: no restriction). */
function bruteForce(left: Cone | null, right: Cone | null): string[] {
  const lefts = [...simRows(GAIA), ...PLANTED.gaia].filter(left ? inCone(left) : () => true);
  const rights = [...simRows(PS), ...PLANTED.ps].filter(right ? inCone(right) : () => true);
  const out: string[] = [];
  for (const l of lefts) {
    for (const r of rights) if (sepArcsec(Number(l[1]), Number(l[2]), Number(r[1]), Number(r[2])) <= RADIUS) out.push(`${l[0]} ${r[0]}`);
  }
  return out.sort();
}

function unescapeXml(s: string): string {
  return s.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const CONTAINS_JOIN = `SELECT g.source_id, p.objid, g.phot_g_mean_mag
  FROM gaia_dr3.gaia_source AS g JOIN ps1_dr2.mean_object AS p
  ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', p.ra, p.dec, ${RADIUS}/3600.0))
  WHERE 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', ${CONE.ra}, ${CONE.dec}, ${CONE.radiusDeg}))`;

describe(`positional joins across sites at /tap (${backend})`, () => {
  let idp: TestOidcProvider;
  let alpha: SimSite;
  let beta: SimSite;
  let betaTap: TapService;
  let broker: TestBroker;
  const tokens: Record<string, string> = {};
  /** Requests that reached a site's TAP query endpoints (sync or async). */
  const queriesAtSites = () => [...alpha.seen, ...beta.seen].filter((r) => /\/tap\/(sync|async)/.test(r.url)).length;
  // While a gate is set, beta holds every query (sync, or an async job's creation) until it opens: a thread stays RUNNING.
  let gate: { opened: Promise<void>; open: () => void } | undefined;
  const closeGate = () => {
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    gate = { opened, open };
  };
  const openGate = () => {
    gate?.open();
    gate = undefined;
  };

  async function sync(params: Record<string, string>, user = 'alice'): Promise<Response> {
    return fetch(`${broker.url}/tap/sync`, { method: 'POST', headers: { authorization: `Bearer ${tokens[user]}` }, body: new URLSearchParams({ LANG: 'ADQL', ...params }) });
  }
  async function table(res: Response) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    const text = new TextDecoder().decode(bytes);
    expect(res.status, text.slice(0, 2000)).toBe(200);
    const doc = await readVOTableToArray([bytes]);
    return { text, names: doc.tables[0].meta.fields.map((f) => f.name), rows: doc.tables[0].rows, thread: /<INFO name="thread" value="([^"]+)"/.exec(text)?.[1] };
  }
  async function refusal(res: Response): Promise<string> {
    const text = await res.text();
    expect(res.status, text).toBe(400);
    expect(text).toContain('<INFO name="QUERY_STATUS" value="ERROR">');
    return unescapeXml(/value="ERROR">([^<]*)</.exec(text)![1]);
  }
  async function threadOf(id: string, user: string): Promise<{ id: string; state: string } | null> {
    const res = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[user]}` },
      body: JSON.stringify({ query: 'query($id: ID!) { thread(id: $id) { id state } }', variables: { id } }),
    });
    return ((await res.json()) as { data: { thread: { id: string; state: string } | null } }).data.thread;
  }

  beforeAll(async () => {
    idp = await startOidcProvider();
    alpha = new SimSite();
    beta = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [GAIA] });
    betaTap = mountTapService(beta, { path: '/tap', tables: [PS] });
    beta.app.addHook('onRequest', async (request) => {
      if (gate && request.method === 'POST' && ['/tap/sync', '/tap/async'].includes(request.url.split('?')[0])) await gate.opened;
    });
    await Promise.all([alpha.start(), beta.start()]);
    broker = await startBroker(configFromYaml(`
federation: { name: tap-crossmatch }
identity: { issuer: ${idp.issuer}, audience: ${BROKER_AUDIENCE}, anonymous: submit }
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${alpha.url}/tap" }
  - { id: beta, name: Beta, adapter: tap, url: "${beta.url}/tap" }
`), undefined, { jobs: { pollIntervalMs: 50, tickMs: 25 } });
    for (const user of ['alice', 'bob'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    for (const site of ['alpha', 'beta']) expect((await broker.harvest(site)).outcome).toBe('OK');
  }, WAITING_TEST_MS);

  afterAll(async () => {
    openGate();
    await broker?.close();
    await Promise.all([alpha?.close(), beta?.close()]);
    await idp?.close();
  });

  it('runs a CONTAINS join as a thread of the caller: exactly the brute-force pairs, the selected columns, VOTable', async () => {
    const expected = bruteForce(CONE, null);
    expect(expected.length).toBeGreaterThan(20);
    const { names, rows, thread } = await table(await sync({ QUERY: CONTAINS_JOIN }));
    expect(names).toEqual(['source_id', 'objid', 'phot_g_mean_mag']);
    expect(rows.map((r) => `${r[0]} ${r[1]}`).sort()).toEqual(expected);
    // Both partners of the left row with two: a join returns every pair, not the best.
    expect(rows.filter((r) => String(r[0]) === '1000003').map((r) => String(r[1])).sort()).toEqual(['2000003', '3000003']);
    // The thread is alice's, and nobody else's.
    expect(thread).toBeDefined();
    expect(await threadOf(thread!, 'alice')).toEqual({ id: thread, state: 'COMPLETED' });
    expect(await threadOf(thread!, 'bob')).toBeNull();
  }, WAITING_TEST_MS);

  it('runs a DISTANCE join written the other way round, with the separation, as CSV', async () => {
    const query = `SELECT p.objid AS ps_id, g.source_id, DISTANCE(POINT('ICRS', p.ra, p.dec), POINT('ICRS', g.ra, g.dec)) AS sep
      FROM ps1_dr2.mean_object AS p, gaia_dr3.gaia_source AS g
      WHERE DISTANCE(POINT('ICRS', g.ra, g.dec), POINT('ICRS', p.ra, p.dec)) <= ${RADIUS / 3600}
      AND 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', ${CONE.ra}, ${CONE.dec}, ${CONE.radiusDeg}))`;
    const res = await sync({ QUERY: query, RESPONSEFORMAT: 'csv' }, 'bob');
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const [header, ...lines] = text.trim().split(/\r?\n/);
    expect(header).toBe('ps_id,source_id,sep');
    const rows = lines.map((l) => l.split(','));
    expect(rows.map(([ps, g]) => `${g} ${ps}`).sort()).toEqual(bruteForce(CONE, null));
    const gaia = new Map([...simRows(GAIA), ...PLANTED.gaia].map((r) => [String(r[0]), r]));
    const ps = new Map([...simRows(PS), ...PLANTED.ps].map((r) => [String(r[0]), r]));
    for (const [p, g, sep] of rows) {
      const [l, r] = [gaia.get(g)!, ps.get(p)!];
      // The separation in degrees, as DISTANCE gives it.
      expect(Number(sep) * 3600).toBeCloseTo(sepArcsec(Number(l[1]), Number(l[2]), Number(r[1]), Number(r[2])), 6);
    }
  }, WAITING_TEST_MS);

  it('takes the cone on the other table, or cones on both, as SQL means them', async () => {
    const small = { ra: 0.3, dec: 0, radiusDeg: 0.3 };
    const onPs = CONTAINS_JOIN.replace("POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', 0, 0, 0.6)", "POINT('ICRS', p.ra, p.dec), CIRCLE('ICRS', 0, 0, 0.6)");
    expect(onPs).not.toBe(CONTAINS_JOIN);
    const a = await table(await sync({ QUERY: onPs, RESPONSEFORMAT: 'votable/b2' }));
    expect(a.rows.map((r) => `${r[0]} ${r[1]}`).sort()).toEqual(bruteForce(null, CONE));
    const both = `${CONTAINS_JOIN} AND 1 = CONTAINS(POINT('ICRS', p.ra, p.dec), CIRCLE('ICRS', ${small.ra}, ${small.dec}, ${small.radiusDeg}))`;
    const b = await table(await sync({ QUERY: both }));
    const expected = bruteForce(CONE, small);
    expect(expected.length).toBeGreaterThan(0);
    expect(b.rows.map((r) => `${r[0]} ${r[1]}`).sort()).toEqual(expected);
  }, WAITING_TEST_MS);

  it('cuts the pairs at MAXREC with QUERY_STATUS OVERFLOW, and at TOP without', async () => {
    const cut = await table(await sync({ QUERY: CONTAINS_JOIN, MAXREC: '5' }));
    expect(cut.rows).toHaveLength(5);
    expect(cut.text).toMatch(/<\/TABLE>\s*<INFO name="QUERY_STATUS" value="OVERFLOW"/);
    const top = await table(await sync({ QUERY: CONTAINS_JOIN.replace('SELECT', 'SELECT TOP 3') }));
    expect(top.rows).toHaveLength(3);
    expect(top.text).not.toContain('OVERFLOW');
  }, WAITING_TEST_MS);

  it('refuses every cross-site join it cannot map, saying which part, with nothing sent to either site', async () => {
    const before = queriesAtSites();
    const cases: [string, RegExp][] = [
      ['SELECT g.source_id FROM gaia_dr3.gaia_source AS g JOIN ps1_dr2.mean_object AS p ON g.source_id = p.objid',
        /no one site holds together \(gaia_dr3\.gaia_source is held at alpha; ps1_dr2\.mean_object is held at beta\).*the condition g\.source_id = p\.objid is neither the positional match nor a cone/],
      [CONTAINS_JOIN.replace(/WHERE[\s\S]*$/, ''), /it has no cone: a cross-match runs over a region; add WHERE 1 = CONTAINS/],
      [CONTAINS_JOIN.replace(`${RADIUS}/3600.0`, '61/3600.0'), /match radius is 0\.0169\d* degrees \(61 arcseconds\); a cross-match radius must be greater than 0 and at most 60 arcseconds/],
      [`${CONTAINS_JOIN} ORDER BY g.source_id`, /it has ORDER BY/],
      [CONTAINS_JOIN.replace('g.phot_g_mean_mag', 'g.phot_g_mean_mag + p.rmag'), /the selected g\.phot_g_mean_mag \+ p\.rmag is not a column of either table/],
      [CONTAINS_JOIN.replace('SELECT g.source_id, p.objid, g.phot_g_mean_mag', 'SELECT COUNT(*)'), /aggregates over a cross-site join are not run/],
      [`${CONTAINS_JOIN} AND g.phot_g_mean_mag < 20`, /the condition g\.phot_g_mean_mag < 20 is neither the positional match nor a cone/],
      [CONTAINS_JOIN.replace('p.ra, p.dec, ', 'p.dec, p.ra, '), /is not the position of ps1_dr2\.mean_object: a cross-match uses each dataset's position columns, ra and dec/],
      [CONTAINS_JOIN.replace('JOIN', 'LEFT OUTER JOIN'), /LEFT OUTER join/],
    ];
    for (const [query, why] of cases) expect(await refusal(await sync({ QUERY: query })), query).toMatch(why);
    expect(queriesAtSites()).toBe(before);
  }, WAITING_TEST_MS);

  // ---- the same join as an async (UWS) job --------------------------------------------------
  const auth = (user: string) => ({ authorization: `Bearer ${tokens[user]}` });
  /** Create an async job as `user`; its URL. */
  async function createJob(params: Record<string, string>, user = 'alice'): Promise<string> {
    const res = await fetch(`${broker.url}/tap/async`, { method: 'POST', redirect: 'manual', headers: auth(user), body: new URLSearchParams({ LANG: 'ADQL', ...params }) });
    const text = await res.text();
    expect(res.status, text).toBe(303);
    return res.headers.get('location')!;
  }
  const post = (url: string, params: Record<string, string>, user = 'alice') => fetch(url, { method: 'POST', redirect: 'manual', headers: auth(user), body: new URLSearchParams(params) });
  const get = (url: string, user = 'alice') => fetch(url, { headers: auth(user) });
  /** The job document after WAIT=`seconds` (UWS: blocks while the job is active), with its phase. */
  async function waitJob(url: string, seconds: number, user = 'alice', phase?: string): Promise<{ status: number; text: string; phase: string | undefined }> {
    const res = await get(`${url}?WAIT=${seconds}${phase ? `&PHASE=${phase}` : ''}`, user);
    const text = await res.text();
    return { status: res.status, text, phase: /<uws:phase>([A-Z]+)<\/uws:phase>/.exec(text)?.[1] };
  }
  /** The job once in one of `phases`, asking with WAIT (blocking only while it is in `blockWhile`, when given). */
  const until = (url: string, phases: string[], blockWhile?: string) =>
    waitUntil(() => waitJob(url, 30, 'alice', blockWhile), (j) => phases.includes(j.phase ?? ''), { describe: (j) => `job ${url} is ${j.phase}, not ${phases.join(' or ')}: ${j.text.slice(0, 800)}` });
  /** The thread a TAP job became, as the database holds it. */
  async function threadIdOf(url: string): Promise<string | null> {
    const { rows } = await broker.db.pool.query<{ thread_id: string | null }>('SELECT thread_id FROM tap_jobs WHERE id = $1', [url.split('/').pop()]);
    return rows[0]?.thread_id ?? null;
  }

  it('runs the join as an async job: the owner\'s thread, its phase followed by WAIT, exactly the brute-force pairs in the asked format and limits', async () => {
    const expected = bruteForce(CONE, null);
    const full = await createJob({ QUERY: CONTAINS_JOIN });
    expect(await (await get(`${full}/phase`)).text()).toBe('PENDING');
    const cut = await createJob({ QUERY: CONTAINS_JOIN, MAXREC: '5', PHASE: 'RUN' });
    const csv = await createJob({ QUERY: CONTAINS_JOIN.replace('SELECT', 'SELECT TOP 4'), RESPONSEFORMAT: 'csv', PHASE: 'RUN' });
    expect((await post(`${full}/phase`, { PHASE: 'RUN' })).status).toBe(303);
    // Once it runs, it cannot be run again and its query cannot change.
    const again = await post(`${full}/phase`, { PHASE: 'RUN' });
    expect(again.status).toBe(400);
    expect(unescapeXml(await again.text())).toMatch(/only a PENDING job can be run/);
    const change = await post(`${full}/parameters`, { QUERY: 'SELECT TOP 1 * FROM tap_schema.tables' });
    expect(change.status).toBe(400);
    expect(unescapeXml(await change.text())).toMatch(/no longer PENDING/);

    const done = await until(full, ['COMPLETED', 'ERROR', 'ABORTED']);
    expect(done.phase, done.text).toBe('COMPLETED');
    expect(done.text).toContain(`xlink:href="${full}/results/result"`);
    const { names, rows, thread, text } = await table(await get(`${full}/results/result`));
    expect(names).toEqual(['source_id', 'objid', 'phot_g_mean_mag']);
    expect(rows.map((r) => `${r[0]} ${r[1]}`).sort()).toEqual(expected);
    expect(text).not.toContain('OVERFLOW');
    // The thread is alice's, the one the job links to, and nobody else's.
    expect(thread).toBe(await threadIdOf(full));
    expect(await threadOf(thread!, 'alice')).toEqual({ id: thread, state: 'COMPLETED' });
    expect(await threadOf(thread!, 'bob')).toBeNull();

    expect((await until(cut, ['COMPLETED', 'ERROR', 'ABORTED'])).phase).toBe('COMPLETED');
    const limited = await table(await get(`${cut}/results/result`));
    expect(limited.rows).toHaveLength(5);
    expect(limited.rows.every((r) => expected.includes(`${r[0]} ${r[1]}`))).toBe(true);
    expect(limited.text).toMatch(/<\/TABLE>\s*<INFO name="QUERY_STATUS" value="OVERFLOW"/);

    expect((await until(csv, ['COMPLETED', 'ERROR', 'ABORTED'])).phase).toBe('COMPLETED');
    const res = await get(`${csv}/results/result`);
    const body = await res.text();
    expect(res.status, body).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const [header, ...lines] = body.trim().split(/\r?\n/);
    expect(header).toBe('source_id,objid,phot_g_mean_mag');
    expect(lines).toHaveLength(4);
    expect(lines.every((l) => expected.includes(l.split(',').slice(0, 2).join(' ')))).toBe(true);

    // The job list gives each its phase; bob's list has none of them.
    const list = await (await get(`${broker.url}/tap/async?PHASE=COMPLETED`)).text();
    for (const url of [full, cut, csv]) expect(list).toContain(`<uws:jobref id="${url.split('/').pop()}"`);
    const bobs = await (await get(`${broker.url}/tap/async`, 'bob')).text();
    for (const url of [full, cut, csv]) expect(bobs).not.toContain(url.split('/').pop());
    // Another user gets 404 for the job, its result, its error and its phase, and can neither abort nor delete it.
    for (const path of ['', '/phase', '/results/result', '/error', '/parameters']) expect((await get(`${full}${path}`, 'bob')).status, path).toBe(404);
    expect((await post(`${full}/phase`, { PHASE: 'ABORT' }, 'bob')).status).toBe(404);
    expect((await fetch(full, { method: 'DELETE', redirect: 'manual', headers: auth('bob') })).status).toBe(404);
    expect(await (await get(`${full}/phase`)).text()).toBe('COMPLETED');
  }, WAITING_TEST_MS);

  it('ABORT of a running async join ends its thread ABORTED and wakes a client blocked in WAIT; bob cannot abort it', async () => {
    closeGate();
    try {
      const url = await createJob({ QUERY: CONTAINS_JOIN, PHASE: 'RUN' });
      // Held at beta: the thread runs and stays running.
      const running = await until(url, ['EXECUTING'], 'QUEUED');
      expect(running.text).toContain('<uws:results></uws:results>');
      const id = await threadIdOf(url);
      expect(await threadOf(id!, 'alice')).toEqual({ id, state: 'RUNNING' });
      expect((await post(`${url}/phase`, { PHASE: 'ABORT' }, 'bob')).status).toBe(404);
      expect((await get(`${url}/results/result`)).status).toBe(404);
      // A client blocked in WAIT while it executes is answered when the abort ends it, not at its 60 s.
      const t0 = Date.now();
      const blocked = waitJob(url, 60, 'alice', 'EXECUTING');
      expect((await post(`${url}/phase`, { PHASE: 'ABORT' })).status).toBe(303);
      const woken = await blocked;
      expect(woken.phase, woken.text).toBe('ABORTED');
      expect(Date.now() - t0).toBeLessThan(50_000);
      expect(await threadOf(id!, 'alice')).toEqual({ id, state: 'ABORTED' });
      expect(unescapeXml(await (await get(`${url}/error`)).text())).toMatch(/the job was aborted/);
      expect((await get(`${url}/results/result`)).status).toBe(404);
      // A second ABORT changes nothing.
      expect((await post(`${url}/phase`, { PHASE: 'ABORT' })).status).toBe(303);
      openGate();
      expect(await threadOf(id!, 'alice')).toEqual({ id, state: 'ABORTED' });
      expect(await (await get(`${url}/phase`)).text()).toBe('ABORTED');
    } finally {
      openGate();
    }
  }, WAITING_TEST_MS);

  it('an async join whose thread fails is ERROR, its error document the thread\'s message', async () => {
    // beta answers the read with something that is no VOTable, and no other site holds its table.
    betaTap.hostile.result = () => 'this is not a VOTable';
    try {
      const url = await createJob({ QUERY: CONTAINS_JOIN, PHASE: 'RUN' });
      const ended = await until(url, ['COMPLETED', 'ERROR', 'ABORTED']);
      expect(ended.phase, ended.text).toBe('ERROR');
      const id = await threadIdOf(url);
      expect(await threadOf(id!, 'alice')).toEqual({ id, state: 'ERROR' });
      expect(unescapeXml(ended.text)).toContain(`<uws:errorSummary type="fatal" hasDetail="true"><uws:message>the cross-match thread ${id} failed: `);
      const error = await get(`${url}/error`);
      const text = unescapeXml(await error.text());
      expect(error.status).toBe(200);
      expect(text).toContain('<INFO name="QUERY_STATUS" value="ERROR">');
      expect(text).toMatch(new RegExp(`the cross-match thread ${id} failed: \\S`));
      expect((await get(`${url}/results/result`)).status).toBe(404);
    } finally {
      delete betaTap.hostile.result;
    }
  }, WAITING_TEST_MS);

  it('DELETE of a running async join cancels its thread', async () => {
    closeGate();
    try {
      const url = await createJob({ QUERY: CONTAINS_JOIN, PHASE: 'RUN' });
      await until(url, ['EXECUTING'], 'QUEUED');
      const id = await threadIdOf(url);
      expect((await fetch(url, { method: 'DELETE', redirect: 'manual', headers: auth('alice') })).status).toBe(303);
      expect((await get(url)).status).toBe(404);
      expect(await threadOf(id!, 'alice')).toEqual({ id, state: 'ABORTED' });
    } finally {
      openGate();
    }
  }, WAITING_TEST_MS);

  it('a job past its DESTRUCTION is hidden at once and deleted by the periodic clean-up, its running thread cancelled', async () => {
    closeGate();
    try {
      const running = await createJob({ QUERY: CONTAINS_JOIN, PHASE: 'RUN' });
      const pending = await createJob({ QUERY: CONTAINS_JOIN });
      const kept = await createJob({ QUERY: CONTAINS_JOIN });
      await until(running, ['EXECUTING'], 'QUEUED');
      const id = await threadIdOf(running);
      const past = new Date(Date.now() - 60_000).toISOString();
      for (const url of [running, pending]) expect((await post(`${url}/destruction`, { DESTRUCTION: past })).status).toBe(303);
      for (const url of [running, pending]) expect((await get(url)).status).toBe(404);
      const ids = [running, pending, kept].map((u) => u.split('/').pop()!);
      const stored = async () => (await broker.db.pool.query<{ id: string }>('SELECT id FROM tap_jobs WHERE id = ANY($1::uuid[]) ORDER BY id', [ids])).rows.map((r) => r.id);
      expect(await stored()).toHaveLength(3);
      // The broker's clean-up (scheduleTapUpkeep runs it at start and every minute), run now.
      expect(await destroyExpiredTapJobs(broker.app.services)).toBeGreaterThanOrEqual(2);
      expect(await stored()).toEqual([ids[2]]);
      expect(await threadOf(id!, 'alice')).toEqual({ id, state: 'ABORTED' });
      expect(await (await get(`${kept}/phase`)).text()).toBe('PENDING');
      // Nothing more to do: a second run deletes nothing.
      expect(await destroyExpiredTapJobs(broker.app.services)).toBe(0);
    } finally {
      openGate();
    }
  }, WAITING_TEST_MS);
});
