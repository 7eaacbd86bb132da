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

/** The logger calls an answered error needs (fastify's request logger has them). */
interface FailureLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * Log a request that failed with a 5xx. A member site's failure (an UPSTREAM_* code: down,
 * slow, rate limiting, a garbled answer) is routine for a federation: one warn line with its
 * code and message, no stack, so it never pages anyone. Anything else is the broker's own
 * failure: error, with the error and its stack.
 */
export function logFailure(log: FailureLog, err: unknown, what: string): void {
  const e = toConstellationError(err);
  if (e.statusCode < 500 || e.kind === 'STARTING') return;
  if (e.kind.startsWith('UPSTREAM')) log.warn({ code: e.code }, `${what}: ${e.message}`);
  else log.error({ err }, `${what}: ${e.message}`);
}
