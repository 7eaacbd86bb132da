/**
 * Registry discovery under load: GraphQL datasets(filter:{region}) over a registry of 1,000
 * sites and 100,000 replicas, as requests/s relative to a bare fastify route that returns the
 * same precomputed JSON, in the same run. Reported with the response cache on and off.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { buildApp } from '../broker/app.js';
import { parseConfig } from '../broker/config/load.js';
import { openDatabase } from '../broker/db/database.js';
import { SMoc } from '../registry/coverage/moc.js';
import type { CapabilityDocument } from '../registry/model/capability.js';
import { migrate } from '../registry/store/migrate.js';
import { seededRandom as random } from '../test/support/random.js';
import { load } from './support.js';

export interface RegistryBenchOptions {
  sites: number;
  replicasPerSite: number;
  datasets: number;
  seconds: number;
}

export interface RegistryBenchResult {
  replicas: number;
  populateSeconds: number;
  bareRps: number;
  cachedRps: number;
  uncachedRps: number;
  cachedRatio: number;
  uncachedRatio: number;
  uncachedP99Ms: number;
  responseBytes: number;
}

/** The discovery query measured here and before and after the attacks (bench/attacks.ts). */
export const REGION_QUERY = `query Region($ra: Float!, $dec: Float!) {
  datasets(filter: { region: { cone: { ra: $ra, dec: $dec, radiusDeg: 1 } } }, limit: 50) {
    id title replicas { site { id status } table rows rowBytes }
  }
}`;

/** Bench site `i`: `replicasPerSite` public datasets drawn from `datasets`, with survey-patch or all-sky MOCs. */
export function siteDocument(i: number, opts: Pick<RegistryBenchOptions, 'replicasPerSite' | 'datasets'>, rnd: () => number): CapabilityDocument {
  const id = `site-${String(i).padStart(4, '0')}`;
  const chosen = new Set<number>();
  while (chosen.size < opts.replicasPerSite) chosen.add(Math.floor(rnd() * opts.datasets));
  return {
    schemaVersion: 1,
    site: { id, name: `Bench site ${i}`, platform: 'tap', url: `https://${id}.example.org` },
    services: [{ id: 'tap', type: 'tap', url: `https://${id}.example.org/tap`, upload: true, async: true, auth: ['anonymous'] }],
    datasets: [...chosen].map((d) => ({
      id: `survey${Math.floor(d / 100)}.table${d % 100}`,
      title: `Survey ${Math.floor(d / 100)} table ${d % 100}`,
      service: 'tap',
      table: `s${Math.floor(d / 100)}.t${d % 100}`,
      rows: Math.floor(rnd() * 1e9),
      rowBytes: 100 + Math.floor(rnd() * 900),
      position: { ra: 'ra', dec: 'dec' },
      columns: [{ name: 'ra', datatype: 'double', ucd: 'pos.eq.ra;meta.main' }, { name: 'dec', datatype: 'double', ucd: 'pos.eq.dec;meta.main' }],
      // One replica in twenty is all-sky; the rest are survey patches of 2-15 degrees.
      coverage: rnd() < 0.05 ? '0/0-11' : SMoc.fromCone(rnd() * 360, Math.asin(2 * rnd() - 1) * 180 / Math.PI, 2 + rnd() * 13, 5).toAscii(),
      access: { public: true },
    })),
    compute: [],
    images: [],
    asOf: '2026-11-23T12:00:00Z',
  };
}

/** A new empty PostgreSQL database beside the one `base` names (its URL), and how to drop it. */
export async function freshDatabaseUrl(base: string, tag: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const pg = (await import('pg')).default;
  const name = `constellation_bench_${tag}_${process.pid}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await run(`CREATE DATABASE ${name}`);
  const u = new URL(base);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Build the registry, then measure bare, cached and uncached throughput. */
export async function benchRegistry(opts: RegistryBenchOptions): Promise<RegistryBenchResult> {
  const dataDir = await mkdtemp(join(tmpdir(), 'constellation-bench-'));
  const fresh = process.env.DATABASE_URL ? await freshDatabaseUrl(process.env.DATABASE_URL, 'registry') : undefined;
  const url = fresh?.url;
  const dropDb = fresh?.drop;
  const database = await openDatabase({ url, dataDir }, { max: 20 });
  try {
    await migrate(database.pool);
    const yaml = 'federation: { name: bench }\nregistration: { open: true }\nsites: []\n';
    const cached = await buildApp(parseConfig(yaml, { LOG_LEVEL: 'error' }), { database, prepared: true, logger: false });
    const uncached = await buildApp(parseConfig(yaml, { LOG_LEVEL: 'error', CONSTELLATION_CACHE_MB: '0' }), { database, prepared: true, logger: false });

    const progress = (m: string) => process.stderr.write(`  [registry] ${m}\n`);
    progress('populating');
    const rnd = random(20261123);
    const started = Date.now();
    for (let i = 0; i < opts.sites; i++) await cached.services.publisher.publish(`site-${String(i).padStart(4, '0')}`, siteDocument(i, opts, rnd), 'publish');
    const populateSeconds = (Date.now() - started) / 1000;
    await uncached.services.planner.refresh(database.pool);

    progress(`populated in ${populateSeconds.toFixed(1)} s; measuring`);
    const body = JSON.stringify({ query: REGION_QUERY, variables: { ra: 180, dec: 20 } });
    const cachedUrl = await cached.listen({ host: '127.0.0.1', port: 0 });
    const uncachedUrl = await uncached.listen({ host: '127.0.0.1', port: 0 });
    const reference = await (await fetch(`${uncachedUrl}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).text();
    const parsed = JSON.parse(reference) as { data?: { datasets: unknown[] }; errors?: unknown };
    if (!parsed.data || parsed.errors) throw new Error(`bench query failed: ${reference.slice(0, 500)}`);

    const bare = Fastify({ logger: false });
    bare.post('/bare', async (_request, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(reference));
    const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });

    progress('reference answered');
    const bareRun = await load(`${bareUrl}/bare`, body, opts.seconds);
    progress('bare done');
    const cachedRun = await load(`${cachedUrl}/graphql`, body, opts.seconds);
    progress('cached done');
    const uncachedRun = await load(`${uncachedUrl}/graphql`, body, opts.seconds);
    for (const [name, r] of [['bare', bareRun], ['cached', cachedRun], ['uncached', uncachedRun]] as const) {
      if (r.errors || r.non2xx) throw new Error(`${name} run had ${r.errors} errors and ${r.non2xx} non-2xx responses`);
    }
    await bare.close();
    await cached.close();
    await uncached.close();
    return {
      replicas: opts.sites * opts.replicasPerSite,
      populateSeconds,
      bareRps: bareRun.requestsPerSecond,
      cachedRps: cachedRun.requestsPerSecond,
      uncachedRps: uncachedRun.requestsPerSecond,
      cachedRatio: cachedRun.requestsPerSecond / bareRun.requestsPerSecond,
      uncachedRatio: uncachedRun.requestsPerSecond / bareRun.requestsPerSecond,
      uncachedP99Ms: uncachedRun.latencyP99Ms,
      responseBytes: Buffer.byteLength(reference),
    };
  } finally {
    await database.close();
    await dropDb?.();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Print one result the way the bench runner does. */
export function printRegistry(r: RegistryBenchResult): void {
  console.log(`registry: ${r.replicas.toLocaleString('en-US')} replicas published in ${r.populateSeconds.toFixed(1)} s; response ${r.responseBytes} bytes`);
  console.log(`  bare fastify route        ${r.bareRps.toFixed(0).padStart(8)} req/s  (baseline 1.00)`);
  console.log(`  GraphQL, response cache   ${r.cachedRps.toFixed(0).padStart(8)} req/s  ratio ${r.cachedRatio.toFixed(2)} (target >= 0.5)`);
  console.log(`  GraphQL, no cache         ${r.uncachedRps.toFixed(0).padStart(8)} req/s  ratio ${r.uncachedRatio.toFixed(2)}  p99 ${r.uncachedP99Ms} ms`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const small = process.argv.includes('--small');
  printRegistry(await benchRegistry(small ? { sites: 50, replicasPerSite: 100, datasets: 500, seconds: 3 } : { sites: 1000, replicasPerSite: 100, datasets: 20000, seconds: 10 }));
}
