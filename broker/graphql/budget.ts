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

/** True when `err` says the request's client went away. */
export function isRequestEnded(err: unknown): err is RequestEndedError {
  return err instanceof RequestEndedError;
}

/** The objects one request has built, against `max`. */
export class RequestBudget {
  private used = 0;
  private ended = false;

  constructor(private readonly max: number) {}

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
}
