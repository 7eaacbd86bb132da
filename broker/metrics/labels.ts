/**
 * Label values with a bounded number of distinct values: Prometheus keeps one series per label
 * combination, so nothing a caller or a site chooses freely (a raw URL, an operation name, an
 * unknown method) may become a label as it is.
 */
import { ErrorCodes } from '../../registry/model/errors.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/** An HTTP method as a label: the standard ones as they are, anything else `OTHER`. */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'OTHER';
}

/** `2xx`, `4xx`, …; `unknown` for a status outside 100–599. */
export function statusClass(status: number | undefined): string {
  return status !== undefined && status >= 100 && status <= 599 ? `${Math.floor(status / 100)}xx` : 'unknown';
}

const CODES = new Set<string>(Object.values(ErrorCodes).map((e) => e.code));

/** An error code as a label: a code of the error table, anything else the INTERNAL one. */
export function errorCodeLabel(code: string | undefined): string {
  return code !== undefined && CODES.has(code) ? code : ErrorCodes.INTERNAL.code;
}

/**
 * A label for names chosen outside the broker (GraphQL operation names, site ids): the first
 * `max` distinct names keep their own series, later ones (and names too long or oddly spelt)
 * all count as `other`.
 */
export class BoundedNames {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly pattern = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/,
  ) {}

  /** The label for `name`. */
  label(name: string): string {
    if (this.seen.has(name)) return name;
    if (this.seen.size >= this.max || !this.pattern.test(name) || name === 'other') return 'other';
    this.seen.add(name);
    return name;
  }
}
