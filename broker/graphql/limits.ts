/** Paging arguments (limit, offset) checked the same way on every list field. */
import { ConstellationError } from '../../registry/model/errors.js';

/** INVALID_ARGUMENT unless `value` is an integer from 0 to `max`. */
export function checkLimit(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new ConstellationError('INVALID_ARGUMENT', `${name} must be an integer from 0 to ${max}, got ${value}`);
  }
}
