/**
 * The planner's cost model, after PanDA's job brokerage (anchors §B1) but deterministic and with
 * every term carried to the answer.
 *
 *   cost_s = bytesToMove / WAN_RATE            (s: data the site lacks, pulled from the cheapest readable replica)
 *          + queueWait                         (s: the chosen pool's advertised wait; 0 for QUERY)
 *          + LOAD_PENALTY_S × load             (s: load = 1 − freeCores/cores of the pool; 0 when unknown or QUERY)
 *   score  = health × freshness × preference × T_REF / (T_REF + cost_s)
 *
 *   health     UP 1.0, UNKNOWN 0.8, DEGRADED 0.5 (DOWN is a hard filter)
 *   freshness  1 while the advertised asOf is at most FRESH_S old, then halving every further
 *              FRESH_S, floored at MIN_FRESHNESS; 0.5 when the site never said when
 *   preference federation.yaml `preference` (default 1)
 *
 * A healthy, fresh, preference-1 site with nothing to move and an idle pool scores 1; each T_REF
 * seconds of cost halves, then thirds … the score. PanDA's `(nRunning+1)/(nQueued+…)` becomes
 * the load and wait terms, its data-locality factor the bytes term, its site status the health
 * factor. The best score wins (ties: smaller site id) instead of PanDA's weighted random, so an
 * answer can be explained and repeated. QUERY results return to the caller from whichever site
 * runs it, so their size (shown as the `resultBytes` term) carries weight 0.
 */
import type { SiteStatus } from '../../registry/store/queries/rows.js';
import type { CostTerm } from './types.js';

/** Constants of the cost model; every one is reported in the Plan's formula. */
export interface CostConstants {
  /** Assumed WAN rate between sites, bytes per second. */
  wanBytesPerS: number;
  /** Seconds a fully loaded pool costs on top of its advertised queue wait. */
  loadPenaltyS: number;
  /** Reference seconds: the cost at which the score halves. */
  refS: number;
  /** Advertised state younger than this is fresh (seconds). */
  freshS: number;
  minFreshness: number;
}

/** Defaults: 100 MB/s WAN, ten minutes for a full pool, one minute reference, one day fresh. */
export const DEFAULT_COSTS: CostConstants = Object.freeze({
  wanBytesPerS: 100e6,
  loadPenaltyS: 600,
  refS: 60,
  freshS: 86_400,
  minFreshness: 0.25,
});

/** Health multipliers by site status (DOWN never reaches scoring). */
export const HEALTH: Readonly<Record<SiteStatus, number>> = Object.freeze({ UP: 1, UNKNOWN: 0.8, DEGRADED: 0.5, DOWN: 0 });

/** The Plan's formula text for these constants. */
export function formulaText(c: CostConstants): string {
  return `score = health × freshness × preference × ${c.refS} s / (${c.refS} s + cost_s); ` +
    `cost_s = bytesToMove / ${c.wanBytesPerS} B/s + queueWait_s + ${c.loadPenaltyS} s × load; ` +
    `health UP 1, UNKNOWN 0.8, DEGRADED 0.5; freshness 1 up to ${c.freshS} s old, halving per further ${c.freshS} s, floor ${c.minFreshness}`;
}

/** What scoring needs to know about one eligible placement. */
export interface CostInputs {
  bytesToMove: number;
  resultBytes: number | null;
  queueWaitS: number;
  /** 0 (idle) … 1 (full). */
  load: number;
  status: SiteStatus;
  /** Age of the advertised state in seconds (null: unknown). */
  ageS: number | null;
  preference: number;
}

/** Freshness multiplier for an advertised state `ageS` seconds old. */
export function freshness(ageS: number | null, c: CostConstants): number {
  if (ageS === null) return 0.5;
  if (ageS <= c.freshS) return 1;
  return Math.max(c.minFreshness, 0.5 ** ((ageS - c.freshS) / c.freshS));
}

/** Score and its terms for one eligible candidate. */
export function score(input: CostInputs, c: CostConstants): { score: number; costS: number; terms: CostTerm[] } {
  const transfer = input.bytesToMove / c.wanBytesPerS;
  const load = c.loadPenaltyS * input.load;
  const costS = transfer + input.queueWaitS + load;
  const health = HEALTH[input.status];
  const fresh = freshness(input.ageS, c);
  const s = health * fresh * input.preference * (c.refS / (c.refS + costS));
  const terms: CostTerm[] = [
    { name: 'bytesToMove', kind: 'COST', value: input.bytesToMove, unit: 'B', weight: 1 / c.wanBytesPerS, weightUnit: 's/B', contribution: transfer },
    { name: 'queueWait', kind: 'COST', value: input.queueWaitS, unit: 's', weight: 1, weightUnit: '1', contribution: input.queueWaitS },
    { name: 'load', kind: 'COST', value: input.load, unit: '1', weight: c.loadPenaltyS, weightUnit: 's', contribution: load },
    { name: 'resultBytes', kind: 'COST', value: input.resultBytes ?? 0, unit: 'B', weight: 0, weightUnit: 's/B', contribution: 0 },
    { name: 'health', kind: 'FACTOR', value: health, unit: '1', weight: 1, weightUnit: '1', contribution: health },
    // An unknown age is shown as -1 s so the term keeps a numeric value.
    { name: 'freshness', kind: 'FACTOR', value: input.ageS ?? -1, unit: 's', weight: 1, weightUnit: '1', contribution: fresh },
    { name: 'preference', kind: 'FACTOR', value: input.preference, unit: '1', weight: 1, weightUnit: '1', contribution: input.preference },
    { name: 'timeScale', kind: 'FACTOR', value: costS, unit: 's', weight: c.refS, weightUnit: 's', contribution: c.refS / (c.refS + costS) },
  ];
  return { score: s, costS, terms };
}
