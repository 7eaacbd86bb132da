/**
 * The cross-match strategy planner: every way of running a cross-match (SAME_SITE, UPLOAD,
 * BROKER) at every choice of sites, each with estimated rows and bytes moved, steps, the
 * HEALPix tiling its limits need, and why it is refused when it is. The chosen candidate moves
 * the fewest bytes among the eligible, ties to fewer steps, then to the listed order.
 *
 * Pure and synchronous: the caller gathers the holdings (rows in the region, row widths, TAP
 * facts) and the thread engine runs the steps.
 */
import {
  arcsecToRad,
  estimatePairs,
  mocAreaSr,
  pairRowBytes,
  widenedAreaSr,
  widenedRegionAreaSr,
  type PairEstimate,
} from './estimates.js';
import { DEFAULT_MAX_TILE_ORDER, circleReadFactor, tileCells, tileStats, type TileStats } from './tiles.js';
import {
  STRATEGIES,
  type BytesMoved,
  type CrossmatchPlan,
  type CrossmatchSituation,
  type Holding,
  type Side,
  type StepLoad,
  type Strategy,
  type StrategyCandidate,
  type StrategyReason,
  type StrategyReasonCode,
  type TapFacts,
} from './types.js';

/** One strategy at one choice of holdings, before any size is looked at. */
export interface CandidateSpec {
  strategy: Strategy;
  left: Holding;
  right: Holding;
  /** UPLOAD only: the side whose rows are uploaded to the other side's site. */
  uploadSide: Side | null;
}

/** The choice rule and estimate model, as shown with every plan. */
export const CROSSMATCH_FORMULA =
  'chosen = fewest estimated bytes moved among eligible candidates, ties to fewer steps, then SAME_SITE < UPLOAD < BROKER and site order. ' +
  'Bytes moved: SAME_SITE = pairs returned × pair row; UPLOAD = uploaded side fetched + the same rows uploaded + pairs returned; ' +
  'BROKER = left rows fetched + right rows fetched over the region (or each tile) widened by the radius. ' +
  'Pairs returned by a site join = min(left, right) + left × right density × π r² (every pair within the radius; BEST is applied in the broker). ' +
  'A tile holds its share s of the region\'s rows but is read over the circle around its cell, f times the cell\'s area (f from 1.6 to 3.4 with the cell\'s shape), ' +
  'so a tile reads min(1, s × f) of the region\'s rows; its widened read adds the larger of (√area + 2r)² − area and the whole region\'s margin × √(s × f). ' +
  'When one step would pass maxRec, a row cap or uploadLimitBytes, the region is cut into HEALPix tiles of the smallest order whose largest tile fits. ' +
  'A caller inside a member site (the fast lane) has the broker\'s side of the exchange at that site: what a step reads or returns there is 0 bytes moved.';

/** Region-wide quantities shared by every candidate of one situation. */
export interface PlanContext {
  areaSr: number;
  radiusRad: number;
  /** Right-read area of the whole region over its area. */
  wholeRightShare: number;
  maxTileOrder: number;
  /** Tile statistics per order, computed on first use. */
  stats: (TileStats | undefined)[];
  /** What the tiles of each order read (their cells' circles), computed on first use. */
  reads: (TileReads | undefined)[];
  region: CrossmatchSituation['region'];
}

/** A limit one step passes. */
interface Violation {
  code: StrategyReasonCode;
  site: string;
  side: Side | undefined;
  what: string;
  estimate: number;
  limit: number;
  unit: string;
}

/** Sizes of one candidate at one tiling. */
export interface Evaluation {
  /** Tile order (null: the whole region as one step). */
  order: number | null;
  tiles: number;
  perStep: StepLoad;
  rows: { left: number; right: number; pairs: number };
  bytes: BytesMoved;
  steps: number;
  violations: readonly Violation[];
}

/** Plan a cross-match: every candidate, the chosen one, and why nothing when nothing. */
export function planCrossmatch(situation: CrossmatchSituation): CrossmatchPlan {
  const ctx = contextOf(situation);
  const forced = situation.strategy ?? null;
  const candidates: StrategyCandidate[] = [];
  for (const strategy of STRATEGIES) {
    const specs = candidateSpecs(situation, strategy);
    if (specs.length === 0) candidates.push(placeholder(situation, strategy));
    for (const spec of specs) candidates.push(planOne(spec, situation, ctx));
  }
  const chosen = chooseCandidate(candidates, forced);
  const considered = forced === null ? candidates : candidates.filter((c) => c.strategy === forced);
  return {
    chosen,
    candidates,
    forced,
    refusal: chosen === null ? considered.flatMap((c) => c.reasons) : [],
    formula: CROSSMATCH_FORMULA,
    callerSite: situation.callerSite ?? null,
  };
}

/** The eligible candidate (of the forced strategy, when one is) moving the fewest bytes, ties to fewer steps, then to the listed order. */
export function chooseCandidate(candidates: readonly StrategyCandidate[], forced: Strategy | null): StrategyCandidate | null {
  let chosen: StrategyCandidate | null = null;
  for (const c of candidates) {
    if (!c.eligible || (forced !== null && c.strategy !== forced)) continue;
    if (chosen === null || c.bytes.total < chosen.bytes.total || (c.bytes.total === chosen.bytes.total && c.steps < chosen.steps)) chosen = c;
  }
  return chosen;
}

/**
 * Every candidate of one strategy, in a stable order: SAME_SITE per site holding both sides;
 * UPLOAD per (uploaded side, its site, the other side's site), left uploads first; BROKER per
 * (left site, right site). Holdings are taken in site-id order.
 */
export function candidateSpecs(situation: CrossmatchSituation, strategy: Strategy): CandidateSpec[] {
  const left = [...situation.left].sort(bySite);
  const right = [...situation.right].sort(bySite);
  const out: CandidateSpec[] = [];
  if (strategy === 'SAME_SITE') {
    for (const l of left) {
      const r = right.find((h) => h.site === l.site);
      if (r) out.push({ strategy, left: l, right: r, uploadSide: null });
    }
    return out;
  }
  if (strategy === 'UPLOAD') {
    for (const side of ['left', 'right'] as const) {
      for (const from of side === 'left' ? left : right) {
        for (const to of side === 'left' ? right : left) {
          out.push(side === 'left' ? { strategy, left: from, right: to, uploadSide: side } : { strategy, left: to, right: from, uploadSide: side });
        }
      }
    }
    return out;
  }
  for (const l of left) for (const r of right) out.push({ strategy, left: l, right: r, uploadSide: null });
  return out;
}

/**
 * Sizes of a candidate cut at `order` (null: the whole region as one step): totals, the largest
 * step, and every limit that step passes. The bench evaluates every order with it.
 */
export function evaluateAt(spec: CandidateSpec, situation: CrossmatchSituation, order: number | null, ctx: PlanContext = contextOf(situation)): Evaluation {
  const pairs = estimatePairs(spec.left.rows, spec.right.rows, ctx.areaSr, ctx.radiusRad, situation.mode);
  let tiles = 1;
  let reads: TileReads = { maxLeft: 1, maxRight: ctx.wholeRightShare, sumLeft: 1, sumRight: ctx.wholeRightShare };
  if (order !== null) {
    tiles = statsAt(ctx, order).count;
    reads = readsAt(ctx, order);
  }
  if (ctx.areaSr === 0) tiles = 0;
  const perStep = load(spec, pairs, reads.maxLeft, reads.maxRight);
  const total = load(spec, pairs, reads.sumLeft, reads.sumRight);
  return {
    order,
    tiles,
    perStep,
    rows: { left: spec.left.rows, right: total.rightRows, pairs: pairs.result },
    bytes: bytesOf(spec, total, situation.callerSite ?? null),
    steps: stepsOf(spec.strategy, tiles),
    violations: limitsPassed(spec, perStep),
  };
}

/** Region-wide quantities for a situation (exported for the bench, which evaluates many orders). */
export function contextOf(situation: CrossmatchSituation): PlanContext {
  const areaSr = mocAreaSr(situation.region.moc);
  const radiusRad = arcsecToRad(situation.radiusArcsec);
  const wholeRight = widenedRegionAreaSr(areaSr, situation.region.cone?.radiusDeg ?? null, radiusRad);
  return {
    areaSr,
    radiusRad,
    wholeRightShare: areaSr === 0 ? 0 : wholeRight / areaSr,
    maxTileOrder: situation.maxTileOrder ?? DEFAULT_MAX_TILE_ORDER,
    stats: [],
    reads: [],
    region: situation.region,
  };
}

/** Non-size reasons a candidate is refused (sites not allowed, no ADQL, no upload, two services). */
export function structuralReasons(spec: CandidateSpec, situation: CrossmatchSituation): StrategyReason[] {
  const reasons: StrategyReason[] = [];
  const allowed = situation.sites ? new Set(situation.sites) : null;
  const used: [Side, Holding][] = spec.strategy === 'SAME_SITE' ? [['left', spec.left]] : [['left', spec.left], ['right', spec.right]];
  const seen = new Set<string>();
  for (const [, h] of used) {
    if (allowed && !allowed.has(h.site) && !seen.has(h.site)) {
      reasons.push({ code: 'NOT_ALLOWED_SITE', site: h.site, message: `site ${h.site} is not among the sites allowed (${[...allowed].join(', ') || 'none'})` });
    }
    seen.add(h.site);
  }
  for (const [side, h] of used) {
    if (!h.tap.adql) reasons.push({ code: 'NO_ADQL', site: h.site, side, message: `the ${side} side's service ${h.site}/${h.tap.service} does not answer ADQL` });
  }
  if (spec.strategy === 'SAME_SITE') {
    if (!spec.right.tap.adql && spec.left.tap.adql) {
      reasons.push({ code: 'NO_ADQL', site: spec.right.site, side: 'right', message: `the right side's service ${spec.right.site}/${spec.right.tap.service} does not answer ADQL` });
    }
    if (spec.left.tap.service !== spec.right.tap.service) {
      reasons.push({
        code: 'NOT_ONE_SERVICE', site: spec.left.site,
        message: `site ${spec.left.site} serves the left side on ${spec.left.tap.service} and the right side on ${spec.right.tap.service}, so one ADQL join cannot see both`,
      });
    }
  }
  if (spec.strategy === 'UPLOAD') {
    const target = spec.uploadSide === 'left' ? spec.right : spec.left;
    if (!target.tap.upload) {
      reasons.push({ code: 'NO_UPLOAD', site: target.site, message: `service ${target.site}/${target.tap.service} does not accept TAP_UPLOAD` });
    }
  }
  return reasons;
}

function planOne(spec: CandidateSpec, situation: CrossmatchSituation, ctx: PlanContext): StrategyCandidate {
  const structural = structuralReasons(spec, situation);
  const whole = evaluateAt(spec, situation, null, ctx);
  if (structural.length > 0) return candidateOf(spec, whole, null, false, structural);
  if (whole.violations.length === 0) return candidateOf(spec, whole, [], true, []);
  let finest = whole;
  for (let order = 0; order <= ctx.maxTileOrder; order++) {
    const at = evaluateAt(spec, situation, order, ctx);
    if (at.violations.length === 0) return candidateOf(spec, at, tileCells(ctx.region.moc, order), true, []);
    finest = at;
  }
  const reasons = finest.violations.map((v) => limitReason(v, whole, finest));
  return candidateOf(spec, whole, null, false, reasons);
}

function candidateOf(spec: CandidateSpec, e: Evaluation, cells: number[] | null, eligible: boolean, reasons: StrategyReason[]): StrategyCandidate {
  const up = spec.uploadSide;
  return {
    strategy: spec.strategy,
    sites: { left: spec.left.site, right: spec.right.site },
    upload: up === null ? null : { side: up, from: up === 'left' ? spec.left.site : spec.right.site, to: up === 'left' ? spec.right.site : spec.left.site },
    rows: { left: Math.round(e.rows.left), right: Math.round(e.rows.right), pairs: Math.round(e.rows.pairs) },
    bytes: e.bytes,
    steps: e.steps,
    tiling: cells === null ? null : { order: e.order, cells, perStep: roundLoad(e.perStep) },
    eligible,
    reasons,
  };
}

/** A candidate standing for a strategy no choice of sites can give (no replica, or no site with both). */
function placeholder(situation: CrossmatchSituation, strategy: Strategy): StrategyCandidate {
  const reasons: StrategyReason[] = [];
  for (const side of ['left', 'right'] as const) {
    if (situation[side].length === 0) reasons.push({ code: 'NO_REPLICA', side, message: `no site holds a readable replica of the ${side} dataset` });
  }
  if (reasons.length === 0 && strategy === 'SAME_SITE') {
    const l = [...new Set(situation.left.map((h) => h.site))].sort().join(', ');
    const r = [...new Set(situation.right.map((h) => h.site))].sort().join(', ');
    reasons.push({ code: 'NO_SITE_HOLDS_BOTH', message: `no site holds both datasets (left at ${l}; right at ${r})` });
  }
  const zero: BytesMoved = { fetchedLeft: 0, fetchedRight: 0, uploaded: 0, pairs: 0, total: 0 };
  return { strategy, sites: { left: null, right: null }, upload: null, rows: { left: 0, right: 0, pairs: 0 }, bytes: zero, steps: 0, tiling: null, eligible: false, reasons };
}

function statsAt(ctx: PlanContext, order: number): TileStats {
  return (ctx.stats[order] ??= tileStats(ctx.region.moc, order));
}

/** Rows the tiles of one order read, as shares of the region's rows: the largest tile's and the sum over tiles. */
interface TileReads {
  maxLeft: number;
  maxRight: number;
  sumLeft: number;
  sumRight: number;
}

/** Tiles above this many take the largest circle factor of their order instead of each cell's own. */
const MAX_TILES_MEASURED = 4096;

/**
 * What the tiles of `order` read. A tile's left rows are read over the circle around its cell
 * (ADQL has no cells), f times the cell's area, so a tile holding share s of the region reads
 * min(1, s × f) of its rows, and its right read is that widened by the radius. The largest read
 * takes the largest tile share with the largest f of any tile: an upper bound, since the limits
 * (maxRec, row caps, upload bytes) bound the read, not the cell.
 */
function readsAt(ctx: PlanContext, order: number): TileReads {
  const cached = ctx.reads[order];
  if (cached) return cached;
  const st = statsAt(ctx, order);
  const cells = st.count <= MAX_TILES_MEASURED ? tileCells(ctx.region.moc, order) : null;
  let fMax = 0;
  let sumLeft = 0;
  let sumRight = 0;
  const add = (share: number, f: number) => {
    const left = Math.min(1, share * f);
    sumLeft += left;
    sumRight += rightShare(ctx, left);
  };
  if (cells !== null) {
    for (const cell of cells) {
      const f = circleReadFactor(order, cell);
      fMax = Math.max(fMax, f);
      add(st.partial.get(cell) ?? st.fullShare, f);
    }
  } else {
    fMax = circleReadFactor(order, null);
    for (let i = 0; i < st.fullCount; i++) add(st.fullShare, fMax);
    for (const share of st.partial.values()) add(share, fMax);
  }
  const maxLeft = Math.min(1, (st.fullCount > 0 ? st.fullShare : st.maxShare) * fMax);
  const reads = { maxLeft, maxRight: rightShare(ctx, maxLeft), sumLeft, sumRight };
  ctx.reads[order] = reads;
  return reads;
}

/**
 * Right-read rows of a tile holding `share` of the region, as a share of the region's rows: the
 * share plus its margin, the larger of the square rule and the whole region's margin scaled by
 * √share (a piece of similar shape). The second keeps a cut region from ever looking cheaper
 * than the whole (a cone's own margin is exact, and its MOC can be far larger than the cone).
 */
function rightShare(ctx: PlanContext, share: number): number {
  if (share >= 1) return ctx.wholeRightShare;
  if (ctx.areaSr === 0) return 0;
  const square = widenedAreaSr(share * ctx.areaSr, ctx.radiusRad) / ctx.areaSr - share;
  const scaled = (ctx.wholeRightShare - 1) * Math.sqrt(share);
  return Math.min(ctx.wholeRightShare, share + Math.max(square, scaled));
}

/**
 * One step's (or the sum of all steps') load from the shares of the region's rows it reads: rows
 * of each side read, pairs returned (a site join returns the pairs of every left row it reads),
 * bytes uploaded.
 */
function load(spec: CandidateSpec, pairs: PairEstimate, leftShare: number, rightShareOf: number): StepLoad {
  const leftRows = spec.left.rows * leftShare;
  const rightRows = spec.right.rows * rightShareOf;
  const uploadBytes = spec.uploadSide === 'left' ? leftRows * spec.left.rowBytes : spec.uploadSide === 'right' ? rightRows * spec.right.rowBytes : 0;
  return { leftRows, rightRows, pairsReturned: pairs.all * leftShare, uploadBytes };
}

/**
 * Bytes moved by a candidate. With a caller inside a member site, the broker's side of every
 * exchange is taken to be that site: rows read there, rows uploaded to it and pairs it returns
 * do not cross the WAN.
 */
function bytesOf(spec: CandidateSpec, total: StepLoad, callerSite: string | null): BytesMoved {
  const away = (site: string) => (site === callerSite ? 0 : 1);
  const pairBytes = total.pairsReturned * pairRowBytes(spec.left.rowBytes, spec.right.rowBytes);
  let b: Omit<BytesMoved, 'total'>;
  if (spec.strategy === 'SAME_SITE') b = { fetchedLeft: 0, fetchedRight: 0, uploaded: 0, pairs: pairBytes * away(spec.left.site) };
  else if (spec.strategy === 'UPLOAD') {
    const from = spec.uploadSide === 'left' ? spec.left.site : spec.right.site;
    const to = spec.uploadSide === 'left' ? spec.right.site : spec.left.site;
    const fetched = total.uploadBytes * away(from);
    b = {
      fetchedLeft: spec.uploadSide === 'left' ? fetched : 0,
      fetchedRight: spec.uploadSide === 'right' ? fetched : 0,
      uploaded: total.uploadBytes * away(to),
      pairs: pairBytes * away(to),
    };
  } else {
    b = { fetchedLeft: total.leftRows * spec.left.rowBytes * away(spec.left.site), fetchedRight: total.rightRows * spec.right.rowBytes * away(spec.right.site), uploaded: 0, pairs: 0 };
  }
  const r = { fetchedLeft: Math.round(b.fetchedLeft), fetchedRight: Math.round(b.fetchedRight), uploaded: Math.round(b.uploaded), pairs: Math.round(b.pairs) };
  return { ...r, total: r.fetchedLeft + r.fetchedRight + r.uploaded + r.pairs };
}

/** Site queries per tile (SAME_SITE 1; UPLOAD a read and an upload join; BROKER a read per side), plus BROKER's match. */
function stepsOf(strategy: Strategy, tiles: number): number {
  if (strategy === 'SAME_SITE') return tiles;
  if (strategy === 'UPLOAD') return 2 * tiles;
  return 2 * tiles + 1;
}

/** Every limit one step of this size passes. */
function limitsPassed(spec: CandidateSpec, step: StepLoad): Violation[] {
  const out: Violation[] = [];
  const rowLimits = (h: Holding, side: Side | undefined, rows: number, what: string) => {
    const tap: TapFacts = h.tap;
    if (tap.maxRec !== null && rows > tap.maxRec) out.push({ code: 'MAXREC', site: h.site, side, what, estimate: rows, limit: tap.maxRec, unit: 'rows' });
    if (tap.rowCap !== null && rows > tap.rowCap) out.push({ code: 'ROW_CAP', site: h.site, side, what, estimate: rows, limit: tap.rowCap, unit: 'rows' });
  };
  if (spec.strategy === 'SAME_SITE') rowLimits(spec.left, undefined, step.pairsReturned, 'pairs returned by the join');
  else if (spec.strategy === 'BROKER') {
    rowLimits(spec.left, 'left', step.leftRows, 'left rows read');
    rowLimits(spec.right, 'right', step.rightRows, 'right rows read (widened by the radius)');
  } else {
    const side = spec.uploadSide === 'left' ? 'left' : 'right';
    const from = side === 'left' ? spec.left : spec.right;
    const to = side === 'left' ? spec.right : spec.left;
    rowLimits(from, side, side === 'left' ? step.leftRows : step.rightRows, `${side} rows read for the upload`);
    const limit = to.tap.uploadLimitBytes;
    if (limit !== null && step.uploadBytes > limit) {
      out.push({ code: 'UPLOAD_LIMIT', site: to.site, side, what: `bytes of ${side} rows uploaded`, estimate: step.uploadBytes, limit, unit: 'bytes' });
    }
    rowLimits(to, undefined, step.pairsReturned, 'pairs returned by the upload join');
  }
  return out;
}

function limitReason(v: Violation, whole: Evaluation, finest: Evaluation): StrategyReason {
  const name = v.code === 'MAXREC' ? 'maxRec' : v.code === 'ROW_CAP' ? 'the row cap' : 'uploadLimitBytes';
  const wholeEstimate = whole.violations.find((w) => w.code === v.code && w.site === v.site && w.what === v.what)?.estimate;
  const message =
    `about ${fmt(wholeEstimate ?? v.estimate)} ${v.what} in one step exceed ${name} ${fmt(v.limit)} of ${v.site}, ` +
    `and even tiles of order ${finest.order} (${fmt(finest.tiles)} tiles) need about ${fmt(v.estimate)} ${v.unit} in the largest`;
  return v.side === undefined ? { code: v.code, site: v.site, message } : { code: v.code, site: v.site, side: v.side, message };
}

function roundLoad(l: StepLoad): StepLoad {
  return { leftRows: Math.round(l.leftRows), rightRows: Math.round(l.rightRows), pairsReturned: Math.round(l.pairsReturned), uploadBytes: Math.round(l.uploadBytes) };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function bySite(a: Holding, b: Holding): number {
  return a.site < b.site ? -1 : a.site > b.site ? 1 : 0;
}
