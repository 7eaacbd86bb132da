/**
 * The soak's mixed load against one broker and what came of it: GraphQL discovery (datasets by
 * text, UCD and cone; sites), plans for random cones, ADQL queries run as jobs (sync with TOP,
 * async without) followed to their end and their results read, cross-match threads followed to
 * their end, and harvests asked through the API. Every error is classified: explained when the
 * code is one a site's failure gives (an upstream code; no eligible site, for a site the
 * faults made ineligible) and the sites concerned injected a fault during the request (or, for
 * "before", in the lookback before it); anything else is unexplained and listed.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultTimeline } from './soak-faults.js';

/** Kinds of request the soak sends. */
export const KINDS = ['datasets', 'sites', 'plan', 'query-sync', 'query-async', 'result', 'thread', 'harvest'] as const;
export type Kind = (typeof KINDS)[number];

/** How an error was explained. */
export type ErrorClass = 'fault-during' | 'fault-before' | 'unexplained';

/** One error seen by the client. */
export interface SoakError {
  kind: Kind;
  at: number;
  cls: ErrorClass;
  code: string;
  message: string;
  /** The request (job, thread, site) it concerns. */
  subject: string;
  /** The faults that explain it, as "site route:kind ×n". */
  faults: string;
  /** The sites concerned, and when the request ended (ms since the load started). */
  sites: string[];
  endAt: number;
  /** Whether a site's failure can give this error at all. */
  fromSites: boolean;
}

/** Requests per minute of each kind (the load's mix). */
export type Mix = Record<Exclude<Kind, 'result'>, number>;

/** The default mix, per minute. */
export const DEFAULT_MIX: Mix = { datasets: 60, sites: 12, plan: 40, 'query-sync': 20, 'query-async': 10, thread: 3, harvest: 3 };

export interface LoadOptions {
  base: string;
  /** Simulated sites and datasets: dataset d is held at sites d, d+1, d+2 (mod sites). */
  sites: number;
  mix: Mix;
  timeline: FaultTimeline;
  /** How long before a request a fault may still explain an error (a site marked down, a circuit open). */
  lookbackMs: number;
  random: () => number;
  log: (line: string) => void;
}

/** What the load did. */
export interface LoadReport {
  /** Requests started, per kind per whole minute of the run (index 0: the first minute). */
  started: Record<Kind, number[]>;
  ok: Record<Kind, number>;
  /** Starts skipped because too many of the kind were still in flight. */
  skipped: Record<Kind, number>;
  errors: SoakError[];
  /** Final states of the jobs and threads followed. */
  jobStates: Record<string, number>;
  threadStates: Record<string, number>;
  /** Harvest outcomes of the harvests asked through the API. */
  harvestOutcomes: Record<string, number>;
}

const zero = (): Record<Kind, number> => Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;

/** Jobs and threads followed at once at most (a start beyond is skipped and counted). */
const IN_FLIGHT: Record<Kind, number> = { datasets: 4, sites: 2, plan: 4, 'query-sync': 40, 'query-async': 40, result: 20, thread: 8, harvest: 2 };
/** Longest a job or thread may take to end before the soak counts it as an unexplained hang. */
const FOLLOW_LIMIT_MS = 10 * 60_000;
const FINAL = new Set(['COMPLETED', 'ERROR', 'ABORTED']);

interface Answer<T> {
  status: number;
  data?: T;
  error?: { code: string; message: string };
}

/** The mixed load, started with `run(durationMs)`. */
export class SoakLoad {
  readonly report: LoadReport = {
    started: Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>,
    ok: zero(),
    skipped: zero(),
    errors: [],
    jobStates: {},
    threadStates: {},
    harvestOutcomes: {},
  };
  private readonly inFlight = zero();
  private readonly followers = new Set<Promise<void>>();
  private t0 = 0;
  private stopping = false;

  constructor(private readonly o: LoadOptions) {}

  /** Drive every kind at its rate for `durationMs`, then wait for every job and thread followed to end. */
  async run(durationMs: number): Promise<void> {
    this.t0 = Date.now();
    const end = this.t0 + durationMs;
    const loops = (Object.keys(this.o.mix) as Exclude<Kind, 'result'>[]).map((kind) => this.pace(kind, this.o.mix[kind], end));
    await Promise.all(loops);
    this.stopping = true;
    this.o.log(`load over; waiting for ${this.followers.size} requests, jobs and threads still followed`);
    while (this.followers.size > 0) await Promise.allSettled([...this.followers]);
  }

  /** Start `kind` `perMinute` times a minute (evenly, jittered) until `end`, each in the background. */
  private async pace(kind: Exclude<Kind, 'result'>, perMinute: number, end: number): Promise<void> {
    if (perMinute <= 0) return;
    const gap = 60_000 / perMinute;
    // Spread the kinds' first starts so they do not all fire together.
    await sleep(this.o.random() * gap);
    while (Date.now() < end) {
      this.launch(kind, () => this.once(kind));
      await sleep(gap * (0.5 + this.o.random()));
    }
  }

  /** Run `work` in the background as one request of `kind`, unless too many are in flight. */
  private launch(kind: Kind, work: () => Promise<void>): void {
    if (this.inFlight[kind] >= IN_FLIGHT[kind]) {
      this.report.skipped[kind]++;
      return;
    }
    const minute = Math.floor((Date.now() - this.t0) / 60_000);
    const row = this.report.started[kind];
    while (row.length <= minute) row.push(0);
    row[minute]++;
    this.inFlight[kind]++;
    const p = work()
      .catch((err: Error) => this.error(kind, 'CLIENT_EXCEPTION', err.message, '-', [], Date.now(), Date.now(), false))
      .finally(() => {
        this.inFlight[kind]--;
        this.followers.delete(p);
      });
    this.followers.add(p);
  }

  private async once(kind: Exclude<Kind, 'result'>): Promise<void> {
    switch (kind) {
      case 'datasets':
        return this.datasets();
      case 'sites':
        return this.discovery('sites', '{ sites { id status origin } }', {});
      case 'plan':
        return this.plan();
      case 'query-sync':
        return this.query('sync');
      case 'query-async':
        return this.query('async');
      case 'thread':
        return this.thread();
      case 'harvest':
        return this.harvest();
    }
  }

  // --- the kinds -------------------------------------------------------------------------

  private async datasets(): Promise<void> {
    const r = this.o.random();
    const filter = r < 0.3 ? { text: `d${Math.floor(this.o.random() * this.o.sites)}` }
      : r < 0.55 ? { ucd: this.pick(['phot.mag', 'pos.eq.ra', 'meta.id', 'pos.eq']) }
      : r < 0.85 ? { cone: this.cone() }
      : r < 0.95 ? { site: `s${Math.floor(this.o.random() * this.o.sites)}` }
      : undefined;
    await this.discovery('datasets', 'query($f: DatasetFilter) { datasets(filter: $f) { id title columns { name ucd } replicas { site { id } table rows } } }', { f: filter });
  }

  private async plan(): Promise<void> {
    const d = this.dataset();
    await this.discovery('plan', 'query($r: PlanRequest!) { plan(request: $r) { chosen { site { id } score } candidates { site { id } eligible estimatedRows reasons { code } } registryVersion } }', {
      r: { kind: 'QUERY', datasets: [`fleet.d${d}`], region: { cone: this.cone() } },
    });
  }

  /** A read-only request: any error is unexplained (the sites' faults do not reach the registry's answers). */
  private async discovery(kind: Kind, query: string, variables: Record<string, unknown>): Promise<void> {
    const at = Date.now();
    const a = await this.gql(query, variables);
    if (a.error) this.error(kind, a.error.code, a.error.message, query.slice(0, 40), [], at, Date.now(), false);
    else this.report.ok[kind]++;
  }

  private async query(mode: 'sync' | 'async'): Promise<void> {
    const kind: Kind = mode === 'sync' ? 'query-sync' : 'query-async';
    const d = this.dataset();
    const cut = (10 + this.o.random() * 11).toFixed(1);
    const adql = `SELECT ${mode === 'sync' ? 'TOP 50 ' : ''}id, ra, dec, mag FROM fleet.d${d} WHERE mag < ${cut}`;
    const sites = this.holders(d);
    const at = Date.now();
    const a = await this.gql<{ submitQuery: { id: string; state: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id state } }', { i: { adql, idempotencyKey: `soak-${randomUUID()}` } });
    if (a.error || !a.data) {
      this.error(kind, a.error?.code ?? `HTTP_${a.status}`, a.error?.message ?? 'no data', adql, sites, at, Date.now(), true);
      return;
    }
    const id = a.data.submitQuery.id;
    const job = await this.follow<{ job: { state: string; error: { code: string; message: string } | null; results: string | null; site: { id: string } | null } | null }>(
      kind, 'query($id: ID!) { job(id: $id) { state error { code message } results site { id } } }', { id }, (x) => x.job?.state, 1000);
    const state = job?.job?.state ?? 'NOT_FINAL';
    this.report.jobStates[state] = (this.report.jobStates[state] ?? 0) + 1;
    if (state === 'COMPLETED' && job?.job?.results) {
      this.report.ok[kind]++;
      const results = job.job.results;
      this.launch('result', () => this.result(results, sites));
    } else if (state === 'ERROR') {
      const e = job?.job?.error;
      this.error(kind, e?.code ?? 'NO_ERROR_CODE', e?.message ?? '', `job ${id}`, sites, at, Date.now(), true);
    } else this.error(kind, `JOB_${state}`, `job ${id} did not end within ${FOLLOW_LIMIT_MS / 60_000} min (last answer ${JSON.stringify(job)})`, `job ${id}`, sites, at, Date.now(), false);
  }

  /** Read a completed job's result to its last byte. */
  private async result(path: string, sites: readonly string[]): Promise<void> {
    const at = Date.now();
    try {
      const res = await fetch(`${this.o.base}${path}${path.includes('?') ? '&' : '?'}format=csv`, { signal: AbortSignal.timeout(120_000) });
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        // The answer had begun: a site failing after the first byte can only cut it short (broker/jobs/results.ts).
        this.error('result', res.ok ? 'RESULT_CUT_SHORT' : 'CLIENT_NETWORK', `HTTP ${res.status}, body ended early: ${(err as Error).message}`, path, sites, at, Date.now(), res.ok);
        return;
      }
      if (res.ok) {
        this.report.ok.result++;
        return;
      }
      let code = `HTTP_${res.status}`;
      let message = text.slice(0, 300);
      try {
        const body = JSON.parse(text) as { code?: string; message?: string; error?: { code?: string; message?: string } };
        code = body.code ?? body.error?.code ?? code;
        message = body.message ?? body.error?.message ?? message;
      } catch {
        // Not JSON: keep the text.
      }
      this.error('result', code, message, path, sites, at, Date.now(), true);
    } catch (err) {
      this.error('result', 'CLIENT_NETWORK', (err as Error).message, path, sites, at, Date.now(), false);
    }
  }

  private async thread(): Promise<void> {
    const d = this.dataset();
    const e = (d + 1) % this.o.sites;
    const sites = [...new Set([...this.holders(d), ...this.holders(e)])];
    const at = Date.now();
    const cone = { ra: this.o.random() * 360, dec: -60 + this.o.random() * 120, radiusDeg: 15 };
    const a = await this.gql<{ crossmatch: { id: string } }>('mutation($i: CrossmatchInput!) { crossmatch(input: $i) { id state } }', {
      i: { left: { dataset: `fleet.d${d}`, columns: ['id', 'mag'] }, right: { dataset: `fleet.d${e}`, columns: ['id', 'mag'] }, region: { cone }, radiusArcsec: 60, mode: this.pick(['BEST', 'ALL']), idempotencyKey: `soak-${randomUUID()}` },
    });
    if (a.error || !a.data) {
      this.error('thread', a.error?.code ?? `HTTP_${a.status}`, a.error?.message ?? 'no data', `fleet.d${d} × fleet.d${e}`, sites, at, Date.now(), true);
      return;
    }
    const id = a.data.crossmatch.id;
    const t = await this.follow<{ thread: { state: string; error: { code: string; message: string } | null; results: string | null } | null }>(
      'thread', 'query($id: ID!) { thread(id: $id) { state error { code message } results progress { stepsDone stepsTotal } } }', { id }, (x) => x.thread?.state, 2000);
    const state = t?.thread?.state ?? 'NOT_FINAL';
    this.report.threadStates[state] = (this.report.threadStates[state] ?? 0) + 1;
    if (state === 'COMPLETED' && t?.thread?.results) {
      this.report.ok.thread++;
      const results = t.thread.results;
      this.launch('result', () => this.result(results, sites));
    } else if (state === 'ERROR') {
      const err = t?.thread?.error;
      this.error('thread', err?.code ?? 'NO_ERROR_CODE', err?.message ?? '', `thread ${id}`, sites, at, Date.now(), true);
    } else this.error('thread', `THREAD_${state}`, `thread ${id} did not end within ${FOLLOW_LIMIT_MS / 60_000} min`, `thread ${id}`, sites, at, Date.now(), false);
  }

  private async harvest(): Promise<void> {
    const site = `s${Math.floor(this.o.random() * this.o.sites)}`;
    const at = Date.now();
    const a = await this.gql<{ harvest: { outcome: string; errorCode: string | null; errorMessage: string | null } }>('mutation($s: ID!) { harvest(siteId: $s) { outcome errorCode errorMessage } }', { s: site });
    if (a.error || !a.data) {
      this.error('harvest', a.error?.code ?? `HTTP_${a.status}`, a.error?.message ?? 'no data', site, [site], at, Date.now(), true);
      return;
    }
    const h = a.data.harvest;
    this.report.harvestOutcomes[h.outcome] = (this.report.harvestOutcomes[h.outcome] ?? 0) + 1;
    if (h.outcome === 'OK' || h.outcome === 'NOT_MODIFIED') this.report.ok.harvest++;
    else this.error('harvest', h.errorCode ?? h.outcome, h.errorMessage ?? '', site, [site], at, Date.now(), true);
  }

  // --- plumbing --------------------------------------------------------------------------

  /** Ask `query` every `everyMs` until `state(answer)` is final (or the limit passes); the last answer. */
  private async follow<T>(kind: Kind, query: string, variables: Record<string, unknown>, state: (x: T) => string | undefined, everyMs: number): Promise<T | undefined> {
    const limit = Date.now() + FOLLOW_LIMIT_MS;
    let last: T | undefined;
    while (Date.now() < limit) {
      const a = await this.gql<T>(query, variables);
      if (a.data) {
        last = a.data;
        const s = state(a.data);
        if (s !== undefined && FINAL.has(s)) return last;
      } else if (a.error) this.error(kind, a.error.code, `following: ${a.error.message}`, JSON.stringify(variables), [], Date.now(), Date.now(), false);
      await sleep(everyMs);
    }
    return last;
  }

  private async gql<T>(query: string, variables: Record<string, unknown>): Promise<Answer<T>> {
    try {
      const res = await fetch(`${this.o.base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(180_000),
      });
      const text = await res.text();
      let body: { data?: T | null; errors?: { message?: string; extensions?: { code?: string } }[] };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        return { status: res.status, error: { code: `HTTP_${res.status}`, message: `not JSON: ${text.slice(0, 200)}` } };
      }
      const first = body.errors?.[0];
      if (first) return { status: res.status, error: { code: first.extensions?.code ?? `HTTP_${res.status}`, message: first.message ?? '' } };
      if (!body.data) return { status: res.status, error: { code: `HTTP_${res.status}`, message: 'no data' } };
      return { status: res.status, data: body.data };
    } catch (err) {
      const e = err as Error;
      return { status: 0, error: { code: e.name === 'TimeoutError' ? 'CLIENT_TIMEOUT' : 'CLIENT_NETWORK', message: e.message } };
    }
  }

  /**
   * Record an error. `fromSites` says whether a site's failure can give it at all (a job, a
   * thread, a harvest, a result read); then it is explained by a fault at `sites` during
   * [from, to], or before it within the lookback, when its code is one a site's failure gives.
   */
  /** Record an error, unclassified: the timeline sees a fault only at its next reading, so `classify` runs after the load. */
  private error(kind: Kind, code: string, message: string, subject: string, sites: readonly string[], from: number, to: number, fromSites: boolean): void {
    this.report.errors.push({ kind, at: from - this.t0, endAt: to - this.t0, cls: 'unexplained', code, message: message.slice(0, 400), subject, faults: '', sites: [...sites], fromSites: fromSites && siteCaused(code) });
  }

  /**
   * Classify every error once the timeline has stopped: explained when a site's failure can
   * give it and the sites concerned injected a fault during the request (or, 'fault-before',
   * within the lookback before it: a site marked down, a circuit open).
   */
  classify(): void {
    for (const e of this.report.errors) {
      const { cls, faults } = this.o.timeline.explain(e.fromSites, e.sites, e.at + this.t0, e.endAt + this.t0, this.o.lookbackMs);
      e.cls = cls;
      e.faults = faults;
    }
  }

  private dataset(): number {
    return Math.floor(this.o.random() * this.o.sites);
  }

  /** The sites holding dataset `d`. */
  private holders(d: number): string[] {
    return [0, 1, 2].map((k) => `s${(d + k) % this.o.sites}`);
  }

  private cone(): { ra: number; dec: number; radiusDeg: number } {
    return { ra: this.o.random() * 360, dec: -80 + this.o.random() * 160, radiusDeg: 0.5 + this.o.random() * 10 };
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.o.random() * xs.length)];
  }
}

/**
 * Codes a site's failure gives: the upstream family, no eligible site (every holder failing or
 * marked down), a harvest's FAILED or INVALID without a code, and a result whose body was cut
 * after its first byte (RESULT_CUT_SHORT: the status was sent, the broker can only end it early).
 */
export function siteCaused(code: string): boolean {
  return code.startsWith('CONSTELLATION_E_UPSTREAM') || code === 'CONSTELLATION_E_NO_ELIGIBLE_SITE' || code === 'FAILED' || code === 'INVALID' || code === 'RESULT_CUT_SHORT';
}
