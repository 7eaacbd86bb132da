/**
 * What one GraphQL request may still build: the objects its resolvers and loaders return are
 * counted against a maximum, and once its client has gone away nothing more is built.
 */
import { ConstellationError } from '../../registry/model/errors.js';

/** Thrown into a request's remaining work once its client has gone; logged once, never reported as a bug. */
export class RequestEndedError extends Error {
  constructor() {
    super('the request has ended (its client went away or its answer was sent); nothing more is read for it');
    this.name = 'RequestEndedError';
  }
}

/** The answer would grow past the request's byte cap; answered as a whole refusal, like an answer found too large after the fact. */
export class AnswerTooLargeError extends ConstellationError {
  constructor(readonly value: number, readonly limit: number, field: string) {
    super('QUERY_TOO_COSTLY', `the answer would hold more than ${limit} bytes (at ${field}, ${value} bytes so far); ask for fewer documents`);
  }
}

/** True when `err` says the request's client went away. */
export function isRequestEnded(err: unknown): err is RequestEndedError {
  return err instanceof RequestEndedError;
}

/** The objects one request has built, against `max`, and the bytes of large values it read, against `maxBytes`. */
export class RequestBudget {
  private used = 0;
  private usedBytes = 0;
  private ended = false;

  constructor(
    private readonly max: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /** The request is over: every later charge throws RequestEndedError, so its resolvers stop. */
  end(): void {
    this.ended = true;
  }

  /** True once the request is over. */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Count `n` more objects for `field`; QUERY_TOO_COSTLY past the maximum. */
  charge(n: number, field: string): void {
    if (this.ended) throw new RequestEndedError();
    this.used += n;
    if (this.used > this.max) {
      throw new ConstellationError('QUERY_TOO_COSTLY', `the answer grew past ${this.max} objects (at ${field}); ask for less with smaller limits and page with offset`);
    }
  }

  /** Count `n` more bytes of a large value (a stored document) before it is read; QUERY_TOO_COSTLY past the maximum. */
  chargeBytes(n: number, field: string): void {
    if (this.ended) throw new RequestEndedError();
    this.usedBytes += n;
    if (this.usedBytes > this.maxBytes) {
      throw new AnswerTooLargeError(this.usedBytes, this.maxBytes, field);
    }
  }
}
