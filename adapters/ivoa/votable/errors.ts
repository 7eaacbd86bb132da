import { ConstellationError } from '../../../registry/model/errors.js';

/** A VOTable we cannot read: malformed XML, truncated data, a bad cell, an unsupported feature. */
export function malformed(message: string, cause?: unknown): ConstellationError {
  return new ConstellationError('UPSTREAM_MALFORMED', `VOTable: ${message}`, cause === undefined ? {} : { cause });
}
