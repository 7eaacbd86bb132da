/** Capability document v1: what one site advertises (mirrors capability.schema.json). */

export type Platform = 'rsp' | 'sciserver' | 'esa' | 'datalab' | 'canfar' | 'mast' | 'tap';
export type AuthMethod = 'anonymous' | 'bearer' | 'basic' | 'cookie' | 'x509' | 'token-header';
export type ServiceType =
  | 'tap' | 'casjobs' | 'sciquery' | 'dlquery' | 'scs' | 'sia' | 'ssa' | 'datalink' | 'soda'
  | 'skaha' | 'racm' | 'nublado' | 'butler' | 'vospace' | 'other';
export type ImageType = 'headless' | 'notebook' | 'desktop' | 'carta' | 'firefly' | 'contributed' | 'batch';

export interface SiteInfo {
  id: string;
  name: string;
  platform: Platform;
  url?: string;
  location?: { lat: number; lon: number };
  contact?: string;
}

export interface ServiceDoc {
  id: string;
  type: ServiceType;
  url: string;
  standardId?: string;
  title?: string;
  upload?: boolean;
  async?: boolean;
  maxRec?: number;
  uploadLimitBytes?: number;
  languages?: string[];
  formats?: string[];
  auth?: AuthMethod[];
}

export interface ColumnDoc {
  /** The column name exactly as the site spells it. */
  name: string;
  /** Canonical (federation-wide) column name, when a mapping gives one. */
  canonical?: string;
  datatype?: string;
  arraysize?: string;
  xtype?: string;
  unit?: string;
  ucd?: string;
  description?: string;
  indexed?: boolean;
}

export interface DatasetDoc {
  /** Canonical dataset id (schema.table, lower case): the replica key. */
  id: string;
  title?: string;
  description?: string;
  /** Id of the service in this document that serves the table. */
  service: string;
  /** Table name exactly as the site spells it. */
  table: string;
  rows?: number;
  rowBytes?: number;
  position?: { ra: string; dec: string };
  columns?: ColumnDoc[];
  /** IVOA MOC 2.0 ASCII sky coverage; absent means unknown (treated as whole sky). */
  coverage?: string;
  access: { public: boolean; groups?: string[] };
}

export interface ComputePoolDoc {
  id: string;
  kind: 'batch' | 'notebook' | 'desktop';
  service?: string;
  cores: number;
  memoryGb: number;
  gpus?: number;
  freeCores?: number;
  freeMemoryGb?: number;
  queueWaitS?: number;
  maxWalltimeS?: number;
  maxCoresPerJob?: number;
  maxMemoryGbPerJob?: number;
}

export interface ImageDoc {
  ref: string;
  digest?: string;
  arch?: 'amd64' | 'arm64' | 'ppc64le' | 's390x';
  types: ImageType[];
  software?: string[];
  /** Compute pool ids that can run the image; absent means every pool of the site. */
  compute?: string[];
}

/** The whole document a site publishes (or a harvest produces). */
export interface CapabilityDocument {
  schemaVersion: 1;
  site: SiteInfo;
  services: ServiceDoc[];
  datasets: DatasetDoc[];
  compute: ComputePoolDoc[];
  images: ImageDoc[];
  asOf: string;
}
