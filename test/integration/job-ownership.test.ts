/**
 * A job belongs to its submitter: against a real OpenID provider and a simulated TAP site,
 * another user's job, its cancel, its result and its subscription all answer NOT_FOUND (never
 * FORBIDDEN, so ids leak nothing); `jobs` lists the caller's own, admins may list everyone's;
 * anonymous jobs are reachable only by their id; and a federation with `identity.anonymous:
 * read` refuses anonymous submits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { SubscriptionClient } from '../support/subscriptions.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const GAIA: SimTable = {
  name: 'gaiadr3.gaia_source',
  rows: 200,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
  ],
};

type Answer<T> = { status: number; data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
interface JobView { id: string; state: string; results: string | null; error: { code: string; message: string } | null }
const JOB = 'id state results error { code message }';

function federation(idp: TestOidcProvider, site: SimSite, anonymous: 'read' | 'submit'): string {
  return `
federation: { name: ownership }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  anonymous: ${anonymous}
  roles: { admin: [constellation-admins] }
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${site.url}/tap" }
`;
}

describe(`jobs belong to their submitter (${backend})`, () => {
  let idp: TestOidcProvider;
  let alpha: SimSite;
  let broker: TestBroker;
  const tokens: Record<string, string> = {};

  async function gql<T>(b: TestBroker, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<Answer<T>> {
    const res = await fetch(`${b.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, ...((await res.json()) as object) };
  }
  const codeOf = (a: Answer<unknown>) => a.errors?.[0]?.extensions?.code;
  const submit = (adql: string, token?: string, b = broker) => gql<{ submitQuery: JobView }>(b, `mutation($i: QueryInput!) { submitQuery(input: $i) { ${JOB} } }`, { i: { adql } }, token);
  const job = async (id: string, token?: string) => (await gql<{ job: JobView | null }>(broker, `query($id: ID!) { job(id: $id) { ${JOB} } }`, { id }, token)).data?.job ?? null;
  const completed = (id: string, token?: string) => waitUntil(() => job(id, token), (j) => j !== null && ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state), { describe: (j) => `job ${id} is ${j?.state}` });
  const result = (path: string, token?: string) => fetch(`${broker.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  beforeAll(async () => {
    idp = await startOidcProvider();
    alpha = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [GAIA] });
    await alpha.start();
    broker = await startBroker(configFromYaml(federation(idp, alpha, 'submit')));
    for (const user of ['alice', 'bob', 'carol'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    const harvest = await gql<{ harvest: { outcome: string } }>(broker, 'mutation { harvest(siteId: "alpha") { outcome } }', {}, tokens.carol);
    expect(harvest.data?.harvest.outcome, JSON.stringify(harvest)).toBe('OK');
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await alpha?.close();
    await idp?.close();
  });

  it('answers NOT_FOUND for another user\'s job, cancel, result and subscription, and serves the owner', async () => {
    const submitted = await submit('SELECT TOP 5 source_id, ra, dec FROM gaiadr3.gaia_source', tokens.alice);
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    const done = await completed(id, tokens.alice);
    expect(done?.state).toBe('COMPLETED');

    expect(await job(id, tokens.bob)).toBeNull();
    expect(await job(id)).toBeNull();
    const cancel = await gql(broker, 'mutation($id: ID!) { cancelJob(id: $id) { id } }', { id }, tokens.bob);
    expect(codeOf(cancel)).toBe('CONSTELLATION_E_NOT_FOUND');

    const path = done!.results!;
    const theirs = await result(path, tokens.bob);
    expect(theirs.status).toBe(404);
    expect(((await theirs.json()) as { code: string }).code).toBe('CONSTELLATION_E_NOT_FOUND');
    expect((await result(path)).status).toBe(404);
    const own = await result(path, tokens.alice);
    expect(own.status).toBe(200);
    expect(await own.text()).toContain('<FIELD name="source_id"');

    const client = await SubscriptionClient.connect(broker.url, { authorization: `Bearer ${tokens.bob}` });
    try {
      await expect(client.run('subscription($id: ID!) { jobUpdated(id: $id) { state } }', { id })).rejects.toThrow(/CONSTELLATION_E_NOT_FOUND|no job/);
    } finally {
      client.close();
    }
    const owner = await SubscriptionClient.connect(broker.url, { authorization: `Bearer ${tokens.alice}` });
    try {
      const seen = await owner.run<{ jobUpdated: { state: string } }>('subscription($id: ID!) { jobUpdated(id: $id) { state } }', { id });
      expect(seen.map((m) => m.jobUpdated.state)).toEqual(['COMPLETED']);
    } finally {
      owner.close();
    }
  }, WAITING_TEST_MS);

  it('lists only the caller\'s own jobs; an admin may list every owner\'s, no one else may', async () => {
    const a = (await submit('SELECT TOP 3 source_id FROM gaiadr3.gaia_source', tokens.alice)).data!.submitQuery.id;
    const b = (await submit('SELECT TOP 4 source_id FROM gaiadr3.gaia_source', tokens.bob)).data!.submitQuery.id;
    const list = async (token: string | undefined, filter?: Record<string, unknown>) => {
      const answer = await gql<{ jobs: { id: string }[] }>(broker, 'query($f: JobFilter) { jobs(filter: $f, limit: 500) { id } }', { f: filter ?? null }, token);
      return { ids: answer.data?.jobs.map((j) => j.id), code: codeOf(answer) };
    };
    const alices = await list(tokens.alice);
    expect(alices.ids).toContain(a);
    expect(alices.ids).not.toContain(b);
    const bobs = await list(tokens.bob);
    expect(bobs.ids).toContain(b);
    expect(bobs.ids).not.toContain(a);

    const all = await list(tokens.carol, { allOwners: true });
    expect(all.ids).toEqual(expect.arrayContaining([a, b]));
    expect((await list(tokens.carol)).ids).toEqual([]);
    expect((await list(tokens.alice, { allOwners: true })).code).toBe('CONSTELLATION_E_FORBIDDEN');
    expect((await list(undefined, { allOwners: true })).code).toBe('CONSTELLATION_E_FORBIDDEN');
  }, WAITING_TEST_MS);

  it('lets anonymous callers submit, reach their job only by its id, and list nothing', async () => {
    const submitted = await submit('SELECT TOP 2 source_id FROM gaiadr3.gaia_source');
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    expect((await completed(id))?.state).toBe('COMPLETED');
    const anonymousList = await gql<{ jobs: unknown[] }>(broker, '{ jobs(limit: 500) { id } }');
    expect(anonymousList.data?.jobs).toEqual([]);
    // A user is not the anonymous owner: the job is not theirs.
    expect(await job(id, tokens.alice)).toBeNull();
    const path = (await job(id))!.results!;
    expect((await result(path)).status).toBe(200);
    expect((await result(path, tokens.alice)).status).toBe(404);
  }, WAITING_TEST_MS);

  it('refuses anonymous submits with UNAUTHENTICATED where identity.anonymous is read, and runs a user\'s', async () => {
    const readOnly = await startBroker(configFromYaml(federation(idp, alpha, 'read')));
    try {
      const harvest = await gql<{ harvest: { outcome: string } }>(readOnly, 'mutation { harvest(siteId: "alpha") { outcome } }', {}, tokens.carol);
      expect(harvest.data?.harvest.outcome).toBe('OK');
      const anonymous = await submit('SELECT TOP 2 source_id FROM gaiadr3.gaia_source', undefined, readOnly);
      expect(codeOf(anonymous)).toBe('CONSTELLATION_E_UNAUTHENTICATED');
      expect(anonymous.errors?.[0]?.message).toMatch(/log in/);
      const container = await gql(readOnly, 'mutation { submitJob(input: {image: "x", command: "true", cores: 1, memoryGb: 1}) { id } }');
      expect(codeOf(container)).toBe('CONSTELLATION_E_UNAUTHENTICATED');
      const alice = await submit('SELECT TOP 2 source_id FROM gaiadr3.gaia_source', tokens.alice, readOnly);
      expect(alice.errors).toBeUndefined();
      expect(alice.data?.submitQuery.id).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await readOnly.close();
    }
  }, WAITING_TEST_MS);
});
