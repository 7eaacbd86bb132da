/**
 * Jobs run as their submitter, with the credential each site takes, against a real OpenID
 * provider and simulated sites that check what they receive: a site that trusts the issuer gets
 * the user's token exchanged for its own audience (verified against the provider's JWKS, once per
 * user and audience); SciServer gets the user's linked Keystone token in X-Auth-Token and a
 * MAST-like site the linked token as its cookie, each for that user only; an anonymous caller or
 * a user without a link is refused before anything is sent; a credential the site refuses ends
 * the job with UPSTREAM_AUTH saying what to do; linked tokens survive key rotation; a restarted
 * broker carries on a job with the kept credential; and no token appears in any answer, record
 * or log line.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcProvider } from '../../broker/auth/provider.js';
import { SecretKeys } from '../../broker/auth/secret-keys.js';
import { harvestCredentialFor } from '../../broker/auth/site-credentials.js';
import type { SiteConfig } from '../../broker/config/config.js';
import { issuerTokens, siteTokens } from '../sites/credential-checks.js';
import { SciserverSite } from '../sites/sciserver-site.js';
import { SimSite, type AuthLogEntry, type CredentialHolder } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, BROKER_CLIENT_SECRET, TEST_USERS, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const EXCH_AUDIENCE = 'urn:site:exch';
// How long exch keeps an async job queued: long enough for a test to act while the job runs there.
const EXCH_QUEUE_MS = 3000;
const KEY_A = randomBytes(32).toString('base64');
const KEY_B = randomBytes(32).toString('base64');
// Each user's own site tokens, as the sites issued them; the broker's own SciServer token is for harvests only.
const SCISERVER_TOKENS = { alice: 'keystone-alice-5e1f0c9a7b2d4e63', bob: 'keystone-bob-93ad01f2c6b84d57', broker: 'keystone-broker-0c7e2a9d41f3b865' };
const MAST_ALICE = 'mast-token-alice-8b1e4f7c2a9d';
const STALE = 'keystone-stale-token-the-site-forgot';
const ALL_SITE_TOKENS = [...Object.values(SCISERVER_TOKENS), MAST_ALICE, STALE];

// A survey at two sites that trust the issuer; whole-table queries run async (50,000 rows advertised, 300 held).
const SURVEY: SimTable = {
  name: 'survey.sources',
  rows: 50_000,
  heldRows: 300,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
  ],
};
const MASTLIKE: SimTable = { ...SURVEY, name: 'catalogs.objects', rows: 300 };

type Answer<T> = { status: number; data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
interface JobView {
  id: string;
  state: string;
  site: { id: string } | null;
  siteJobId: string | null;
  results: string | null;
  error: { code: string; message: string } | null;
  history: { message: string | null; errorCode: string | null }[];
  plan: unknown;
  request: unknown;
}
const JOB = 'id state site { id } siteJobId results error { code message } history { message errorCode } plan { candidates { siteId } } request';
const QUERY_ON = (site: string) => ({ exch: 'SELECT source_id, ra FROM survey.sources', strict: 'SELECT source_id, ra FROM survey.sources', sciserver: 'SELECT TOP 2 p.objid, p.ra FROM sdss_dr17.photoobjall AS p ORDER BY p.objid', mastlike: 'SELECT TOP 3 source_id FROM catalogs.objects' })[site]!;

describe(`jobs run with the submitter's credential at every site (${backend})`, () => {
  let idp: TestOidcProvider;
  let exch: SimSite;
  let strict: SimSite;
  let mastlike: SimSite;
  let sciserver: SciserverSite;
  let db: TestDatabase;
  let broker: TestBroker;
  let yaml: string;
  const tokens: Record<string, string> = {};
  /** Every exchanged token a site received: secrets no answer, record or log may show. */
  const exchanged = new Set<string>();

  const start = async (keys: string | undefined) => {
    broker = await startBroker(configFromYaml(yaml), db, {
      env: { TEST_SCISERVER_TOKEN: SCISERVER_TOKENS.broker, TEST_IDP_SECRET: BROKER_CLIENT_SECRET, ...(keys ? { CONSTELLATION_SECRET_KEY: keys } : {}) },
      jobs: { pollIntervalMs: 50, tickMs: 25, requestTimeoutMs: 25_000, backoffBaseMs: 50, backoffMaxMs: 200 },
    });
  };
  async function gql<T>(query: string, variables: Record<string, unknown> = {}, token?: string): Promise<Answer<T>> {
    const res = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, ...((await res.json()) as object) };
  }
  const codeOf = (a: Answer<unknown>) => a.errors?.[0]?.extensions?.code;
  const submit = (site: string, token?: string) => gql<{ submitQuery: JobView }>(`mutation($i: QueryInput!) { submitQuery(input: $i) { ${JOB} } }`, { i: { adql: QUERY_ON(site), site } }, token);
  const job = async (id: string, token: string) => (await gql<{ job: JobView }>(`query($id: ID!) { job(id: $id) { ${JOB} } }`, { id }, token)).data!.job;
  const finished = (id: string, token: string) =>
    waitUntil(() => job(id, token), (j) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state), { describe: (j) => `job ${id} is still ${j.state}: ${JSON.stringify(j.history)}` });
  const link = (siteId: string, token: string, as?: string) => gql<{ linkSiteCredential: boolean }>('mutation($s: ID!, $t: String!) { linkSiteCredential(siteId: $s, token: $t) }', { s: siteId, t: token }, as);
  const unlink = (siteId: string, as?: string) => gql<{ unlinkSiteCredential: boolean }>('mutation($s: ID!) { unlinkSiteCredential(siteId: $s) }', { s: siteId }, as);
  /** Requests a site's gate judged from `from` on. */
  const since = (site: SimSite, from: number): AuthLogEntry[] => site.authLog.slice(from);
  const usersIn = (entries: AuthLogEntry[]) => [...new Set(entries.map((e) => e.user ?? `refused:${e.refused}`))];
  /** No secret of this file in `text`. */
  const expectNoSecret = (text: string) => {
    for (const secret of [...Object.values(tokens), ...exchanged, ...ALL_SITE_TOKENS]) expect(text.includes(secret), `a token appears in: ${text.slice(0, 300)}`).toBe(false);
  };
  const remember = (check: (value: string) => CredentialHolder | undefined | Promise<CredentialHolder | undefined>) => async (value: string) => {
    const holder = await check(value);
    if (holder?.audience) {
      exchanged.add(value);
      registerSecret(value);
    }
    return holder;
  };

  beforeAll(async () => {
    ALL_SITE_TOKENS.forEach(registerSecret);
    registerSecret(KEY_A);
    registerSecret(KEY_B);
    idp = await startOidcProvider();
    for (const user of ['alice', 'bob', 'carol'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    // Capabilities are public (VOSI, as at CADC); queries need the user's token for the site's own audience.
    const queriesOnly = (_method: string, url: string) => /^\/tap\/(sync|async)/.test(url);
    exch = new SimSite();
    mountTapService(exch, { path: '/tap', tables: [SURVEY], asyncDelayMs: EXCH_QUEUE_MS });
    exch.requireCredential({ form: { kind: 'bearer' }, identify: remember(issuerTokens(idp, EXCH_AUDIENCE)), applies: queriesOnly });
    // strict expects tokens for another audience than the one federation.yaml names: it refuses every one the broker sends.
    strict = new SimSite();
    mountTapService(strict, { path: '/tap', tables: [SURVEY] });
    strict.requireCredential({ form: { kind: 'bearer' }, identify: remember(issuerTokens(idp, 'urn:site:someone-else')), applies: queriesOnly });
    mastlike = new SimSite();
    mountTapService(mastlike, { path: '/tap', tables: [MASTLIKE] });
    mastlike.requireCredential({ form: { kind: 'cookie', name: 'mast_token' }, identify: siteTokens({ [MAST_ALICE]: 'alice' }), applies: queriesOnly });
    sciserver = new SciserverSite();
    sciserver.requireCredential({
      form: { kind: 'header', name: 'X-Auth-Token' },
      identify: siteTokens({ [SCISERVER_TOKENS.alice]: 'alice', [SCISERVER_TOKENS.bob]: 'bob', [SCISERVER_TOKENS.broker]: 'broker' }),
      applies: (_method, url) => !url.startsWith('/login-portal/'),
    });
    await Promise.all([exch.start(), strict.start(), mastlike.start(), sciserver.start()]);
    yaml = `
federation: { name: site-credentials }
harvest: { concurrency: 4, jitterS: 0, timeoutS: 30 }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  clientId: constellation
  clientSecretEnv: TEST_IDP_SECRET
  roles: { admin: [constellation-admins] }
sites:
  - id: exch
    name: Exchange
    adapter: tap
    url: "${exch.url}/tap"
    preference: 2
    credentials: { strategy: token-exchange, audience: "${EXCH_AUDIENCE}" }
  - id: strict
    name: Strict
    adapter: tap
    url: "${strict.url}/tap"
    credentials: { strategy: token-exchange, audience: "urn:site:strict" }
  - id: mastlike
    name: MAST-like
    adapter: tap
    url: "${mastlike.url}/tap"
    credentials: { strategy: linked, cookie: mast_token }
  - id: sciserver
    name: SciServer
    adapter: sciserver
    url: "${sciserver.url}"
    credentials: { strategy: linked, env: TEST_SCISERVER_TOKEN, header: X-Auth-Token }
    options:
      loginUrl: "${sciserver.url}/login-portal/keystone/v3/tokens"
      racmUrl: "${sciserver.url}/racm"
      casjobsUrl: "${sciserver.url}/CasJobs/RestApi"
      casjobsContexts: [DR17]
      computeDomains: { small-jobs: testComputeDomain1 }
    datasets:
      dbo.PhotoObjAll: { id: sdss_dr17.photoobjall, columns: { objID: objid } }
`;
    db = await freshDatabase();
    await start(KEY_A);
    for (const id of ['exch', 'strict', 'mastlike', 'sciserver']) {
      const run = await gql<{ harvest: { outcome: string; errorMessage: string | null } }>('mutation($s: ID!) { harvest(siteId: $s) { outcome errorMessage } }', { s: id }, tokens.carol);
      expect(run.data?.harvest, `${id}: ${JSON.stringify(run)}`).toMatchObject({ outcome: 'OK' });
    }
    // The broker harvested SciServer with its own token; jobs must never come as "broker".
    expect(usersIn(sciserver.authLog)).toEqual(['broker']);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await db?.close();
    await Promise.all([exch?.close(), strict?.close(), mastlike?.close(), sciserver?.close()]);
    await idp?.close();
  });

  it('token exchange: sends each user\'s own token for the site\'s audience, exchanged once per user and audience', async () => {
    const before = exch.authLog.length;
    expect(idp.exchanges(EXCH_AUDIENCE)).toBe(0);
    // Three jobs at once exchange once: concurrent submits share the one call, later ones the cache.
    const submitted = await Promise.all([1, 2, 3].map(() => submit('exch', tokens.alice)));
    for (const s of submitted) expect(s.errors, JSON.stringify(s.errors)).toBeUndefined();
    expect(idp.exchanges(EXCH_AUDIENCE)).toBe(1);
    const done = await Promise.all(submitted.map((s) => finished(s.data!.submitQuery.id, tokens.alice)));
    for (const j of done) expect(j, JSON.stringify(j.history)).toMatchObject({ state: 'COMPLETED', site: { id: 'exch' } });
    const alices = since(exch, before);
    expect(alices.length).toBeGreaterThan(3);
    expect(alices.every((e) => e.user === TEST_USERS.alice.sub && e.audience === EXCH_AUDIENCE), JSON.stringify(alices)).toBe(true);

    // The result of an async job is read from the site, as alice again.
    const read = exch.authLog.length;
    const res = await fetch(`${broker.url}${done[0].results}`, { headers: { authorization: `Bearer ${tokens.alice}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<FIELD name="source_id"');
    expect(usersIn(since(exch, read))).toEqual([TEST_USERS.alice.sub]);

    const bobFrom = exch.authLog.length;
    const bobs = await submit('exch', tokens.bob);
    expect(bobs.errors).toBeUndefined();
    expect(idp.exchanges(EXCH_AUDIENCE)).toBe(2);
    expect((await finished(bobs.data!.submitQuery.id, tokens.bob)).state).toBe('COMPLETED');
    expect(usersIn(since(exch, bobFrom))).toEqual([TEST_USERS.bob.sub]);
    for (const j of [...done, await job(bobs.data!.submitQuery.id, tokens.bob)]) expectNoSecret(JSON.stringify(j));
  }, WAITING_TEST_MS);

  it('refuses an anonymous submit to a site that needs the user\'s credential, sending nothing', async () => {
    const before = exch.authLog.length;
    const anonymous = await submit('exch');
    expect(codeOf(anonymous)).toBe('CONSTELLATION_E_UNAUTHENTICATED');
    expect(anonymous.errors?.[0]?.message).toMatch(/exch.*log in/);
    const linked = await submit('sciserver');
    expect(codeOf(linked)).toBe('CONSTELLATION_E_UNAUTHENTICATED');
    expect(linked.errors?.[0]?.message).toMatch(/log in and link/);
    expect(exch.authLog.length).toBe(before);
  }, WAITING_TEST_MS);

  it('links, checks and unlinks site tokens, and never returns them', async () => {
    const none = await submit('sciserver', tokens.alice);
    expect(codeOf(none)).toBe('CONSTELLATION_E_UNAUTHENTICATED');
    expect(none.errors?.[0]?.message).toMatch(/linkSiteCredential\(siteId: "sciserver"/);

    expect(codeOf(await link('sciserver', SCISERVER_TOKENS.alice))).toBe('CONSTELLATION_E_UNAUTHENTICATED');
    expect(codeOf(await link('nowhere', SCISERVER_TOKENS.alice, tokens.alice))).toBe('CONSTELLATION_E_UNKNOWN_SITE');
    expect(codeOf(await link('exch', SCISERVER_TOKENS.alice, tokens.alice))).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    const long = await link('sciserver', 'x'.repeat(9000), tokens.alice);
    expect(codeOf(long)).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(long.errors?.[0]?.message).toMatch(/8192 bytes/);
    expect(codeOf(await link('sciserver', 'two words', tokens.alice))).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(codeOf(await unlink('sciserver'))).toBe('CONSTELLATION_E_UNAUTHENTICATED');

    expect((await link('sciserver', SCISERVER_TOKENS.alice, tokens.alice)).data).toEqual({ linkSiteCredential: true });
    expect((await link('sciserver', SCISERVER_TOKENS.bob, tokens.bob)).data).toEqual({ linkSiteCredential: true });
    const stored = await db.pool.query<{ owner: string; sealed: string }>('SELECT owner, sealed FROM site_credentials ORDER BY owner');
    expect(stored.rows.map((r) => r.owner)).toEqual([`user:${TEST_USERS.alice.sub}`, `user:${TEST_USERS.bob.sub}`]);
    expectNoSecret(JSON.stringify(stored.rows));

    expect((await unlink('sciserver', tokens.bob)).data).toEqual({ unlinkSiteCredential: true });
    expect((await unlink('sciserver', tokens.bob)).data).toEqual({ unlinkSiteCredential: false });
    expect(codeOf(await submit('sciserver', tokens.bob))).toBe('CONSTELLATION_E_UNAUTHENTICATED');
    expect((await link('sciserver', SCISERVER_TOKENS.bob, tokens.bob)).data).toEqual({ linkSiteCredential: true });
  }, WAITING_TEST_MS);

  it('sends a linked token in the site\'s own form, for its user only: X-Auth-Token at SciServer, the mast_token cookie', async () => {
    for (const user of ['alice', 'bob'] as const) {
      const from = sciserver.authLog.length;
      const submitted = await submit('sciserver', tokens[user]);
      expect(submitted.errors, JSON.stringify(submitted.errors)).toBeUndefined();
      const done = await finished(submitted.data!.submitQuery.id, tokens[user]);
      expect(done, JSON.stringify(done.history)).toMatchObject({ state: 'COMPLETED', site: { id: 'sciserver' } });
      expect(usersIn(since(sciserver, from))).toEqual([user]);
      expectNoSecret(JSON.stringify(done));
    }

    expect(codeOf(await submit('mastlike', tokens.alice))).toBe('CONSTELLATION_E_UNAUTHENTICATED');
    expect((await link('mastlike', MAST_ALICE, tokens.alice)).data).toEqual({ linkSiteCredential: true });
    const from = mastlike.authLog.length;
    const submitted = await submit('mastlike', tokens.alice);
    expect(submitted.errors).toBeUndefined();
    expect((await finished(submitted.data!.submitQuery.id, tokens.alice)).state).toBe('COMPLETED');
    expect(usersIn(since(mastlike, from))).toEqual(['alice']);
    expect(mastlike.seen.at(-1)?.headers.cookie).toBe(`mast_token=${MAST_ALICE}`);

    // Unlinking forgets the copies kept with the user's jobs too: nothing of the token is used again.
    const keptFor = async (owner: string) => Number((await db.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM job_credentials c JOIN jobs j ON j.id = c.job_id WHERE j.owner = $1 AND c.site_id = 'sciserver'`, [owner])).rows[0].n);
    expect(await keptFor(`user:${TEST_USERS.bob.sub}`)).toBeGreaterThan(0);
    expect((await unlink('sciserver', tokens.bob)).data).toEqual({ unlinkSiteCredential: true });
    expect(await keptFor(`user:${TEST_USERS.bob.sub}`)).toBe(0);
    expect(await keptFor(`user:${TEST_USERS.alice.sub}`)).toBeGreaterThan(0);

    // What is kept with the jobs is sealed: no token in any column of any job table.
    for (const table of ['jobs', 'job_events', 'job_credentials']) {
      expectNoSecret(JSON.stringify((await db.pool.query(`SELECT * FROM ${table}`)).rows));
    }
  }, WAITING_TEST_MS);

  it('stages a result into the submitter\'s own MyDB with their linked token, and records where it went', async () => {
    sciserver.stageAccounts.set(SCISERVER_TOKENS.alice, 'alice');
    const STAGED = `mutation($i: QueryInput!) { submitQuery(input: $i) { id } }`;
    const stagedTo = async (id: string, token: string) =>
      (await gql<{ job: { state: string; stagedTo: { state: string; location: string | null; error: { code: string } | null } | null } }>(
        'query($id: ID!) { job(id: $id) { state stagedTo { state location error { code } } } }', { id }, token)).data?.job;
    const submitted = await gql<{ submitQuery: { id: string } }>(STAGED, { i: { adql: QUERY_ON('exch'), stageTo: { site: 'sciserver', name: 'alice_sources' } } }, tokens.alice);
    expect(submitted.errors, JSON.stringify(submitted.errors)).toBeUndefined();
    const done = await waitUntil(() => stagedTo(submitted.data!.submitQuery.id, tokens.alice), (j) => j?.stagedTo?.state === 'DONE' || j?.stagedTo?.state === 'FAILED' || j?.state === 'ERROR',
      { describe: (j) => JSON.stringify(j) });
    expect(done).toMatchObject({ state: 'COMPLETED', stagedTo: { state: 'DONE', location: 'MyDB.alice_sources', error: null } });
    expect(sciserver.stagedMyDb.get('alice')?.get('alice_sources')).toMatch(/^source_id,ra/);
    expect(sciserver.stagedMyDb.get('broker')).toBeUndefined();
    // A bad target is refused at submit, naming the field, before anything runs.
    const bad = await gql(STAGED, { i: { adql: QUERY_ON('exch'), stageTo: { site: 'sciserver', name: 'x; DROP TABLE y' } } }, tokens.alice);
    expect(bad.errors?.[0]?.extensions?.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(bad.errors?.[0]?.message).toMatch(/stageTo\.name/);
  }, WAITING_TEST_MS);

  it('ends the job with UPSTREAM_AUTH naming the site and what to do when the site refuses the credential', async () => {
    expect((await link('sciserver', STALE, tokens.alice)).data).toEqual({ linkSiteCredential: true });
    const linked = await submit('sciserver', tokens.alice);
    expect(linked.errors).toBeUndefined();
    const refused = await finished(linked.data!.submitQuery.id, tokens.alice);
    expect(refused.state).toBe('ERROR');
    expect(refused.error?.code).toBe('CONSTELLATION_E_UPSTREAM_AUTH');
    expect(refused.error?.message).toMatch(/sciserver/);
    expect(refused.error?.message).toMatch(/link a new token for sciserver with linkSiteCredential/);
    expectNoSecret(JSON.stringify(refused));
    expect((await link('sciserver', SCISERVER_TOKENS.alice, tokens.alice)).data).toEqual({ linkSiteCredential: true });

    const exchangedRefused = await submit('strict', tokens.alice);
    expect(exchangedRefused.errors).toBeUndefined();
    const ended = await finished(exchangedRefused.data!.submitQuery.id, tokens.alice);
    expect(ended.state).toBe('ERROR');
    expect(ended.error?.code).toBe('CONSTELLATION_E_UPSTREAM_AUTH');
    expect(ended.error?.message).toMatch(/strict.*log in again/);
    expect(usersIn(since(strict, 0))).toEqual(['refused:invalid']);
    expectNoSecret(JSON.stringify(ended));
  }, WAITING_TEST_MS);

  it('ends a running job with UPSTREAM_AUTH when the site stops accepting its credential, and tells the user to log in again', async () => {
    const submitted = await submit('exch', tokens.alice);
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    await waitUntil(() => job(id, tokens.alice), (j) => j.siteJobId !== null, { describe: (j) => `job ${id} not placed: ${j.state}` });
    const accepting = issuerTokens(idp, EXCH_AUDIENCE);
    // The site revokes the token (as after a logout at the provider): every further request is refused.
    exch.requireCredential({ form: { kind: 'bearer' }, identify: () => undefined, applies: (_m, url) => /^\/tap\/(sync|async)/.test(url) });
    try {
      const ended = await finished(id, tokens.alice);
      expect(ended.state, JSON.stringify(ended.history)).toBe('ERROR');
      expect(ended.error?.code).toBe('CONSTELLATION_E_UPSTREAM_AUTH');
      expect(ended.error?.message).toMatch(/^exch: .*log in again/);
      expectNoSecret(JSON.stringify(ended));
    } finally {
      exch.requireCredential({ form: { kind: 'bearer' }, identify: remember(accepting), applies: (_m, url) => /^\/tap\/(sync|async)/.test(url) });
    }
  }, WAITING_TEST_MS);

  it('gets the broker\'s own client-credentials token for a protected harvest, cached, for the site\'s audience', async () => {
    const config = configFromYaml(yaml);
    const provider = new OidcProvider(config.identity!, { TEST_IDP_SECRET: BROKER_CLIENT_SECRET });
    const site: SiteConfig = { ...config.sites.find((s) => s.id === 'exch')!, credentials: { strategy: 'client-credentials', audience: EXCH_AUDIENCE } };
    const first = await harvestCredentialFor(site, {}, provider);
    const second = await harvestCredentialFor(site, {}, provider);
    expect(first.kind).toBe('bearer');
    expect(second).toEqual(first);
    const token = first.kind === 'bearer' ? first.token : '';
    registerSecret(token);
    expect(await issuerTokens(idp, EXCH_AUDIENCE)(token)).toMatchObject({ audience: EXCH_AUDIENCE });
    await expect(harvestCredentialFor(site, {}, undefined)).rejects.toThrow(/client-credentials/);
  }, WAITING_TEST_MS);

  it('carries on a job after a broker restart with the credential kept for it', async () => {
    const submitted = await submit('exch', tokens.alice);
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    // exch keeps an async job queued for a while: the broker stops while the job is still running there.
    await waitUntil(() => job(id, tokens.alice), (j) => j.siteJobId !== null, { describe: (j) => `job ${id} not placed: ${j.state}` });
    await broker.close();
    const from = exch.authLog.length;
    await start(KEY_A);
    const done = await finished(id, tokens.alice);
    expect(done, JSON.stringify(done.history)).toMatchObject({ state: 'COMPLETED', site: { id: 'exch' } });
    const after = since(exch, from);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((e) => e.user === TEST_USERS.alice.sub && e.audience === EXCH_AUDIENCE)).toBe(true);
  }, WAITING_TEST_MS);

  it('keeps linked tokens readable across a rotation of CONSTELLATION_SECRET_KEY, re-sealing them under the new key', async () => {
    const sealedFor = async (owner: string) => (await db.pool.query<{ sealed: string }>('SELECT sealed FROM site_credentials WHERE owner = $1 AND site_id = $2', [owner, 'sciserver'])).rows[0].sealed;
    const alice = `user:${TEST_USERS.alice.sub}`;
    const idOf = (key: string) => SecretKeys.fromEnv({ CONSTELLATION_SECRET_KEY: key })!.currentKeyId;
    expect((await sealedFor(alice)).startsWith(`${idOf(KEY_A)}.`)).toBe(true);
    const runAsAlice = async () => {
      const from = sciserver.authLog.length;
      const submitted = await submit('sciserver', tokens.alice);
      expect(submitted.errors, JSON.stringify(submitted.errors)).toBeUndefined();
      const done = await finished(submitted.data!.submitQuery.id, tokens.alice);
      expect(done.state, JSON.stringify(done.history)).toBe('COMPLETED');
      expect(usersIn(since(sciserver, from))).toEqual(['alice']);
    };

    await broker.close();
    await start(`${KEY_B},${KEY_A}`);
    await runAsAlice();
    expect((await sealedFor(alice)).startsWith(`${idOf(KEY_B)}.`)).toBe(true);

    await broker.close();
    await start(KEY_B);
    await runAsAlice();

    await broker.close();
    await start(undefined);
    const keyless = await link('sciserver', SCISERVER_TOKENS.alice, tokens.alice);
    expect(codeOf(keyless)).toBe('CONSTELLATION_E_IDENTITY_UNAVAILABLE');
    expect(keyless.errors?.[0]?.message).toMatch(/CONSTELLATION_SECRET_KEY/);
    const refused = await submit('sciserver', tokens.alice);
    expect(codeOf(refused)).toBe('CONSTELLATION_E_IDENTITY_UNAVAILABLE');
    expect(refused.errors?.[0]?.message).toMatch(/CONSTELLATION_SECRET_KEY/);
    await broker.close();
    await start(KEY_B);
  }, WAITING_TEST_MS);
});
