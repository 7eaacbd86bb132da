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
  harvest?: { schedule?: string; enabled?: boolean };
  credentials: { strategy: CredentialStrategy; env?: string; header?: string; audience?: string };
  /** Absolute path of the seed capability document, if any. */
  seed?: string;
  preference?: number;
  options?: Record<string, unknown>;
  /** Local table name → canonical dataset id and canonical column names. */
  datasets: Record<string, { id: string; title?: string; columns?: Record<string, string> }>;
}

export interface Config {
  /** Absolute path of the federation file this came from (undefined when built in code). */
  configPath?: string;
  federation: { name: string; description?: string };
  identity?: { issuer: string; audience: string };
  /** Open registration: any site id may publish, not only those declared here. */
  registration: { open: boolean };
  /** maxRemovedShare: the largest share of a site's datasets one harvest may remove before it is held for confirmation. */
  harvest: { concurrency: number; jitterS: number; timeoutS: number; maxRemovedShare: number };
  /**
   * Job polling: seconds between polls of a running job, the poll lease and the longest poll it
   * covers (leaseS >= requestTimeoutS + 2), the longest submit, and when to give up on an
   * unreachable site (never when unset).
   */
  jobs: { pollIntervalS: number; leaseS: number; requestTimeoutS: number; submitTimeoutS: number; giveUpAfterS?: number };
  /** Kept synchronous results: largest kept, days kept, and how long /results waits for a site's first byte. */
  results: { maxBytes: number; retentionDays: number; firstByteTimeoutS: number };
  /** Largest answers read from a site, in bytes, by kind (see adapters/http.ts ByteLimits). */
  limits: { documentBytes: number; errorBodyBytes: number; resultBytes: number };
  sites: SiteConfig[];
  server: { host: string; port: number };
  database: { url?: string; dataDir: string };
  logLevel: string;
  /** Memory for cached GraphQL responses, in bytes (0 disables the cache). */
  responseCacheBytes: number;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
}
