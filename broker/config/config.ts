/** The broker's frozen configuration: federation.yaml plus the environment. */
import type { Platform } from '../../registry/model/capability.js';

export type CredentialStrategy = 'anonymous' | 'token-exchange' | 'linked' | 'client-credentials';

/** A site as federation.yaml declares it. */
export interface SiteConfig {
  id: string;
  name: string;
  adapter: Platform;
  url: string;
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
  harvest: { concurrency: number; jitterS: number; timeoutS: number };
  /** Job polling: seconds between polls of a running job, the poll lease, and when to give up on an unreachable site (never when unset). */
  jobs: { pollIntervalS: number; leaseS: number; giveUpAfterS?: number };
  sites: SiteConfig[];
  server: { host: string; port: number };
  database: { url?: string; dataDir: string };
  logLevel: string;
  /** Memory for cached GraphQL responses, in bytes (0 disables the cache). */
  responseCacheBytes: number;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
}
