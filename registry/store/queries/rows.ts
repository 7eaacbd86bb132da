/** Row shapes returned by the registry queries (camelCase, ready for GraphQL). */

export type SiteStatus = 'UP' | 'DEGRADED' | 'DOWN' | 'UNKNOWN';

export interface SiteRow {
  id: string;
  name: string;
  platform: string;
  url: string | null;
  location: { lat: number; lon: number } | null;
  contact: string | null;
  status: SiteStatus;
  origin: 'seed' | 'harvest' | 'publish' | null;
  asOf: Date | null;
  publishedAt: Date | null;
  registryVersion: number;
  consecutiveFailures: number;
}

export interface ServiceRow {
  siteId: string;
  id: string;
  type: string;
  url: string;
  standardId: string | null;
  title: string | null;
  upload: boolean;
  async: boolean;
  maxRec: number | null;
  uploadLimitBytes: number | null;
  languages: string[];
  formats: string[];
  auth: string[];
}

export interface DatasetRow {
  id: string;
  title: string | null;
  description: string | null;
}

export interface ReplicaRow {
  id: number;
  datasetId: string;
  siteId: string;
  serviceId: string;
  table: string;
  title: string | null;
  description: string | null;
  rows: number | null;
  rowBytes: number | null;
  position: { ra: string; dec: string } | null;
  access: { public: boolean; groups: string[] };
}

export interface ColumnRow {
  replicaId: number;
  name: string;
  canonical: string | null;
  datatype: string | null;
  arraysize: string | null;
  xtype: string | null;
  unit: string | null;
  ucd: string | null;
  description: string | null;
  indexed: boolean | null;
}

export interface ComputeRow {
  siteId: string;
  id: string;
  kind: string;
  serviceId: string | null;
  cores: number;
  memoryGb: number;
  gpus: number;
  freeCores: number | null;
  freeMemoryGb: number | null;
  queueWaitS: number | null;
  maxWalltimeS: number | null;
  maxCoresPerJob: number | null;
  maxMemoryGbPerJob: number | null;
}

export interface ImageRow {
  siteId: string;
  ref: string;
  digest: string | null;
  arch: string | null;
  types: string[];
  software: string[];
  compute: string[] | null;
}

export interface HarvestRunRow {
  id: number;
  siteId: string;
  trigger: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: 'RUNNING' | 'OK' | 'NOT_MODIFIED' | 'RESTORED' | 'HELD' | 'FAILED' | 'INVALID';
  errorCode: string | null;
  errorMessage: string | null;
  bytes: number | null;
  durationMs: number | null;
}

/** One stored capability document, without its body (read apart with documentById). */
export interface DocumentRow {
  id: number;
  siteId: string;
  origin: 'seed' | 'harvest' | 'publish';
  digest: string;
  asOf: Date | null;
  receivedAt: Date;
  /** Bytes of the document as JSON text, known before its body is read. */
  bytes: number;
}

/** A service as publish compares and writes it (a services row without its site). */
export type ServiceState = Omit<ServiceRow, 'siteId'>;

/** A compute pool as publish compares and writes it (a compute_pools row without its site). */
export type ComputeState = Omit<ComputeRow, 'siteId'>;

/** An image as publish compares and writes it (an images row without its site). */
export type ImageState = Omit<ImageRow, 'siteId'>;

/** A replica's own columns as publish compares and writes them (a replicas row without its id and site). */
export interface ReplicaState {
  datasetId: string;
  serviceId: string;
  table: string;
  title: string | null;
  description: string | null;
  rows: number | null;
  rowBytes: number | null;
  raColumn: string | null;
  decColumn: string | null;
  public: boolean;
  groups: string[];
}

/** One column of a replica as publish compares and writes it (a replica_columns row; its ordinal is its place in the list). */
export type ColumnState = Omit<ColumnRow, 'replicaId'>;
