/**
 * The cross-match strategy planner's inputs and answer (issue 11, point 2). Plain data: the
 * thread engine builds a CrossmatchSituation from the planner snapshot and shows the
 * CrossmatchPlan as `Thread.plan`.
 */
import type { SMoc } from '../../registry/coverage/moc.js';

/** How a cross-match is carried out: one join at a site, a TAP upload join, or a match in the broker. */
export type Strategy = 'SAME_SITE' | 'UPLOAD' | 'BROKER';

/** Every strategy, in the stable order candidates are listed and ties are broken. */
export const STRATEGIES: readonly Strategy[] = ['SAME_SITE', 'UPLOAD', 'BROKER'];

/** BEST: the nearest right row per left row; ALL: every pair within the radius. */
export type MatchMode = 'BEST' | 'ALL';

/** Which input of the cross-match. */
export type Side = 'left' | 'right';

/** What the planner needs to know about the TAP service a replica is read through. */
export interface TapFacts {
  /** The service id at its site (a same-site join needs both tables on one service). */
  service: string;
  /** Whether the service answers ADQL. */
  adql: boolean;
  /** Most rows one query may return (null: no limit advertised). */
  maxRec: number | null;
  /** Whether TAP_UPLOAD is accepted. */
  upload: boolean;
  /** Largest upload accepted, in bytes (null: no limit advertised). */
  uploadLimitBytes: number | null;
  /** A site's own cap on rows one query returns, beside maxRec (null: none). */
  rowCap: number | null;
  /** Whether ADQL's ivo_healpix_index UDF is offered: tile filters are then exact at the site. */
  healpixUdf?: boolean;
}

/** One site holding a readable replica of one side. */
export interface Holding {
  site: string;
  /** Estimated rows of this replica inside the region (see estimates.ts rowsInRegion). */
  rows: number;
  /** Bytes per row of the requested columns plus position, as they travel. */
  rowBytes: number;
  tap: TapFacts;
}

/** A cone in degrees. */
export interface ConeDeg {
  ra: number;
  dec: number;
  radiusDeg: number;
}

/**
 * The sky region. `moc` is what tiling works on; `cone`, when the user gave a cone, is the exact
 * region (its MOC must then be SMoc.fromCone of it, an inclusive superset) and gives ADQL a
 * CIRCLE to read over.
 */
export interface CrossmatchRegion {
  moc: SMoc;
  cone: ConeDeg | null;
}

/** Everything planCrossmatch looks at. */
export interface CrossmatchSituation {
  /** Every site holding a readable replica of the left dataset. */
  left: readonly Holding[];
  right: readonly Holding[];
  region: CrossmatchRegion;
  /** Match radius, arcseconds (> 0). */
  radiusArcsec: number;
  mode: MatchMode;
  /** A strategy the caller forces (null/absent: the planner chooses). */
  strategy?: Strategy | null;
  /** Only these sites may take part (null/absent: any). */
  sites?: readonly string[] | null;
  /** Finest tile order tried (default 12). */
  maxTileOrder?: number;
  /**
   * The member site the request comes from (the fast lane), if any: what a step reads or joins
   * there stays there (0 bytes moved), and every other step's data travels to it.
   */
  callerSite?: string | null;
}

/** Why a candidate is ineligible. */
export type StrategyReasonCode =
  | 'NO_REPLICA'
  | 'NO_SITE_HOLDS_BOTH'
  | 'NOT_ONE_SERVICE'
  | 'NO_ADQL'
  | 'NO_UPLOAD'
  | 'NOT_ALLOWED_SITE'
  | 'MAXREC'
  | 'ROW_CAP'
  | 'UPLOAD_LIMIT';

/** One typed reason: a code, the site and side it is about when any, and a sentence for people. */
export interface StrategyReason {
  code: StrategyReasonCode;
  site?: string;
  side?: Side;
  message: string;
}

/**
 * How the region is cut. `order` null: one step over the whole region. Otherwise the NESTED
 * cells of `order` touching the region, each its own step (or steps).
 */
export interface Tiling {
  order: number | null;
  cells: number[];
  /** The largest single step's estimates, which the limits were checked against. */
  perStep: StepLoad;
}

/** Estimates of one step (a tile, or the whole region). */
export interface StepLoad {
  leftRows: number;
  rightRows: number;
  /** Pairs a site join returns (every pair within the radius: BEST is applied in the broker). */
  pairsReturned: number;
  uploadBytes: number;
}

/** Bytes crossing the WAN, by what carries them (0 for what stays at the caller's own site). */
export interface BytesMoved {
  /** Left rows read from a site into the broker. */
  fetchedLeft: number;
  fetchedRight: number;
  /** Rows the broker uploads to a site. */
  uploaded: number;
  /** Pairs returned from a site join. */
  pairs: number;
  total: number;
}

/** One strategy at one choice of sites, as the planner saw it. */
export interface StrategyCandidate {
  strategy: Strategy;
  /** Where each side is read or joined (null when no site could be named). */
  sites: { left: string | null; right: string | null };
  /** UPLOAD only: which side's rows travel, from which site to which. */
  upload: { side: Side; from: string; to: string } | null;
  rows: {
    left: number;
    /** Right rows read over the region (or each tile) widened by the radius. */
    right: number;
    /** Pairs in the result (BEST: at most one per left row). */
    pairs: number;
  };
  bytes: BytesMoved;
  /** Site queries (tiles × queries per tile), plus the broker's own match for BROKER. */
  steps: number;
  /** Null when the candidate was refused before any size was looked at. */
  tiling: Tiling | null;
  eligible: boolean;
  reasons: StrategyReason[];
}

/** The planner's answer: every candidate, the chosen one, and why nothing when nothing. */
export interface CrossmatchPlan {
  chosen: StrategyCandidate | null;
  candidates: StrategyCandidate[];
  forced: Strategy | null;
  /** When chosen is null: the reasons of every candidate considered (the forced strategy's only, when forced). */
  refusal: StrategyReason[];
  /** The choice rule and the estimate model in words. */
  formula: string;
  /** The member site the request came from (the fast lane), if any. */
  callerSite: string | null;
}
