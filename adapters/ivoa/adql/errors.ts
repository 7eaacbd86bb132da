/** Errors raised by the ADQL lexer, parser, rewriter and translator, and their mapping onto ConstellationError. */
import { ConstellationError } from '../../../registry/model/errors.js';

/** A place in the query text: 1-based line and column (UTF-16 code units), 0-based offset. */
export interface Pos {
  line: number;
  column: number;
  offset: number;
}

/** Quote a token for a message, or name the end of input. */
function describeFound(found: string | null): string {
  return found === null ? 'end of input' : `'${found.length > 40 ? `${found.slice(0, 40)}…` : found}'`;
}

/** A query that is not ADQL: says what was expected, where, and which token was found there. */
export class AdqlSyntaxError extends Error {
  /** 1-based line of the offending token. */
  readonly line: number;
  /** 1-based column of the offending token. */
  readonly column: number;
  /** 0-based character offset of the offending token. */
  readonly offset: number;
  /** The offending token as written; '' at end of input. */
  readonly token: string;
  /** The message without the position suffix, e.g. "expected FROM after select list". */
  readonly detail: string;

  /** `found` is the offending token's text, null at end of input; `hint` is appended to the message. */
  constructor(detail: string, at: Pos, found: string | null, hint = '') {
    super(`${detail} at line ${at.line}, column ${at.column}, found ${describeFound(found)}${hint}`);
    this.name = 'AdqlSyntaxError';
    this.line = at.line;
    this.column = at.column;
    this.offset = at.offset;
    this.token = found ?? '';
    this.detail = detail;
  }
}

/** Valid ADQL that a consumer (the PostgreSQL translator, the rewriter) cannot handle. */
export class AdqlUnsupportedError extends Error {
  /** Where the construct starts, when known. */
  readonly pos: Pos | undefined;
  /** Which consumer refused it: 'adql-unsupported' (translator) or 'adql-rewrite' (rewriter). */
  readonly rule: string;

  constructor(message: string, pos?: Pos, rule = 'adql-unsupported') {
    super(pos ? `${message} (at line ${pos.line}, column ${pos.column})` : message);
    this.name = 'AdqlUnsupportedError';
    this.pos = pos;
    this.rule = rule;
  }
}

/** True for either ADQL error type (also across module copies). */
export function isAdqlError(err: unknown): err is AdqlSyntaxError | AdqlUnsupportedError {
  if (err instanceof AdqlSyntaxError || err instanceof AdqlUnsupportedError) return true;
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'AdqlSyntaxError' || name === 'AdqlUnsupportedError';
}

/**
 * The project's error for a bad query: INVALID_ARGUMENT, the original error as `cause`, and one
 * violation naming line and column. Anything that is not an ADQL error is returned as INTERNAL.
 */
export function toConstellationError(err: unknown): ConstellationError {
  if (err instanceof ConstellationError) return err;
  if (err instanceof AdqlSyntaxError || (err as { name?: unknown } | null)?.name === 'AdqlSyntaxError') {
    const e = err as AdqlSyntaxError;
    return new ConstellationError('INVALID_ARGUMENT', `invalid ADQL: ${e.message}`, {
      cause: e,
      violations: [{ path: `line ${e.line}, column ${e.column}`, rule: 'adql-syntax', message: e.message }],
    });
  }
  if (err instanceof AdqlUnsupportedError || (err as { name?: unknown } | null)?.name === 'AdqlUnsupportedError') {
    const e = err as AdqlUnsupportedError;
    return new ConstellationError('INVALID_ARGUMENT', e.message, {
      cause: e,
      violations: [{ path: e.pos ? `line ${e.pos.line}, column ${e.pos.column}` : '/', rule: e.rule, message: e.message }],
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ConstellationError('INTERNAL', `ADQL processing failed: ${message}`, { cause: err });
}
