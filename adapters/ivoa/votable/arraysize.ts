import type { ArrayShape, Datatype } from './types.js';
import { malformed } from './errors.js';

const DIM = /^[0-9]+$/;

/**
 * Parses an `arraysize` attribute ("10", "3x2", "*", "10*", "3x*", "64x64x10*").
 * Returns null for a missing or empty attribute (a scalar). `what` names the element in errors.
 */
export function parseArraysize(raw: string | undefined, what: string): ArrayShape | null {
  if (raw === undefined) return null;
  const text = raw.trim();
  if (text === '') return null;
  const parts = text.split('x');
  const dims: number[] = [];
  let variable = false;
  let maxLast: number | null = null;
  for (let i = 0; i < parts.length; i++) {
    let part = parts[i].trim();
    if (part.endsWith('*')) {
      // Only the slowest-varying (last) dimension may be variable.
      if (i !== parts.length - 1) throw malformed(`${what}: arraysize "${raw}" has "*" before the last dimension`);
      variable = true;
      part = part.slice(0, -1);
      if (part === '') break;
      if (!DIM.test(part)) throw malformed(`${what}: arraysize "${raw}" is not valid`);
      maxLast = Number(part);
      break;
    }
    if (!DIM.test(part) || Number(part) === 0) throw malformed(`${what}: arraysize "${raw}" is not valid`);
    dims.push(Number(part));
  }
  return { dims, variable, maxLast };
}

/** Elements in one slice of the variable dimension, or in the whole cell when fixed. */
export function sliceSize(shape: ArrayShape): number {
  let n = 1;
  for (const d of shape.dims) n *= d;
  return n;
}

/** True for the two character datatypes, whose first dimension is a string length. */
export function isCharType(datatype: Datatype): boolean {
  return datatype === 'char' || datatype === 'unicodeChar';
}

/** True when a char/unicodeChar cell holds several strings (two or more dimensions). */
export function isStringArray(shape: ArrayShape | null): boolean {
  if (shape === null) return false;
  return shape.dims.length + (shape.variable ? 1 : 0) >= 2;
}
