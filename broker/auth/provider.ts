/**
 * The broker as an OpenID relying party (openid-client): discovery of `identity.issuer`, the
 * authorization code flow with PKCE for browsers, refresh, the device flow for the command line,
 * RFC 8693 token exchange and client credentials for site tokens, end-session and revocation.
 * The only module that imports openid-client.
 */
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { ConstellationError } from '../../registry/model/errors.js';
import type { IdentityConfig } from '../config/config.js';
import { Secret } from './identity.js';

/** RFC 8693 grant type and the token type of an access token. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** How long one request to the provider may take. */
const REQUEST_TIMEOUT_S = 10;
/** Lifetime assumed for a token whose response states none and which is not a readable JWT. */
const DEFAULT_LIFETIME_MS = 300_000;

/** What the ID token says about the user (verified by openid-client when it came with the code). */
export interface IdClaims {
  subject: string;
  name?: string;
  email?: string;
  preferredUsername?: string;
}

/** Tokens from a grant; every token wrapped so it never prints. */
export interface Tokens {
  accessToken: Secret;
  refreshToken?: Secret;
  idToken?: Secret;
  /** When the access token expires, epoch milliseconds. */
  expiresAt: number;
  /** The ID token's claims, when one came. */
  claims?: IdClaims;
}

/** A started device authorization (RFC 8628): what to show the user, and what to poll with. */
export interface DeviceAuthorization {
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** When the code expires, epoch milliseconds. */
  expiresAt: number;
  /** Seconds between polls the provider asks for. */
  intervalS: number;
}

/** A site token obtained for the broker or for a user. */
export interface SiteToken {
  token: Secret;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface OidcProviderOptions {
  /** The client to act as (default identity.clientId); the command line's public client differs from the broker's. */
  clientId?: string;
  /** Act as a public client even when identity.clientSecretEnv is set (the command line holds no secret). */
  publicClient?: boolean;
}

/** The relying party for one issuer and client. Discovery happens on first use and is retried after a failure. */
export class OidcProvider {
  readonly issuer: string;
  readonly #identity: IdentityConfig;
  readonly #clientId: string | undefined;
  readonly #secret: string | undefined;
  #configuration: Promise<client.Configuration> | undefined;
  readonly #devices = new WeakMap<DeviceAuthorization, client.DeviceAuthorizationResponse>();

  constructor(identity: IdentityConfig, env: NodeJS.ProcessEnv = process.env, options: OidcProviderOptions = {}) {
    this.#identity = identity;
    this.issuer = identity.issuer;
    this.#clientId = options.clientId ?? identity.clientId;
    const secret = identity.clientSecretEnv && !options.publicClient ? env[identity.clientSecretEnv] : undefined;
    this.#secret = secret ? secret : undefined;
  }

  /** Read the issuer's discovery document (once; again after a failure). IDENTITY_UNAVAILABLE naming the URL when it cannot be read. */
  discover(): Promise<client.Configuration> {
    this.#configuration ??= this.#discover().catch((err: unknown) => {
      this.#configuration = undefined;
      throw err;
    });
    return this.#configuration;
  }

  /** The issuer's JWKS address, from discovery. */
  async jwksUri(): Promise<URL> {
    const uri = (await this.discover()).serverMetadata().jwks_uri;
    if (!uri) throw new ConstellationError('IDENTITY_UNAVAILABLE', `the identity provider ${this.issuer} publishes no jwks_uri in its discovery document`);
    return new URL(uri);
  }

  /** Where to send a browser to log in: authorization code with PKCE (S256), state and nonce. */
  async authorizationUrl(params: { redirectUri: string; state: string; nonce: string; codeChallenge: string }): Promise<URL> {
    const config = await this.#client('log in');
    return client.buildAuthorizationUrl(config, {
      redirect_uri: params.redirectUri,
      scope: this.#identity.scopes,
      state: params.state,
      nonce: params.nonce,
      code_challenge: params.codeChallenge,
      code_challenge_method: 'S256',
      ...this.#resource(),
    });
  }

  /** Redeem the code in `callbackUrl` (the full /callback URL the browser came back to); the ID token is verified. UNAUTHENTICATED when refused. */
  async exchangeCode(params: { callbackUrl: URL; codeVerifier: string; state: string; nonce: string }): Promise<Tokens> {
    const config = await this.#client('log in');
    try {
      const response = await client.authorizationCodeGrant(
        config,
        params.callbackUrl,
        { pkceCodeVerifier: params.codeVerifier, expectedState: params.state, expectedNonce: params.nonce, idTokenExpected: true },
        this.#resource(),
      );
      return tokens(response);
    } catch (err) {
      throw this.#failure(err, 'the login code');
    }
  }

  /** New tokens for a refresh token. UNAUTHENTICATED when the provider refuses it (revoked, expired). */
  async refresh(refreshToken: Secret): Promise<Tokens> {
    const config = await this.#client('refresh a login');
    try {
      return tokens(await client.refreshTokenGrant(config, refreshToken.reveal(), this.#resource()));
    } catch (err) {
      throw this.#failure(err, 'the refresh token');
    }
  }

  /** Start the device flow (RFC 8628) for the command line. */
  async deviceAuthorization(): Promise<DeviceAuthorization> {
    const config = await this.#client('log in from the command line');
    try {
      const response = await client.initiateDeviceAuthorization(config, { scope: this.#identity.scopes, ...this.#resource() });
      const device: DeviceAuthorization = {
        userCode: response.user_code,
        verificationUri: response.verification_uri,
        ...(response.verification_uri_complete ? { verificationUriComplete: response.verification_uri_complete } : {}),
        expiresAt: Date.now() + response.expires_in * 1000,
        intervalS: response.interval ?? 5,
      };
      this.#devices.set(device, response);
      return device;
    } catch (err) {
      throw this.#failure(err, 'the device authorization request');
    }
  }

  /** Poll until the user approves `device` (or it expires, or `signal` aborts). UNAUTHENTICATED when denied or expired. */
  async pollDevice(device: DeviceAuthorization, signal?: AbortSignal): Promise<Tokens> {
    const response = this.#devices.get(device);
    if (!response) throw new ConstellationError('INVALID_ARGUMENT', 'pollDevice needs a device authorization started by this provider');
    const config = await this.#client('log in from the command line');
    try {
      return tokens(await client.pollDeviceAuthorizationGrant(config, response, this.#resource(), signal ? { signal } : {}));
    } catch (err) {
      throw this.#failure(err, 'the device login');
    }
  }

  /** The provider's end-session (logout) address, or undefined when it has none. */
  async endSessionUrl(params: { idTokenHint?: Secret; postLogoutRedirectUri?: string } = {}): Promise<URL | undefined> {
    const config = await this.discover();
    if (!config.serverMetadata().end_session_endpoint) return undefined;
    return client.buildEndSessionUrl(config, {
      ...(params.idTokenHint ? { id_token_hint: params.idTokenHint.reveal() } : {}),
      ...(params.postLogoutRedirectUri ? { post_logout_redirect_uri: params.postLogoutRedirectUri } : {}),
    });
  }

  /** Revoke a token (RFC 7009); false when the provider has no revocation endpoint. */
  async revoke(token: Secret, hint: 'refresh_token' | 'access_token' = 'refresh_token'): Promise<boolean> {
    const config = await this.#client('log out');
    if (!config.serverMetadata().revocation_endpoint) return false;
    try {
      await client.tokenRevocation(config, token.reveal(), { token_type_hint: hint });
      return true;
    } catch (err) {
      throw this.#failure(err, 'the revocation request');
    }
  }

  /** RFC 8693: the user's access token exchanged for one with `aud` = `audience`. UNAUTHENTICATED when the provider refuses. */
  async exchange(subjectToken: Secret, audience: string): Promise<SiteToken> {
    const config = await this.#client(`get a token for ${audience}`);
    try {
      const response = await client.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, {
        subject_token: subjectToken.reveal(),
        subject_token_type: ACCESS_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        audience,
      });
      return { token: new Secret(response.access_token), expiresAt: expiryOf(response) };
    } catch (err) {
      throw this.#failure(err, `the token exchange for audience ${audience}`);
    }
  }

  /** The broker's own token for `audience` (client credentials grant; the audience as resource indicator and audience). */
  async clientCredentials(audience: string): Promise<SiteToken> {
    const config = await this.#client(`get the broker's token for ${audience}`);
    try {
      const response = await client.clientCredentialsGrant(config, { ...(isAbsoluteUri(audience) ? { resource: audience } : {}), audience });
      return { token: new Secret(response.access_token), expiresAt: expiryOf(response) };
    } catch (err) {
      throw this.#failure(err, `the client credentials grant for audience ${audience}`);
    }
  }

  async #discover(): Promise<client.Configuration> {
    const url = parseIssuer(this.issuer);
    const insecure = url.protocol === 'http:';
    if (insecure && !isLoopback(url.hostname)) {
      throw new ConstellationError('INVALID_CONFIG', `identity.issuer ${this.issuer} must use https (plain http is allowed only on a loopback address)`);
    }
    try {
      const config = await client.discovery(url, this.#clientId ?? 'constellation', this.#secret ? undefined : { token_endpoint_auth_method: 'none' },
        this.#secret ? client.ClientSecretBasic(this.#secret) : client.None(),
        { execute: insecure ? [client.allowInsecureRequests] : [], timeout: REQUEST_TIMEOUT_S });
      config.timeout = REQUEST_TIMEOUT_S;
      return config;
    } catch (err) {
      throw new ConstellationError('IDENTITY_UNAVAILABLE', `the identity provider's discovery document ${discoveryUrl(url)} could not be read (${reason(err)}); check identity.issuer and that the provider is reachable`, { cause: err });
    }
  }

  /** The discovered configuration, when a client is configured to act with. */
  async #client(what: string): Promise<client.Configuration> {
    if (!this.#clientId) throw new ConstellationError('IDENTITY_UNAVAILABLE', `identity.clientId is not set in federation.yaml, so the broker cannot ${what}`);
    return this.discover();
  }

  /** RFC 8707: ask for tokens whose audience is the broker, when the audience is a URI the provider can take as a resource. */
  #resource(): Record<string, string> {
    return isAbsoluteUri(this.#identity.audience) ? { resource: this.#identity.audience } : {};
  }

  /** UNAUTHENTICATED when the provider refused or its answer did not validate; IDENTITY_UNAVAILABLE when it could not be reached. */
  #failure(err: unknown, what: string): ConstellationError {
    if (err instanceof ConstellationError) return err;
    if (err instanceof client.ResponseBodyError || err instanceof client.AuthorizationResponseError) {
      const status = err instanceof client.ResponseBodyError ? err.status : undefined;
      if (status !== undefined && status >= 500) {
        return new ConstellationError('IDENTITY_UNAVAILABLE', `the identity provider ${this.issuer} failed on ${what} (HTTP ${status}); try again shortly`, { cause: err });
      }
      const description = err.error_description ? `: ${err.error_description}` : '';
      return new ConstellationError('UNAUTHENTICATED', `the identity provider refused ${what} (${err.error}${description})`, { cause: err });
    }
    if (err instanceof client.WWWAuthenticateChallengeError) {
      const secret = this.#identity.clientSecretEnv ? ` and the secret in ${this.#identity.clientSecretEnv}` : '';
      return new ConstellationError('UNAUTHENTICATED', `the identity provider refused ${what}: it did not accept client ${this.#clientId} (check identity.clientId${secret})`, { cause: err });
    }
    if (unreachable(err)) {
      return new ConstellationError('IDENTITY_UNAVAILABLE', `the identity provider ${this.issuer} could not be reached for ${what} (${reason(err)}); try again shortly`, { cause: err });
    }
    return new ConstellationError('UNAUTHENTICATED', `the identity provider's answer to ${what} did not validate (${reason(err)})`, { cause: err });
  }
}

function tokens(response: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers): Tokens {
  const claims = response.claims();
  return {
    accessToken: new Secret(response.access_token),
    ...(response.refresh_token ? { refreshToken: new Secret(response.refresh_token) } : {}),
    ...(response.id_token ? { idToken: new Secret(response.id_token) } : {}),
    expiresAt: expiryOf(response),
    ...(claims
      ? {
          claims: {
            subject: claims.sub,
            ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
            ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
            ...(typeof claims.preferred_username === 'string' ? { preferredUsername: claims.preferred_username } : {}),
          },
        }
      : {}),
  };
}

/** When an access token expires: expires_in, else the JWT's exp, else a short default. */
function expiryOf(response: { access_token: string; expires_in?: number }): number {
  if (typeof response.expires_in === 'number') return Date.now() + response.expires_in * 1000;
  try {
    const { exp } = decodeJwt(response.access_token);
    if (typeof exp === 'number') return exp * 1000;
  } catch {
    // not a JWT: an opaque token with no stated lifetime
  }
  return Date.now() + DEFAULT_LIFETIME_MS;
}

function parseIssuer(issuer: string): URL {
  try {
    return new URL(issuer);
  } catch (err) {
    throw new ConstellationError('INVALID_CONFIG', `identity.issuer ${JSON.stringify(issuer)} is not a URL`, { cause: err });
  }
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function isAbsoluteUri(value: string): boolean {
  return /^[a-z][a-z0-9+.-]*:[^\s]+$/i.test(value);
}

function discoveryUrl(issuer: URL): string {
  return `${issuer.href.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/** A network failure or timeout, as opposed to an answer. */
function unreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return true;
  if (err instanceof TypeError && /fetch failed/i.test(err.message)) return true;
  const code = (err as { code?: unknown }).code;
  if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && /status code/i.test(err.message)) return true;
  return err.cause !== undefined && err.cause !== err && unreachable(err.cause);
}

/** A short reason for an error, without anything the request carried. */
function reason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause : undefined;
  const code = (cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? `${err.message}: ${code}` : err.message;
}
