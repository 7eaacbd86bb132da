/** The identity machinery of a broker whose federation names an OpenID provider. */
import type { IdentityConfig } from '../config/config.js';
import type { Secret } from './identity.js';
import type { OidcProvider } from './provider.js';
import type { SessionStore } from './sessions.js';
import type { SecretKeys } from './secret-keys.js';
import type { TokenVerifier } from './verifier.js';

/** What turns a browser session cookie into its current access token. */
export interface SessionTokens {
  /** The session's access token (refreshed when close to expiry), or undefined for an unknown, ended or forged cookie. */
  accessTokenFor(cookie: string): Promise<Secret | undefined>;
}

/** Built once per broker process when federation.yaml has `identity`. */
export interface IdentityServices {
  config: IdentityConfig;
  /** The broker's relying party at the issuer (login, refresh, token exchange, client credentials). */
  provider: OidcProvider;
  /** The verifier, once the issuer's discovery document has been read (retried on the next call after a failure). */
  verifier(): Promise<TokenVerifier>;
  /** Browser sessions, when login is configured. */
  sessions?: SessionStore;
  /** CONSTELLATION_SECRET_KEY, when set. */
  keys?: SecretKeys;
}
