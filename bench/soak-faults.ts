/**
 * When and where the simulated sites injected faults, so the soak can tell an error the
 * faults explain from one they do not. The injectors count what they injected per route and
 * kind (test/sites/fault-injector.ts); this timeline reads those counts every `tickMs` and keeps
 * each increase with its time, so "did site X inject a fault between t0 and t1" has an answer.
 */
import { FAULT_KINDS, type FaultInjector, type InjectedFault, type RouteClass } from '../test/sites/fault-injector.js';

/** Faults of one kind injected at one site on one route class, seen at `at` (ms since the epoch). */
export interface FaultEvent {
  /** The counts were read at `at` and, before, at `since`: the faults were injected in between. */
  since: number;
  at: number;
  site: string;
  route: RouteClass;
  kind: InjectedFault;
  count: number;
}

const ROUTES: readonly RouteClass[] = ['submit', 'job', 'harvest', 'other'];

/** The fault timeline of a set of sites. */
export class FaultTimeline {
  readonly events: FaultEvent[] = [];
  private readonly last = new Map<string, number>();
  private lastRead = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly injectors: ReadonlyMap<string, FaultInjector>, private readonly tickMs = 250) {}

  /** Start reading the counts (the current ones are the baseline). */
  start(): void {
    this.read(false);
    this.timer = setInterval(() => this.read(true), this.tickMs);
  }

  /** Read once more and stop. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.read(true);
  }

  private read(record: boolean): void {
    const at = Date.now();
    const since = this.lastRead;
    this.lastRead = at;
    for (const [site, inj] of this.injectors) {
      for (const route of ROUTES) {
        for (const kind of FAULT_KINDS) {
          const key = `${site}/${route}/${kind}`;
          const now = inj.injected[route][kind];
          const before = this.last.get(key) ?? 0;
          if (record && now > before) this.events.push({ since, at, site, route, kind, count: now - before });
          this.last.set(key, now);
        }
      }
    }
  }

  /**
   * The faults that may have been injected at any of `sites` between `from` and `to` (ms since
   * the epoch): those whose reading interval overlaps it (a late timer only widens the interval).
   */
  between(sites: readonly string[], from: number, to: number, routes?: readonly RouteClass[]): FaultEvent[] {
    return this.events.filter((e) => e.at >= from && e.since <= to && sites.includes(e.site) && (!routes || routes.includes(e.route)));
  }

  /**
   * How the faults explain an error that a site's failure gives (`siteCaused`): a fault at one
   * of `sites` during [from, to] ('fault-during'), else one within `lookbackMs` before it, which
   * left the site marked down or its circuit open ('fault-before'); else 'unexplained'. `faults`
   * lists them as "site route:kind ×n".
   */
  explain(siteCaused: boolean, sites: readonly string[], from: number, to: number, lookbackMs: number): { cls: 'fault-during' | 'fault-before' | 'unexplained'; faults: string } {
    if (!siteCaused) return { cls: 'unexplained', faults: '' };
    const during = this.between(sites, from, to);
    const found = during.length > 0 ? during : this.between(sites, from - lookbackMs, to);
    if (found.length === 0) return { cls: 'unexplained', faults: '' };
    const sum = new Map<string, number>();
    for (const e of found) sum.set(`${e.site} ${e.route}:${e.kind}`, (sum.get(`${e.site} ${e.route}:${e.kind}`) ?? 0) + e.count);
    return { cls: during.length > 0 ? 'fault-during' : 'fault-before', faults: [...sum].map(([k, n]) => `${k} ×${n}`).join(', ') };
  }

  /** Totals by route and kind, for the report. */
  totals(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.events) out[`${e.route}:${e.kind}`] = (out[`${e.route}:${e.kind}`] ?? 0) + e.count;
    return out;
  }
}
