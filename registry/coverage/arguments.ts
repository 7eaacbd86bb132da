/** Sky-region arguments (cones and MOCs) checked the same way wherever a caller gives one. */
import { invalidArgument, ConstellationError } from '../model/errors.js';
import { MOC_LIMITS } from './limits.js';
import { MocSyntaxError, MocTooLargeError, parseMocAscii, type SMoc } from './moc.js';

/** A cone in degrees, as callers give it. */
export interface ConeArgument {
  ra: number;
  dec: number;
  radiusDeg: number;
}

/** Check a cone's numbers, naming the argument path that is wrong (INVALID_ARGUMENT, rule "range"). */
export function checkCone(cone: ConeArgument, path: string): void {
  if (!Number.isFinite(cone.ra)) throw invalidArgument(`${path}.ra`, 'must be a finite number of degrees', 'range');
  if (!(cone.dec >= -90 && cone.dec <= 90)) throw invalidArgument(`${path}.dec`, 'must be between -90 and 90 degrees', 'range');
  if (!(cone.radiusDeg > 0 && cone.radiusDeg <= 180)) throw invalidArgument(`${path}.radiusDeg`, 'must be greater than 0 and at most 180 degrees', 'range');
}

/**
 * Parse a MOC 2.0 ASCII argument with the caps of limits.ts; a malformed or oversized one is
 * INVALID_MOC naming `path` (rule "moc" or "moc-limit").
 */
export function parseMocArgument(text: string, path: string): SMoc {
  try {
    return parseMocAscii(text, MOC_LIMITS);
  } catch (err) {
    if (!(err instanceof MocSyntaxError)) throw err;
    const rule = err instanceof MocTooLargeError ? 'moc-limit' : 'moc';
    throw new ConstellationError('INVALID_MOC', `${path}: ${err.message}`, { cause: err, violations: [{ path, rule, message: err.message }] });
  }
}
