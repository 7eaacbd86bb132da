/**
 * Issue 13, point 5: N brokers on one PostgreSQL under faults, the production shape. Three
 * `constellation serve` processes behind a round-robin front, six simulated TAP sites drawing
 * faults per request (503, 429 with Retry-After, hangs, resets before and after the work,
 * stalled, slow, truncated and malformed answers), 2,000 jobs submitted through the front with
 * idempotency keys (each retried once through another broker), a random broker killed with
 * SIGKILL every 15 s and one stopped with SIGTERM every 60 s, each restarted at once. Then the
 * audit of test/support/fleet-audit.ts: every job final, none lost, none submitted twice, each
 * harvest tick run once; with the throughput and how long the jobs a stopped broker held
 * waited for another.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/fleet-faults.ts [--jobs 2000] [--concurrency 16]
 *     [--kill-every-s 15] [--term-every-s 60] [--term-grace-s 30] [--seed 1] [--json report.json] [--logs dir] [--broker-log-level info] [--keep-db]
 *
 * Exits 1 when an invariant failed (each is printed).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runFleet, type FleetOptions, type FleetReport } from '../test/support/fleet-run.js';
import { FAULT_KINDS } from '../test/sites/fault-injector.js';
import { argvReader } from './support.js';

/** Bench options from the command line. */
function options(argv: readonly string[]): FleetOptions & { json?: string; logs?: string } {
  const { arg, num } = argvReader(argv);
  const termEvery = num('--term-every-s', 60);
  return {
    jobs: num('--jobs', 2000),
    concurrency: num('--concurrency', 16),
    brokers: num('--brokers', 3),
    sites: num('--sites', 6),
    seed: num('--seed', 1),
    chaos: { kind: 'timed', killEveryMs: num('--kill-every-s', 15) * 1000, termEveryMs: termEvery * 1000 },
    settleLimitMs: num('--settle-limit-s', 600) * 1000,
    termGraceMs: num('--term-grace-s', 30) * 1000,
    keepDatabase: argv.includes('--keep-db'),
    brokerLogLevel: arg('--broker-log-level'),
    json: arg('--json'),
    logs: arg('--logs'),
  };
}

const s = (ms: number | null) => (ms === null ? '-' : `${(ms / 1000).toFixed(2)} s`);

/** Print the report: the invariants first, then the figures. */
export function printFleet(r: FleetReport): void {
  const o = r.options;
  const chaos = o.chaos.kind === 'timed' ? `SIGKILL every ${o.chaos.killEveryMs / 1000} s, SIGTERM every ${(o.chaos.termEveryMs ?? 0) / 1000} s` : `${o.chaos.steps.length} stops`;
  console.log(`fleet under faults: ${o.brokers} brokers on one PostgreSQL behind a round-robin front, ${o.sites} simulated TAP sites, ${o.jobs} jobs (${o.concurrency} at once), ${chaos}`);
  console.log(`  result: ${r.failures.length === 0 ? 'every invariant holds' : `${r.failures.length} invariant(s) FAILED`}`);
  for (const f of r.failures) console.log(`    FAILED ${f}`);
  const t = r.timing;
  console.log(`  submit phase ${s(t.submitMs)} (${t.acceptedPerS.toFixed(1)} jobs accepted/s), settle ${s(t.settleMs)}, ${t.finalPerS.toFixed(1)} jobs final/s over the run; submitQuery median ${s(t.submitCall.medianMs)}, p95 ${s(t.submitCall.p95Ms)}`);
  const c = r.client;
  console.log(`  client: ${c.jobs} keys, first answer named a job ${c.firstAnswered}, retry ${c.retryAnswered}, same id ${c.sameId}, different id ${c.differentId.length}, both failed ${c.bothFailed}; failed calls ${JSON.stringify(c.errors)}`);
  for (const [code, message] of Object.entries(c.errorSamples)) console.log(`    ${code}: ${message}`);
  const j = r.jobs;
  console.log(`  jobs: ${j.accepted} accepted (${j.acceptedUnseen} never named to the client), ${j.neverCreated} never created; final ${JSON.stringify(j.final)}; lost ${j.missing.length + j.notFinal.length} (missing ${j.missing.length}, not final ${j.notFinal.length})`);
  for (const [cause, n] of Object.entries(j.errorCauses).sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`    ERROR ×${n}: ${cause}`);
  console.log(`  results: ${r.results.checked} COMPLETED results read back, ${r.results.wrong.length} wrong`);
  const y = r.sync;
  console.log(`  sync queries: ${y.runIds} jobs, ${y.attempts} sends: once ${y.once}; sent again after an undelivered answer ${y.afterUndelivered}, after the sender died ${y.afterSenderDied}; DUPLICATES ${y.duplicates.length}; sender unknown ${y.unattributed.length}`);
  const a = r.async;
  console.log(`  async jobs: ${a.runIds} jobs, ${a.creations} creations; twice at one site ${a.twiceAtOneSite.length}; orphans ${a.orphans.length} ${JSON.stringify(a.orphansByCause)}; dropped (deleted or aborted there by a broker, never recorded) ${a.dropped} ${JSON.stringify(a.droppedByCause)}`);
  const h = r.harvest;
  const claimed = h.perSite.reduce((n, x) => n + x.ticksClaimed, 0);
  const runs = h.perSite.reduce((n, x) => n + x.scheduledRuns, 0);
  const ever = h.perSite.reduce((n, x) => n + x.claimsEver, 0);
  const expected = h.perSite.reduce((n, x) => n + x.ticksExpected, 0);
  console.log(`  harvest ticks (every ${h.periodMs / 1000} s): ${claimed} claimed of ${expected} due in the run; over the database's life ${ever} claims and ${runs} scheduled runs; sites with more runs than claims: ${h.overClaimed.length}; runs left RUNNING: ${h.runningLeft.length}${h.runningLeft.length ? ` (${h.runningLeft.join(', ')})` : ''}; runs a killed broker left, closed as abandoned: ${h.abandonedClosed}`);
  const k = r.takeover;
  console.log(`  SIGKILL: ${r.stops.filter((x) => x.signal === 'SIGKILL').length}, longest wait of a held job until another broker moved it: median ${s(k.kill.medianMs)}, max ${s(k.kill.maxMs)}`);
  console.log(`  SIGTERM: ${r.stops.filter((x) => x.signal === 'SIGTERM').length}, drain (signal to exit) median ${s(k.termExitMs.medianMs)}, max ${s(k.termExitMs.maxMs)}, ${k.termOverGrace} killed after the ${(o.termGraceMs ?? 0) / 1000} s grace; leases left at a clean exit ${k.termLeasesLeft}; longest wait until another broker moved a job it held at the end of its drain: median ${s(k.term.medianMs)}, max ${s(k.term.maxMs)}`);
  for (const x of r.stops) {
    console.log(`    ${x.signal} slot ${x.index}.${x.generation} pid ${x.pid}: exit ${x.exitMs} ms, ${x.owner ? '' : 'owner unknown, '}leased at exit ${x.leasedAtExit}${x.signal === 'SIGTERM' ? `, held at the end of its drain ${x.heldAtDrainEnd}` : ''}, moved by another: ${x.takeover.n} (median ${s(x.takeover.medianMs)}, max ${s(x.takeover.maxMs)}), never moved ${x.neverMoved}`);
  }
  console.log(`  restarts: ${r.restarts.count}, ready after median ${s(r.restarts.readyMs.medianMs)}, max ${s(r.restarts.readyMs.maxMs)}; lease owners told ${k.ownersKnown}, stops without one ${k.stopsWithoutOwner}`);
  for (const route of ['submit', 'job', 'harvest'] as const) {
    const f = r.faults[route];
    console.log(`  faults on ${route} requests: ${FAULT_KINDS.filter((x) => f[x] > 0).map((x) => `${x} ${f[x]}`).join(', ')}`);
  }
  for (const p of r.processes) console.log(`    broker ${p.index}.${p.generation} pid ${p.pid}${p.signal ? ` (${p.signal})` : ''}: ${p.attempts} submits and ${p.jobRequests} job requests seen at the sites, lease owner ${p.owner ?? 'not told'}`);
  console.log(`  front: forwarded ${r.front.forwarded.join('/')}, refused ${r.front.refused}, 502 ${r.front.failed}, no broker ${r.front.noBroker}; broker error log lines ${r.brokerErrorLines}; sampler errors ${r.samplerErrors}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = options(process.argv.slice(2));
  const streams: WriteStream[] = [];
  if (opts.logs) await mkdir(opts.logs, { recursive: true });
  const logFiles = new Map<number, WriteStream>();
  const report = await runFleet({
    ...opts,
    log: (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
    onBrokerLog: opts.logs
      ? (index, chunk) => {
          let out = logFiles.get(index);
          if (!out) {
            out = createWriteStream(join(opts.logs ?? '.', `broker-${index}.log`), { flags: 'a' });
            logFiles.set(index, out);
            streams.push(out);
          }
          out.write(chunk);
        }
      : undefined,
  });
  for (const out of streams) out.end();
  printFleet(report);
  if (opts.json) await writeFile(opts.json, JSON.stringify(report, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v), 2));
  process.exit(report.failures.length === 0 ? 0 : 1);
}
