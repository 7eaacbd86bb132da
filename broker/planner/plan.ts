/**
 * Placing a request on a site: every site holding a requested dataset becomes a Candidate (the
 * others are counted, see without-data.ts), hard filters leave typed reasons, and the eligible
 * rest are ranked by the cost model in cost.ts. Pure and
 * synchronous over a snapshot, so the same snapshot, request, caller and `now` give the same Plan.
 */
import { checkCone, parseMocArgument } from '../../registry/coverage/arguments.js';
import { Cone } from '../../registry/coverage/cone.js';
import type { SMoc } from '../../registry/coverage/moc.js';
import { UNKNOWN } from '../../registry/coverage/packed.js';
import { capMayTouch } from '../../registry/coverage/packed-cap.js';
import type { RangeLookup } from '../../registry/coverage/ranges.js';
import { invalidArgument } from '../../registry/model/errors.js';
import type { ComputeRow, ImageRow } from '../../registry/store/queries/rows.js';
import { DEFAULT_COSTS, formulaText, freshness, score, type CostConstants } from './cost.js';
import { KIND_BITS, PUBLIC } from './replica-facts.js';
import type { DatasetReplicas, PlannerSite, PlannerSnapshot } from './snapshot.js';
import type { Candidate, Caller, Plan, PlanRequest, Reason } from './types.js';
import { rejected, siteDownReason, SitesWithoutData } from './without-data.js';

/** Service types that can answer a QUERY over a replica. */
export const QUERY_SERVICE_TYPES: ReadonlySet<string> = new Set(['tap', 'casjobs']);

/** Knobs of one planning call. */
export interface PlanOptions {
  /** Clock for freshness, ms since the epoch (default Date.now()). */
  now?: number;
  costs?: Partial<CostConstants>;
  /**
   * CONTAINER only: demand every requested dataset at the site. By default a site holding at
   * least one may pull the others from their cheapest readable replica, paying the bytes term.
   */
  requireAllLocal?: boolean;
}

/** Cheapest place to pull a dataset from: its site and estimated bytes (null = unknown size). */
interface Source {
  site: string;
  bytes: number | null;
  rows: number | null;
}

/**
 * The region tests one plan needs, built once per request, of replica j of a dataset's list:
 * its kind and cap read from the list's facts, its ranges (only past the cap) from its site.
 */
interface RegionTest {
  /** Positions in `list` of the replicas touching the region, ascending, from its sky index; undefined to test each replica. */
  indexed(list: DatasetReplicas): number[] | undefined;
  touches(list: DatasetReplicas, j: number): boolean;
  fraction(list: DatasetReplicas, j: number): number;
}

const WHOLE_SKY: RegionTest = { indexed: () => undefined, touches: () => true, fraction: () => 1 };

const kindOf = (list: DatasetReplicas, j: number): number => list.facts.flags[j] & KIND_BITS;

const ascending = (a: number, b: number): number => a - b;

/** A cone region. One cone serves the whole plan: its thresholds cost some sixty sines to build. */
class ConeRegion implements RegionTest {
  private readonly sky: number;

  constructor(private readonly cone: Cone) {
    this.sky = cone.skyFraction();
  }

  indexed(list: DatasetReplicas): number[] | undefined {
    // Ordered like the replicas, so the replica walk matches hits without building a set.
    return list.index?.queryCone(this.cone).sort(ascending);
  }

  touches(list: DatasetReplicas, j: number): boolean {
    return kindOf(list, j) === UNKNOWN || (capMayTouch(list.facts.caps, j, this.cone) && list.sites[j].columns.coverage.touchesCone(list.local[j], this.cone));
  }

  fraction(list: DatasetReplicas, j: number): number {
    return kindOf(list, j) === UNKNOWN ? this.sky : list.sites[j].columns.coverage.coneFraction(list.local[j], this.cone);
  }
}

/** A MOC region. */
class MocRegion implements RegionTest {
  private readonly sky: number;
  private readonly area: RangeLookup;

  constructor(area: SMoc) {
    this.sky = area.skyFraction();
    this.area = area.lookup();
  }

  indexed(): undefined {
    return undefined;
  }

  touches(list: DatasetReplicas, j: number): boolean {
    return kindOf(list, j) === UNKNOWN || list.sites[j].columns.coverage.intersects(list.local[j], this.area);
  }

  fraction(list: DatasetReplicas, j: number): number {
    if (kindOf(list, j) === UNKNOWN) return this.sky;
    const coverage = list.sites[j].columns.coverage;
    const i = list.local[j];
    const all = coverage.skyFraction(i);
    return all === 0 ? 0 : Math.min(1, coverage.intersectionFraction(i, this.area) / all);
  }
}

function bad(path: string, message: string): never {
  throw invalidArgument(path, message, 'range');
}

function regionTest(request: PlanRequest): RegionTest {
  const region = request.region;
  if (!region) return WHOLE_SKY;
  const given = (region.cone ? 1 : 0) + (region.moc !== undefined && region.moc !== null ? 1 : 0);
  if (given !== 1) bad('request.region', 'must give exactly one of cone or moc');
  if (region.cone) {
    checkCone(region.cone, 'request.region.cone');
    return new ConeRegion(new Cone(region.cone.ra, region.cone.dec, region.cone.radiusDeg));
  }
  return new MocRegion(parseMocArgument(region.moc!, 'request.region.moc'));
}

function checkNumbers(request: PlanRequest): void {
  if (request.kind !== 'QUERY' && request.kind !== 'CONTAINER') bad('request.kind', 'must be QUERY or CONTAINER');
  if (!Array.isArray(request.datasets)) bad('request.datasets', 'must be a list of dataset ids');
  if (request.kind === 'QUERY' && request.datasets.length === 0) bad('request.datasets', 'must name at least one dataset for a QUERY');
  for (const field of ['cores', 'memoryGb', 'gpus', 'walltimeS'] as const) {
    const v = request[field];
    if (v !== undefined && v !== null && !(Number.isFinite(v) && v >= 0)) bad(`request.${field}`, 'must be a finite number ≥ 0');
  }
}

/** True when the site image `image` is the one `wanted` names (reference, digest or ref@digest). */
export function imageMatches(image: ImageRow, wanted: string): boolean {
  if (image.ref === wanted || (image.digest !== null && image.digest === wanted)) return true;
  const at = wanted.indexOf('@');
  return at > 0 && image.ref === wanted.slice(0, at) && image.digest === wanted.slice(at + 1);
}

/** Per-job limits of a pool the request exceeds, as sentences (empty when it fits). */
function capacityShortfalls(pool: ComputeRow, request: PlanRequest): string[] {
  const out: string[] = [];
  const cores = request.cores ?? 1;
  const coreLimit = Math.min(pool.cores, pool.maxCoresPerJob ?? Infinity);
  if (cores > coreLimit) out.push(`${cores} cores > ${coreLimit}`);
  const mem = request.memoryGb ?? 0;
  const memLimit = Math.min(pool.memoryGb, pool.maxMemoryGbPerJob ?? Infinity);
  if (mem > memLimit) out.push(`${mem} GB memory > ${memLimit} GB`);
  const gpus = request.gpus ?? 0;
  if (gpus > pool.gpus) out.push(`${gpus} GPUs > ${pool.gpus}`);
  const wall = request.walltimeS ?? 0;
  if (pool.maxWalltimeS !== null && wall > pool.maxWalltimeS) out.push(`${wall} s walltime > ${pool.maxWalltimeS} s`);
  return out;
}

const loadOf = (pool: ComputeRow): number =>
  pool.freeCores === null || pool.cores <= 0 ? 0 : Math.min(1, Math.max(0, 1 - pool.freeCores / pool.cores));

/** Choose the batch pool for a CONTAINER at one site, or say why there is none. */
function choosePool(site: PlannerSite, request: PlanRequest, costs: CostConstants, reasons: Reason[]): ComputeRow | undefined {
  const batch = site.pools.filter((p) => p.kind === 'batch');
  if (batch.length === 0) {
    reasons.push({ code: 'NO_SERVICE', message: `site ${site.site.id} has no batch compute pool` });
    return undefined;
  }
  let allowed = batch;
  if (request.image) {
    const wanted = request.image;
    const arch = request.arch ?? 'amd64';
    const named = site.images.filter((i) => imageMatches(i, wanted));
    if (named.length === 0) {
      reasons.push({ code: 'NO_IMAGE', message: `image ${wanted} is not offered at site ${site.site.id}` });
      return undefined;
    }
    const built = named.filter((i) => (i.arch ?? 'amd64') === arch);
    if (built.length === 0) {
      reasons.push({ code: 'NO_IMAGE', message: `image ${wanted} is offered for ${named.map((i) => i.arch ?? 'amd64').join(', ')}, not ${arch}` });
      return undefined;
    }
    allowed = batch.filter((p) => built.some((i) => i.compute === null || i.compute.includes(p.id)));
    if (allowed.length === 0) {
      reasons.push({ code: 'NO_IMAGE', message: `image ${wanted} may not run on any batch pool of site ${site.site.id}` });
      return undefined;
    }
  }
  let best: ComputeRow | undefined;
  let bestCost = Infinity;
  const short: string[] = [];
  for (const pool of allowed) {
    const misses = capacityShortfalls(pool, request);
    if (misses.length > 0) {
      short.push(`pool ${pool.id}: ${misses.join(', ')}`);
      continue;
    }
    // Pools are ordered by id, so a strict < keeps the smaller id on a tie.
    const cost = (pool.queueWaitS ?? 0) + costs.loadPenaltyS * loadOf(pool);
    if (cost < bestCost) {
      best = pool;
      bestCost = cost;
    }
  }
  if (!best) reasons.push({ code: 'NO_CAPACITY', message: `no batch pool of site ${site.site.id} fits the request (${short.join('; ')})` });
  return best;
}

const rank = (a: Candidate, b: Candidate): number => {
  if (a.score !== b.score) return b.score - a.score;
  return a.site < b.site ? -1 : a.site > b.site ? 1 : 0;
};

/** Per requested-dataset replica, what this request sees (bits of `seenFlags`). */
const READABLE = 1;
const COVERED = 2;

/**
 * What a plan sees of each replica of the requested datasets, dataset after dataset:
 * READABLE | COVERED, and rows and bytes in the region (NaN: unknown). Scratch reused by every
 * plan (plans are synchronous), so a plan makes no object per replica.
 */
let seenFlags = new Uint8Array(1024);
let seenRows = new Float64Array(1024);
let seenBytes = new Float64Array(1024);

function reserveSeen(n: number): void {
  if (n <= seenFlags.length) return;
  const size = Math.max(n, 2 * seenFlags.length);
  seenFlags = new Uint8Array(size);
  seenRows = new Float64Array(size);
  seenBytes = new Float64Array(size);
}

const orNull = (x: number): number | null => (x === x ? x : null);

/**
 * Plan `request` for `caller` over `snapshot`: every site holding a requested dataset (every site,
 * for a request naming none) a Candidate, the rest counted in `withoutData`, the best eligible one chosen.
 */
export function plan(snapshot: PlannerSnapshot, request: PlanRequest, caller: Caller, options: PlanOptions = {}): Plan {
  checkNumbers(request);
  const costs: CostConstants = { ...DEFAULT_COSTS, ...options.costs };
  const now = options.now ?? Date.now();
  const groups = new Set(caller.groups);
  const region = regionTest(request);
  const datasets = [...new Set(request.datasets)];
  const container = request.kind === 'CONTAINER';
  const allLocal = !container || options.requireAllLocal === true;

  // What each requested dataset looks like at each site holding it (ordered by site id, like the
  // sites), and where it is cheapest to pull from.
  const lists = datasets.map((d) => snapshot.holdersOf(d));
  const starts: number[] = [];
  let total = 0;
  for (const list of lists) {
    starts.push(total);
    total += list?.length ?? 0;
  }
  reserveSeen(total);
  const sources = new Map<string, Source>();
  for (let k = 0; k < datasets.length; k++) {
    const list = lists[k];
    if (list === undefined) continue;
    const hits = region.indexed(list);
    let h = 0;
    let best = -1;
    let bestSite: PlannerSite | undefined;
    const flags = list.facts.flags;
    for (let j = 0, n = list.length; j < n; j++) {
      const at = starts[k] + j;
      // The list's facts first: most replicas are ruled out there, without a visit to their site.
      const readable = (flags[j] & PUBLIC) !== 0 || list.sites[j].readable(list.local[j], groups);
      let covered: boolean;
      if (hits) {
        covered = hits[h] === j;
        if (covered) h++;
      } else covered = region.touches(list, j);
      seenFlags[at] = (readable ? READABLE : 0) | (covered ? COVERED : 0);
      seenRows[at] = NaN;
      seenBytes[at] = NaN;
      if (!covered) continue;
      const site = list.sites[j];
      const i = list.local[j];
      const held = site.columns.numbers[3 * i + 1];
      if (held === held) {
        const rows = held * region.fraction(list, j);
        const width = site.columns.numbers[3 * i + 2];
        seenRows[at] = rows;
        seenBytes[at] = width === width ? rows * width : NaN;
      }
      const bytes = seenBytes[at];
      if (!allLocal && readable && site.site.status !== 'DOWN') {
        // Replicas arrive ordered by site id, so a strict < keeps the smaller id on a tie; unknown sizes lose to known ones.
        if (best < 0 || (bytes === bytes && (seenBytes[best] !== seenBytes[best] || bytes < seenBytes[best]))) {
          best = at;
          bestSite = site;
        }
      }
    }
    if (bestSite !== undefined) sources.set(datasets[k], { site: bestSite.site.id, bytes: orNull(seenBytes[best]), rows: orNull(seenRows[best]) });
  }

  // Most sites hold none of the requested datasets: they are counted, not made candidates, and
  // share one frozen list of reasons (see without-data.ts).
  const noReplica = datasets.map((dataset): Reason => Object.freeze({ code: 'NO_REPLICA', dataset, message: `no replica of ${dataset} is held at this site` }));
  const { sites, siteIds, siteDown } = snapshot;
  const candidates: Candidate[] = [];
  const eligible: Candidate[] = [];
  // The ids of the sites visited, in site order (the sites holding some requested dataset).
  const heldIds: string[] = [];
  // Per dataset, the next replica of the pass over the sites (the lists are ordered by site id,
  // like the sites), and the replica at the current site (-1: none).
  const next = datasets.map(() => 0);
  const atSite = datasets.map(() => -1);
  const everySite = datasets.length === 0;
  for (let v = 0; ; v++) {
    let site: PlannerSite;
    if (everySite) {
      // A request naming no dataset: every site is a candidate.
      if (v >= sites.length) break;
      site = sites[v];
    } else {
      // The pass merges the requested datasets' lists: the site with the least id at their heads
      // next. A dataset's few hundred holders, not the federation's sites, and no lookup of where
      // each holder is among them.
      const least = leastHead(lists, next);
      if (least === undefined) break;
      site = least;
      for (let k = 0; k < datasets.length; k++) {
        const j = next[k];
        const list = lists[k];
        if (list !== undefined && j < list.length && list.sites[j].site.id === site.site.id) {
          atSite[k] = j;
          next[k]++;
        } else atSite[k] = -1;
      }
    }
    const id = site.site.id;
    const down = site.site.status === 'DOWN';
    heldIds.push(id);
    const reasons: Reason[] = [];
    if (down) reasons.push(siteDownReason(id));
    let local = 0;
    let rows: number | null = 0;
    let resultBytes: number | null = 0;
    let moved: number | null = 0;
    let pulls: Reason[] | undefined;
    let missing: { dataset: string; why: Reason }[] | undefined;
    for (let k = 0; k < datasets.length; k++) {
      const dataset = datasets[k];
      const j = atSite[k];
      const at = starts[k] + j;
      const list = lists[k];
      // The replica's number at this site.
      const r = j < 0 || list === undefined ? -1 : list.local[j];
      let why: Reason | undefined;
      if (j < 0) why = noReplica[k];
      else if ((seenFlags[at] & READABLE) === 0) why = { code: 'FORBIDDEN', dataset, message: `the replica of ${dataset} at ${id} is restricted to groups ${site.columns.access[r].groups.join(', ') || '(none)'}` };
      else if ((seenFlags[at] & COVERED) === 0) why = { code: 'NOT_COVERED', dataset, message: `the replica of ${dataset} at ${id} does not cover the region` };
      if (why) {
        if (allLocal) reasons.push(why);
        else (missing ??= []).push({ dataset, why });
        continue;
      }
      const hereRows = orNull(seenRows[at]);
      const hereBytes = orNull(seenBytes[at]);
      if (!container) {
        const service = site.services.get(site.columns.serviceIds[r]);
        if (!service || !QUERY_SERVICE_TYPES.has(service.type)) {
          reasons.push({ code: 'NO_SERVICE', dataset, message: `${dataset} at ${id} is served by ${service ? `a ${service.type} service` : 'no known service'}, not TAP` });
          continue;
        }
        // Only a known row count can prove a limit is exceeded; unknown sizes pass.
        if (service.maxRec !== null && hereRows !== null && hereRows > service.maxRec) {
          reasons.push({ code: 'LIMIT_EXCEEDED', dataset, message: `about ${Math.round(hereRows)} rows of ${dataset} in the region exceed maxRec ${service.maxRec} of ${id}/${service.id}` });
          continue;
        }
      }
      local++;
      rows = rows === null || hereRows === null ? null : rows + hereRows;
      resultBytes = resultBytes === null || hereBytes === null ? null : resultBytes + hereBytes;
    }
    if (missing) {
      if (local === 0) {
        for (const m of missing) reasons.push(m.why);
      } else {
        for (const m of missing) {
          const src = sources.get(m.dataset);
          if (!src) {
            reasons.push({ ...m.why, message: `${m.why.message}, and no readable replica covering the region exists elsewhere` });
            continue;
          }
          moved = moved === null || src.bytes === null ? null : moved + src.bytes;
          rows = rows === null || src.rows === null ? null : rows + src.rows;
          (pulls ??= []).push({ code: 'DATA_TO_MOVE', dataset: m.dataset, message: `${m.dataset} is pulled from ${src.site} (${src.bytes === null ? 'unknown size' : `about ${Math.round(src.bytes)} B`})` });
        }
      }
    }
    // Like PanDA's filter chain, compute filters run only for a site whose data passed.
    if (reasons.length > 0) {
      candidates.push(rejected(id, reasons));
      continue;
    }
    const pool = container ? choosePool(site, request, costs, reasons) : undefined;
    if (reasons.length > 0) {
      candidates.push(rejected(id, reasons));
      continue;
    }
    // The fast lane: a caller inside a member site gets a result made there without it crossing
    // the WAN; a result made elsewhere travels to them, and counts as moved.
    if (!container && caller.site !== undefined) {
      if (id === caller.site) {
        (pulls ??= []).push({ code: 'LOCAL', message: `you are inside ${id}: the query runs there and its result stays there (0 bytes moved to you${moved ? `; ${Math.round(moved)} B of other data pulled in` : ''})` });
      } else if (resultBytes !== null) {
        moved = moved === null ? null : moved + resultBytes;
        (pulls ??= []).push({ code: 'DATA_TO_MOVE', message: `the result (about ${Math.round(resultBytes)} B) travels from ${id} to your site ${caller.site}` });
      }
    }
    const waitS = pool?.queueWaitS ?? 0;
    const ageS = site.site.asOf === null ? null : Math.max(0, (now - site.site.asOf.getTime()) / 1000);
    const scored = score({
      bytesToMove: moved ?? 0, resultBytes: container ? null : resultBytes, queueWaitS: waitS, load: pool ? loadOf(pool) : 0,
      status: site.site.status, ageS, preference: site.preference,
    }, costs);
    const explain: Reason[] = [{
      code: 'COST',
      message: `cost ${scored.costS.toFixed(3)} s, score ${scored.score.toFixed(4)} (${scored.terms.map((t) => `${t.name} ${fmt(t.contribution)}`).join(', ')})`,
    }, ...(pulls ?? [])];
    if (moved === null || rows === null) explain.push({ code: 'UNKNOWN_SIZE', message: 'a row count or row width is not advertised, so the size estimate is partial' });
    if (freshness(ageS, costs) < 1) explain.push({ code: 'STALE', message: ageS === null ? `site ${id} never said when its state was current` : `site ${id} advertised its state ${Math.round(ageS / 3600)} h ago` });
    const candidate: Candidate = {
      site: id, eligible: true, score: scored.score, estimatedBytesMoved: moved, estimatedRows: rows, estimatedWaitS: waitS,
      pool: pool?.id ?? null, reasons: explain, terms: scored.terms,
    };
    candidates.push(candidate);
    eligible.push(candidate);
  }
  eligibleFirst(candidates, eligible);
  const unheld = sites.length - heldIds.length;
  const withoutData = unheld === 0 ? SitesWithoutData.none() : new SitesWithoutData(unheld, Object.freeze(noReplica), siteIds, siteDown, heldIds);
  return { chosen: eligible[0] ?? null, candidates, withoutData, formula: options.costs ? formulaText(costs) : DEFAULT_FORMULA, registryVersion: snapshot.version };
}

/** The site with the least id at the heads (`next`) of `lists`, or undefined when every list is passed. */
function leastHead(lists: readonly (DatasetReplicas | undefined)[], next: readonly number[]): PlannerSite | undefined {
  let least: PlannerSite | undefined;
  for (let k = 0; k < lists.length; k++) {
    const list = lists[k];
    if (list === undefined || next[k] >= list.length) continue;
    const head = list.sites[next[k]];
    if (least === undefined || head.site.id < least.site.id) least = head;
  }
  return least;
}

// Most plans use the default constants; their formula is the same long string every time.
const DEFAULT_FORMULA = formulaText(DEFAULT_COSTS);

/**
 * Put the eligible candidates first, best first, and the rejected behind them in their site
 * order. Sites come ordered by id, so only the few eligible need sorting; the move is in place.
 */
function eligibleFirst(candidates: Candidate[], eligible: Candidate[]): void {
  if (eligible.length === 0) return;
  eligible.sort(rank);
  let to = candidates.length;
  for (let from = candidates.length - 1; from >= 0; from--) if (!candidates[from].eligible) candidates[--to] = candidates[from];
  for (let k = 0; k < eligible.length; k++) candidates[k] = eligible[k];
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}
