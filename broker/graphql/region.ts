/** Turning GraphQL region arguments into a set of matching datasets. */
import { checkCone, parseMocArgument, type ConeArgument } from '../../registry/coverage/arguments.js';
import { Cone } from '../../registry/coverage/cone.js';
import { UNKNOWN } from '../../registry/coverage/packed.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { CoverageView } from '../services/coverage-view.js';
import type { RegionTest } from '../services/catalogue-view.js';
import type { PlannerSnapshot } from '../planner/index.js';
import type { ReplicaVisibility } from '../../registry/store/queries/catalogue.js';

/** A cone argument as GraphQL gives it. */
export type ConeArg = ConeArgument;
export interface RegionArg {
  cone?: ConeArg | null;
  moc?: string | null;
}

/** Dataset ids whose replicas touch the region given by `cone` or `region` (undefined when no region was asked). */
export function datasetsInRegion(view: CoverageView, cone: ConeArg | null | undefined, region: RegionArg | null | undefined, visibility: ReplicaVisibility = 'all'): Set<string> | undefined {
  if (cone && region) {
    throw new ConstellationError('INVALID_ARGUMENT', 'filter: give either cone or region, not both');
  }
  if (cone) {
    checkCone(cone, 'filter.cone');
    return view.datasetsInCone(cone.ra, cone.dec, cone.radiusDeg, visibility);
  }
  if (!region) return undefined;
  const given = [region.cone, region.moc].filter((v) => v !== undefined && v !== null).length;
  if (given !== 1) throw new ConstellationError('INVALID_ARGUMENT', 'filter.region: give exactly one of cone or moc');
  if (region.cone) {
    checkCone(region.cone, 'filter.region.cone');
    return view.datasetsInCone(region.cone.ra, region.cone.dec, region.cone.radiusDeg, visibility);
  }
  return view.datasetsInMoc(parseMocArgument(region.moc!, 'filter.region.moc'), visibility);
}

/** The cone of a `datasets` filter (`cone` or `region.cone`), checked; undefined for a MOC region or none. */
export function filterCone(cone: ConeArg | null | undefined, region: RegionArg | null | undefined): Cone | undefined {
  if (cone && region) return undefined;
  const c = cone ?? (region && !region.moc ? region.cone : undefined);
  if (!c) return undefined;
  checkCone(c, cone ? 'filter.cone' : 'filter.region.cone');
  return new Cone(c.ra, c.dec, c.radiusDeg);
}

/**
 * A cone tested dataset by dataset against the snapshot's replicas, as the coverage index
 * matches it (unknown coverage always touches; the rest by PackedCoverage.touchesCone) and with
 * the index's visibility rule. A page of 50 over a common region then tests a few hundred
 * datasets instead of walking the index over every replica; `budget` bounds the walk when
 * the region is rare.
 */
export function coneTest(snapshot: PlannerSnapshot, cone: Cone, visibility: ReplicaVisibility, budget: number): RegionTest {
  return {
    budget,
    test: (id) => {
      // The dataset's replicas as the snapshot lists them: each site and its replica's number, no lookup per replica.
      const holders = snapshot.holdersOf(id);
      if (holders === undefined) return false;
      for (let j = 0; j < holders.length; j++) {
        const site = holders.sites[j];
        const i = holders.local[j];
        const access = site.columns.access[i];
        if (visibility !== 'all' && !access.public && !access.groups.some((g) => visibility.includes(g))) continue;
        const coverage = site.columns.coverage;
        if (coverage.kind(i) === UNKNOWN || (coverage.mayTouch(i, cone) && coverage.touchesCone(i, cone))) return true;
      }
      return false;
    },
  };
}
