/** Turning GraphQL region arguments into a set of matching datasets. */
import { parseMocAscii, MocSyntaxError } from '../../registry/coverage/moc.js';
import { ConstellationError } from '../../registry/model/errors.js';
import type { CoverageView } from '../services/coverage-view.js';

export interface ConeArg {
  ra: number;
  dec: number;
  radiusDeg: number;
}
export interface RegionArg {
  cone?: ConeArg | null;
  moc?: string | null;
}

/** Check a cone's numbers, naming the argument path that is wrong. */
export function checkCone(cone: ConeArg, path: string): void {
  const bad = (field: string, rule: string) => {
    throw new ConstellationError('INVALID_ARGUMENT', `${path}.${field} ${rule}`, { violations: [{ path: `${path}.${field}`, rule: 'range', message: rule }] });
  };
  if (!Number.isFinite(cone.ra)) bad('ra', 'must be a finite number of degrees');
  if (!(cone.dec >= -90 && cone.dec <= 90)) bad('dec', 'must be between -90 and 90 degrees');
  if (!(cone.radiusDeg > 0 && cone.radiusDeg <= 180)) bad('radiusDeg', 'must be greater than 0 and at most 180 degrees');
}

/** Dataset ids whose replicas touch the region given by `cone` or `region` (undefined when no region was asked). */
export function datasetsInRegion(view: CoverageView, cone: ConeArg | null | undefined, region: RegionArg | null | undefined): Set<string> | undefined {
  if (cone && region) {
    throw new ConstellationError('INVALID_ARGUMENT', 'filter: give either cone or region, not both');
  }
  if (cone) {
    checkCone(cone, 'filter.cone');
    return view.datasetsInCone(cone.ra, cone.dec, cone.radiusDeg);
  }
  if (!region) return undefined;
  const given = [region.cone, region.moc].filter((v) => v !== undefined && v !== null).length;
  if (given !== 1) throw new ConstellationError('INVALID_ARGUMENT', 'filter.region: give exactly one of cone or moc');
  if (region.cone) {
    checkCone(region.cone, 'filter.region.cone');
    return view.datasetsInCone(region.cone.ra, region.cone.dec, region.cone.radiusDeg);
  }
  try {
    return view.datasetsInMoc(parseMocAscii(region.moc!));
  } catch (err) {
    if (!(err instanceof MocSyntaxError)) throw err;
    throw new ConstellationError('INVALID_MOC', `filter.region.moc: ${(err as Error).message}`, {
      cause: err,
      violations: [{ path: 'filter.region.moc', rule: 'moc', message: (err as Error).message }],
    });
  }
}
