/**
 * A per-site circuit breaker: after `failures` requests in a row fail at a site (network
 * errors, timeouts, 5xx), requests to it fail at once for `coolDownMs` instead of each waiting
 * out its timeouts and retries; then one trial request goes through, and its success closes
 * the circuit (its failure opens it for another cool-down).
 */
import { ConstellationError } from '../registry/model/errors.js';

export interface CircuitOptions {
  /** Consecutive failed requests that open the circuit. */
  failures: number;
  /** How long an open circuit refuses requests before it lets one trial through. */
  coolDownMs: number;
}

interface SiteCircuit {
  failures: number;
  openUntil?: number;
  trialInFlight: boolean;
}

/** What the caller reports back for the request it was let through for. */
export type CircuitOutcome = 'success' | 'failure' | 'neutral';

/** The circuits of every site one HttpClient talks to. */
export class CircuitBreaker {
  private readonly sites = new Map<string, SiteCircuit>();

  constructor(private readonly options: CircuitOptions) {}

  /** Let a request to `siteId` through (returns how to report its outcome), or throw UPSTREAM_UNAVAILABLE while the circuit is open. */
  enter(siteId: string, now = Date.now()): (outcome: CircuitOutcome) => void {
    const c = this.sites.get(siteId) ?? { failures: 0, trialInFlight: false };
    this.sites.set(siteId, c);
    let trial = false;
    if (c.openUntil !== undefined) {
      if (now < c.openUntil || c.trialInFlight) {
        const until = new Date(Math.max(c.openUntil, now)).toISOString();
        throw new ConstellationError('UPSTREAM_UNAVAILABLE', `circuit open for site "${siteId}" until ${until} after ${c.failures} failed requests in a row; not sent`);
      }
      c.trialInFlight = trial = true;
    }
    let reported = false;
    return (outcome) => {
      if (reported) return;
      reported = true;
      if (trial) c.trialInFlight = false;
      if (outcome === 'success') {
        c.failures = 0;
        c.openUntil = undefined;
      } else if (outcome === 'failure') {
        c.failures++;
        if (trial || c.failures >= this.options.failures) c.openUntil = Date.now() + this.options.coolDownMs;
      }
    };
  }
}
