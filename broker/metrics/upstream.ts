/** Exchanges with sites: into the metrics, and one log line each (site, path, status, duration; never the query string). */
import type { FastifyBaseLogger } from 'fastify';
import type { UpstreamCall, UpstreamObserver } from '../../adapters/http.js';
import type { BrokerMetrics } from './metrics.js';

/** Longest path logged (a site's URL paths are its own choice). */
const MAX_LOGGED_PATH = 300;

/** The observer the broker gives its HTTP client: counts each exchange and logs it (info; warn when it failed). */
export function upstreamObserver(metrics: BrokerMetrics, log: FastifyBaseLogger): UpstreamObserver {
  return (call: UpstreamCall) => {
    metrics.upstreamCall(call);
    const line = {
      upstream: {
        site: call.siteId ?? null,
        method: call.method,
        host: call.host,
        path: call.path.length > MAX_LOGGED_PATH ? `${call.path.slice(0, MAX_LOGGED_PATH)}…` : call.path,
        status: call.status ?? null,
        durationMs: Math.round(call.durationMs * 10) / 10,
        ...(call.errorCode ? { code: call.errorCode } : {}),
        ...(call.phase === 'body' ? { phase: 'body' } : {}),
      },
    };
    if (call.errorCode) log.warn(line, call.phase === 'body' ? 'upstream body failed' : 'upstream call failed');
    else log.info(line, 'upstream call');
  };
}
