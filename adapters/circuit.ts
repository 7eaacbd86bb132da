/**
 * A per-site circuit breaker: after `failures` requests in a row fail at a site (network
 * errors, timeouts, 5xx), requests to it fail at once for `coolDownMs` instead of each waiting
 * out its timeouts and retries; then one trial request goes through, and its success closes
 * the circuit (its failure opens it for another cool-down). Only circuits with failures are
 * kept, at most `maxCircuits` of them (the oldest forgotten first): a caller that names a new
 * host each time cannot grow it without bound.
 */
import { ConstellationError } from '../registry/model/errors.js';

export interface CircuitOptions {
  /** Consecutive failed requests that open the circuit. */
  failures: number;
  /** How long an open circuit refuses requests before it lets one trial through. */
  coolDownMs: number;
  /** Most circuits with failures kept (MAX_CIRCUITS); forgetting one only lets its next request through. */
  maxCircuits?: number;
}

/** Circuits with failures kept by default: far more than the sites of a federation. */
export const MAX_CIRCUITS = 10_000;

interface SiteCircuit {
  failures: number;
  openUntil?: number;
  trialInFlight: boolean;
}

/** What the caller reports back for the request it was let through for. */
export type CircuitOutcome = 'success' | 'failure' | 'neutral';

/** The circuits of every site (or host) one HttpClient talks to. */
export class CircuitBreaker {
  private readonly sites = new Map<string, SiteCircuit>();

  /** `noun` names what a circuit is for in errors ("site", "upload host"). */
  constructor(private readonly options: CircuitOptions, private readonly noun = 'site') {}

  /** How many circuits with failures are kept. */
  get size(): number {
    return this.sites.size;
  }

  /** Let a request to `siteId` through (returns how to report its outcome), or throw UPSTREAM_UNAVAILABLE while the circuit is open. */
  enter(siteId: string, now = Date.now()): (outcome: CircuitOutcome) => void {
    const c = this.sites.get(siteId) ?? { failures: 0, trialInFlight: false };
    let trial = false;
    if (c.openUntil !== undefined) {
      if (now < c.openUntil || c.trialInFlight) {
        const until = new Date(Math.max(c.openUntil, now)).toISOString();
        throw new ConstellationError('UPSTREAM_UNAVAILABLE', `circuit open for ${this.noun} "${siteId}" until ${until} after ${c.failures} failed requests in a row; not sent`);
      }
      c.trialInFlight = trial = true;
    }
    let reported = false;
    return (outcome) => {
      if (reported) return;
      reported = true;
      if (trial) c.trialInFlight = false;
      // Requests in flight together share the kept circuit, whichever of them made it.
      const kept = this.sites.get(siteId) ?? c;
      if (outcome === 'success') {
        kept.failures = 0;
        kept.openUntil = undefined;
        // A healthy circuit holds nothing worth keeping.
        this.sites.delete(siteId);
      } else if (outcome === 'failure') {
        kept.failures++;
        if (trial || kept.failures >= this.options.failures) kept.openUntil = Date.now() + this.options.coolDownMs;
        this.keep(siteId, kept);
      }
    };
  }

  /** Keep `c` as the newest circuit, forgetting the oldest beyond the cap. */
  private keep(siteId: string, c: SiteCircuit): void {
    this.sites.delete(siteId);
    this.sites.set(siteId, c);
    const max = this.options.maxCircuits ?? MAX_CIRCUITS;
    for (const oldest of this.sites.keys()) {
      if (this.sites.size <= max) break;
      this.sites.delete(oldest);
    }
  }
}
