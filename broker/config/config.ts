/** The broker's frozen configuration: federation.yaml plus the environment. */
import type { Platform } from '../../registry/model/capability.js';

export type CredentialStrategy = 'anonymous' | 'token-exchange' | 'linked' | 'client-credentials';

/** A site as federation.yaml declares it. */
export interface SiteConfig {
  id: string;
  name: string;
  adapter: Platform;
  url: string;
  /** Further hosts (`host` or `host:port`) the site may send the broker to; they receive its credential. */
  allowHosts?: string[];
  location?: { lat: number; lon: number };
  /** Address ranges (CIDR) of the platform's own machines: callers from them are inside this site (the fast lane). */
  networks?: string[];
  harvest?: { schedule?: string; enabled?: boolean };
  /**
   * How the site gets a credential: `env` names the broker's own harvest credential, `header`
   * the header it travels in (default Authorization: Bearer), `cookie` the cookie when the site
   * takes it as one, `audience` the token audience for token-exchange and client-credentials.
   */
  credentials: { strategy: CredentialStrategy; env?: string; header?: string; cookie?: string; audience?: string };
  /** Environment variable holding a key that lets this site publish without an identity provider. */
  publishKeyEnv?: string;
  /** Absolute path of the seed capability document, if any. */
  seed?: string;
  preference?: number;
  options?: Record<string, unknown>;
  /** Local table name → canonical dataset id and canonical column names. */
  datasets: Record<string, { id: string; title?: string; columns?: Record<string, string>; coverage?: string }>;
}

/** Signature algorithms a bearer token may use (never `none`, never HMAC). */
export type TokenAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/** federation.yaml's `identity`, with its defaults filled in. */
export interface IdentityConfig {
  issuer: string;
  /** The `aud` a bearer token must carry. */
  audience: string;
  /** The broker's client at the provider (login, device flow, token exchange, client credentials). */
  clientId?: string;
  /** Environment variable holding the client secret (unset: a public client with PKCE). */
  clientSecretEnv?: string;
  /** The public client `constellation login` uses (device authorization grant); default clientId. */
  cliClientId?: string;
  scopes: string;
  /** Claim holding the caller's groups; a dotted path reads a nested claim. */
  groupsClaim: string;
  algorithms: TokenAlgorithm[];
  /** Tolerance on exp and nbf, in seconds (at most 60). */
  clockSkewS: number;
  /** Groups that make a caller an admin, and the operators of each site. */
  roles: { admin: string[]; operators: Record<string, string[]> };
  /** What a caller without a token may do. */
  anonymous: 'read' | 'submit';
}

export interface Config {
  /** Absolute path of the federation file this came from (undefined when built in code). */
  configPath?: string;
  federation: { name: string; description?: string };
  /** The OpenID provider whose tokens this broker accepts; unset: every caller is anonymous. */
  identity?: IdentityConfig;
  /** Open registration: any site id may publish, not only those declared here. */
  registration: { open: boolean };
  /**
   * maxRemovedShare: the largest share of a site's datasets one harvest may remove before it is
   * held for confirmation; leaseS: how long a running harvest's record outlives its broker's
   * last renewal before another broker closes it as abandoned.
   */
  harvest: { concurrency: number; jitterS: number; timeoutS: number; maxRemovedShare: number; leaseS: number };
  /**
   * Job polling: seconds between polls of a running job, the poll lease and the longest poll it
   * covers (leaseS >= requestTimeoutS + 2), the longest submit, and when to give up on an
   * unreachable site (never when unset).
   */
  jobs: { pollIntervalS: number; leaseS: number; requestTimeoutS: number; submitTimeoutS: number; giveUpAfterS?: number };
  /** Kept synchronous results: largest kept, days kept, and how long /results waits for a site's first byte. */
  results: { maxBytes: number; retentionDays: number; firstByteTimeoutS: number };
  /** Cross-match threads: tiles run at once per site, and the broker matcher's memory budget in MiB. */
  crossmatch: { maxParallelPerSite: number; memoryMb: number; leaseS: number; sweepS: number };
  /** Largest answers read from a site, in bytes, by kind (see adapters/http.ts ByteLimits). */
  limits: { documentBytes: number; errorBodyBytes: number; resultBytes: number };
  sites: SiteConfig[];
  /** Where to listen; `trustProxy` (fastify's) says which proxies' X-Forwarded-* headers to believe (TLS ends there: cookies get Secure). */
  server: { host: string; port: number; trustProxy: boolean | number | string };
  database: { url?: string; dataDir: string };
  logLevel: string;
  /** The access log: one line per answered request, GraphQL reads only as a sampled share (broker/http/access-log.ts). */
  accessLog: { enabled: boolean; graphqlReadSample: number };
  /** Memory for cached GraphQL responses, in bytes (0 disables the cache). */
  responseCacheBytes: number;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
}
