/** The one interface every platform adapter implements, and the shapes it exchanges. */
import type { CapabilityDocument, Platform } from './capability.js';

/** A credential the broker holds for one site; never logged or returned. */
export type SiteCredential =
  | { kind: 'anonymous' }
  | { kind: 'bearer'; token: string }
  | { kind: 'header'; name: string; value: string }
  | { kind: 'cookie'; name: string; value: string }
  | { kind: 'basic'; username: string; password: string };

/** What the adapter knows about the site it speaks to (from federation.yaml). */
export interface AdapterSite {
  id: string;
  name: string;
  platform: Platform;
  /** Base URL of the platform as configured. */
  url: string;
  /** Adapter-specific options from federation.yaml (`options:` key). */
  options?: Record<string, unknown>;
}

/** Cache validators from an earlier harvest, for conditional requests. */
export interface HarvestValidators {
  [url: string]: { etag?: string; lastModified?: string };
}

/** Counts bytes received, across every request that shares it (one harvest, one job). */
export interface ByteMeter {
  bytes: number;
}

export interface AdapterContext {
  site: AdapterSite;
  credential: SiteCredential;
  signal?: AbortSignal;
  /** Adds up the bytes received from the site (harvest runs record it). */
  meter?: ByteMeter;
}

export interface HarvestOutcome {
  /** The capability document built from the site's answers (not yet validated). */
  document: CapabilityDocument;
  /** Bytes received from the site during the harvest. */
  bytes: number;
  /** Validators to send next time (ETag / Last-Modified per URL). */
  validators?: HarvestValidators;
  /** True when every upstream answered 304 and `document` is the previous one. */
  notModified?: boolean;
}

export type HealthStatus = 'UP' | 'DEGRADED' | 'DOWN';

export interface HealthOutcome {
  status: HealthStatus;
  message?: string;
}

/** Job phases common to every platform (UWS phases, minus the exotic ones). */
export type JobState = 'PENDING' | 'QUEUED' | 'EXECUTING' | 'COMPLETED' | 'ERROR' | 'ABORTED';

/** A query to run at one site, already rewritten to the site's local names. */
export interface SiteQuery {
  adql: string;
  service: string;
  maxrec?: number;
  format?: string;
  mode: 'sync' | 'async';
  /** The broker's job id, sent as the site job's run id (UWS RUNID) so a lost submit can be found again. */
  runId?: string;
  /** A table sent with the query as TAP_UPLOAD.<name> (a cross-match's upload join): VOTable text the broker wrote. */
  upload?: { name: string; votable: string };
}

/** A container job for one site's compute API. */
export interface SiteContainerJob {
  image: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cores: number;
  memoryGb: number;
  gpus: number;
  walltimeS?: number;
  name: string;
}

export interface SiteJobStatus {
  state: JobState;
  /** The platform's own phase word, kept for the job history. */
  sitePhase: string;
  error?: string;
  resultUrl?: string;
  /** True when the site held its answer until the job moved on or a wait ran out (UWS WAIT): asking again at once costs it nothing. */
  held?: boolean;
}

/** The result of a site job as a byte stream with its media type. */
export interface SiteResult {
  contentType: string;
  body: AsyncIterable<Uint8Array>;
}

/** Every platform adapter: harvest and health now; the job hooks are filled in by later work. */
export interface Adapter {
  readonly kind: Platform;
  harvest(ctx: AdapterContext, previous?: HarvestValidators): Promise<HarvestOutcome>;
  health(ctx: AdapterContext): Promise<HealthOutcome>;
  submitQuery?(ctx: AdapterContext, query: SiteQuery): Promise<{ siteJobId: string; status: SiteJobStatus }>;
  submitContainerJob?(ctx: AdapterContext, job: SiteContainerJob): Promise<{ siteJobId: string; status: SiteJobStatus }>;
  jobStatus?(ctx: AdapterContext, siteJobId: string): Promise<SiteJobStatus>;
  cancelJob?(ctx: AdapterContext, siteJobId: string): Promise<void>;
  jobResult?(ctx: AdapterContext, siteJobId: string): Promise<SiteResult>;
  /**
   * The async query job submitted as `query` (with its runId) no earlier than `since`, when the
   * site holds one: how a broker that died before recording a submit's answer finds that job.
   */
  findQueryJob?(ctx: AdapterContext, query: SiteQuery, since: Date): Promise<{ siteJobId: string; status: SiteJobStatus } | undefined>;
}
