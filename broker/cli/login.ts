/**
 * `constellation login`, `logout` and `whoami`: the device authorization grant (RFC 8628)
 * against the federation's issuer as a public client, tokens cached per issuer in the user's
 * config directory and refreshed shortly before they expire.
 */
import { decodeJwt } from 'jose';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import type { Config, IdentityConfig } from '../config/config.js';
import { Secret } from '../auth/identity.js';
import { OidcProvider, type Tokens } from '../auth/provider.js';
import { jsonLine } from './output.js';
import { printableInline } from './terminal.js';
import { readLogin, tokenFile, writeLogin, type CachedLogin } from './token-cache.js';

/** The command line's client at the provider: CONSTELLATION_CLI_CLIENT_ID, else identity.cliClientId, else identity.clientId. */
export const CLI_CLIENT_ENV = 'CONSTELLATION_CLI_CLIENT_ID';
/** A cached token expiring within this is refreshed before use. */
const REFRESH_WITHIN_MS = 60_000;

/** Where the CLI writes; tests pass their own. */
export interface Out {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const PROCESS_OUT: Out = { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t) };

/** `constellation login`: show the verification address and code, wait for approval, cache the tokens. */
export async function login(config: Config, env: NodeJS.ProcessEnv = process.env, out: Out = PROCESS_OUT): Promise<number> {
  const identity = identityOf(config);
  const provider = cliProvider(identity, env);
  const device = await provider.deviceAuthorization();
  out.stdout(
    `To log in to ${identity.issuer}, open\n  ${device.verificationUriComplete ?? device.verificationUri}\n` +
      `and confirm the code\n  code: ${device.userCode}\nWaiting (the code expires in ${Math.round((device.expiresAt - Date.now()) / 60_000)} min)...\n`,
  );
  const tokens = await provider.pollDevice(device, AbortSignal.timeout(Math.max(1, device.expiresAt - Date.now())));
  const cached = toCache(cliClientId(identity, env), tokens);
  await writeLogin(identity.issuer, cached, env);
  out.stdout(`Logged in as ${describe(cached)}; token cached in ${tokenFile(env)}\n`);
  return 0;
}

/** `constellation logout`: revoke the refresh token where the provider allows it, then forget the login. */
export async function logout(config: Config, env: NodeJS.ProcessEnv = process.env, out: Out = PROCESS_OUT): Promise<number> {
  const identity = identityOf(config);
  const cached = await readLogin(identity.issuer, env);
  if (!cached) {
    out.stdout(`Not logged in to ${identity.issuer}\n`);
    return 0;
  }
  const provider = cliProvider(identity, env, cached.clientId);
  try {
    const revoked = await provider.revoke(new Secret(cached.refreshToken ?? cached.accessToken), cached.refreshToken ? 'refresh_token' : 'access_token');
    if (!revoked) out.stderr('constellation: the identity provider offers no revocation; the cached token is deleted but stays valid until it expires\n');
  } catch (err) {
    // The local login ends whatever the provider says: a logout that cannot reach it still forgets the token.
    out.stderr(`constellation: revoking the token failed (${isConstellationError(err) ? `${err.code}: ${err.message}` : String(err)}); the cached token is deleted anyway\n`);
  }
  await writeLogin(identity.issuer, undefined, env);
  out.stdout(`Logged out of ${identity.issuer}\n`);
  return 0;
}

/** What the broker says about the caller (`me`), or what the login's ID token says when no broker answers. */
export interface WhoAmI {
  subject: string;
  name?: string | null;
  email?: string | null;
  groups?: string[];
  roles?: { admin: boolean; operatorOf: string[] };
  linkedSites?: string[];
  /** `broker` when the running broker answered, `token` when read from the cached login. */
  source: 'broker' | 'token';
}

/** `constellation whoami [--json]`. */
export async function whoami(config: Config, json: boolean, env: NodeJS.ProcessEnv = process.env, out: Out = PROCESS_OUT): Promise<number> {
  const identity = identityOf(config);
  const { token, login: cached } = await currentToken(config, env);
  const base = brokerUrl(config, env);
  let me: WhoAmI | undefined;
  try {
    me = await askBroker(base, token);
  } catch (err) {
    if (isConstellationError(err) && err.kind !== 'IDENTITY_UNAVAILABLE') throw err;
    out.stderr(`constellation: no broker answering at ${base} (${err instanceof Error ? err.message : String(err)}); showing what the cached login says\n`);
  }
  me ??= fromToken(cached, token);
  out.stdout(json ? jsonLine({ issuer: identity.issuer, ...me }) : formatWhoAmI(identity.issuer, me));
  return 0;
}

/**
 * The cached access token for the federation's issuer, refreshed first when it expires within
 * a minute. UNAUTHENTICATED telling the user to log in when there is none or it cannot be renewed.
 */
export async function currentToken(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<{ token: Secret; login: CachedLogin }> {
  const identity = identityOf(config);
  const cached = await readLogin(identity.issuer, env);
  if (!cached) throw new ConstellationError('UNAUTHENTICATED', `not logged in to ${identity.issuer}; run constellation login`);
  if (cached.expiresAt - Date.now() > REFRESH_WITHIN_MS) return { token: new Secret(cached.accessToken), login: cached };
  if (!cached.refreshToken) {
    if (cached.expiresAt > Date.now()) return { token: new Secret(cached.accessToken), login: cached };
    throw new ConstellationError('UNAUTHENTICATED', `your login to ${identity.issuer} has expired; run constellation login`);
  }
  let tokens: Tokens;
  try {
    tokens = await cliProvider(identity, env, cached.clientId).refresh(new Secret(cached.refreshToken));
  } catch (err) {
    if (isConstellationError(err) && err.kind === 'UNAUTHENTICATED') {
      await writeLogin(identity.issuer, undefined, env);
      throw new ConstellationError('UNAUTHENTICATED', `your login to ${identity.issuer} could not be renewed (${err.message}); run constellation login`, { cause: err });
    }
    throw err;
  }
  // A provider that does not rotate refresh tokens sends none back: keep the one we have.
  const renewed: CachedLogin = { ...toCache(cached.clientId, tokens), ...(tokens.refreshToken ? {} : { refreshToken: cached.refreshToken }) };
  if (!tokens.claims) Object.assign(renewed, pick(cached));
  await writeLogin(identity.issuer, renewed, env);
  return { token: tokens.accessToken, login: renewed };
}

function identityOf(config: Config): IdentityConfig {
  if (!config.identity) {
    throw new ConstellationError('IDENTITY_UNAVAILABLE', `the federation${config.configPath ? ` in ${config.configPath}` : ''} names no identity provider (identity.issuer), so there is nothing to log in to`);
  }
  return config.identity;
}

function cliClientId(identity: IdentityConfig, env: NodeJS.ProcessEnv): string {
  const id = env[CLI_CLIENT_ENV] || identity.cliClientId || identity.clientId;
  if (!id) throw new ConstellationError('IDENTITY_UNAVAILABLE', `no client to log in with: set identity.cliClientId in federation.yaml or ${CLI_CLIENT_ENV}`);
  return id;
}

/** The command line is a public client: it holds no secret, PKCE-free device flow. */
function cliProvider(identity: IdentityConfig, env: NodeJS.ProcessEnv, clientId?: string): OidcProvider {
  return new OidcProvider(identity, env, { clientId: clientId ?? cliClientId(identity, env), publicClient: true });
}

function toCache(clientId: string, tokens: Tokens): CachedLogin {
  return {
    clientId,
    accessToken: tokens.accessToken.reveal(),
    ...(tokens.refreshToken ? { refreshToken: tokens.refreshToken.reveal() } : {}),
    ...(tokens.idToken ? { idToken: tokens.idToken.reveal() } : {}),
    expiresAt: tokens.expiresAt,
    ...(tokens.claims
      ? {
          subject: tokens.claims.subject,
          ...(tokens.claims.name ? { name: tokens.claims.name } : {}),
          ...(tokens.claims.email ? { email: tokens.claims.email } : {}),
        }
      : {}),
  };
}

function pick(cached: CachedLogin): Partial<CachedLogin> {
  return {
    ...(cached.subject ? { subject: cached.subject } : {}),
    ...(cached.name ? { name: cached.name } : {}),
    ...(cached.email ? { email: cached.email } : {}),
    ...(cached.idToken ? { idToken: cached.idToken } : {}),
  };
}

function describe(login: CachedLogin): string {
  const who = login.name ? `${login.name} (${login.subject})` : login.subject ?? 'unknown subject';
  return login.email ? `${who} <${login.email}>` : who;
}

/** CONSTELLATION_URL, else the configured HOST:PORT (loopback when bound to every interface). */
export function brokerUrl(config: Config, env: NodeJS.ProcessEnv): string {
  if (env.CONSTELLATION_URL) return env.CONSTELLATION_URL.replace(/\/+$/, '');
  const { host, port } = config.server;
  const name = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

const ME_QUERY = '{ me { subject name email groups roles { admin operatorOf } linkedSites } }';

/** The broker's `me` for `token`; IDENTITY_UNAVAILABLE when no broker answers, UNAUTHENTICATED when it refuses the token. */
async function askBroker(base: string, token: Secret): Promise<WhoAmI | undefined> {
  let res: Response;
  try {
    res = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.reveal()}` },
      body: JSON.stringify({ query: ME_QUERY }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    throw new ConstellationError('IDENTITY_UNAVAILABLE', cause instanceof Error ? cause.message : String(cause), { cause: err });
  }
  const body = record(await res.json().catch(() => undefined));
  const message = typeof body.message === 'string' ? body.message : `HTTP ${res.status}`;
  if (res.status === 401) throw new ConstellationError('UNAUTHENTICATED', `the broker at ${base} refused the cached token (${message}); run constellation login`);
  const errors = Array.isArray(body.errors) ? body.errors.map(record) : [];
  const data = record(body.data);
  if (errors.length > 0 || body.data === undefined) {
    const first = errors[0]?.message;
    throw new ConstellationError('IDENTITY_UNAVAILABLE', `the broker at ${base} did not answer me (${typeof first === 'string' ? first : message})`);
  }
  return parseMe(data.me);
}

/** `value` as a plain record (empty when it is not an object), for reading JSON fields one by one. */
function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.fromEntries(Object.entries(value)) : {};
}

function parseMe(me: unknown): WhoAmI | undefined {
  const m = record(me);
  if (typeof m.subject !== 'string') return undefined;
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const roles = record(m.roles);
  return {
    subject: m.subject,
    name: typeof m.name === 'string' ? m.name : null,
    email: typeof m.email === 'string' ? m.email : null,
    groups: strings(m.groups),
    roles: { admin: roles.admin === true, operatorOf: strings(roles.operatorOf) },
    linkedSites: strings(m.linkedSites),
    source: 'broker',
  };
}

function fromToken(cached: CachedLogin, token: Secret): WhoAmI {
  let claims: Record<string, unknown> = {};
  try {
    claims = decodeJwt(token.reveal());
  } catch {
    // an opaque access token: the ID token's claims cached at login are all there is
  }
  const groups = Array.isArray(claims.groups) ? claims.groups.filter((g): g is string => typeof g === 'string') : undefined;
  return {
    subject: cached.subject ?? (typeof claims.sub === 'string' ? claims.sub : 'unknown'),
    name: cached.name ?? (typeof claims.name === 'string' ? claims.name : null),
    email: cached.email ?? (typeof claims.email === 'string' ? claims.email : null),
    ...(groups ? { groups } : {}),
    source: 'token',
  };
}

function formatWhoAmI(issuer: string, me: WhoAmI): string {
  const lines = [`issuer:       ${issuer}`, `subject:      ${me.subject}`];
  if (me.name) lines.push(`name:         ${me.name}`);
  if (me.email) lines.push(`email:        ${me.email}`);
  if (me.groups) lines.push(`groups:       ${me.groups.join(', ') || '-'}`);
  if (me.roles) {
    lines.push(`admin:        ${me.roles.admin ? 'yes' : 'no'}`);
    lines.push(`operator of:  ${me.roles.operatorOf.join(', ') || '-'}`);
  }
  if (me.linkedSites) lines.push(`linked sites: ${me.linkedSites.join(', ') || '-'}`);
  // Names and groups are the identity provider's words: printable only.
  return `${lines.map(printableInline).join('\n')}\n`;
}
