/**
 * /metrics in a federation with an identity provider: an admin's token opens it from anywhere,
 * another user's does not (403), a token the provider did not issue is refused (401), and the
 * scrape token still works although it is no token of the provider's.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { registerSecret } from '../support/log-capture.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { WAITING_TEST_MS } from '../support/wait.js';

describe(`/metrics with an identity provider (${backend})`, () => {
  let idp: TestOidcProvider;
  let stranger: TestOidcProvider;
  let broker: TestBroker;
  const tokens: Record<string, string> = {};
  const scrapeToken = randomBytes(24).toString('base64url');
  /** A scrape as an outsider would send it (through a proxy), with `authorization` when given. */
  const scrape = (authorization?: string) =>
    fetch(`${broker.url}/metrics`, { headers: { 'x-forwarded-for': '198.51.100.20', ...(authorization ? { authorization } : {}) } });

  beforeAll(async () => {
    [idp, stranger] = await Promise.all([startOidcProvider(), startOidcProvider()]);
    registerSecret(scrapeToken);
    broker = await startBroker(configFromYaml(`
federation: { name: metrics-identity }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  roles:
    admin: [constellation-admins]
sites: []
`), undefined, { env: { CONSTELLATION_METRICS_TOKEN: scrapeToken } });
    for (const user of ['alice', 'carol'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    registerSecret((tokens.foreign = await stranger.tokenFor('carol')));
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await broker?.close();
    await Promise.all([idp?.close(), stranger?.close()]);
  });

  it('opens to an admin and to the scrape token, refuses other users, foreign tokens and anonymous callers', async () => {
    // carol is in constellation-admins.
    const admin = await scrape(`Bearer ${tokens.carol}`);
    expect(admin.status).toBe(200);
    expect(await admin.text()).toContain('constellation_http_request_duration_seconds');
    const scraper = await scrape(`Bearer ${scrapeToken}`);
    expect(scraper.status).toBe(200);
    await scraper.arrayBuffer();

    const user = await scrape(`Bearer ${tokens.alice}`);
    expect(user.status).toBe(403);
    expect(await user.json()).toMatchObject({ code: 'CONSTELLATION_E_FORBIDDEN' });
    for (const authorization of [`Bearer ${tokens.foreign}`, 'Bearer not-a-token-at-all', undefined]) {
      const res = await scrape(authorization);
      expect(res.status).toBe(401);
      const body = await res.text();
      expect(JSON.parse(body)).toMatchObject({ code: 'CONSTELLATION_E_UNAUTHENTICATED' });
      expect(body).not.toContain('constellation_');
    }
    // The scrape token is still no token of the provider's elsewhere.
    const elsewhere = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${scrapeToken}` },
      body: JSON.stringify({ query: '{ me { subject } }' }),
    });
    expect(elsewhere.status).toBe(401);
    await elsewhere.arrayBuffer();
  }, WAITING_TEST_MS);
});
