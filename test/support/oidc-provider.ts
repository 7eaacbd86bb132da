/**
 * A real OpenID provider (the `oidc-provider` package) on 127.0.0.1 for tests: fixed users and
 * groups, the broker's confidential client and a public CLI client, JWT access tokens for the
 * requested resource, the device flow, RFC 8693 token exchange, key rotation, and helpers to
 * sign hostile tokens and to get a real token for a user without a browser.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, createLocalJWKSet, type JWK, type JWTPayload } from 'jose';
import type * as OidcProviderModule from 'oidc-provider';
import { registerSecret } from './log-capture.js';
import type { Configuration, KoaContextWithOIDC, ResourceServer, ResourceServerInstance, TokenEndpointGrantContext } from 'oidc-provider';

// oidc-provider warns on stderr at import time that Node 20 is not its preferred runtime; the
// warning is noise in every test's output, so the import runs with console.warn silenced.
const { default: Provider, errors } = await quietly(() => import('oidc-provider'));
// The package's own in-memory adapter, one store per test provider (its default adapter warns).
// @ts-expect-error the package ships no types for its adapters
import { createMemoryAdapter } from 'oidc-provider/lib/adapters/memory_adapter.js';

type ProviderInstance = OidcProviderModule.default;
/** A key jose can sign with (a CryptoKey, or HMAC key bytes). */
type SignKey = Parameters<SignJWT['sign']>[0];

/** A test user: username and password are the same string. */
export interface TestUser {
  sub: string;
  username: string;
  name: string;
  email: string;
  groups: string[];
}

/** The test users, by username (password = username). */
export const TEST_USERS: Readonly<Record<'alice' | 'bob' | 'carol' | 'dave' | 'erin', TestUser>> = Object.freeze({
  alice: { sub: 'alice-0001', username: 'alice', name: 'Alice Astronomer', email: 'alice@example.org', groups: ['astronomers', 'gaia-team'] },
  bob: { sub: 'bob-0002', username: 'bob', name: 'Bob Observer', email: 'bob@example.org', groups: ['astronomers'] },
  carol: { sub: 'carol-0003', username: 'carol', name: 'Carol Admin', email: 'carol@example.org', groups: ['constellation-admins'] },
  dave: { sub: 'dave-0004', username: 'dave', name: 'Dave Operator', email: 'dave@example.org', groups: ['rsp-operators'] },
  erin: { sub: 'erin-0005', username: 'erin', name: 'Erin Nogroup', email: 'erin@example.org', groups: [] },
});

/** The broker's confidential client. */
export const BROKER_CLIENT_ID = 'constellation';
/** The broker client's secret (the tests put it in the env variable the config names). */
export const BROKER_CLIENT_SECRET = 'constellation-test-client-secret-0123456789';
/** The public client the command line uses for the device flow. */
export const CLI_CLIENT_ID = 'constellation-cli';
/** The broker's audience: the default resource of every access token. */
export const BROKER_AUDIENCE = 'urn:constellation:broker';
/** RFC 8693 grant type and token type. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** A grant this TEST provider alone accepts (username + password → access token), for `tokenFor`. */
export const TEST_PASSWORD_GRANT = 'urn:constellation:test:password';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const OIDC_SCOPES = 'openid profile email groups offline_access';
/** The scope every resource server has; tokens carry it for any resource. */
const RESOURCE_SCOPE = 'api';

export interface OidcProviderOptions {
  /** The default resource (aud) of access tokens (default BROKER_AUDIENCE). */
  audience?: string;
  /** Redirect URIs of the broker client (e.g. `${broker}/callback`); settable later with `setRedirectUris`. */
  redirectUris?: string[];
  /** Post-logout redirect URIs of the broker client. */
  postLogoutRedirectUris?: string[];
  /** Lifetime of access tokens from the code, refresh, device and client-credentials grants (default 3600 s). */
  accessTokenTtlS?: number;
  /** Lifetime of token-exchange tokens (default 300 s). */
  exchangedTokenTtlS?: number;
}

/** A running test provider. */
export interface TestOidcProvider {
  /** http://127.0.0.1:PORT */
  issuer: string;
  jwksUri: string;
  tokenEndpoint: string;
  /** The default resource (aud) of access tokens. */
  audience: string;
  /** Replace the broker client's redirect URIs (the broker's port is known only after it starts). */
  setRedirectUris(redirectUris: string[], postLogoutRedirectUris?: string[]): Promise<void>;
  /** A real access token (JWT) for `username`, with `aud` = `audience` (default the provider's), no browser needed. */
  tokenFor(username: keyof typeof TEST_USERS | string, options?: { audience?: string; scopes?: string; clientId?: string }): Promise<string>;
  /** How many token requests of `grantType` succeeded (e.g. 'refresh_token', 'authorization_code'). */
  grants(grantType: string): number;
  /** How many token exchanges succeeded for `audience` (every audience when omitted). */
  exchanges(audience?: string): number;
  /** Add a new signing key (new kid) used from now on; the old one leaves the JWKS unless `keepOld`. */
  rotateKeys(options?: { keepOld?: boolean }): Promise<void>;
  /** Sign `claims` with the current private key (or `key`/`alg`/`kid` given), for hostile-token tests. No defaults are added. */
  sign(claims: JWTPayload, options?: { alg?: string; kid?: string; key?: SignKey; typ?: string }): Promise<string>;
  /** The current public signing key as a JWK (e.g. to build an HS256 token keyed with it). */
  publicJwk(): JWK;
  /** The kid of the current signing key. */
  currentKid(): string;
  /** Approve a device-flow user code as `username`, over HTTP with a cookie jar, as a person at a browser would. */
  approveDevice(userCode: string, username: string, password?: string): Promise<void>;
  close(): Promise<void>;
}

interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  privateJwk: JWK;
  publicJwk: JWK;
}

/** Start a provider on 127.0.0.1 with an ephemeral port. */
export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<TestOidcProvider> {
  const audience = options.audience ?? BROKER_AUDIENCE;
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const state = {
    keys: [await newSigningKey()],
    redirectUris: options.redirectUris ?? [],
    postLogoutRedirectUris: options.postLogoutRedirectUris ?? [],
    exchangeCounts: new Map<string, number>(),
    grantCounts: new Map<string, number>(),
  };
  const cookieKeys = [randomBytes(32).toString('base64url')];
  registerSecret(BROKER_CLIENT_SECRET);
  const adapter: unknown = createMemoryAdapter(0);

  const build = (): ProviderInstance => {
    const provider = new Provider(issuer, configuration({ audience, options, state, cookieKeys, adapter }));
    const verifyKeys = () => createLocalJWKSet({ keys: state.keys.map((k) => k.publicJwk) });
    provider.registerGrantType(TOKEN_EXCHANGE_GRANT, (ctx) => tokenExchange(ctx, { issuer, verifyKeys, state, ttlS: options.exchangedTokenTtlS ?? 300 }),
      ['subject_token', 'subject_token_type', 'audience', 'requested_token_type', 'resource', 'scope']);
    provider.registerGrantType(TEST_PASSWORD_GRANT, (ctx) => passwordGrant(provider, ctx, audience, options.accessTokenTtlS ?? 3600),
      ['username', 'password', 'resource', 'scope']);
    provider.on('server_error', () => undefined); // errors reach the caller as HTTP answers; keep the console quiet
    // Whatever the token endpoint issues is a secret no broker log line may contain.
    provider.use(async (ctx, next) => {
      await next();
      const body: unknown = ctx.body;
      if (ctx.path !== '/token' || typeof body !== 'object' || body === null) return;
      for (const [name, value] of Object.entries(body)) if (/token$/.test(name) && typeof value === 'string') registerSecret(value);
    });
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      const type = String(ctx.oidc.params?.grant_type);
      state.grantCounts.set(type, (state.grantCounts.get(type) ?? 0) + 1);
    });
    return provider;
  };
  let provider = build();

  server.on('request', (req, res) => {
    route(provider, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('test provider error');
    });
  });

  const tokenEndpoint = `${issuer}/token`;
  const self: TestOidcProvider = {
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    audience,
    async setRedirectUris(redirectUris, postLogoutRedirectUris) {
      state.redirectUris = redirectUris;
      if (postLogoutRedirectUris) state.postLogoutRedirectUris = postLogoutRedirectUris;
      provider = build(); // static clients are read at construction; the shared adapter keeps every grant and session
    },
    async tokenFor(username, tokenOptions = {}) {
      const body = new URLSearchParams({ grant_type: TEST_PASSWORD_GRANT, username, password: username, resource: tokenOptions.audience ?? audience });
      if (tokenOptions.scopes) body.set('scope', tokenOptions.scopes);
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(tokenOptions.clientId ?? BROKER_CLIENT_ID, BROKER_CLIENT_SECRET) },
        body,
      });
      const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || !json.access_token) throw new Error(`test provider refused a token for ${username}: ${json.error} ${json.error_description ?? ''}`);
      return json.access_token;
    },
    grants: (grantType) => state.grantCounts.get(grantType) ?? 0,
    exchanges(forAudience) {
      if (forAudience !== undefined) return state.exchangeCounts.get(forAudience) ?? 0;
      return [...state.exchangeCounts.values()].reduce((a, b) => a + b, 0);
    },
    async rotateKeys(rotateOptions = {}) {
      const fresh = await newSigningKey();
      state.keys = rotateOptions.keepOld ? [fresh, ...state.keys] : [fresh];
      provider = build();
    },
    async sign(claims, signOptions = {}) {
      const current = state.keys[0];
      const alg = signOptions.alg ?? 'RS256';
      const header = { alg, kid: signOptions.kid ?? current.kid, typ: signOptions.typ ?? 'at+jwt' };
      return new SignJWT(claims).setProtectedHeader(header).sign(signOptions.key ?? current.privateKey);
    },
    publicJwk: () => ({ ...state.keys[0].publicJwk }),
    currentKid: () => state.keys[0].kid,
    approveDevice: (userCode, username, password) => approveDevice(issuer, userCode, username, password ?? username),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  return self;
}

interface ConfigInputs {
  audience: string;
  options: OidcProviderOptions;
  state: { keys: SigningKey[]; redirectUris: string[]; postLogoutRedirectUris: string[] };
  cookieKeys: string[];
  adapter: unknown;
}

function configuration({ audience, options, state, cookieKeys, adapter }: ConfigInputs): Configuration {
  const accessTokenTTL = options.accessTokenTtlS ?? 3600;
  const resourceServer = (identifier: string): ResourceServer => ({
    scope: RESOURCE_SCOPE,
    audience: identifier,
    accessTokenFormat: 'jwt',
    accessTokenTTL,
    jwt: { sign: { alg: 'RS256' } },
  });
  const page = (title: string, body: string) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>`;
  return {
    adapter: adapter as Configuration['adapter'],
    jwks: { keys: state.keys.map((k) => k.privateJwk) as Configuration['jwks'] extends { keys: infer K } | undefined ? K : never },
    cookies: { keys: cookieKeys },
    clients: [
      {
        client_id: BROKER_CLIENT_ID,
        client_secret: BROKER_CLIENT_SECRET,
        client_name: 'Constellation broker',
        redirect_uris: state.redirectUris,
        post_logout_redirect_uris: state.postLogoutRedirectUris,
        response_types: state.redirectUris.length ? ['code'] : [],
        grant_types: ['authorization_code', 'refresh_token', DEVICE_GRANT, TOKEN_EXCHANGE_GRANT, 'client_credentials', TEST_PASSWORD_GRANT],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: `${OIDC_SCOPES} ${RESOURCE_SCOPE}`,
      },
      {
        client_id: CLI_CLIENT_ID,
        client_name: 'Constellation command line',
        redirect_uris: [],
        response_types: [],
        grant_types: [DEVICE_GRANT, 'refresh_token'],
        token_endpoint_auth_method: 'none',
        scope: `${OIDC_SCOPES} ${RESOURCE_SCOPE}`,
      },
    ],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', RESOURCE_SCOPE],
    pkce: { required: () => true },
    async findAccount(_ctx, sub) {
      const user = userBySub(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: () => ({ sub, ...profileClaims(user), email_verified: true }) };
    },
    async extraTokenClaims(_ctx, token) {
      const accountId = 'accountId' in token ? token.accountId : undefined;
      const user = typeof accountId === 'string' ? userBySub(accountId) : undefined;
      return user ? profileClaims(user) : undefined;
    },
    // The broker's clients always get refresh tokens, whether or not offline_access survived the request.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    // First-party clients: consent is given on the user's behalf for whatever they asked.
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const { oidc } = ctx;
      if (!oidc.client || !oidc.session?.accountId) return undefined;
      const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(oidc.client.clientId);
      const grant = (grantId ? await oidc.provider.Grant.find(grantId) : undefined) ?? new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope([...oidc.requestParamScopes].join(' '));
      for (const identifier of Object.keys(oidc.resourceServers ?? {})) grant.addResourceScope(identifier, RESOURCE_SCOPE);
      await grant.save();
      return grant;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    clientBasedCORS: () => false,
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<pre>${escapeHtml(JSON.stringify(out))}</pre>`);
    },
    features: {
      devInteractions: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx, form, _out, err) => {
          ctx.body = page('Sign-in', `${err ? '<p class="error">The code you entered is incorrect</p>' : ''}${form}`);
        },
        userCodeConfirmSource: async (ctx, form, _client, _info, userCode) => {
          ctx.body = page('Confirm device', `<p>${escapeHtml(userCode)}</p>${form}`);
        },
        successSource: async (ctx) => {
          ctx.body = page('Sign-in Success', '<p>You may close this page.</p>');
        },
      },
      revocation: { enabled: true, allowedPolicy: async () => true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out', `${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, identifier) => resourceServer(identifier),
      },
    },
    ttl: {
      AccessToken: accessTokenTTL,
      ClientCredentials: accessTokenTTL,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
      Session: 24 * 3600,
      Interaction: 3600,
      AuthorizationCode: 60,
      DeviceCode: 600,
    },
  };
}

/** Serve the login page and form ourselves; everything else is oidc-provider's. */
async function route(provider: ProviderInstance, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(url.pathname);
  if (!match) return provider.callback()(req, res);
  const details = await provider.interactionDetails(req, res).catch(() => undefined);
  if (!details || details.uid !== match[1]) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('unknown or expired interaction');
    return;
  }
  if (details.prompt.name !== 'login') {
    // Consent for first-party clients is granted in loadExistingGrant; anything left is granted here.
    const { oidc } = { oidc: details.params };
    const grant = new provider.Grant({ accountId: details.session?.accountId, clientId: String(oidc.client_id) });
    grant.addOIDCScope(String(oidc.scope ?? 'openid'));
    const resource = oidc.resource;
    for (const r of Array.isArray(resource) ? resource : resource ? [String(resource)] : []) grant.addResourceScope(String(r), RESOURCE_SCOPE);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'POST' && match[2]) {
    const form = new URLSearchParams(await readBody(req));
    const user = TEST_USERS[form.get('username') as keyof typeof TEST_USERS] as TestUser | undefined;
    if (!user || form.get('password') !== user.username) {
      res.writeHead(401, { 'content-type': 'text/html' }).end(loginPage(details.uid, 'Invalid username or password'));
      return;
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  res.writeHead(200, { 'content-type': 'text/html' }).end(loginPage(details.uid));
}

function loginPage(uid: string, error?: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign in</title></head><body><h1>Sign in</h1>${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${uid}/login">
<input type="text" name="username" value=""/><input type="password" name="password" value=""/><button type="submit">Sign in</button>
</form></body></html>`;
}

interface ExchangeInputs {
  issuer: string;
  verifyKeys: () => ReturnType<typeof createLocalJWKSet>;
  state: { keys: SigningKey[]; exchangeCounts: Map<string, number> };
  ttlS: number;
}

/** RFC 8693: a valid access token from this issuer becomes a short-lived one for another audience. */
async function tokenExchange(ctx: TokenEndpointGrantContext, { issuer, verifyKeys, state, ttlS }: ExchangeInputs): Promise<void> {
  const { subject_token: subjectToken, subject_token_type: subjectTokenType, audience, resource, requested_token_type: requested } = ctx.oidc.params;
  if (typeof subjectToken !== 'string' || !subjectToken) throw new errors.InvalidRequest('missing required parameter subject_token');
  if (subjectTokenType !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
  if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
  const target = typeof audience === 'string' && audience ? audience : typeof resource === 'string' && resource ? resource : undefined;
  if (!target) throw new errors.InvalidTarget('audience (or resource) is required');
  let subject: JWTPayload;
  try {
    const verified = await jwtVerify(subjectToken, verifyKeys(), { issuer, algorithms: ['RS256'], typ: 'at+jwt' });
    subject = verified.payload;
  } catch {
    throw new errors.InvalidGrant('subject_token is not a valid access token from this issuer');
  }
  if (typeof subject.sub !== 'string') throw new errors.InvalidGrant('subject_token has no subject');
  const now = Math.floor(Date.now() / 1000);
  const key = state.keys[0];
  const claims: JWTPayload = {
    sub: subject.sub,
    groups: subject.groups,
    name: subject.name,
    email: subject.email,
    preferred_username: subject.preferred_username,
    client_id: ctx.oidc.client.clientId,
    scope: RESOURCE_SCOPE,
    act: { sub: ctx.oidc.client.clientId },
  };
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' })
    .setIssuer(issuer)
    .setAudience(target)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlS)
    .setJti(randomUUID())
    .sign(key.privateKey);
  state.exchangeCounts.set(target, (state.exchangeCounts.get(target) ?? 0) + 1);
  ctx.body = { access_token: token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: ttlS };
}

/** Test-only: username + password → a real access token through oidc-provider's own models. */
async function passwordGrant(provider: ProviderInstance, ctx: TokenEndpointGrantContext, defaultAudience: string, ttlS: number): Promise<void> {
  const { username, password, resource, scope } = ctx.oidc.params;
  const user = typeof username === 'string' ? (TEST_USERS as Record<string, TestUser>)[username] : undefined;
  if (!user || password !== user.username) throw new errors.InvalidGrant('invalid username or password');
  const target = typeof resource === 'string' && resource ? resource : defaultAudience;
  const scopes = typeof scope === 'string' && scope ? scope : `openid profile email groups ${RESOURCE_SCOPE}`;
  const { client } = ctx.oidc;
  const grant = new provider.Grant({ accountId: user.sub, clientId: client.clientId });
  grant.addOIDCScope(scopes);
  grant.addResourceScope(target, RESOURCE_SCOPE);
  const grantId = await grant.save();
  const token = new provider.AccessToken({ accountId: user.sub, client, grantId, gty: 'password', scope: scopes });
  const resourceServer: ResourceServerInstance = {
    scope: RESOURCE_SCOPE,
    audience: target,
    accessTokenFormat: 'jwt',
    accessTokenTTL: ttlS,
    jwt: { sign: { alg: 'RS256' } },
    scopes: new Set([RESOURCE_SCOPE]),
    identifier: () => target,
  };
  token.resourceServer = resourceServer;
  const value = await token.save();
  ctx.body = { access_token: value, token_type: 'Bearer', expires_in: token.expiration, scope: token.scope };
}

/** Drive the device verification pages over HTTP: enter the code, confirm, sign in. */
async function approveDevice(issuer: string, userCode: string, username: string, password: string): Promise<void> {
  const jar = new Map<string, string>();
  const go = async (url: string, init: { method?: string; body?: URLSearchParams } = {}): Promise<{ status: number; url: string; text: string }> => {
    let current = new URL(url, issuer).href;
    let method = init.method ?? 'GET';
    let body: URLSearchParams | undefined = init.body;
    for (let hops = 0; hops < 20; hops++) {
      const res = await fetch(current, {
        method,
        redirect: 'manual',
        headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body,
      });
      for (const line of res.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === '') jar.delete(name);
        else jar.set(name, value);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).href;
        method = 'GET';
        body = undefined;
        await res.body?.cancel();
        continue;
      }
      return { status: res.status, url: current, text: await res.text() };
    }
    throw new Error(`device approval: too many redirects from ${url}`);
  };
  const submit = (page: { url: string; text: string }, formId: string | undefined, fields: Record<string, string>) => {
    const form = extractForm(page.text, formId);
    if (!form) throw new Error(`device approval: no form ${formId ?? ''} on ${page.url}: ${page.text.slice(0, 300)}`);
    return go(new URL(form.action || page.url, page.url).href, { method: 'POST', body: new URLSearchParams({ ...form.fields, ...fields }) });
  };
  const input = await go('/device');
  const confirm = await submit(input, 'op.deviceInputForm', { user_code: userCode });
  if (!confirm.text.includes('op.deviceConfirmForm')) throw new Error(`device approval: user code ${userCode} refused: ${confirm.status}`);
  const login = await submit(confirm, 'op.deviceConfirmForm', {});
  const done = login.url.includes('/interaction/') ? await submit(login, 'login', { username, password }) : login;
  if (!done.text.includes('Sign-in Success')) throw new Error(`device approval for ${username} did not succeed (${done.status} at ${done.url}): ${done.text.slice(0, 300)}`);
}

/** The action and input fields of the form with `id` (or the first form) in `html`. */
export function extractForm(html: string, id?: string): { action: string; fields: Record<string, string> } | undefined {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)];
  const found = forms.find((f) => (id ? attribute(f[1], 'id') === id : true));
  if (!found) return undefined;
  const fields: Record<string, string> = {};
  for (const input of found[2].matchAll(/<input\b([^>]*)>/gi)) {
    const name = attribute(input[1], 'name');
    if (name) fields[name] = unescapeHtml(attribute(input[1], 'value') ?? '');
  }
  return { action: unescapeHtml(attribute(found[1], 'action') ?? ''), fields };
}

function attribute(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(tag);
  return m?.[1];
}

async function newSigningKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomBytes(8).toString('hex');
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, privateJwk, publicJwk };
}

function userBySub(sub: string): TestUser | undefined {
  return Object.values(TEST_USERS).find((u) => u.sub === sub);
}

function profileClaims(user: TestUser): Record<string, unknown> {
  return { name: user.name, email: user.email, preferred_username: user.username, groups: [...user.groups] };
}

function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function unescapeHtml(text: string): string {
  return text.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

async function quietly<T>(load: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    return await load();
  } finally {
    console.warn = warn;
  }
}
