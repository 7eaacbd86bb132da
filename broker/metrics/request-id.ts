/**
 * Request ids: a caller's (or a proxy's) `X-Request-Id` is kept when it is a short token, so
 * one id follows a request through the proxy, the broker and its logs; anything else (long,
 * odd characters, several values) is replaced by a new random id and never logged. The id is
 * echoed in every answer's `X-Request-Id`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The header read and echoed. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What an incoming id may look like: letters, digits and `._:-`, 1 to 64 characters, starting with a letter or digit. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** True when `value` is an id the broker keeps as it is. */
export function isSafeRequestId(value: unknown): value is string {
  return typeof value === 'string' && SAFE_ID.test(value);
}

/** fastify's genReqId: the caller's safe `X-Request-Id`, else a new UUID. */
export function requestIdFor(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  return isSafeRequestId(given) ? given : randomUUID();
}

/** The fastify options that make it use `requestIdFor` (fastify's own header reading takes any value, so it stays off). */
export function requestIdOptions(): { requestIdHeader: false; genReqId: (req: IncomingMessage) => string } {
  return { requestIdHeader: false, genReqId: requestIdFor };
}
