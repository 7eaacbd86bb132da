/** The broker's logger settings: what is redacted from every line. */
import type { FastifyServerOptions } from 'fastify';
import { requestLogMixin } from '../metrics/log-context.js';

/**
 * Paths pino blanks in every log line: credentials in request and response headers, and any
 * field named like a secret wherever it sits in a logged object (one and two levels deep, which
 * covers `{err: {token}}` and `{job: {request: {token}}}`).
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-publish-key"]',
  'req.headers["x-auth-token"]',
  'req.headers["x-dl-authtoken"]',
  'res.headers["set-cookie"]',
  ...['token', 'accessToken', 'access_token', 'refreshToken', 'refresh_token', 'idToken', 'id_token', 'password', 'secret', 'clientSecret', 'client_secret', 'credential', 'cookie', 'authorization', 'subject_token']
    .flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
];

/** Query parameters whose values never reach a log line (an OAuth callback's code, a token in a URL). */
const SECRET_QUERY_PARAMETERS = /^(code|state|token|access_token|refresh_token|id_token|session_state|key|publish_key)$/i;

/**
 * A URL inside a parameter's value (TAP's UPLOAD=name,https://…?signature=…): its user and its
 * query string may be a credential (a signed URL), so both are blanked; scheme, host and path stay.
 */
const URL_IN_VALUE = /(https?:\/\/)(?:[^\s/?#@;,]*@)?([^\s?#;,]*)(\?[^\s#;,]*)?(#[^\s;,]*)?/gi;

/** `value` with the user and query string of every URL in it blanked. */
function withoutUrlSecrets(value: string): string {
  return value.replace(URL_IN_VALUE, (_all, scheme: string, rest: string, query: string | undefined) => `${scheme}${rest}${query ? '?[redacted]' : ''}`);
}

/** `url` with the values of secret query parameters blanked, and secrets of URLs inside other values too. */
export function loggableUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url.slice(q + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0) return pair;
    if (SECRET_QUERY_PARAMETERS.test(decodeURIComponentSafe(name))) return `${name}=[redacted]`;
    // Decoded as the route reads it (URLSearchParams is lenient with a bad escape, so must this be).
    const value = new URLSearchParams(`v=${pair.slice(eq + 1)}`).get('v') ?? '';
    const cleaned = withoutUrlSecrets(value);
    return cleaned === value ? pair : `${name}=${encodeURIComponent(cleaned)}`;
  });
  return `${url.slice(0, q)}?${query.join('&')}`;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** pino options for `level`, writing to `stream` when given (tests capture it). */
export function loggerOptions(level: string, stream?: NodeJS.WritableStream): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    // fastify's own request line, with the URL's secret parameters blanked.
    serializers: {
      req: (req: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: req.method, url: req.url === undefined ? undefined : loggableUrl(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort,
      }),
    },
    // The request id on every line written while a request is handled, by any logger (broker/metrics/log-context.ts).
    mixin: requestLogMixin,
    ...(stream ? { stream } : {}),
  };
}
