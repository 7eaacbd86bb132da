/** The one mapping from any error to an HTTP status and a JSON body with a stable code. */
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: unknown;
}

/** Translate framework and library errors into ConstellationErrors (unknown errors become INTERNAL). */
export function toConstellationError(err: unknown): ConstellationError {
  if (isConstellationError(err)) return err;
  const e = err as FastifyLikeError;
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ConstellationError('INVALID_JSON', `request body is not valid JSON: ${e.message}`, { cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ConstellationError('PAYLOAD_TOO_LARGE', 'request body is too large: at most CONSTELLATION_BODY_LIMIT bytes, and 1 MiB on /graphql (publish a larger capability document with PUT /sites/:id/capabilities)', { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ConstellationError('UNSUPPORTED_MEDIA_TYPE', `${e.message}; send application/json`, { cause: err });
  }
  if (e?.validation) return new ConstellationError('INVALID_ARGUMENT', e.message, { cause: err });
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ConstellationError('INVALID_ARGUMENT', e.message, { cause: err });
  }
  return new ConstellationError('INTERNAL', 'internal error', { cause: err });
}
