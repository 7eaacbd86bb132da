/** One violation found in an input: where (JSON pointer or line:col) and which rule. */
export interface Violation {
  /** JSON pointer ("/datasets/3/coverage") or another locator ("line 4, column 7"). */
  path: string;
  /** The rule that failed: a JSON Schema keyword or a named semantic rule. */
  rule: string;
  message: string;
}

/** Stable machine-readable error codes; the HTTP status each maps to lives beside it. */
export const ErrorCodes = {
  INVALID_DOCUMENT: { code: 'CONSTELLATION_E_INVALID_DOCUMENT', status: 422 },
  INVALID_JSON: { code: 'CONSTELLATION_E_INVALID_JSON', status: 400 },
  INVALID_MOC: { code: 'CONSTELLATION_E_INVALID_MOC', status: 422 },
  INVALID_CONFIG: { code: 'CONSTELLATION_E_INVALID_CONFIG', status: 500 },
  INVALID_ARGUMENT: { code: 'CONSTELLATION_E_INVALID_ARGUMENT', status: 400 },
  SITE_MISMATCH: { code: 'CONSTELLATION_E_SITE_MISMATCH', status: 409 },
  UNKNOWN_SITE: { code: 'CONSTELLATION_E_UNKNOWN_SITE', status: 404 },
  NOT_FOUND: { code: 'CONSTELLATION_E_NOT_FOUND', status: 404 },
  /** No credential, or one the broker does not accept (bad signature, expired, wrong issuer or audience). */
  UNAUTHENTICATED: { code: 'CONSTELLATION_E_UNAUTHENTICATED', status: 401 },
  /** A known caller without the right to do this. */
  FORBIDDEN: { code: 'CONSTELLATION_E_FORBIDDEN', status: 403 },
  /** A caller holding as much as one caller may (async TAP jobs, their stored bytes) until some of it is deleted or expires. */
  QUOTA_EXCEEDED: { code: 'CONSTELLATION_E_QUOTA_EXCEEDED', status: 429 },
  /** An identity feature used where the federation has no identity provider, or its provider is unreachable. */
  IDENTITY_UNAVAILABLE: { code: 'CONSTELLATION_E_IDENTITY_UNAVAILABLE', status: 503 },
  NO_ELIGIBLE_SITE: { code: 'CONSTELLATION_E_NO_ELIGIBLE_SITE', status: 422 },
  PAYLOAD_TOO_LARGE: { code: 'CONSTELLATION_E_PAYLOAD_TOO_LARGE', status: 413 },
  UNSUPPORTED_MEDIA_TYPE: { code: 'CONSTELLATION_E_UNSUPPORTED_MEDIA_TYPE', status: 415 },
  DATABASE: { code: 'CONSTELLATION_E_DATABASE', status: 503 },
  /** A read answered partly from the in-memory registry view met a newer registry version in SQL: retry it (never a mix of two versions). */
  REGISTRY_CHANGED: { code: 'CONSTELLATION_E_REGISTRY_CHANGED', status: 503 },
  UPSTREAM: { code: 'CONSTELLATION_E_UPSTREAM', status: 502 },
  UPSTREAM_TIMEOUT: { code: 'CONSTELLATION_E_UPSTREAM_TIMEOUT', status: 504 },
  UPSTREAM_UNAVAILABLE: { code: 'CONSTELLATION_E_UPSTREAM_UNAVAILABLE', status: 503 },
  UPSTREAM_RATE_LIMITED: { code: 'CONSTELLATION_E_UPSTREAM_RATE_LIMITED', status: 503 },
  UPSTREAM_AUTH: { code: 'CONSTELLATION_E_UPSTREAM_AUTH', status: 502 },
  UPSTREAM_MALFORMED: { code: 'CONSTELLATION_E_UPSTREAM_MALFORMED', status: 502 },
  /** A site's answer pointed the broker at a host the site may not use (outbound policy). */
  UPSTREAM_POLICY: { code: 'CONSTELLATION_E_UPSTREAM_POLICY', status: 502 },
  /** A site's answer exceeded the byte limit for its kind. */
  UPSTREAM_TOO_LARGE: { code: 'CONSTELLATION_E_UPSTREAM_TOO_LARGE', status: 502 },
  /** A GraphQL request whose static cost, size, aliases or directives exceed the limits. */
  QUERY_TOO_COSTLY: { code: 'CONSTELLATION_E_QUERY_TOO_COSTLY', status: 400 },
  /** A result the broker kept has passed its retention and was removed. */
  RESULT_EXPIRED: { code: 'CONSTELLATION_E_RESULT_EXPIRED', status: 410 },
  /** A harvest that would remove too much of a site's advertised state, held for confirmation. */
  HARVEST_HELD: { code: 'CONSTELLATION_E_HARVEST_HELD', status: 409 },
  /** A harvest whose broker died (killed, its machine lost) before recording its end: closed by another once its lease lapsed. */
  HARVEST_ABANDONED: { code: 'CONSTELLATION_E_HARVEST_ABANDONED', status: 500 },
  PORT_IN_USE: { code: 'CONSTELLATION_E_PORT_IN_USE', status: 500 },
  DATA_DIR: { code: 'CONSTELLATION_E_DATA_DIR', status: 500 },
  STARTING: { code: 'CONSTELLATION_E_STARTING', status: 503 },
  /** The broker is stopping: work it would start is refused, and work it had in flight (a harvest) ends recorded with this code. */
  STOPPING: { code: 'CONSTELLATION_E_STOPPING', status: 503 },
  INTERNAL: { code: 'CONSTELLATION_E_INTERNAL', status: 500 },
} as const;

export type ErrorKind = keyof typeof ErrorCodes;

/** The one error type every room throws; `code` is stable, `violations` name every problem. */
export class ConstellationError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly statusCode: number;
  readonly violations: Violation[];

  constructor(kind: ErrorKind, message: string, options: { cause?: unknown; violations?: Violation[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConstellationError';
    this.kind = kind;
    this.code = ErrorCodes[kind].code;
    this.statusCode = ErrorCodes[kind].status;
    this.violations = options.violations ?? [];
  }

  /** The JSON body the REST API and the GraphQL `extensions` carry. */
  toJSON(): { code: string; message: string; violations?: Violation[] } {
    return this.violations.length > 0
      ? { code: this.code, message: this.message, violations: this.violations }
      : { code: this.code, message: this.message };
  }
}

/** True when `err` is a ConstellationError (also across module copies). */
export function isConstellationError(err: unknown): err is ConstellationError {
  return err instanceof ConstellationError || (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'ConstellationError');
}

/** INVALID_ARGUMENT for one bad input field, named by `path` in the message and its violation. */
export function invalidArgument(path: string, message: string, rule = 'input'): ConstellationError {
  return new ConstellationError('INVALID_ARGUMENT', `${path} ${message}`, { violations: [{ path, rule, message }] });
}
