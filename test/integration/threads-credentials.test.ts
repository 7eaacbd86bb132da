/**
 * A thread runs with its owner's credentials whichever broker drives it (issue 11): beta takes
 * only the user's own linked token (as MAST takes its cookie), resolved when the thread starts
 * (the owner's bearer token is at hand only then) and kept sealed with the thread. The first
 * broker stops mid-thread with reads held at beta; a second broker, which never saw the owner's
 * request, takes the thread over and submits the remaining steps, and beta sees every one of
 * them come as the owner. The kept credentials are sealed (no token in the table), gone once
 * the thread ends, and gone at once when the owner unlinks the token (as a job's copies are).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../adapters/ivoa/votable/index.js';
import { siteTokens } from '../sites/credential-checks.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const KEY = randomBytes(32).toString('base64');
const PS_ALICE = 'ps-token-alice-4c1d8e2f7a90b3';
const RADIUS = 2;
const CONE = { ra: 0.4, dec: 0, radiusDeg: 0.5 };
const PATCH = { raMin: 0, raMax: 0.8, decMin: -0.5, decMax: 0.5 };

/** Pairs 0.1 to 0.9 × the radius apart, inside the cone. */
function planted(): { gaia: Row[]; ps: Row[] } {
  const gaia: Row[] = [];
  const ps: Row[] = [];
  for (let k = 0; k < 10; k++) {
    const ra = 0.2 + k * 0.04;
    const dec = ((k % 5) - 2) * 0.1;
    gaia.push([BigInt(1_000_000 + k), ra, dec]);
    ps.push([BigInt(2_000_000 + k), ra, dec + ((0.1 + 0.08 * k) * RADIUS) / 3600]);
  }
  return { gaia, ps };
}
const PLANTED = planted();
const position = [
  { name: 'ra', datatype: 'double' as const, unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
  { name: 'dec', datatype: 'double' as const, unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
];
const GAIA: SimTable = { name: 'gaia_dr3.gaia_source', rows: 200, position: { ra: 'ra', dec: 'dec' }, region: PATCH, planted: PLANTED.gaia, columns: [{ name: 'source_id', datatype: 'long' }, ...position] };
// Advertised far larger than held, so reads at beta (maxRec 120) are tiled: many steps there.
const PS: SimTable = { name: 'ps1_dr2.mean_object', rows: 20_000_000, heldRows: 200, position: { ra: 'ra', dec: 'dec' }, region: PATCH, planted: PLANTED.ps, columns: [{ name: 'objid', datatype: 'long' }, ...position] };

interface ThreadView { id: string; state: string; resultRows: number | null; error: { code: string; message: string } | null; steps: { ordinal: number; site: string | null; state: string; job: { id: string } | null }[] }
const THREAD = 'id state resultRows error { code message } steps { ordinal site state job { id } }';

describe(`a taken-over thread submits its steps with the owner's kept credentials (${backend})`, () => {
  let idp: TestOidcProvider;
  let alpha: SimSite;
  let beta: SimSite;
  let db: TestDatabase;
  let dataDir: string;
  let yaml: string;
  const tokens: Record<string, string> = {};
  let gate: { allow: number; seen: number; opened: Promise<void>; open: () => void } | undefined;
  const openGate = () => {
    gate?.open();
    gate = undefined;
  };

  beforeAll(async () => {
    registerSecret(PS_ALICE);
    registerSecret(KEY);
    idp = await startOidcProvider();
    for (const user of ['alice'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    alpha = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [GAIA] });
    beta = new SimSite();
    mountTapService(beta, { path: '/tap', tables: [PS], maxRec: 120 });
    // Capabilities are public; queries need the user's own token, as a cookie.
    beta.requireCredential({ form: { kind: 'cookie', name: 'ps_token' }, identify: siteTokens({ [PS_ALICE]: 'alice' }), applies: (_m, url) => /^\/tap\/(sync|async)/.test(url) });
    // While a gate is set, beta answers `allow` synchronous queries and holds the rest until it opens.
    beta.app.addHook('onRequest', async (request) => {
      if (!gate || request.method !== 'POST' || request.url.split('?')[0] !== '/tap/sync') return;
      gate.seen++;
      if (gate.seen > gate.allow) await gate.opened;
    });
    await Promise.all([alpha.start(), beta.start()]);
    dataDir = await mkdtemp(join(tmpdir(), 'threads-credentials-'));
    db = await freshDatabase();
    yaml = `
federation: { name: thread-credentials }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
crossmatch: { maxParallelPerSite: 2 }
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${alpha.url}/tap" }
  - id: beta
    name: Beta
    adapter: tap
    url: "${beta.url}/tap"
    credentials: { strategy: linked, cookie: ps_token }
`;
  }, WAITING_TEST_MS);

  afterAll(async () => {
    openGate();
    await db?.close();
    await Promise.all([alpha?.close(), beta?.close()]);
    await idp?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('a second broker finishes the thread as its owner at a site that takes only the owner\'s linked token', async () => {
    // Generous deadlines and leases: a stopping broker releases both, so the second takes over at once.
    const options = { env: { CONSTELLATION_SECRET_KEY: KEY }, jobs: { pollIntervalMs: 50, tickMs: 25, submitTimeoutMs: 60_000 }, threads: { leaseMs: 30_000, sweepMs: 100 } };
    const first = await startBroker(configFromYaml(yaml, { CONSTELLATION_DATA: dataDir }), db, options);
    let second: TestBroker | undefined;
    const via = async <T>(b: TestBroker, query: string, variables: Record<string, unknown>) => {
      const res = await fetch(`${b.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.alice}` }, body: JSON.stringify({ query, variables }) });
      const text = await res.text();
      for (const secret of [PS_ALICE, KEY]) expect(text.includes(secret)).toBe(false);
      return JSON.parse(text) as { data?: T; errors?: { message: string }[] };
    };
    try {
      for (const id of ['alpha', 'beta']) expect(await first.harvest(id), id).toMatchObject({ outcome: 'OK' });
      expect((await via<{ linkSiteCredential: boolean }>(first, 'mutation($s: ID!, $t: String!) { linkSiteCredential(siteId: $s, token: $t) }', { s: 'beta', t: PS_ALICE })).data).toEqual({ linkSiteCredential: true });
      const authFrom = beta.authLog.length;
      let open = () => {};
      const opened = new Promise<void>((resolve) => (open = resolve));
      const held = (gate = { allow: 2, seen: 0, opened, open });
      const started = await via<{ crossmatch: ThreadView }>(first, `mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${THREAD} } }`, {
        i: {
          left: { dataset: 'gaia_dr3.gaia_source', columns: ['source_id'] },
          right: { dataset: 'ps1_dr2.mean_object', columns: ['objid'] },
          region: { cone: CONE }, radiusArcsec: RADIUS, strategy: 'BROKER', sites: ['alpha', 'beta'],
        },
      });
      expect(started.errors, JSON.stringify(started.errors)).toBeUndefined();
      const id = started.data!.crossmatch.id;
      const view = async (b: TestBroker) => (await via<{ thread: ThreadView }>(b, `query($id: ID!) { thread(id: $id) { ${THREAD} } }`, { id })).data!.thread;
      // The owner's credential for beta is kept with the thread, sealed.
      const kept = await db.pool.query<{ site_id: string; sealed: string }>('SELECT site_id, sealed FROM thread_credentials WHERE thread_id = $1', [id]);
      expect(kept.rows.map((r) => r.site_id)).toEqual(['beta']);
      expect(kept.rows[0].sealed.includes(PS_ALICE)).toBe(false);
      // Beta holds its reads after the second: the thread is mid-way, beta steps not yet submitted.
      const mid = await waitUntil(() => view(first), (t) => held.seen > held.allow, { describe: (t) => JSON.stringify(t.steps.map((s) => s.state)) });
      const notYetAtBeta = mid.steps.filter((s) => s.site === 'beta' && s.job === null).map((s) => s.ordinal);
      expect(notYetAtBeta.length, 'beta steps the second broker must submit').toBeGreaterThan(0);
      await first.close();
      openGate();
      second = await startBroker(configFromYaml(yaml, { CONSTELLATION_DATA: dataDir }), db, options);
      const b = second;
      const t = await waitUntil(() => view(b), (x) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(x.state), { describe: (x) => `${x.state}: ${JSON.stringify(x.steps.map((s) => s.state))}` });
      expect(t.state, JSON.stringify(t.error)).toBe('COMPLETED');
      expect(t.resultRows).toBeGreaterThanOrEqual(PLANTED.gaia.length);
      // Steps the second broker submitted ran at beta too, and every request beta judged came as alice.
      for (const ordinal of notYetAtBeta) expect(t.steps.find((s) => s.ordinal === ordinal)).toMatchObject({ site: 'beta', state: 'COMPLETED' });
      const judged = beta.authLog.slice(authFrom);
      expect(judged.length).toBeGreaterThanOrEqual(t.steps.filter((s) => s.site === 'beta').length);
      expect([...new Set(judged.map((e) => e.user ?? `refused:${e.refused}`))]).toEqual(['alice']);
      // Nothing more is submitted for a finished thread: its kept credentials are gone.
      expect((await db.pool.query('SELECT 1 FROM thread_credentials WHERE thread_id = $1', [id])).rowCount).toBe(0);
    } finally {
      openGate();
      await second?.close();
      await first.close();
    }
  }, WAITING_TEST_MS);

  it('unlinking the token forgets the copy kept with a running thread', async () => {
    const b = await startBroker(configFromYaml(yaml, { CONSTELLATION_DATA: dataDir }), db, { env: { CONSTELLATION_SECRET_KEY: KEY }, jobs: { pollIntervalMs: 50, tickMs: 25 } });
    const gql = async <T>(query: string, variables: Record<string, unknown>) => {
      const res = await fetch(`${b.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.alice}` }, body: JSON.stringify({ query, variables }) });
      return (await res.json()) as { data?: T; errors?: { message: string }[] };
    };
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    gate = { allow: 0, seen: 0, opened, open };
    try {
      expect((await gql<{ linkSiteCredential: boolean }>('mutation($s: ID!, $t: String!) { linkSiteCredential(siteId: $s, token: $t) }', { s: 'beta', t: PS_ALICE })).data).toEqual({ linkSiteCredential: true });
      const started = await gql<{ crossmatch: { id: string } }>('mutation($i: CrossmatchInput!) { crossmatch(input: $i) { id } }', {
        i: { left: { dataset: 'gaia_dr3.gaia_source' }, right: { dataset: 'ps1_dr2.mean_object' }, region: { cone: CONE }, radiusArcsec: RADIUS, strategy: 'BROKER', sites: ['alpha', 'beta'] },
      });
      expect(started.errors, JSON.stringify(started.errors)).toBeUndefined();
      const id = started.data!.crossmatch.id;
      const kept = () => db.pool.query<{ site_id: string }>('SELECT site_id FROM thread_credentials WHERE thread_id = $1', [id]).then((r) => r.rows.map((x) => x.site_id));
      expect(await kept()).toEqual(['beta']);
      expect((await gql<{ unlinkSiteCredential: boolean }>('mutation($s: ID!) { unlinkSiteCredential(siteId: $s) }', { s: 'beta' })).data).toEqual({ unlinkSiteCredential: true });
      expect(await kept()).toEqual([]);
      const cancelled = await gql<{ cancelThread: { state: string } }>('mutation($id: ID!) { cancelThread(id: $id) { state } }', { id });
      expect(cancelled.data?.cancelThread.state).toBe('ABORTED');
    } finally {
      openGate();
      await b.close();
    }
  }, WAITING_TEST_MS);
});
