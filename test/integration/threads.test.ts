/**
 * Cross-match threads through the public API (issue 11): three simulated TAP sites running real
 * ADQL on PGlite (alpha holds a Gaia-like table, beta a Pan-STARRS-like one under its own names
 * with a small maxRec so reads there are tiled, gamma both), planted pairs across RA 0/360 at up
 * to 0.9 × the radius, and every strategy forced: each gives exactly the pairs a brute-force
 * match of the two sides' rows in the region gives. Then the bad inputs, another user's thread,
 * and a step failing at a site.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../adapters/ivoa/votable/index.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend, freshDatabase } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { capturedLines, registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { SubscriptionClient } from '../support/subscriptions.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const RADIUS = 2;
const CONE = { ra: 0, dec: 0, radiusDeg: 0.6 };
const PATCH = { raMin: 0, raMax: 0.8, decMin: -0.6, decMax: 0.6 };

/** Known pairs: a Gaia-like and a Pan-STARRS-like row 0.1 to 0.9 × the radius apart, many across RA 0/360. */
function plantedPairs(): { gaia: Row[]; ps: Row[] } {
  const gaia: Row[] = [];
  const ps: Row[] = [];
  for (let k = 0; k < 24; k++) {
    const dec = ((k % 6) - 2.5) * 0.15;
    // Half of them straddle RA 0: the left row just below 360, its partner just above 0.
    const ra = k % 2 === 0 ? 359.99999 - k * 0.01 : 0.3 + k * 0.01;
    const sepDeg = ((0.1 + (0.8 * k) / 23) * RADIUS) / 3600;
    const angle = k % 2 === 0 ? 0 : (k * Math.PI) / 7;
    const dDec = sepDeg * Math.sin(angle);
    const dRa = (sepDeg * Math.cos(angle)) / Math.cos((dec * Math.PI) / 180);
    gaia.push([BigInt(1_000_000 + k), ra, dec, 15]);
    ps.push([BigInt(2_000_000 + k), (ra + dRa + 360) % 360, dec + dDec, 16]);
  }
  // A second, farther partner of left row 1_000_003 (0.95 × the radius north): ALL keeps both, BEST the nearer.
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
// Advertised far larger than held, so the planner must tile reads at beta (maxRec 120).
const PS: SimTable = {
  name: 'ps1_dr2.mean_object',
  rows: 20_000_000,
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
// The same rows at beta (same table name, same generator), under beta's own column names.
const PS_BETA: SimTable = {
  ...PS,
  position: { ra: 'ra_mean', dec: 'dec_mean' },
  columns: [
    { name: 'obj_id', datatype: 'long' },
    { name: 'ra_mean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec_mean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'r_mag', datatype: 'double', unit: 'mag' },
  ],
};
// No position columns: cannot be cross-matched.
const NOTES: SimTable = { name: 'misc.notes', rows: 10, columns: [{ name: 'note_id', datatype: 'int' }, { name: 'body', datatype: 'char' }] };
// So deep that even the finest tiles pass beta's maxRec: every strategy using it is refused with sizes.
const DEEP: SimTable = { ...PS_BETA, name: 'deep.objects', rows: 1_000_000_000_000, heldRows: 10, planted: [] };

type Answer<T> = { status: number; data?: T; errors?: { message: string; extensions?: { code?: string; violations?: { path: string; rule: string; message: string }[] } }[] };
interface ThreadView {
  id: string;
  state: string;
  results: string | null;
  resultRows: number | null;
  error: { code: string; message: string } | null;
  progress: { stepsDone: number; stepsTotal: number; rows: number; bytes: number };
  plan: { forced: string | null; candidates: { strategy: string; chosen: boolean; eligible: boolean; leftSite: string | null; rightSite: string | null; estimatedBytesMoved: number; steps: number; tiling: { order: number | null; tiles: number } | null; reasons: { code: string; message: string }[] }[] };
  steps: { ordinal: number; kind: string; site: string | null; state: string; tile: { order: number | null; cell: number }; job: { id: string; state: string } | null; rowsOut: number | null; bytesIn: number | null }[];
}
const THREAD = `id state results resultRows error { code message } progress { stepsDone stepsTotal rows bytes }
  plan { forced candidates { strategy chosen eligible leftSite rightSite estimatedBytesMoved steps tiling { order tiles } reasons { code message } } }
  steps { ordinal kind site state tile { order cell } job { id state } rowsOut bytesIn }`;

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

/** The expected pairs "leftId rightId", by brute force over every held row of both tables. */
function bruteForce(mode: 'BEST' | 'ALL'): string[] {
  const inCone = (r: Row) => sepArcsec(CONE.ra, CONE.dec, Number(r[1]), Number(r[2])) <= CONE.radiusDeg * 3600;
  const lefts = [...simRows(GAIA), ...PLANTED.gaia].filter(inCone);
  const rights = [...simRows(PS), ...PLANTED.ps];
  const out: string[] = [];
  for (const l of lefts) {
    const near = rights
      .map((r) => ({ r, s: sepArcsec(Number(l[1]), Number(l[2]), Number(r[1]), Number(r[2])) }))
      .filter((x) => x.s <= RADIUS)
      .sort((a, b) => a.s - b.s || Number(a.r[0]) - Number(b.r[0]));
    for (const x of mode === 'BEST' ? near.slice(0, 1) : near) out.push(`${l[0]} ${x.r[0]}`);
  }
  return out.sort();
}

describe(`cross-match threads (${backend})`, () => {
  let idp: TestOidcProvider;
  let alpha: SimSite;
  let beta: SimSite;
  let gamma: SimSite;
  let betaTap: TapService;
  let alphaTap: TapService;
  let broker: TestBroker;
  let dataDir: string;
  let yaml: string;
  const tokens: Record<string, string> = {};
  let gate: { allow: number; seen: number; opened: Promise<void>; open: () => void } | undefined;
  const closeGate = (allow: number) => {
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    gate = { allow, seen: 0, opened, open };
    return gate;
  };
  const openGate = () => {
    gate?.open();
    gate = undefined;
  };

  async function gql<T>(query: string, variables: Record<string, unknown> = {}, token = tokens.alice, headers: Record<string, string> = {}): Promise<Answer<T>> {
    const res = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, ...((await res.json()) as object) };
  }
  const codeOf = (a: Answer<unknown>) => a.errors?.[0]?.extensions?.code;
  const crossmatch = (input: Record<string, unknown>, token?: string) => gql<{ crossmatch: ThreadView }>(`mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${THREAD} } }`, { i: input }, token);
  const thread = async (id: string, token?: string) => (await gql<{ thread: ThreadView | null }>(`query($id: ID!) { thread(id: $id) { ${THREAD} } }`, { id }, token)).data?.thread ?? null;
  const ended = (id: string) =>
    waitUntil(() => thread(id), (t) => t !== null && ['COMPLETED', 'ERROR', 'ABORTED'].includes(t.state), { describe: (t) => `thread ${id} is ${t?.state}: ${JSON.stringify(t?.steps.filter((s) => s.state !== 'COMPLETED'))}` });
  const input = (extra: Record<string, unknown> = {}) => ({
    left: { dataset: 'gaia_dr3.gaia_source', columns: ['source_id', 'ra'] },
    right: { dataset: 'ps1_dr2.mean_object', columns: ['objid', 'ra'] },
    region: { cone: CONE },
    radiusArcsec: RADIUS,
    ...extra,
  });
  /** The result's pairs "source_id objid", from /results as JSON. */
  async function pairsOf(t: ThreadView): Promise<{ pairs: string[]; names: string[] }> {
    const res = await fetch(`${broker.url}${t.results}?format=json`, { headers: { authorization: `Bearer ${tokens.alice}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { metadata: { name: string }[]; data: unknown[][] };
    const names = body.metadata.map((m) => m.name);
    const l = names.indexOf('source_id');
    const r = names.indexOf('objid');
    const sep = names.indexOf('sep_arcsec');
    for (const row of body.data) expect(Number(row[sep])).toBeLessThanOrEqual(RADIUS);
    return { pairs: body.data.map((row) => `${String(row[l])} ${String(row[r])}`).sort(), names };
  }

  beforeAll(async () => {
    idp = await startOidcProvider();
    alpha = new SimSite();
    alphaTap = mountTapService(alpha, { path: '/tap', tables: [GAIA, NOTES] });
    await alpha.start();
    beta = new SimSite();
    betaTap = mountTapService(beta, { path: '/tap', tables: [PS_BETA, DEEP], maxRec: 120 });
    // While a gate is set, beta answers `allow` synchronous queries and holds the rest until it opens.
    beta.app.addHook('onRequest', async (request) => {
      if (!gate || request.method !== 'POST' || request.url.split('?')[0] !== '/tap/sync') return;
      gate.seen++;
      if (gate.seen > gate.allow) await gate.opened;
    });
    await beta.start();
    gamma = new SimSite();
    mountTapService(gamma, { path: '/tap', tables: [GAIA, PS] });
    await gamma.start();
    dataDir = await mkdtemp(join(tmpdir(), 'threads-test-'));
    yaml = `
federation: { name: threads }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  anonymous: submit
crossmatch: { maxParallelPerSite: 2 }
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${alpha.url}/tap" }
  - id: beta
    name: Beta
    adapter: tap
    url: "${beta.url}/tap"
    datasets:
      ps1_dr2.mean_object: { id: ps1_dr2.mean_object, columns: { obj_id: objid, ra_mean: ra, dec_mean: dec, r_mag: rmag } }
      deep.objects: { id: deep.objects, columns: { obj_id: objid, ra_mean: ra, dec_mean: dec, r_mag: rmag } }
  - { id: gamma, name: Gamma, adapter: tap, url: "${gamma.url}/tap" }
`;
    broker = await startBroker(configFromYaml(yaml, { CONSTELLATION_DATA: dataDir }), undefined, { jobs: { pollIntervalMs: 50, tickMs: 25 } });
    for (const user of ['alice', 'bob'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    for (const id of ['alpha', 'beta', 'gamma']) expect(await broker.harvest(id), id).toMatchObject({ outcome: 'OK' });
  }, WAITING_TEST_MS);

  afterAll(async () => {
    openGate();
    await broker?.close();
    await Promise.all([alpha?.close(), beta?.close(), gamma?.close()]);
    await idp?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  for (const [strategy, sites] of [['SAME_SITE', null], ['UPLOAD', ['alpha', 'beta']], ['BROKER', ['alpha', 'beta']]] as const) {
    for (const mode of ['BEST', 'ALL'] as const) {
      it(`${strategy} forced (${mode}) gives exactly the brute-force pairs, planted pairs across RA 0/360 included`, async () => {
        const started = await crossmatch(input({ strategy, mode, ...(sites ? { sites } : {}) }));
        expect(started.errors, JSON.stringify(started.errors)).toBeUndefined();
        const plan = started.data!.crossmatch.plan;
        expect(plan.forced).toBe(strategy);
        // Every strategy is listed, the chosen one is the forced one.
        expect(new Set(plan.candidates.map((c) => c.strategy))).toEqual(new Set(['SAME_SITE', 'UPLOAD', 'BROKER']));
        expect(plan.candidates.filter((c) => c.chosen).map((c) => c.strategy)).toEqual([strategy]);
        const t = await ended(started.data!.crossmatch.id);
        expect(t!.state, JSON.stringify(t!.error)).toBe('COMPLETED');
        const { pairs, names } = await pairsOf(t!);
        const expected = bruteForce(mode);
        expect(pairs).toEqual(expected);
        for (let k = 0; k < PLANTED.gaia.length; k++) {
          if (sepArcsec(CONE.ra, CONE.dec, Number(PLANTED.gaia[k][1]), Number(PLANTED.gaia[k][2])) <= CONE.radiusDeg * 3600) {
            expect(pairs, `planted pair ${k}`).toContain(`${1_000_000 + k} ${2_000_000 + k}`);
          }
        }
        if (mode === 'ALL') expect(pairs).toContain('1000003 3000003');
        else expect(pairs).not.toContain('1000003 3000003');
        // The clashing column gets each dataset's short prefix.
        expect(names).toEqual(['source_id', 'gaia_dr3_ra', 'objid', 'ps1_dr2_ra', 'sep_arcsec']);
        expect(t!.resultRows).toBe(expected.length);
        expect(t!.progress.stepsDone).toBe(t!.progress.stepsTotal);
        // Every site step is an ordinary job that completed at a site the thread may use.
        for (const s of t!.steps.filter((x) => x.kind !== 'match')) {
          expect(s.job?.state).toBe('COMPLETED');
          if (sites) expect(sites).toContain(s.site);
        }
        if (strategy === 'UPLOAD') {
          // One side's rows were read and sent to the other side's site as a TAP_UPLOAD table.
          expect(t!.steps.filter((s) => s.kind === 'site-read').length).toBe(t!.steps.filter((s) => s.kind === 'upload-join').length);
          const uploadedTo = t!.steps.find((s) => s.kind === 'upload-join')!.site!;
          const site = uploadedTo === 'beta' ? beta : alpha;
          expect(site.seen.some((r) => r.method === 'POST' && /multipart\/form-data/.test(String(r.headers['content-type'] ?? '')))).toBe(true);
        }
        if (strategy === 'BROKER') {
          const chosen = plan.candidates.find((c) => c.chosen)!;
          // beta's maxRec makes the reads there tiled: more than one tile, and all of them run.
          expect(chosen.tiling!.tiles).toBeGreaterThan(1);
          expect(t!.steps.filter((s) => s.kind === 'site-read')).toHaveLength(2 * chosen.tiling!.tiles);
        }
      }, WAITING_TEST_MS);
    }
  }

  it('CSV and VOTable results carry the same rows; another user sees NOT_FOUND for the thread, its result and its cancel; results expire', async () => {
    const started = await crossmatch(input({ strategy: 'SAME_SITE' }));
    const t = await ended(started.data!.crossmatch.id);
    expect(t!.state).toBe('COMPLETED');
    const csv = await (await fetch(`${broker.url}${t!.results}?format=csv`, { headers: { authorization: `Bearer ${tokens.alice}` } })).text();
    expect(csv.trim().split('\r\n')).toHaveLength(t!.resultRows! + 1);
    const vot = await fetch(`${broker.url}${t!.results}`, { headers: { authorization: `Bearer ${tokens.alice}` } });
    expect(vot.headers.get('content-type')).toMatch(/votable/);
    expect(await vot.text()).toMatch(/<VOTABLE/);
    expect(await thread(t!.id, tokens.bob)).toBeNull();
    expect((await fetch(`${broker.url}${t!.results}`, { headers: { authorization: `Bearer ${tokens.bob}` } })).status).toBe(404);
    expect(codeOf(await gql(`mutation($id: ID!) { cancelThread(id: $id) { id } }`, { id: t!.id }, tokens.bob))).toBe('CONSTELLATION_E_NOT_FOUND');
    const bobs = await gql<{ threads: { id: string }[] }>('{ threads { id } }', {}, tokens.bob);
    expect(bobs.data!.threads.map((x) => x.id)).not.toContain(t!.id);
    const alices = await gql<{ threads: { id: string }[] }>('{ threads { id } }');
    expect(alices.data!.threads.map((x) => x.id)).toContain(t!.id);
    // Past results.retentionDays the file is removed by the clean-up, and the result is RESULT_EXPIRED.
    const file = join(dataDir, 'results', 'threads', `${t!.id}.vot`);
    await access(file);
    await broker.db.pool.query(`UPDATE threads SET finished_at = now() - interval '8 days' WHERE id = $1`, [t!.id]);
    expect(await broker.app.services.threads.expireResults(7 * 86_400_000)).toBe(1);
    await expect(access(file)).rejects.toThrow();
    const gone = await fetch(`${broker.url}${t!.results}`, { headers: { authorization: `Bearer ${tokens.alice}` } });
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { code: string }).code).toBe('CONSTELLATION_E_RESULT_EXPIRED');
    // A finished thread cannot be cancelled.
    const cancel = await gql(`mutation($id: ID!) { cancelThread(id: $id) { id } }`, { id: t!.id });
    expect(codeOf(cancel)).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(cancel.errors![0].message).toMatch(/already COMPLETED/);
  }, WAITING_TEST_MS);

  it('bad input is refused with a stable code naming what is wrong, and records nothing', async () => {
    const before = (await gql<{ threads: { id: string }[] }>('{ threads(limit: 500) { id } }')).data!.threads.length;
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [input({ left: { dataset: 'nope.nothing', columns: [] } }), 'CONSTELLATION_E_INVALID_ARGUMENT', /input\.left\.dataset .*nope\.nothing/],
      [input({ left: { dataset: 'misc.notes', columns: [] } }), 'CONSTELLATION_E_INVALID_ARGUMENT', /misc\.notes has no position columns/],
      [input({ right: { dataset: 'ps1_dr2.mean_object', columns: ['objid', 'no_such_column'] } }), 'CONSTELLATION_E_INVALID_ARGUMENT', /input\.right\.columns\[1\].*no column no_such_column/],
      [input({ radiusArcsec: 0 }), 'CONSTELLATION_E_INVALID_ARGUMENT', /radiusArcsec/],
      [input({ radiusArcsec: -1 }), 'CONSTELLATION_E_INVALID_ARGUMENT', /radiusArcsec/],
      [input({ radiusArcsec: 61 }), 'CONSTELLATION_E_INVALID_ARGUMENT', /radiusArcsec/],
      [input({ region: null }), 'CONSTELLATION_E_INVALID_ARGUMENT', /region is required/],
      [input({ region: {} }), 'CONSTELLATION_E_INVALID_ARGUMENT', /region is required/],
    ];
    for (const [i, code, message] of bad) {
      const a = await crossmatch(i);
      expect(codeOf(a), JSON.stringify(i)).toBe(code);
      expect(a.errors![0].message).toMatch(message);
    }
    // NaN cannot travel in JSON; GraphQL refuses a non-number radius before the resolver.
    expect((await crossmatch(input({ radiusArcsec: 'NaN' }))).errors).toBeDefined();
    // The forced strategy refused: its violation gives the estimated rows against the limit, even at the finest tiles.
    const deep = await crossmatch(input({ right: { dataset: 'deep.objects', columns: ['objid'] }, strategy: 'BROKER' }));
    expect(codeOf(deep)).toBe('CONSTELLATION_E_NO_ELIGIBLE_SITE');
    const forced = deep.errors![0].extensions!.violations!;
    expect(forced.map((v) => v.path)).toEqual(['strategy/BROKER']);
    expect(forced[0].rule).toBe('MAXREC');
    expect(forced[0].message).toMatch(/about [\d,]+ right rows read .* exceed maxRec 120 of beta, and even tiles of order 12 .* need about [\d,]+ rows/);
    // Every strategy refused: one violation per strategy.
    const none = await crossmatch(input({ right: { dataset: 'deep.objects', columns: ['objid'] }, sites: ['beta'] }));
    expect(codeOf(none)).toBe('CONSTELLATION_E_NO_ELIGIBLE_SITE');
    const violations = none.errors![0].extensions!.violations!;
    expect(violations.map((v) => v.path).sort()).toEqual(['strategy/BROKER', 'strategy/SAME_SITE', 'strategy/UPLOAD']);
    expect(violations.find((v) => v.path === 'strategy/SAME_SITE')!.rule).toBe('NO_SITE_HOLDS_BOTH');
    expect(violations.find((v) => v.path === 'strategy/BROKER')!.rule).toMatch(/NOT_ALLOWED_SITE/);
    const after = (await gql<{ threads: { id: string }[] }>('{ threads(limit: 500) { id } }')).data!.threads.length;
    expect(after).toBe(before);
  }, WAITING_TEST_MS);

  it('an idempotency key returns the same thread for the same request and is refused for another', async () => {
    const first = await crossmatch(input({ strategy: 'SAME_SITE', idempotencyKey: 'xm-1' }));
    const again = await crossmatch(input({ strategy: 'SAME_SITE', idempotencyKey: 'xm-1' }));
    expect(again.data!.crossmatch.id).toBe(first.data!.crossmatch.id);
    const other = await crossmatch(input({ strategy: 'BROKER', idempotencyKey: 'xm-1' }));
    expect(codeOf(other)).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(other.errors![0].message).toMatch(/already used for a different request/);
    await ended(first.data!.crossmatch.id);
  }, WAITING_TEST_MS);

  it('a step failing at a site ends the thread ERROR naming the missing tiles, with no result', async () => {
    betaTap.hostile.result = () => 'this is not a VOTable';
    try {
      const started = await crossmatch(input({ strategy: 'BROKER', sites: ['alpha', 'beta'] }));
      expect(started.errors).toBeUndefined();
      const t = await ended(started.data!.crossmatch.id);
      expect(t!.state).toBe('ERROR');
      expect(t!.results).toBeNull();
      expect(t!.error!.message).toMatch(/tiles are missing \(tile \d+\/\d+/);
      expect(t!.error!.message).toMatch(/no result was written/);
      const failed = t!.steps.filter((s) => s.state === 'ERROR');
      expect(failed.length).toBeGreaterThan(0);
      for (const s of failed) {
        expect(s.site).toBe('beta');
        expect(t!.error!.message).toContain(`tile ${s.tile.order}/${s.tile.cell}`);
      }
    } finally {
      delete betaTap.hostile.result;
    }
  }, WAITING_TEST_MS);
  it('threadUpdated follows the thread to its end with progress; another user\'s subscription is NOT_FOUND', async () => {
    closeGate(0);
    let client: SubscriptionClient | undefined;
    try {
      const started = await crossmatch(input({ strategy: 'BROKER', sites: ['alpha', 'beta'], mode: 'ALL' }));
      expect(started.errors).toBeUndefined();
      const id = started.data!.crossmatch.id;
      const stranger = await SubscriptionClient.connect(broker.url, { authorization: `Bearer ${tokens.bob}` });
      try {
        await expect(stranger.run('subscription($id: ID!) { threadUpdated(id: $id) { id } }', { id }, 30_000)).rejects.toThrow(/NOT_FOUND|no thread/);
      } finally {
        stranger.close();
      }
      client = await SubscriptionClient.connect(broker.url, { authorization: `Bearer ${tokens.alice}` });
      const seen = await client.run<{ threadUpdated: { state: string; progress: { stepsDone: number; stepsTotal: number } } }>(
        'subscription($id: ID!) { threadUpdated(id: $id) { state progress { stepsDone stepsTotal } } }', { id }, WAITING_TEST_MS - 10_000, () => openGate());
      const last = seen.at(-1)!.threadUpdated;
      expect(last.state).toBe('COMPLETED');
      expect(last.progress.stepsDone).toBe(last.progress.stepsTotal);
      expect(seen.length).toBeGreaterThan(2);
      const done = seen.map((m) => m.threadUpdated.progress.stepsDone);
      expect([...done].sort((a, b) => a - b)).toEqual(done);
      // A subscription that ends with its thread ends quietly (no error logged for its queue).
      expect(capturedLines(/subscription queue error/)).toEqual([]);
    } finally {
      client?.close();
      openGate();
    }
  }, WAITING_TEST_MS);

  it('a broker that stops mid-thread leaves it to another, which finishes it without redoing finished steps', async () => {
    const db = await freshDatabase();
    // Generous deadlines and leases: a stopping broker releases both, so the second takes over at once.
    const timings = { jobs: { pollIntervalMs: 50, tickMs: 25, submitTimeoutMs: 60_000 }, threads: { leaseMs: 30_000, sweepMs: 100 } };
    const first = await startBroker(configFromYaml(yaml, { CONSTELLATION_DATA: dataDir }), db, timings);
    let second: TestBroker | undefined;
    const via = async <T>(b: TestBroker, query: string, variables: Record<string, unknown>) => {
      const res = await fetch(`${b.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.alice}` }, body: JSON.stringify({ query, variables }) });
      return (await res.json()) as { data?: T; errors?: unknown[] };
    };
    try {
      for (const id of ['alpha', 'beta']) expect(await first.harvest(id), id).toMatchObject({ outcome: 'OK' });
      const held = closeGate(6);
      const started = await via<{ crossmatch: ThreadView }>(first, `mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${THREAD} } }`, { i: input({ strategy: 'BROKER', sites: ['alpha', 'beta'] }) });
      expect(started.errors).toBeUndefined();
      const id = started.data!.crossmatch.id;
      const view = async (b: TestBroker) => (await via<{ thread: ThreadView }>(b, `query($id: ID!) { thread(id: $id) { ${THREAD} } }`, { id })).data!.thread;
      // Beta holds every read after its sixth: the thread is mid-way, some steps done, some waiting at beta.
      const mid = await waitUntil(() => view(first), (t) => held.seen > held.allow && t.steps.filter((s) => s.state === 'COMPLETED').length >= 6, { describe: (t) => JSON.stringify(t.steps.map((s) => s.state)) });
      const doneBefore = new Map(mid.steps.filter((s) => s.state === 'COMPLETED').map((s) => [s.ordinal, s.job!.id]));
      await first.close();
      openGate();
      second = await startBroker(configFromYaml(yaml, { CONSTELLATION_DATA: dataDir }), db, timings);
      const t = await waitUntil(() => view(second!), (x) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(x.state), { describe: (x) => `${x.state}: ${JSON.stringify(x.steps.map((s) => s.state))}` });
      expect(t.state, JSON.stringify(t.error)).toBe('COMPLETED');
      for (const [ordinal, jobId] of doneBefore) {
        const step = t.steps.find((s) => s.ordinal === ordinal)!;
        expect(step.job!.id).toBe(jobId);
        const history = await via<{ job: { history: { message: string | null }[] } }>(second, 'query($id: ID!) { job(id: $id) { history { message } } }', { id: jobId });
        expect(history.data!.job.history.filter((h) => /^submitted to/.test(h.message ?? ''))).toHaveLength(1);
      }
      const res = await fetch(`${second.url}${t.results}?format=json`, { headers: { authorization: `Bearer ${tokens.alice}` } });
      const body = (await res.json()) as { metadata: { name: string }[]; data: unknown[][] };
      const names = body.metadata.map((m) => m.name);
      expect(body.data.map((row) => `${String(row[names.indexOf('source_id')])} ${String(row[names.indexOf('objid')])}`).sort()).toEqual(bruteForce('BEST'));
    } finally {
      openGate();
      await second?.close();
      // Closing twice is harmless: fastify's close resolves at once the second time.
      await first.close();
      await db.close();
    }
  }, WAITING_TEST_MS);
  it('cancelThread aborts a running thread and the step jobs still running at their sites', async () => {
    closeGate(0);
    try {
      const started = await crossmatch(input({ strategy: 'BROKER', sites: ['alpha', 'beta'] }));
      const id = started.data!.crossmatch.id;
      // A read is held at beta: its job is still running.
      const running = await waitUntil(() => thread(id), (t) => t !== null && t.steps.some((s) => s.site === 'beta' && s.job !== null && s.state === 'RUNNING'), { describe: (t) => JSON.stringify(t?.steps.map((s) => s.state)) });
      const heldJob = running!.steps.find((s) => s.site === 'beta' && s.job !== null && s.state === 'RUNNING')!.job!.id;
      const cancelled = await gql<{ cancelThread: ThreadView }>(`mutation($id: ID!) { cancelThread(id: $id) { ${THREAD} } }`, { id });
      expect(cancelled.errors).toBeUndefined();
      expect(cancelled.data!.cancelThread.state).toBe('ABORTED');
      expect(cancelled.data!.cancelThread.results).toBeNull();
      expect(cancelled.data!.cancelThread.steps.every((s) => s.state === 'COMPLETED' || s.state === 'ABORTED')).toBe(true);
      const job = await gql<{ job: { state: string } }>('query($id: ID!) { job(id: $id) { state } }', { id: heldJob });
      expect(job.data!.job.state).toBe('ABORTED');
      openGate();
      // It stays ABORTED: the broker driving it lets it go.
      const later = await waitUntil(() => thread(id), (t) => t !== null && t.steps.every((s) => s.job === null || ['COMPLETED', 'ABORTED', 'ERROR'].includes(s.job.state)));
      expect(later!.state).toBe('ABORTED');
    } finally {
      openGate();
    }
  }, WAITING_TEST_MS);
  it('a read that fails at its site moves to another site holding the same side, in that site\'s names', async () => {
    alphaTap.hostile.result = () => 'this is not a VOTable';
    try {
      const started = await crossmatch(input({ strategy: 'BROKER', sites: ['alpha', 'beta', 'gamma'] }));
      expect(started.errors, JSON.stringify(started.errors)).toBeUndefined();
      const chosen = started.data!.crossmatch.plan.candidates.find((c) => c.chosen)!;
      expect(chosen.leftSite).toBe('alpha');
      const t = await ended(started.data!.crossmatch.id);
      expect(t!.state, JSON.stringify(t!.error)).toBe('COMPLETED');
      const leftReads = t!.steps.filter((s) => s.kind === 'site-read' && s.ordinal % 2 === 0);
      expect(leftReads.length).toBeGreaterThan(0);
      for (const s of leftReads) {
        expect(s.site).toBe('gamma');
        const history = await gql<{ job: { history: { message: string | null }[] } }>('query($id: ID!) { job(id: $id) { history { message } } }', { id: s.job!.id });
        expect(history.data!.job.history.some((h) => /^alpha: /.test(h.message ?? ''))).toBe(true);
      }
      expect((await pairsOf(t!)).pairs).toEqual(bruteForce('BEST'));
    } finally {
      delete alphaTap.hostile.result;
    }
  }, WAITING_TEST_MS);

  it('the fast lane: a caller inside a site is told per candidate and per step whether its data stays there (0 bytes) or travels, and how much', async () => {
    type Movement = { step: string; site: string | null; side: string | null; local: boolean | null; bytes: number; message: string };
    type FastView = {
      id: string;
      state: string;
      plan: { callerSite: string | null; candidates: { strategy: string; chosen: boolean; leftSite: string | null; rightSite: string | null; estimatedBytesMoved: number; movement: Movement[] }[] };
      steps: { kind: string; site: string | null; local: boolean | null; movement: string; bytesIn: number | null }[];
    };
    const FAST = `id state plan { callerSite candidates { strategy chosen leftSite rightSite estimatedBytesMoved movement { step site side local bytes message } } }
      steps { kind site local movement bytesIn }`;
    const start = async (extra: Record<string, unknown>, site?: string) => {
      const answer = await gql<{ crossmatch: FastView }>(`mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${FAST} } }`, { i: input(extra) }, tokens.alice, site ? { 'x-constellation-site': site } : {});
      expect(answer.errors, JSON.stringify(answer.errors)).toBeUndefined();
      const id = answer.data!.crossmatch.id;
      const done = await waitUntil(
        () => gql<{ thread: FastView }>(`query($id: ID!) { thread(id: $id) { ${FAST} } }`, { id }),
        (a) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(a.data?.thread.state ?? ''),
        { describe: (a) => JSON.stringify(a.data?.thread.state) },
      );
      return { planned: answer.data!.crossmatch, done: done.data!.thread };
    };

    // Without a caller site: nothing is local, everything a site returns travels to the broker.
    const plain = await start({ strategy: 'SAME_SITE' });
    expect(plain.planned.plan.callerSite).toBeNull();
    const plainJoin = plain.planned.plan.candidates.find((c) => c.chosen)!;
    expect(plainJoin.leftSite).toBe('gamma');
    expect(plainJoin.estimatedBytesMoved).toBeGreaterThan(0);
    expect(plainJoin.movement).toEqual([expect.objectContaining({ step: 'site-join', site: 'gamma', local: null, message: expect.stringMatching(/travel to the broker/) })]);
    expect(plain.done.steps.every((s) => s.local === null && /travel to the broker/.test(s.movement))).toBe(true);

    // From gamma, which holds both: the join there moves 0 bytes, and each step says it stays there.
    const gamma = await start({ strategy: 'SAME_SITE' }, 'gamma');
    expect(gamma.done.state).toBe('COMPLETED');
    expect(gamma.planned.plan.callerSite).toBe('gamma');
    const local = gamma.planned.plan.candidates.find((c) => c.chosen)!;
    expect(local.leftSite).toBe('gamma');
    expect(local.estimatedBytesMoved).toBe(0);
    expect(local.movement).toEqual([{ step: 'site-join', site: 'gamma', side: null, local: true, bytes: 0, message: expect.stringMatching(/at your site gamma: read locally, 0 bytes moved/) }]);
    // A candidate elsewhere says what would travel to gamma.
    const away = gamma.planned.plan.candidates.find((c) => c.strategy === 'BROKER' && c.leftSite === 'alpha' && c.rightSite === 'beta')!;
    expect(away.movement.map((m) => [m.step, m.site, m.local])).toEqual([['site-read', 'alpha', false], ['site-read', 'beta', false], ['match', null, true]]);
    expect(away.movement[0].message).toMatch(/bytes travel from alpha to your site gamma/);
    expect(gamma.done.steps.length).toBeGreaterThan(0);
    for (const s of gamma.done.steps) expect(s).toMatchObject({ site: 'gamma', local: true, movement: expect.stringMatching(/stays there \(0 bytes moved\)/) });

    // From alpha, reading both sides into the broker: alpha's reads are local, beta's travel (with their bytes).
    const alpha = await start({ strategy: 'BROKER', sites: ['alpha', 'beta'] }, 'alpha');
    expect(alpha.done.state).toBe('COMPLETED');
    const reads = alpha.done.steps.filter((s) => s.kind === 'site-read');
    expect(reads.filter((s) => s.site === 'alpha').every((s) => s.local === true && /0 bytes moved/.test(s.movement))).toBe(true);
    const remote = reads.filter((s) => s.site === 'beta');
    expect(remote.length).toBeGreaterThan(0);
    for (const s of remote) {
      expect(s.local).toBe(false);
      expect(s.movement).toBe(`runs at beta: ${Math.round(s.bytesIn!).toLocaleString('en-US')} bytes travel from beta to your site alpha`);
    }
    expect(alpha.done.steps.find((s) => s.kind === 'match')).toMatchObject({ local: true, movement: expect.stringMatching(/matched in the broker/) });
  }, WAITING_TEST_MS);
});
