/**
 * Browser login end to end over HTTP with a cookie jar, against a real OpenID provider: /login
 * sends the browser to the provider with PKCE, state and nonce; the provider's login form;
 * /callback starts a server-side session whose cookie carries only a signed id; a second broker
 * on the same database knows the session; the access token is refreshed once (by one replica)
 * when it nears expiry; /logout ends it. Hostile callbacks, redirects and cookies are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretKeys } from '../../broker/auth/secret-keys.js';
import type { Config } from '../../broker/config/config.js';
import { Browser, type Page } from '../support/browser.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, BROKER_CLIENT_ID, BROKER_CLIENT_SECRET, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const SECRET_KEY = Buffer.alloc(32, 11).toString('base64');
const OTHER_KEY = Buffer.alloc(32, 12).toString('base64');
const ENV = { OIDC_CLIENT_SECRET: BROKER_CLIENT_SECRET, CONSTELLATION_SECRET_KEY: SECRET_KEY };
// Longer than the 60 s refresh margin by a little: a fresh token is used as is, and a few seconds later it is due for refresh.
const ACCESS_TTL_S = 64;

describe(`browser login (${backend})`, () => {
  let idp: TestOidcProvider;
  let config: Config;
  let broker: TestBroker;
  let replica: TestBroker;

  beforeAll(async () => {
    idp = await startOidcProvider({ accessTokenTtlS: ACCESS_TTL_S });
    config = configFromYaml(`
federation: { name: login-test }
registration: { open: true }
identity:
  issuer: ${idp.issuer}
  audience: ${BROKER_AUDIENCE}
  clientId: ${BROKER_CLIENT_ID}
  clientSecretEnv: OIDC_CLIENT_SECRET
sites: []
`);
    broker = await startBroker(config, undefined, { env: ENV });
    replica = await startBroker(config, broker.db, { env: ENV });
    await idp.setRedirectUris([`${broker.url}/callback`, `${replica.url}/callback`]);
    registerSecret(SECRET_KEY);
    registerSecret(OTHER_KEY);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await replica?.close();
    await broker?.close();
    await idp?.close();
  });

  /** GraphQL `me` as the browser (its cookies, no Authorization header). */
  async function me(browser: Browser, base = broker.url): Promise<{ subject: string; groups: string[] } | null> {
    const page = await browser.request(`${base}/graphql`, { json: { query: '{ me { subject groups } }' } });
    expect(page.status, page.text).toBe(200);
    return (JSON.parse(page.text) as { data: { me: { subject: string; groups: string[] } | null } }).data.me;
  }

  /** Stop before the provider's redirect back to the broker is followed. */
  const atCallback = (base: string) => (page: Page) => (page.headers.get('location') ?? '').startsWith(`${base}/callback`);

  /** /login → provider → login form, stopping before the browser returns to /callback. */
  async function toCallback(browser: Browser, username: string, base = broker.url, next = '/graphiql'): Promise<{ login: Page; callback: Page }> {
    const pages = await browser.follow(`${base}/login?next=${encodeURIComponent(next)}`);
    const form = pages.at(-1) as Page;
    expect(form.status, form.text).toBe(200);
    expect(form.url).toContain(`${idp.issuer}/interaction/`);
    const after = await browser.submit(form, 'login', { username, password: username }, atCallback(base));
    const last = after.at(-1) as Page;
    const location = last.headers.get('location');
    expect(location, `the provider should send the browser back to ${base}/callback`).toMatch(new RegExp(`^${base}/callback\\?`));
    // The code is a credential too: no log line may carry it.
    registerSecret(new URL(location as string).searchParams.get('code') ?? undefined);
    return { login: pages[0], callback: last };
  }

  async function loggedIn(username: string, base = broker.url): Promise<{ browser: Browser; callback: Page }> {
    const browser = new Browser();
    const { callback } = await toCallback(browser, username, base);
    const back = await browser.request(callback.headers.get('location') as string);
    expect(back.status, back.text).toBe(303);
    const cookie = browser.get('constellation_session', base);
    if (cookie) registerSecret(cookie.value);
    return { browser, callback: back };
  }

  it('logs in with the code flow, PKCE, state and nonce, and sets an HttpOnly, SameSite=Lax session cookie with no token in it', async () => {
    const browser = new Browser();
    const { login, callback } = await toCallback(browser, 'alice');
    // /login: to the provider's authorization endpoint, with PKCE S256, state, nonce and the broker as resource.
    expect(login.status).toBe(302);
    const authorize = new URL(login.headers.get('location') as string);
    expect(authorize.origin).toBe(idp.issuer);
    expect(authorize.searchParams.get('client_id')).toBe(BROKER_CLIENT_ID);
    expect(authorize.searchParams.get('response_type')).toBe('code');
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${broker.url}/callback`);
    const loginCookie = login.setCookies.find((c) => c.startsWith('constellation_login='));
    expect(loginCookie).toMatch(/; Path=\/callback; Max-Age=600; HttpOnly; SameSite=Lax$/);
    // The pending login is sealed: the verifier is nowhere in it in the clear.
    expect(loginCookie).not.toContain(authorize.searchParams.get('state'));

    const back = await browser.request(callback.headers.get('location') as string);
    expect(back.status, back.text).toBe(303);
    expect(back.headers.get('location')).toBe('/graphiql');
    const session = back.setCookies.find((c) => c.startsWith('constellation_session='));
    expect(session).toMatch(/^constellation_session=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/);
    expect(session).not.toMatch(/Secure/); // plain http on loopback; Secure is set behind TLS
    expect(back.setCookies.some((c) => /^constellation_login=; .*Max-Age=0/.test(c))).toBe(true);
    registerSecret(browser.get('constellation_session', broker.url)?.value);

    expect(await me(browser)).toEqual({ subject: 'alice-0001', groups: ['astronomers', 'gaia-team'] });
    // The database holds sealed tokens only.
    const rows = await broker.db.pool.query<{ subject: string; access_token: string; refresh_token: string | null }>('SELECT subject, access_token, refresh_token FROM sessions');
    expect(rows.rows.map((r) => r.subject)).toContain('alice-0001');
    for (const r of rows.rows) {
      expect(r.access_token).not.toMatch(/^eyJ/);
      expect(r.access_token.split('.')).toHaveLength(4); // keyId.iv.tag.ciphertext
      expect(r.refresh_token).not.toBeNull();
    }
  });

  it('shares the session with a second broker on the same database', async () => {
    const { browser } = await loggedIn('bob');
    expect(await me(browser, broker.url)).toMatchObject({ subject: 'bob-0002' });
    expect(await me(browser, replica.url)).toMatchObject({ subject: 'bob-0002' });
  });

  it('refreshes the access token shortly before it expires, once, even when both replicas are asked at once', async () => {
    const { browser } = await loggedIn('carol');
    expect(await me(browser)).toMatchObject({ subject: 'carol-0003' });
    const refreshesBefore = idp.grants('refresh_token');
    // Wait (following the clock, without asking the brokers) until the token is inside the 60 s margin.
    const id = (browser.get('constellation_session', broker.url)?.value ?? '').split('.')[0];
    const { rows } = await broker.db.pool.query<{ at: Date }>('SELECT access_expires_at AS at FROM sessions WHERE id = $1', [id]);
    await waitUntil(() => rows[0].at.getTime() - Date.now(), (left) => left < 59_000, { intervalMs: 200 });
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => me(browser, i % 2 ? replica.url : broker.url)));
    for (const a of answers) expect(a).toMatchObject({ subject: 'carol-0003' });
    expect(idp.grants('refresh_token') - refreshesBefore).toBe(1);
    const after = await broker.db.pool.query<{ at: Date }>('SELECT access_expires_at AS at FROM sessions WHERE id = $1', [id]);
    expect(after.rows[0].at.getTime()).toBeGreaterThan(rows[0].at.getTime());
    expect(await me(browser, replica.url)).toMatchObject({ subject: 'carol-0003' });
  }, WAITING_TEST_MS);

  it('logs out (POST and GET): the row is deleted, the cookie cleared, and the browser sent to the provider\'s end-session endpoint', async () => {
    for (const method of ['POST', 'GET']) {
      const { browser } = await loggedIn('dave');
      const stolen = browser.get('constellation_session', broker.url)?.value as string;
      const out = await browser.request(`${broker.url}/logout`, { method });
      expect(out.status).toBe(303);
      expect(out.headers.get('location')).toMatch(new RegExp(`^${idp.issuer}/session/end\\?`));
      expect(out.setCookies).toContain('constellation_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax');
      expect(browser.get('constellation_session', broker.url)).toBeUndefined();
      expect(await me(browser)).toBeNull();
      // The old cookie, kept by someone, opens nothing on either replica.
      const thief = new Browser();
      thief.set(broker.url, 'constellation_session', stolen);
      expect(await me(thief, broker.url)).toBeNull();
      expect(await me(thief, replica.url)).toBeNull();
    }
  });

  describe('refuses', () => {
    it('a callback whose state does not match the browser\'s login', async () => {
      const browser = new Browser();
      const { callback } = await toCallback(browser, 'erin');
      const url = new URL(callback.headers.get('location') as string);
      url.searchParams.set('state', 'forged-state-value-0123456789');
      const answer = await browser.request(url.href);
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.text)).toMatchObject({ code: 'CONSTELLATION_E_UNAUTHENTICATED' });
      expect(answer.text).toMatch(/state/);
      expect(answer.setCookies.some((c) => c.startsWith('constellation_session=') && !c.startsWith('constellation_session=;'))).toBe(false);
      expect(await me(browser)).toBeNull();
    });

    it('a session or login cookie that is not even well-formed, as no cookie (anonymous, not a 500)', async () => {
      for (const cookie of ['constellation_session=%E0%A4%A', 'constellation_session=a.b.c.d.e', `constellation_session=${'x'.repeat(3000)}`]) {
        const res = await fetch(`${broker.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ query: '{ me { subject } }' }) });
        expect(res.status, cookie.slice(0, 40)).toBe(200);
        expect(await res.json()).toEqual({ data: { me: null } });
      }
      const callback = await fetch(`${broker.url}/callback?code=abc&state=def`, { headers: { cookie: 'constellation_login=%zz' } });
      expect(callback.status).toBe(401);
    });

    it('a callback with no login in progress', async () => {
      const answer = await new Browser().request(`${broker.url}/callback?code=abc&state=def`);
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.text)).toMatchObject({ code: 'CONSTELLATION_E_UNAUTHENTICATED' });
    });

    it('a replayed code, even with the login cookie kept', async () => {
      const browser = new Browser();
      const { callback } = await toCallback(browser, 'erin');
      const loginCookie = browser.get('constellation_login', `${broker.url}/callback`)?.value as string;
      const url = callback.headers.get('location') as string;
      expect((await browser.request(url)).status).toBe(303);
      const attacker = new Browser();
      attacker.set(broker.url, 'constellation_login', loginCookie, '/callback');
      const replay = await attacker.request(url);
      expect(replay.status).toBe(401);
      expect(JSON.parse(replay.text)).toMatchObject({ code: 'CONSTELLATION_E_UNAUTHENTICATED' });
      expect(attacker.get('constellation_session', broker.url)).toBeUndefined();
    });

    it('a next that leaves the broker (no open redirect)', async () => {
      for (const next of ['https://evil.example', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '/ok\r\nSet-Cookie: x=y']) {
        const answer = await new Browser().request(`${broker.url}/login?next=${encodeURIComponent(next)}`);
        expect(answer.status, next).toBe(400);
        expect(JSON.parse(answer.text)).toMatchObject({ code: 'CONSTELLATION_E_INVALID_ARGUMENT' });
        expect(answer.headers.get('location')).toBeNull();
      }
    });

    it('a tampered session cookie, and one signed with another key: the browser is anonymous', async () => {
      const { browser } = await loggedIn('alice');
      const value = browser.get('constellation_session', broker.url)?.value as string;
      const [id, signature] = value.split('.');
      const flipped = `${id}.${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`;
      const otherId = `${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}.${signature}`;
      const foreign = SecretKeys.fromEnv({ CONSTELLATION_SECRET_KEY: OTHER_KEY })?.sign('session-cookie', id) as string;
      for (const cookie of [flipped, otherId, foreign, 'garbage', id]) {
        const stranger = new Browser();
        stranger.set(broker.url, 'constellation_session', cookie);
        expect(await me(stranger), cookie).toBeNull();
      }
      expect(await me(browser)).toMatchObject({ subject: 'alice-0001' });
    });

    it('to log in without CONSTELLATION_SECRET_KEY, with 503 saying to set it', async () => {
      const keyless = await startBroker(config, broker.db, { env: { OIDC_CLIENT_SECRET: BROKER_CLIENT_SECRET } });
      try {
        const answer = await new Browser().request(`${keyless.url}/login`);
        expect(answer.status).toBe(503);
        expect(JSON.parse(answer.text)).toMatchObject({ code: 'CONSTELLATION_E_IDENTITY_UNAVAILABLE' });
        expect(answer.text).toContain('CONSTELLATION_SECRET_KEY');
      } finally {
        await keyless.close();
      }
    });
  });

  it('marks cookies Secure and redirects to https when TLS ends at a proxy it is told to trust, and believes no one else', async () => {
    const behindProxy = await startBroker(configFromYaml(`
federation: { name: login-tls }
identity: { issuer: "${idp.issuer}", audience: "${BROKER_AUDIENCE}", clientId: ${BROKER_CLIENT_ID}, clientSecretEnv: OIDC_CLIENT_SECRET }
sites: []
`, { CONSTELLATION_TRUST_PROXY: '127.0.0.1' }), broker.db, { env: ENV });
    try {
      const viaProxy = await fetch(`${behindProxy.url}/login?next=/`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'constellation.example.org' } });
      expect(viaProxy.status).toBe(302);
      expect(viaProxy.headers.get('set-cookie')).toMatch(/; HttpOnly; SameSite=Lax; Secure/);
      expect(new URL(viaProxy.headers.get('location') ?? '').searchParams.get('redirect_uri')).toBe('https://constellation.example.org/callback');
      // The broker that trusts no proxy ignores the same headers: plain http, no Secure.
      const direct = await fetch(`${broker.url}/login?next=/`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
      expect(direct.headers.get('set-cookie')).not.toMatch(/Secure/);
    } finally {
      await behindProxy.close();
    }
  });
});
