/** The planner's request and answer shapes (mirrored by the proposed GraphQL types). */
import type { ReasonCode } from '../../registry/model/job-plan.js';
import type { SitesWithoutData } from './without-data.js';

/** What kind of work is being placed: a TAP query, or a container job on a batch pool. */
export type PlanKind = 'QUERY' | 'CONTAINER';

/** A sky region: exactly one of a cone (degrees) or an IVOA MOC 2.0 ASCII string. */
export interface PlanRegion {
  cone?: { ra: number; dec: number; radiusDeg: number } | null;
  moc?: string | null;
}

/** What the caller wants placed. */
export interface PlanRequest {
  kind: PlanKind;
  /** Canonical dataset ids. */
  datasets: string[];
  region?: PlanRegion | null;
  /** Image reference, or its digest ("sha256:…"), or "ref@sha256:…"; CONTAINER only. */
  image?: string | null;
  /** CPU architecture the image must be built for (default amd64). */
  arch?: string | null;
  cores?: number | null;
  memoryGb?: number | null;
  gpus?: number | null;
  walltimeS?: number | null;
}

/** Who is asking: the groups they belong to (anonymous = none), and the member site they call from, when inside one (the fast lane). */
export interface Caller {
  groups: readonly string[];
  site?: string;
}

/** Why a site was rejected (hard filters) or how its score came about; one vocabulary with the plans jobs keep. */
export type { ReasonCode };

/** Codes that reject a candidate. */
export const HARD_REASONS: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  'SITE_DOWN', 'NO_REPLICA', 'NOT_COVERED', 'FORBIDDEN', 'NO_SERVICE', 'NO_IMAGE', 'NO_CAPACITY', 'LIMIT_EXCEEDED',
]);

/** One reason: a typed code, the dataset it is about (when any), and a sentence for people. */
export interface Reason {
  code: ReasonCode;
  dataset?: string;
  message: string;
}

/**
 * One term of the cost model. COST terms add seconds: contribution = value × weight. FACTOR
 * terms multiply the score: contribution = the multiplier (value is the input, weight 1).
 */
export interface CostTerm {
  name: string;
  kind: 'COST' | 'FACTOR';
  value: number;
  unit: string;
  weight: number;
  weightUnit: string;
  contribution: number;
}

/** One site as the planner saw it. */
export interface Candidate {
  site: string;
  eligible: boolean;
  /** Dimensionless, in [0, preference]; 0 for rejected candidates. */
  score: number;
  /** Bytes that must cross the WAN for this placement (null when a size is unknown). */
  estimatedBytesMoved: number | null;
  /** Estimated rows the request touches in the region at this site (null when unknown). */
  estimatedRows: number | null;
  estimatedWaitS: number;
  /** The compute pool chosen at this site (CONTAINER only). */
  pool: string | null;
  reasons: Reason[];
  terms: CostTerm[];
}

/**
 * The planner's answer: the chosen site (if any), a candidate for every site holding a requested
 * dataset (for every site when none is named), eligible first by score, and the other sites counted.
 */
export interface Plan {
  chosen: Candidate | null;
  candidates: Candidate[];
  /** The sites holding none of the requested datasets (`everySite` gives them as candidates too). */
  withoutData: SitesWithoutData;
  /** The scoring formula in words, with its constants. */
  formula: string;
  /** Registry version of the snapshot planned over. */
  registryVersion: number;
}
