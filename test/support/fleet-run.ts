/**
 * N brokers on one PostgreSQL under faults (issue 13, point 5), as one run: `brokers` serve
 * processes behind a round-robin front, simulated TAP sites drawing faults per request, jobs
 * submitted through the front with idempotency keys (each retried once through another broker),
 * brokers killed (SIGKILL) and stopped (SIGTERM) and restarted while the jobs run. Then every
 * job must end final, none lost, none submitted twice (test/support/fleet-audit.ts says what
 * counts), each harvest tick run once; the report carries every count and figure.
 *
 * PostgreSQL only: brokers can share one embedded data directory, but its server process stops
 * when the broker that started it dies (embedded-host.ts) and the others never find a new one,
 * so a kill -9 of that broker takes the database from every other; a fleet sharing one database
 * is a PostgreSQL deployment.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BrokerFleet, type FleetProcess } from './broker-fleet.js';
import { Chaos, type ChaosPlan } from './fleet-chaos.js';
import { freshDatabase, type TestDatabase } from './database.js';
import {
  countAsync, countClient, countJobs, countSync, delays, ownersByPid, stopFigure,
  type AsyncCounts, type ClientCounts, type Delays, type FinalJob, type HarvestCounts, type JobCounts, type StopFigure, type SyncCounts,
} from './fleet-audit.js';
import { gql, harvestAll, pool, submitWithRetry, type SubmittedJob } from './fleet-client.js';
import { LeaseSampler } from './fleet-sampler.js';
import { closeFleetSites, fleetFederation, jobSpec, startFleetSites, type FleetSite, type JobSpec } from './fleet-sites.js';
import { peerProcess } from './peer-process.js';
import { RoundRobinFront, type FrontStats } from './round-robin-front.js';
import { waitUntil } from './wait.js';
import { FAULT_KINDS, noFaults, type FaultRates, type ForcedFault, type InjectedFault, type RouteClass, type SiteAttempt } from '../sites/fault-injector.js';
import { ErrorCodes } from '../../registry/model/errors.js';

export type { ChaosPlan };

export interface FleetOptions {
  jobs: number;
  /** Jobs being submitted at once. */
  concurrency: number;
  brokers: number;
  sites: number;
  seed: number;
  chaos: ChaosPlan;
  /** Cron schedule of every site's harvest (with seconds) and its period. */
  harvestSchedule?: string;
  harvestPeriodMs?: number;
  rates?: Partial<Record<RouteClass, FaultRates>>;
  /** How long a broker may take to exit after SIGTERM before it is killed (default 30 s, Kubernetes' default grace period). */
  termGraceMs?: number;
  /** Faults forced at every site (so a short run meets each for certain). */
  forced?: readonly ForcedFault[];
  /** Longest wait for every job to end after the last submit (a guard, not a pace). */
  settleLimitMs: number;
  /** Leave the run's database in place (its name is logged), for looking into a failure. */
  keepDatabase?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Each broker's log output (stdout and stderr). */
  onBrokerLog?: (index: number, chunk: Buffer) => void;
  /** The brokers' LOG_LEVEL (default warn). */
  brokerLogLevel?: string;
}

/** Everything a run counted and measured. */
export interface FleetReport {
  options: Omit<FleetOptions, 'log' | 'onBrokerLog' | 'keepDatabase' | 'brokerLogLevel'>;
  timing: {
    /** First submit to last answer. */
    submitMs: number;
    /** Last answer to every job final. */
    settleMs: number;
    /** Jobs accepted per second of the submit phase, and finished per second of the whole run. */
    acceptedPerS: number;
    finalPerS: number;
    /** One submitQuery call (first attempts), median and p95. */
    submitCall: { medianMs: number; p95Ms: number };
  };
  /** Planned stops never made (a progress plan whose moment never came with every broker serving). */
  chaosMissed: number;
  client: ClientCounts;
  jobs: JobCounts;
  results: { checked: number; wrong: string[] };
  sync: SyncCounts;
  async: AsyncCounts;
  harvest: HarvestCounts;
  stops: StopFigure[];
  takeover: { kill: Delays; term: Delays; termLeasesLeft: number; killExitMs: Delays; termExitMs: Delays; termOverGrace: number; ownersKnown: number; stopsWithoutOwner: number };
  restarts: { count: number; readyMs: Delays };
  faults: Record<RouteClass, Record<InjectedFault, number>>;
  /** Each broker process: its slot, what the sites saw from it, and its lease owner id when told. */
  processes: { index: number; generation: number; pid: number; signal?: string; attempts: number; jobRequests: number; owner?: string }[];
  front: FrontStats;
  brokerErrorLines: number;
  samplerErrors: number;
  /** Invariants that failed: empty when the run passed. */
  failures: string[];
}

const ACTIVE = ['PENDING', 'QUEUED', 'EXECUTING'];

/** Run the fleet once and audit it. Needs DATABASE_URL (a PostgreSQL server). */
export async function runFleet(options: FleetOptions): Promise<FleetReport> {
  if (!process.env.DATABASE_URL) throw new Error('the fleet runs on PostgreSQL only: set DATABASE_URL to a server (postgres://postgres@127.0.0.1:5432/test)');
  const log = options.log ?? (() => {});
  const schedule = options.harvestSchedule ?? '*/5 * * * * *';
  const periodMs = options.harvestPeriodMs ?? 5000;
  const graceMs = options.termGraceMs ?? 30_000;
  let db: TestDatabase | undefined;
  let sites: FleetSite[] = [];
  let fleet: BrokerFleet | undefined;
  const front = new RoundRobinFront(options.brokers);
  let sampler: LeaseSampler | undefined;
  let brokerErrorLines = 0;
  try {
    const theDb = await freshDatabase({ recordStatements: false });
    db = theDb;
    const dbUrl = theDb.url;
    if (!dbUrl) throw new Error('freshDatabase gave no URL');
    const theFleet = new BrokerFleet({
      size: options.brokers,
      configFile: join(theDb.dataDir, 'federation.yaml'),
      databaseUrl: dbUrl,
      dataDir: theDb.dataDir,
      env: { LOG_LEVEL: options.brokerLogLevel ?? 'warn' },
      onLog: (index, chunk) => {
        brokerErrorLines += (chunk.toString('utf8').match(/"level":(50|60)/g) ?? []).length;
        options.onBrokerLog?.(index, chunk);
      },
    });
    fleet = theFleet;
    sites = await startFleetSites({ count: options.sites, seed: options.seed, rates: options.rates, forced: options.forced, peerOf: (socket) => peerProcess(socket, theFleet.alivePids()) });
    await writeFile(join(theDb.dataDir, 'federation.yaml'), fleetFederation(sites, schedule));
    const frontUrl = await front.start();
    await theFleet.start();
    for (let i = 0; i < options.brokers; i++) front.up(i, theFleet.url(i));
    log(`${options.brokers} brokers up (pids ${theFleet.alivePids().join(', ')}), ${sites.length} sites, front at ${frontUrl}`);
    await harvestAll(theFleet.url(0), sites);
    const datasets = Array.from({ length: options.sites }, (_, d) => `fleet.d${d}`);
    for (let i = 0; i < options.brokers; i++) await waitForPlans(theFleet.url(i), datasets);
    log('every site harvested; every broker plans every dataset');

    const specs = Array.from({ length: options.jobs }, (_, n) => jobSpec(`fleet${options.seed}`, n, options.sites));
    for (const s of sites) s.faults.enabled = true;
    const harvestFrom = Date.now();
    const theSampler = new LeaseSampler(theDb.pool);
    sampler = theSampler;
    theSampler.start();
    const chaos = new Chaos(theFleet, front, options.chaos, graceMs, log);
    const started = Date.now();
    chaos.start(started);
    const submitted = await pool(specs, options.concurrency, async (spec) => {
      await chaos.gate(spec.n);
      return submitWithRetry(frontUrl, spec);
    }, (done) => {
      chaos.progress(done);
      if (done % 100 === 0) log(`${done}/${specs.length} jobs submitted and retried (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    });
    const submitEnd = Date.now();
    await chaos.stop();
    log(`submits done in ${((submitEnd - started) / 1000).toFixed(1)} s; ${chaos.count('SIGKILL')} kills, ${chaos.count('SIGTERM')} SIGTERMs${chaos.missed() ? `, ${chaos.missed()} planned stops not made` : ''}; waiting for every job to end`);
    // Every slot serves again before the settle: the jobs are the fleet's, not one broker's.
    await waitUntil(() => theFleet.ready().length, (n) => n === options.brokers, { timeoutMs: options.settleLimitMs, describe: (n) => `${n} of ${options.brokers} brokers ready` });
    const settled = await waitUntil(() => activeJobs(theDb), (n) => n === 0, { timeoutMs: options.settleLimitMs, intervalMs: 500, describe: (n) => `${n} jobs still unfinished` }).then(() => true, (err: Error) => {
      log(err.message);
      return false;
    });
    const settleEnd = Date.now();
    const harvestTo = Date.now();
    await theSampler.stop();
    for (const s of sites) s.faults.enabled = false;
    log(settled ? `every job final ${((settleEnd - submitEnd) / 1000).toFixed(1)} s after the last submit` : 'not every job ended');

    const rows = await finalJobs(theDb);
    const attempts = sites.flatMap((s) => s.faults.attempts);
    const results = await checkResults(frontUrl, submitted, rows, attempts);
    const cancels = sites.flatMap((s) => s.faults.cancels);
    const owners = ownersByPid(attempts, sites.flatMap((s) => s.faults.jobRequests), theSampler.samples);
    const stopped = theFleet.processes.filter((p) => p.signal !== undefined);
    const stops = stopped.map((p) => stopFigure(p, owners.get(p.pid), theSampler.samples)).filter((f): f is StopFigure => f !== undefined);
    const harvest = await countHarvest(theDb, sites.map((s) => s.id), harvestFrom, harvestTo, periodMs, theFleet.processes);
    const report: FleetReport = {
      options: {
        jobs: options.jobs, concurrency: options.concurrency, brokers: options.brokers, sites: options.sites, seed: options.seed, chaos: options.chaos,
        harvestSchedule: schedule, harvestPeriodMs: periodMs, termGraceMs: graceMs, settleLimitMs: options.settleLimitMs,
        ...(options.rates ? { rates: options.rates } : {}), ...(options.forced ? { forced: options.forced } : {}),
      },
      chaosMissed: chaos.missed(),
      timing: {
        submitMs: submitEnd - started,
        settleMs: settleEnd - submitEnd,
        acceptedPerS: rows.filter((r) => r.key !== null).length / ((submitEnd - started) / 1000),
        finalPerS: rows.filter((r) => !ACTIVE.includes(r.state)).length / ((settleEnd - started) / 1000),
        submitCall: percentiles(submitted.map((s) => s.first.ms)),
      },
      client: countClient(submitted),
      jobs: countJobs(submitted, rows),
      results,
      sync: countSync(attempts, theFleet.processes),
      async: countAsync(attempts, cancels, rows),
      harvest,
      stops,
      takeover: takeoverFigures(stops, owners.size),
      restarts: restartFigures(theFleet.processes),
      faults: sumFaults(sites),
      processes: theFleet.processes.map((p) => ({
        index: p.index, generation: p.generation, pid: p.pid, ...(p.signal ? { signal: p.signal } : {}),
        attempts: attempts.filter((a) => a.pid === p.pid).length,
        jobRequests: sites.reduce((n, s) => n + s.faults.jobRequests.filter((q) => q.pid === p.pid).length, 0),
        ...(owners.has(p.pid) ? { owner: owners.get(p.pid) } : {}),
      })),
      front: front.stats,
      brokerErrorLines,
      samplerErrors: theSampler.errors,
      failures: [],
    };
    report.failures = invariants(report);
    return report;
  } finally {
    await sampler?.stop();
    await fleet?.close();
    await front.close();
    await closeFleetSites(sites);
    if (options.keepDatabase && db) {
      log(`database kept: ${db.url ?? ''}`);
      await db.pool.end();
    } else await db?.close();
  }
}

/** Wait until `broker`'s planner finds every dataset eligible at its three sites (the registry follower has caught up). */
async function waitForPlans(broker: string, datasets: readonly string[]): Promise<void> {
  await waitUntil(
    async () => {
      const counts: number[] = [];
      for (const d of datasets) {
        const body = await gql<{ plan: { candidates: { eligible: boolean }[] } }>(broker, 'query($d: [String!]!) { plan(request: { kind: QUERY, datasets: $d }) { candidates { eligible } } }', { d: [d] });
        counts.push(body.plan.candidates.filter((c) => c.eligible).length);
      }
      return counts;
    },
    (counts) => counts.every((n) => n >= 3),
    { intervalMs: 250, describe: (counts) => `${broker} plans datasets at ${counts.join(', ')} sites, not 3 each` },
  );
}

async function activeJobs(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM jobs WHERE state = ANY($1)`, [ACTIVE]);
  return Number(rows[0]?.n ?? 0);
}

async function finalJobs(db: TestDatabase): Promise<FinalJob[]> {
  const { rows } = await db.pool.query<FinalJob>(
    `SELECT id, idempotency_key AS key, state, site_id AS "siteId", site_job_id AS "siteJobId", error_code AS "errorCode", error_message AS "errorMessage" FROM jobs`);
  return rows;
}

/** Every COMPLETED job's result read through the front (faults off): the rows its query must give. */
async function checkResults(front: string, submitted: readonly SubmittedJob[], rows: readonly FinalJob[], attempts: readonly SiteAttempt[]): Promise<{ checked: number; wrong: string[] }> {
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const completed = submitted.flatMap((s) => {
    const row = byKey.get(s.spec.key);
    return row?.state === 'COMPLETED' ? [{ spec: s.spec, id: row.id }] : [];
  });
  const wrong: string[] = [];
  await pool(completed, 8, async ({ spec, id }) => {
    const problem = await resultProblem(front, spec, id);
    if (!problem) return;
    const sends = attempts.filter((a) => a.runId === id).map((a) => `${a.site}${a.fault ? ` hit by ${a.fault}` : ''}${a.delivered ? ', delivered' : ''}`);
    wrong.push(`${id} (${spec.key}, ${spec.mode}): ${problem}; sent to ${sends.join('; ') || 'no site'}`);
  });
  return { checked: completed.length, wrong };
}

/** What is wrong with job `id`'s result for `spec`, or undefined when it is right. A few tries: the front may meet a broker restarting. */
async function resultProblem(front: string, spec: JobSpec, id: string): Promise<string | undefined> {
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const res = await fetch(`${front}/results/${id}?format=json`, { signal: AbortSignal.timeout(60_000) });
      const text = await res.text();
      if (res.status !== 200) {
        last = `HTTP ${res.status}: ${text.slice(0, 200)}`;
        if (res.status >= 500) {
          await sleep(500);
          continue;
        }
        return last;
      }
      const body = JSON.parse(text) as { metadata: { name: string }[]; data: unknown[][] };
      const col = body.metadata.findIndex((m) => m.name === 'id');
      const ids = body.data.map((r) => String(r[col]));
      const allowed = new Set(spec.matching.map(String));
      if (ids.length !== spec.expectedRows) return `${ids.length} rows, expected ${spec.expectedRows}`;
      if (new Set(ids).size !== ids.length) return 'a row twice';
      const stray = ids.find((x) => !allowed.has(x));
      return stray === undefined ? undefined : `row id ${stray} does not match the query`;
    } catch (err) {
      const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
      last = `${(err as Error).message}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''} on try ${attempt + 1}`;
      await sleep(500);
    }
  }
  return last;
}

/**
 * Scheduled harvests. Claims in the window [from, to] against the ticks due in it; and over the
 * database's whole life, runs against claims, read in one statement: a claim is written before
 * its run starts, so more runs than claims means a tick harvested twice.
 */
async function countHarvest(db: TestDatabase, siteIds: readonly string[], from: number, to: number, periodMs: number, processes: readonly FleetProcess[]): Promise<HarvestCounts> {
  const { rows } = await db.pool.query<{ site: string; claims: string; window: string; runs: string }>(
    `SELECT s.id AS site,
       (SELECT count(*) FROM harvest_ticks t WHERE t.site_id = s.id) AS claims,
       (SELECT count(*) FROM harvest_ticks t WHERE t.site_id = s.id AND t.tick >= to_timestamp($1 / 1000.0) AND t.tick <= to_timestamp($2 / 1000.0)) AS window,
       (SELECT count(*) FROM harvest_runs r WHERE r.site_id = s.id AND r.trigger = 'schedule') AS runs
     FROM sites s WHERE s.id = ANY($3)`, [from, to, siteIds]);
  // A run whose broker died is closed by the next harvest after its lease lapsed (harvests start
  // every few seconds here): one still RUNNING 20 s after the lapse was never closed.
  const left = await db.pool.query<{ site: string; started: Date }>(
    `SELECT site_id AS site, started_at AS started FROM harvest_runs WHERE trigger = 'schedule' AND outcome = 'RUNNING' AND lease_until < now() - interval '20 seconds'`);
  const abandoned = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM harvest_runs WHERE error_code = $1`, [ErrorCodes.HARVEST_ABANDONED.code]);
  const perSite = siteIds.map((site) => {
    const r = rows.find((x) => x.site === site);
    return {
      site,
      ticksClaimed: Number(r?.window ?? 0),
      ticksExpected: Math.floor(to / periodMs) - Math.ceil(from / periodMs) + 1,
      claimsEver: Number(r?.claims ?? 0),
      scheduledRuns: Number(r?.runs ?? 0),
    };
  });
  return {
    periodMs,
    perSite,
    overClaimed: perSite.filter((s) => s.scheduledRuns > s.claimsEver).map((s) => `${s.site} (${s.scheduledRuns} runs, ${s.claimsEver} claims)`),
    abandonedClosed: abandoned.rows[0]?.n ?? 0,
    runningLeft: left.rows.map((r) => {
      // The stops that could have cut it: a broker stopped ended between its start and its timeout (harvest.timeoutS, 10 s).
      const t = r.started.getTime();
      const cut = processes.filter((p) => p.signal !== undefined && p.exitedAt !== undefined && p.exitedAt >= t - 1000 && p.exitedAt <= t + 11_000)
        .map((p) => `${p.signal}${p.escalatedAt === undefined ? '' : ' then SIGKILL'} of broker ${p.index}.${p.generation}`);
      return `${r.site} from ${r.started.toISOString()} (${cut.length ? cut.join(', ') : 'no stop near it'})`;
    }),
  };
}

function takeoverFigures(stops: readonly StopFigure[], ownersKnown: number): FleetReport['takeover'] {
  const of = (signal: string) => stops.filter((s) => s.signal === signal);
  const waits = (signal: string) => of(signal).flatMap((s) => (s.takeover.n > 0 && s.takeover.maxMs !== null ? [s.takeover.maxMs] : []));
  return {
    kill: delays(waits('SIGKILL')),
    term: delays(waits('SIGTERM')),
    termLeasesLeft: of('SIGTERM').filter((s) => !s.escalated).reduce((n, s) => n + s.leasedAtExit, 0),
    termOverGrace: of('SIGTERM').filter((s) => s.escalated).length,
    killExitMs: delays(of('SIGKILL').map((s) => s.exitMs)),
    termExitMs: delays(of('SIGTERM').map((s) => s.exitMs)),
    ownersKnown,
    stopsWithoutOwner: stops.filter((s) => s.owner === undefined).length,
  };
}

function restartFigures(processes: readonly FleetProcess[]): FleetReport['restarts'] {
  const restarted = processes.filter((p) => p.generation > 0);
  return { count: restarted.length, readyMs: delays(restarted.flatMap((p) => (p.readyAt === undefined ? [] : [p.readyAt - p.startedAt]))) };
}

function sumFaults(sites: readonly FleetSite[]): FleetReport['faults'] {
  const out: FleetReport['faults'] = { submit: noFaults(), job: noFaults(), harvest: noFaults(), other: noFaults() };
  for (const s of sites) {
    for (const route of ['submit', 'job', 'harvest', 'other'] as const) for (const k of FAULT_KINDS) out[route][k] += s.faults.injected[route][k];
  }
  return out;
}

function percentiles(xs: number[]): { medianMs: number; p95Ms: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  return { medianMs: Math.round(at(0.5)), p95Ms: Math.round(at(0.95)) };
}

/** The run's promises, each broken one named. */
function invariants(r: FleetReport): string[] {
  const out: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) out.push(what);
  };
  expect(r.client.differentId.length === 0, `one key answered with two job ids: ${r.client.differentId.slice(0, 5).join('; ')}`);
  expect(r.jobs.missing.length === 0, `jobs named to the client but absent: ${r.jobs.missing.slice(0, 5).join('; ')}`);
  expect(r.jobs.notFinal.length === 0, `${r.jobs.notFinal.length} jobs not final: ${r.jobs.notFinal.slice(0, 5).join('; ')}`);
  expect(r.results.wrong.length === 0, `${r.results.wrong.length} COMPLETED jobs with a wrong or unreadable result: ${r.results.wrong.slice(0, 5).join('; ')}`);
  expect(r.sync.duplicates.length === 0, `${r.sync.duplicates.length} sync queries sent again after a delivered answer to a live broker: ${r.sync.duplicates.slice(0, 3).map((d) => `${d.jobId}: ${d.detail}`).join(' | ')}`);
  expect(r.async.twiceAtOneSite.length === 0, `${r.async.twiceAtOneSite.length} async jobs created twice at one site: ${r.async.twiceAtOneSite.slice(0, 3).map((d) => `${d.jobId}: ${d.detail}`).join(' | ')}`);
  expect(r.async.orphans.length === 0, `${r.async.orphans.length} async site jobs created for a job but not the one it recorded (orphans, ${JSON.stringify(r.async.orphansByCause)}): ${r.async.orphans.slice(0, 3).map((d) => `${d.jobId}: ${d.detail}`).join(' | ')}`);
  expect(r.harvest.overClaimed.length === 0, `sites with more scheduled harvests than claimed ticks: ${r.harvest.overClaimed.join(', ')}`);
  expect(r.harvest.runningLeft.length === 0, `scheduled harvests left RUNNING after their lease lapsed: ${r.harvest.runningLeft.join('; ')}`);
  expect(r.takeover.termLeasesLeft === 0, `${r.takeover.termLeasesLeft} job leases left by brokers that exited on SIGTERM`);
  expect(r.takeover.termOverGrace === 0, `${r.takeover.termOverGrace} of ${r.stops.filter((x) => x.signal === 'SIGTERM').length} brokers did not exit within ${(r.options.termGraceMs ?? 0) / 1000} s of SIGTERM (drains: ${r.stops.filter((x) => x.signal === 'SIGTERM').map((x) => `${x.exitMs} ms`).join(', ')})`);
  expect(r.chaosMissed === 0, `${r.chaosMissed} planned broker stops were never made`);
  return out;
}
