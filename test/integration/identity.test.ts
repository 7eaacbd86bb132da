/**
 * Identity at the broker's door, against a real OpenID provider on 127.0.0.1: bearer tokens are
 * verified against its JWKS, every hostile token is refused with 401, the caller's groups decide
 * which replicas they see and plan on, and only operators, admins or a site's publish key may
 * change the registry.
 */
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { registerSecret, capturedLineCount } from '../support/log-capture.js';
import { SubscriptionClient } from '../support/subscriptions.js';
import { PATIENCE_MS, WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const SOUTH_KEY = 'south-publish-key-7f3a9c21d8e64b0f';

// North holds a public Gaia replica and a replica only the gaia-team group may read.
const north = documentFor('north', [
  { id: 'gaia_dr3.gaia_source', table: 'gaiadr3.gaia_source', coverage: '0/0-11' },
  { id: 'team.secret_catalogue', table: 'team.secret', coverage: '0/0-11', access: { public: false, groups: ['gaia-team'] } },
]);
const south = documentFor('south', [{ id: 'gaia_dr3.gaia_source', table: 'gaia.source', coverage: '0/0-11' }]);

type Answer<T = Record<string, unknown>> = { status: number; headers: Headers; data?: T; errors?: { message: string; extensions?: { code?: string } }[]; code?: string; message?: string };

describe(`identity and rights (${backend})`, () => {
  let idp: TestOidcProvider;
  let stranger: TestOidcProvider;
  let broker: TestBroker;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    [idp, stranger] = await Promise.all([startOidcProvider(), startOidcProvider()]);
    const config = configFromYaml(`
federation: { name: identity-test }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  roles:
    admin: [constellation-admins]
    operators: { north: [rsp-operators] }
sites:
  - { id: north, name: North, adapter: tap, url: "http://127.0.0.1:9/north" }
  - { id: south, name: South, adapter: tap, url: "http://127.0.0.1:9/south", publishKeyEnv: SOUTH_PUBLISH_KEY }
`);
    broker = await startBroker(config, undefined, { env: { SOUTH_PUBLISH_KEY: SOUTH_KEY } });
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    registerSecret(SOUTH_KEY);
    expect((await put('north', north, tokens.carol)).status).toBe(200);
    expect((await put('south', south, tokens.carol)).status).toBe(200);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    // The broker logged (the capture is on), and test/support/no-secrets-in-logs.ts checks those lines for every token above.
    expect(capturedLineCount()).toBeGreaterThan(0);
    await broker?.close();
    await Promise.all([idp?.close(), stranger?.close()]);
  });

  async function gql<T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Answer<T>> {
    const res = await fetch(`${broker.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
    return { status: res.status, headers: res.headers, ...((await res.json()) as object) };
  }
  const as = (token: string) => ({ authorization: `Bearer ${token}` });

  async function put(siteId: string, document: unknown, token?: string, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${broker.url}/sites/${siteId}/capabilities`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...(token ? as(token) : {}), ...headers },
      body: JSON.stringify(document),
    });
    return { status: res.status, headers: res.headers, ...((await res.json()) as object) };
  }

  describe('bearer tokens', () => {
    it('tells the caller who they are, with the roles their groups give', async () => {
      const anonymous = await gql('{ me { subject } }');
      expect(anonymous).toMatchObject({ status: 200, data: { me: null } });
      const alice = await gql('{ me { subject name email groups roles { admin operatorOf } linkedSites } }', {}, as(tokens.alice));
      expect(alice.data?.me).toEqual({ subject: 'alice-0001', name: 'Alice Astronomer', email: 'alice@example.org', groups: ['astronomers', 'gaia-team'],
        roles: { admin: false, operatorOf: [] }, linkedSites: [] });
      const dave = await gql<{ me: { roles: unknown } }>('{ me { roles { admin operatorOf } } }', {}, as(tokens.dave));
      expect(dave.data?.me.roles).toEqual({ admin: false, operatorOf: ['north'] });
      const carol = await gql<{ me: { roles: unknown } }>('{ me { roles { admin operatorOf } } }', {}, as(tokens.carol));
      expect(carol.data?.me.roles).toEqual({ admin: true, operatorOf: [] });
    });

    const now = () => Math.floor(Date.now() / 1000);
    const claims = (extra: Record<string, unknown> = {}) => ({ iss: idp.issuer, aud: BROKER_AUDIENCE, sub: 'alice-0001', iat: now(), exp: now() + 300, groups: ['gaia-team'], ...extra });

    it('accepts a well-formed token signed by the provider, and one within the 30 s skew of expiring', async () => {
      expect((await gql('{ me { subject } }', {}, as(await idp.sign(claims())))).data).toEqual({ me: { subject: 'alice-0001' } });
      expect((await gql('{ me { subject } }', {}, as(await idp.sign(claims({ exp: now() - 10 }))))).data).toEqual({ me: { subject: 'alice-0001' } });
    });

    const hostile: [string, () => Promise<string>, RegExp][] = [
      ['expired beyond the skew', () => idp.sign(claims({ exp: now() - 90 })), /expired/],
      ['not valid yet (nbf)', () => idp.sign(claims({ nbf: now() + 300 })), /not valid yet/],
      ['from another issuer (iss)', () => idp.sign(claims({ iss: 'https://evil.example.org' })), /another issuer/],
      ['for another audience (aud)', () => idp.sign(claims({ aud: 'urn:some:other:service' })), /not meant for this broker/],
      ['without an expiry', () => idp.sign(claims({ exp: undefined })), /exp/],
      ['with alg none', async () => unsigned(claims()), /algorithm|not a valid/],
      ['HMAC-signed with the public key', async () => new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: idp.currentKid() })
        .sign(new TextEncoder().encode(JSON.stringify(idp.publicJwk()))), /algorithm/],
      ['with a tampered payload', async () => tamper(await idp.sign(claims())), /signature/],
      ['signed by an unknown key', async () => new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'not-a-provider-key' })
        .sign((await generateKeyPair('RS256')).privateKey), /signing key/],
      ['issued by a second provider', async () => stranger.tokenFor('alice'), /another issuer|signing key/],
      ['that is not a JWT', async () => 'abc.def.ghi', /not a valid/],
    ];
    it.each(hostile)('refuses a token %s with 401 UNAUTHENTICATED, on GraphQL and REST alike', async (_what, make, why) => {
      const token = await make();
      registerSecret(token);
      const answer = await gql('{ sites { id } }', {}, as(token));
      expect(answer.status).toBe(401);
      expect(answer.code).toBe('CONSTELLATION_E_UNAUTHENTICATED');
      expect(answer.message).toMatch(why);
      expect(answer.message).not.toContain(token);
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
      expect((await put('north', north, token)).status).toBe(401);
    });

    it('refuses other schemes and malformed headers instead of treating the caller as anonymous', async () => {
      for (const authorization of ['Basic YWxpY2U6YWxpY2U=', 'Bearer', 'Bearer two words', `Bearer ${'a'.repeat(10_000)}`]) {
        const answer = await gql('{ sites { id } }', {}, { authorization });
        expect(answer.status, authorization.slice(0, 20)).toBe(401);
        expect(answer.code).toBe('CONSTELLATION_E_UNAUTHENTICATED');
      }
    });

    it('picks up a rotated signing key without a restart', async () => {
      await idp.rotateKeys();
      const fresh = await idp.tokenFor('bob');
      // The verifier goes back to the JWKS for an unknown key id at most every few seconds.
      const answer = await waitUntil(() => gql<{ me: { subject: string } }>('{ me { subject } }', {}, as(fresh)), (a) => a.status === 200, { timeoutMs: PATIENCE_MS });
      expect(answer.data?.me.subject).toBe('bob-0002');
      registerSecret((tokens.bob = fresh));
      for (const user of ['alice', 'carol', 'dave', 'erin'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    }, WAITING_TEST_MS);

    it('authenticates a subscription from connection_init, and refuses a bad token there', async () => {
      const client = await SubscriptionClient.connect(broker.url, { authorization: `Bearer ${tokens.alice}` });
      client.close();
      await expect(SubscriptionClient.connect(broker.url, { authorization: `Bearer ${tamper(tokens.alice)}` })).rejects.toThrow(/connection_error|Forbidden|closed/i);
    });
  });

  describe('what a caller sees and may plan on', () => {
    const DATASETS = '{ datasets { id replicas { site { id } } } }';
    it('hides a group-restricted replica from callers outside the group, in every discovery path', async () => {
      for (const [who, headers] of [['anonymous', {}], ['bob', as(tokens.bob)], ['erin', as(tokens.erin)]] as const) {
        const answer = await gql<{ datasets: { id: string }[] }>(DATASETS, {}, headers);
        expect(answer.data?.datasets.map((d) => d.id), who).toEqual(['gaia_dr3.gaia_source']);
        const one = await gql('{ dataset(id: "team.secret_catalogue") { id } site(id: "north") { replicas { dataset { id } } } }', {}, headers);
        expect(one.data, who).toEqual({ dataset: null, site: { replicas: [{ dataset: { id: 'gaia_dr3.gaia_source' } }] } });
        const cone = await gql<{ datasets: { id: string }[] }>('{ datasets(filter: {cone: {ra: 10, dec: 10, radiusDeg: 1}}) { id } }', {}, headers);
        expect(cone.data?.datasets.map((d) => d.id), who).toEqual(['gaia_dr3.gaia_source']);
      }
      const alice = await gql<{ datasets: { id: string }[] }>(DATASETS, {}, as(tokens.alice));
      expect(alice.data?.datasets.map((d) => d.id)).toEqual(['gaia_dr3.gaia_source', 'team.secret_catalogue']);
      // Answers are cached per registry version: the cache must not hand alice's answer to bob.
      expect((await gql<{ datasets: unknown[] }>(DATASETS, {}, as(tokens.bob))).data?.datasets).toHaveLength(1);
    });

    it('rejects the restricted replica with FORBIDDEN for a caller outside its groups, and plans it for a member', async () => {
      const PLAN = 'query($r: PlanRequest!) { plan(request: $r) { chosen { site { id } } candidates { site { id } eligible reasons { code } } } }';
      const request = { r: { kind: 'QUERY', datasets: ['team.secret_catalogue'] } };
      const bob = await gql<{ plan: { chosen: unknown; candidates: { site: { id: string }; reasons: { code: string }[] }[] } }>(PLAN, request, as(tokens.bob));
      expect(bob.data?.plan.chosen).toBeNull();
      expect(bob.data?.plan.candidates.find((c) => c.site.id === 'north')?.reasons.map((r) => r.code)).toContain('FORBIDDEN');
      const alice = await gql<{ plan: { chosen: { site: { id: string } } } }>(PLAN, request, as(tokens.alice));
      expect(alice.data?.plan.chosen.site.id).toBe('north');
    });
  });

  describe('who may change the registry', () => {
    it('lets only an operator of the site, an admin or the site publish key publish, over REST', async () => {
      const anonymous = await put('north', north);
      expect(anonymous).toMatchObject({ status: 401, code: 'CONSTELLATION_E_UNAUTHENTICATED' });
      expect(anonymous.message).toMatch(/operator/);
      expect(await put('north', north, tokens.erin)).toMatchObject({ status: 403, code: 'CONSTELLATION_E_FORBIDDEN' });
      expect(await put('south', south, tokens.dave)).toMatchObject({ status: 403, code: 'CONSTELLATION_E_FORBIDDEN' });
      expect((await put('north', north, tokens.dave)).status).toBe(200);
      expect((await put('south', south, undefined, { 'x-publish-key': SOUTH_KEY })).status).toBe(200);
      expect(await put('south', south, undefined, { 'x-publish-key': 'wrong' })).toMatchObject({ status: 401, code: 'CONSTELLATION_E_UNAUTHENTICATED' });
      expect(await put('north', north, undefined, { 'x-publish-key': SOUTH_KEY })).toMatchObject({ status: 401 });
      // A site nobody declared is no member: only an admin gets past that, to the registry's own refusal.
      expect(await put('newcomer', documentFor('newcomer'), tokens.dave)).toMatchObject({ status: 404, code: 'CONSTELLATION_E_UNKNOWN_SITE' });
    });

    it('refuses before reading the body: a refused publish of an oversized body is 401, not 413', async () => {
      const huge = 'x'.repeat(20 * 1024 * 1024);
      const res = await fetch(`${broker.url}/sites/north/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: huge }).catch((err: unknown) => err);
      // The broker may close the connection before the whole body is sent; when the answer arrives it is the refusal.
      if (res instanceof Response) expect(res.status).toBe(401);
    });

    it('applies the same rights to the publishCapabilities mutation', async () => {
      const PUBLISH = 'mutation($s: ID!, $d: JSON!) { publishCapabilities(siteId: $s, document: $d) { id } }';
      expect((await gql(PUBLISH, { s: 'north', d: north }, as(tokens.erin))).errors?.[0].extensions?.code).toBe('CONSTELLATION_E_FORBIDDEN');
      expect((await gql(PUBLISH, { s: 'north', d: north })).errors?.[0].extensions?.code).toBe('CONSTELLATION_E_UNAUTHENTICATED');
      expect((await gql(PUBLISH, { s: 'north', d: north }, as(tokens.dave))).data).toEqual({ publishCapabilities: { id: 'north' } });
      expect((await gql(PUBLISH, { s: 'south', d: south }, { 'x-publish-key': SOUTH_KEY })).data).toEqual({ publishCapabilities: { id: 'south' } });
    });

    it('lets only admins harvest through the API', async () => {
      const HARVEST = 'mutation { harvest(siteId: "north") { outcome } }';
      expect((await gql(HARVEST)).errors?.[0].extensions?.code).toBe('CONSTELLATION_E_UNAUTHENTICATED');
      expect((await gql(HARVEST, {}, as(tokens.dave))).errors?.[0].extensions?.code).toBe('CONSTELLATION_E_FORBIDDEN');
      // The site is unreachable: the harvest runs and is recorded as failed, which is the admin's right exercised.
      expect((await gql<{ harvest: { outcome: string } }>(HARVEST, {}, as(tokens.carol))).data?.harvest.outcome).toBeDefined();
    }, WAITING_TEST_MS);
  });
});

/** A JWT with `alg: none` and no signature. */
function unsigned(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

/** The token with one claim changed and the signature kept. */
function tamper(token: string): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  return `${header}.${Buffer.from(JSON.stringify({ ...claims, groups: ['constellation-admins'] })).toString('base64url')}.${signature}`;
}
