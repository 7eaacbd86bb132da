/**
 * Discovery and plans for new questions, uncached (response cache off), as requests/s against a
 * bare fastify route answering the same JSON in the same run: (a) the README's first `datasets`
 * query and (b) `plan` for a Gaia cone over the shipped federation (federation.yaml and seeds/,
 * as `npm start` loads them); (c) `datasets` and (d) `plan` with a random distinct cone per
 * request over 1,000 sites × 100,000 replicas. autocannon runs in a child process of its own, so
 * the broker's event loop is not shared with the load generator; runs are interleaved, three
 * repetitions, min and median reported. Beside them, the GraphQL floor: mercurius with the
 * broker's schema and options answering the same request from resolvers that return the answer
 * ready-made, so what the stack itself costs is told apart from what the broker adds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type autocannonType from 'autocannon';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import mercurius from 'mercurius';
import { readFile } from 'node:fs/promises';
import { buildApp } from '../broker/app.js';
import { loadConfig, parseConfig } from '../broker/config/load.js';
import { openDatabase, type Database } from '../broker/db/database.js';
import { packagePath } from '../registry/paths.js';
import { migrate } from '../registry/store/migrate.js';
import { seededRandom as random } from '../test/support/random.js';
import { freshDatabaseUrl, siteDocument } from './registry-graphql.js';
import type { LoadResult } from './support.js';

/** The README's first query (README.md, "A first query"). */
export const README_QUERY = `{
  datasets(filter: { text: "gaia", cone: { ra: 180, dec: 0, radiusDeg: 0.5 } }) {
    id
    columns { name unit ucd }
    replicas { site { id status } table rows }
  }
}`;

/** A plan as the console's plan explorer asks it: the choice, every candidate's verdict, the sites without the data counted. */
export const PLAN_QUERY = `query Plan($r: PlanRequest!) { plan(request: $r) {
  chosen { site { id } estimatedBytesMoved } sitesWithoutData
  candidates { site { id } eligible score reasons { code } } } }`;

/** `datasets` for a cone given per request. */
export const CONE_QUERY = `query Cone($ra: Float!, $dec: Float!) {
  datasets(filter: { cone: { ra: $ra, dec: $dec, radiusDeg: 1 } }, limit: 50) {
    id title replicas { site { id status } table rows rowBytes }
  }
}`;

const GAIA_PLAN = { r: { kind: 'QUERY', datasets: ['gaia_dr3.gaia_source'], region: { cone: { ra: 180, dec: 0, radiusDeg: 0.5 } } } };

/** What a load child is asked to send: one fixed body, or random cones over a query template. */
type Sent = { body: string } | { cones: 'datasets' | 'plan'; datasets: number; seed: number };
type Work = Sent & { url: string; seconds: number; connections: number };

export interface DiscoveryCase {
  name: string;
  /** requests/s of each repetition: the bare route, the GraphQL floor and the broker. */
  runs: { bare: LoadResult; floor: LoadResult; measured: LoadResult }[];
  responseBytes: number;
}

export interface DiscoveryResult {
  database: 'PostgreSQL' | 'PGlite';
  cases: DiscoveryCase[];
  populateSeconds: number;
  replicas: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A random cone's variables; the plan case draws a random bench dataset too. */
function coneVariables(kind: 'datasets' | 'plan', datasets: number, rnd: () => number): Record<string, unknown> {
  const ra = rnd() * 360;
  const dec = Math.asin(2 * rnd() - 1) * 180 / Math.PI;
  if (kind === 'datasets') return { ra, dec };
  const d = Math.floor(rnd() * datasets);
  return { r: { kind: 'QUERY', datasets: [`survey${Math.floor(d / 100)}.table${d % 100}`], region: { cone: { ra, dec, radiusDeg: 0.1 + rnd() * 2 } } } };
}

/** Run inside the load child: autocannon on `work`, every request of the cone cases with a fresh random cone. */
async function runLoad(work: Work): Promise<LoadResult> {
  const autocannon = (await import('autocannon')).default;
  const headers = { 'content-type': 'application/json' };
  const rnd = 'cones' in work ? random(work.seed) : Math.random;
  const result = await autocannon({
    url: work.url,
    method: 'POST',
    headers,
    connections: work.connections,
    duration: work.seconds,
    ...('body' in work
      ? { body: work.body }
      : {
          requests: [{
            method: 'POST',
            setupRequest: (req: Record<string, unknown>) => ({
              ...req,
              body: JSON.stringify({ query: work.cones === 'plan' ? PLAN_QUERY : CONE_QUERY, variables: coneVariables(work.cones, work.datasets, rnd) }),
            }),
          }],
        }),
  } as autocannonType.Options);
  return { requestsPerSecond: result.requests.average, latencyP50Ms: result.latency.p50, latencyP99Ms: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

/** The load child: one long-lived process answering each work message with its result. */
class Loader {
  private readonly child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--load-child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });

  run(work: Work): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load child exited with ${code}`));
      this.child.once('exit', onExit);
      this.child.once('message', (m) => {
        this.child.off('exit', onExit);
        resolve(m as LoadResult);
      });
      this.child.send(work);
    });
  }

  close(): void {
    this.child.kill();
  }
}

/**
 * The GraphQL floor: fastify and mercurius with the broker's schema and its mercurius options
 * (jit, cache) answering `json`'s data from resolvers that return it ready-made, whatever the
 * variables: the request's parse, validation, variable coercion, execution and serialisation
 * without any of the broker's work.
 */
async function graphqlFloor(json: string): Promise<{ app: FastifyInstance; url: string }> {
  const data = (JSON.parse(json) as { data: Record<string, unknown> }).data;
  const app = Fastify({ logger: false });
  await app.register(mercurius, {
    schema: await readFile(packagePath('schema.graphql'), 'utf8'),
    resolvers: { Query: Object.fromEntries(Object.entries(data).map(([field, value]) => [field, () => value])) },
    graphiql: false,
    jit: 1,
    cache: 1024,
  });
  return { app, url: `${await app.listen({ host: '127.0.0.1', port: 0 })}/graphql` };
}

/** A bare fastify route answering `json` to every POST. */
async function bareRoute(json: string): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  app.post('/bare', async (_request, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(json));
  return { app, url: `${await app.listen({ host: '127.0.0.1', port: 0 })}/bare` };
}

async function answer(url: string, query: string, variables: unknown): Promise<string> {
  const text = await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })).text();
  const parsed = JSON.parse(text) as { data?: unknown; errors?: unknown };
  if (!parsed.data || parsed.errors) throw new Error(`bench query failed: ${text.slice(0, 500)}`);
  return text;
}

const check = (name: string, r: LoadResult) => {
  if (r.errors || r.non2xx) throw new Error(`${name}: ${r.errors} errors and ${r.non2xx} non-2xx responses`);
  return r;
};

/** Measure `cases` against their bare routes, interleaved, `repetitions` times. */
async function measure(loader: Loader, cases: { name: string; reference: string; measured: Sent & { url: string } }[], seconds: number, repetitions: number): Promise<DiscoveryCase[]> {
  const bares = await Promise.all(cases.map((c) => bareRoute(c.reference)));
  const floors = await Promise.all(cases.map((c) => graphqlFloor(c.reference)));
  const out: DiscoveryCase[] = cases.map((c) => ({ name: c.name, runs: [], responseBytes: Buffer.byteLength(c.reference) }));
  try {
    for (let k = 0; k < cases.length; k++) {
      // The floor answers the reference request with the broker's exact bytes, or it is no floor.
      const { url: _url, ...what } = cases[k].measured;
      const body = 'body' in what ? what.body : undefined;
      if (body !== undefined) {
        const text = await (await fetch(floors[k].url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).text();
        if (text !== cases[k].reference) throw new Error(`${cases[k].name}: the GraphQL floor answers otherwise: ${text.slice(0, 300)}`);
      }
    }
    for (let rep = 0; rep < repetitions; rep++) {
      for (let k = 0; k < cases.length; k++) {
        const { url, ...what } = cases[k].measured;
        const bare = check(`${cases[k].name} bare`, await loader.run({ ...what, url: bares[k].url, seconds, connections: 10 }));
        const floor = check(`${cases[k].name} floor`, await loader.run({ ...what, url: floors[k].url, seconds, connections: 10 }));
        const measured = check(cases[k].name, await loader.run({ ...what, url, seconds, connections: 10 }));
        out[k].runs.push({ bare, floor, measured });
        process.stderr.write(`  [discovery] ${cases[k].name} rep ${rep + 1}: ${measured.requestsPerSecond.toFixed(0)} req/s, floor ${floor.requestsPerSecond.toFixed(0)}, bare ${bare.requestsPerSecond.toFixed(0)}\n`);
      }
    }
  } finally {
    for (const b of [...bares, ...floors]) await b.app.close();
  }
  return out;
}

/** Open a fresh database (PostgreSQL when DATABASE_URL is set, else PGlite) for one phase. */
async function freshDatabase(tag: string): Promise<{ database: Database; dispose: () => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'constellation-bench-'));
  const pg = process.env.DATABASE_URL ? await freshDatabaseUrl(process.env.DATABASE_URL, tag) : undefined;
  const database = await openDatabase({ url: pg?.url, dataDir }, { max: 20 });
  return {
    database,
    dispose: async () => {
      await database.close();
      await pg?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface DiscoveryBenchOptions {
  sites: number;
  replicasPerSite: number;
  datasets: number;
  seconds: number;
  repetitions: number;
}

/** The four cases: the shipped federation first, then the large registry. */
export async function benchDiscovery(opts: DiscoveryBenchOptions): Promise<DiscoveryResult> {
  const loader = new Loader();
  const progress = (m: string) => process.stderr.write(`  [discovery] ${m}\n`);
  const cases: DiscoveryCase[] = [];
  let populateSeconds = 0;
  try {
    {
      // The shipped federation, migrated and seeded the way `npm start` does it.
      const { database, dispose } = await freshDatabase('shipped');
      try {
        const config = await loadConfig({ LOG_LEVEL: 'error', CONSTELLATION_CACHE_MB: '0', CONSTELLATION_ACCESS_LOG: 'off' }, packagePath('federation.yaml'));
        const app = await buildApp(config, { database, logger: false });
        try {
          const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/graphql`;
          const readme = await answer(url, README_QUERY, undefined);
          const planned = await answer(url, PLAN_QUERY, GAIA_PLAN);
          progress('shipped federation seeded; measuring');
          cases.push(...await measure(loader, [
            { name: '(a) README datasets query, shipped federation', reference: readme, measured: { url, body: JSON.stringify({ query: README_QUERY }) } },
            { name: '(b) plan, Gaia cone, shipped federation', reference: planned, measured: { url, body: JSON.stringify({ query: PLAN_QUERY, variables: GAIA_PLAN }) } },
          ], opts.seconds, opts.repetitions));
        } finally {
          await app.close();
        }
      } finally {
        await dispose();
      }
    }
    {
      const { database, dispose } = await freshDatabase('large');
      try {
        await migrate(database.pool);
        const yaml = 'federation: { name: bench }\nregistration: { open: true }\nsites: []\n';
        const app = await buildApp(parseConfig(yaml, { LOG_LEVEL: 'error', CONSTELLATION_CACHE_MB: '0', CONSTELLATION_ACCESS_LOG: 'off' }), { database, prepared: true, logger: false });
        try {
          progress(`populating ${opts.sites} sites × ${opts.replicasPerSite} replicas`);
          const rnd = random(20261123);
          const started = Date.now();
          for (let i = 0; i < opts.sites; i++) await app.services.publisher.publish(`site-${String(i).padStart(4, '0')}`, siteDocument(i, opts, rnd), 'publish');
          populateSeconds = (Date.now() - started) / 1000;
          progress(`populated in ${populateSeconds.toFixed(1)} s; measuring`);
          const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/graphql`;
          const sample = random(1);
          const datasetsRef = await answer(url, CONE_QUERY, coneVariables('datasets', opts.datasets, sample));
          const planRef = await answer(url, PLAN_QUERY, coneVariables('plan', opts.datasets, sample));
          cases.push(...await measure(loader, [
            { name: `(c) datasets, random cone, ${opts.sites} sites`, reference: datasetsRef, measured: { url, cones: 'datasets', datasets: opts.datasets, seed: 7 } },
            { name: `(d) plan, random cone, ${opts.sites} sites`, reference: planRef, measured: { url, cones: 'plan', datasets: opts.datasets, seed: 11 } },
          ], opts.seconds, opts.repetitions));
        } finally {
          await app.close();
        }
      } finally {
        await dispose();
      }
    }
  } finally {
    loader.close();
  }
  return { database: process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite', cases, populateSeconds, replicas: opts.sites * opts.replicasPerSite };
}

/** Print the result: per case, req/s and ratio to its bare route, min and median of the repetitions. */
export function printDiscovery(r: DiscoveryResult): void {
  console.log(`discovery (${r.database}, response cache off; large registry: ${r.replicas.toLocaleString('en-US')} replicas published in ${r.populateSeconds.toFixed(1)} s)`);
  for (const c of r.cases) {
    const rps = c.runs.map((x) => x.measured.requestsPerSecond);
    const ratios = c.runs.map((x) => x.measured.requestsPerSecond / x.bare.requestsPerSecond);
    const bare = c.runs.map((x) => x.bare.requestsPerSecond);
    const floors = c.runs.map((x) => x.floor.requestsPerSecond / x.bare.requestsPerSecond);
    const ofFloor = c.runs.map((x) => x.measured.requestsPerSecond / x.floor.requestsPerSecond);
    const p99 = c.runs.map((x) => x.measured.latencyP99Ms);
    console.log(`  ${c.name} (${c.responseBytes} bytes)`);
    console.log(`    req/s median ${median(rps).toFixed(0)} min ${Math.min(...rps).toFixed(0)}; bare median ${median(bare).toFixed(0)}; ratio median ${median(ratios).toFixed(3)} min ${Math.min(...ratios).toFixed(3)} (target >= 0.5); p99 median ${median(p99)} ms`);
    console.log(`    GraphQL floor / bare median ${median(floors).toFixed(3)} min ${Math.min(...floors).toFixed(3)}; broker / floor median ${median(ofFloor).toFixed(3)} min ${Math.min(...ofFloor).toFixed(3)}`);
  }
}

if (process.argv.includes('--load-child')) {
  process.on('message', (work: Work) => {
    void runLoad(work).then((r) => process.send!(r), (err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  });
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const small = process.argv.includes('--small');
  printDiscovery(await benchDiscovery(small
    ? { sites: 50, replicasPerSite: 100, datasets: 500, seconds: 3, repetitions: 3 }
    : { sites: 1000, replicasPerSite: 100, datasets: 20000, seconds: 5, repetitions: 3 }));
}
