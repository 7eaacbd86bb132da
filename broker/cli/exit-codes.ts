/**
 * The CLI's exit codes, one small table for every command, so a script can tell "the work
 * failed" from "I called it wrongly", "no broker there", "not allowed" and "no such thing".
 */
import { isConstellationError, type ErrorKind } from '../../registry/model/errors.js';

/** Every exit code the `constellation` command uses. */
export const EXIT = {
  /** Done. */
  OK: 0,
  /** The work failed: a job or thread ended ERROR or ABORTED, a harvest failed, the broker or a site refused for another reason. */
  FAILED: 1,
  /** Usage: an unknown command or option, a missing or malformed argument, input the broker refused as invalid. */
  USAGE: 2,
  /** No broker answers at the address used (--broker / CONSTELLATION_URL / HOST:PORT). */
  UNREACHABLE: 3,
  /** Not authorised: not logged in, a token or publish key refused, or not allowed to do this. */
  UNAUTHORISED: 4,
  /** No such job, thread or site (another user's job is not found either). */
  NOT_FOUND: 5,
} as const;

/** The table as `--help` and the README show it. */
export const EXIT_CODES_HELP = `exit codes:
  0  ok
  1  the work failed (a job or thread ended ERROR or ABORTED, a harvest failed, any other error)
  2  usage error (unknown command or option, missing or malformed argument, input refused as invalid)
  3  cannot reach the broker
  4  not authorised (not logged in, token or publish key refused, forbidden)
  5  not found (no such job, thread or site of yours)
`;

const BY_KIND: Partial<Record<ErrorKind, number>> = {
  INVALID_ARGUMENT: EXIT.USAGE,
  INVALID_JSON: EXIT.USAGE,
  INVALID_DOCUMENT: EXIT.USAGE,
  INVALID_MOC: EXIT.USAGE,
  UNSUPPORTED_MEDIA_TYPE: EXIT.USAGE,
  PAYLOAD_TOO_LARGE: EXIT.USAGE,
  UNAUTHENTICATED: EXIT.UNAUTHORISED,
  FORBIDDEN: EXIT.UNAUTHORISED,
  NOT_FOUND: EXIT.NOT_FOUND,
  UNKNOWN_SITE: EXIT.NOT_FOUND,
};

/** Marks an error as "no broker answered" (its code stays in the one error table). */
const UNREACHABLE = Symbol.for('constellation.cli.brokerUnreachable');

/** Mark `err` as the broker not answering, so it exits 3. */
export function markUnreachable<E extends Error>(err: E): E {
  Object.defineProperty(err, UNREACHABLE, { value: true });
  return err;
}

/** The exit code for an error thrown by a command. */
export function exitCodeOf(err: unknown): number {
  if (typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[UNREACHABLE] === true) return EXIT.UNREACHABLE;
  if (isConstellationError(err)) return BY_KIND[err.kind] ?? EXIT.FAILED;
  return EXIT.FAILED;
}
