/**
 * The sites of a plan that hold none of the requested datasets. At federation scale they are
 * nearly every site (9,990 of 10,000 for a dataset held at ten), all with the same verdict, so a
 * plan keeps them as a count and that shared verdict, not as one Candidate each: the objects
 * would be most of a plan's allocation, and their young-generation collections its slow tail.
 * Their ids, and a Candidate for each, are made only when asked for.
 */
import type { Candidate, CostTerm, Reason } from './types.js';

const NO_TERMS: CostTerm[] = Object.freeze([]) as unknown as CostTerm[];

/** The reason a DOWN site is rejected with. */
export function siteDownReason(id: string): Reason {
  return { code: 'SITE_DOWN', message: `site ${id} is DOWN` };
}

/** A rejected Candidate: score 0, no estimates, the given reasons. */
export function rejected(site: string, reasons: Reason[]): Candidate {
  return { site, eligible: false, score: 0, estimatedBytesMoved: null, estimatedRows: null, estimatedWaitS: 0, pool: null, reasons, terms: NO_TERMS };
}

/** The sites holding none of a plan's requested datasets: how many, why, and (when asked) which. */
export class SitesWithoutData {
  /**
   * @param count how many sites hold none of the datasets
   * @param reasons the NO_REPLICA reason of each requested dataset, the same at every such site
   * @param siteIds every site of the snapshot planned over, in site order (shared, not copied)
   * @param siteDown per site of `siteIds`, whether it is DOWN (shared)
   * @param held the ids of the sites holding some requested dataset, in site order (a plan knows
   *   them by id, not by position: their positions are found here, when asked for, by one merge)
   */
  constructor(
    readonly count: number,
    readonly reasons: readonly Reason[],
    private readonly siteIds: readonly string[],
    private readonly siteDown: readonly boolean[],
    private readonly held: readonly string[],
  ) {}

  /** None: a request naming no dataset makes every site a candidate. */
  static none(): SitesWithoutData {
    return new SitesWithoutData(0, [], [], [], []);
  }

  /** Calls `each(position, id)` for every site without data, in site order. */
  private forEach(each: (position: number, id: string) => void): void {
    if (this.count === 0) return;
    const { siteIds, held } = this;
    let h = 0;
    for (let i = 0; i < siteIds.length; i++) {
      if (h < held.length && held[h] === siteIds[i]) h++;
      else each(i, siteIds[i]);
    }
  }

  /** Their ids, in site order. */
  ids(): string[] {
    const out: string[] = [];
    this.forEach((_i, id) => out.push(id));
    return out;
  }

  /** The rejected Candidate site `id` stands for, or undefined when it is not one of them. */
  verdict(id: string): Candidate | undefined {
    let found: Candidate | undefined;
    this.forEach((i, other) => {
      if (other === id) found = this.candidate(i, id);
    });
    return found;
  }

  private candidate(i: number, id: string): Candidate {
    const shared = this.reasons as Reason[];
    return rejected(id, this.siteDown[i] ? [siteDownReason(id), ...shared] : shared);
  }

  /**
   * Every site of the plan as a Candidate: `candidates` (the holders: eligible first by score,
   * then the rejected in site order) with these merged into the rejected in site order.
   */
  everySite(candidates: readonly Candidate[]): Candidate[] {
    if (this.count === 0) return [...candidates];
    const firstRejected = candidates.findIndex((c) => !c.eligible);
    const eligibleCount = firstRejected < 0 ? candidates.length : firstRejected;
    const out = candidates.slice(0, eligibleCount);
    const eligibleIds = new Set(out.map((c) => c.site));
    const { siteIds, held } = this;
    let h = 0;
    let r = eligibleCount;
    for (let i = 0; i < siteIds.length; i++) {
      const id = siteIds[i];
      if (h < held.length && held[h] === id) {
        h++;
        if (!eligibleIds.has(id)) out.push(candidates[r++]);
      } else out.push(this.candidate(i, id));
    }
    return out;
  }
}
