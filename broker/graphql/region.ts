/** Turning GraphQL region arguments into a set of matching datasets. */
import { checkCone, parseMocArgument, type ConeArgument } from '../../registry/coverage/arguments.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { CoverageView } from '../services/coverage-view.js';
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
