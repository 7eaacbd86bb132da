/**
 * Issue 9's proof: every attack of "Hostile input cannot hurt the broker" replayed against one
 * broker (a child process, bench/attack-broker.ts), each with the time to its refusal, the
 * broker's longest event-loop block (target < 100 ms) and peak RSS (target < 512 MB) during it,
 * and the discovery throughput before and after all of them next to a bare fastify route.
 * The hostile peers run here on 127.0.0.1: three simulated TAP sites with hostile modes switched
 * by fastify hooks, and a capture listener the sites try to send the broker (and its token) to.
 * An attack not refused as expected, or any Authorization header at the capture listener, fails
 * the bench.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import { SimSite } from '../test/sites/sim-site.js';
import { mountTapService, type SimTable, type TapService } from '../test/sites/tap-service.js';
import { documentFor } from '../test/support/documents.js';
import { bigDatasetsQuery, capabilities, deepJob, deepTableset, hugeBody, keepOnly, order29Moc } from '../test/support/hostile.js';
import { startAttackBroker, type AttackBroker } from './attack-broker.js';
import { REGION_QUERY } from './registry-graphql.js';
import { load } from './support.js';

export interface AttackOptions {
  /** Quick pass: a smaller registry, shorter load runs, 64 MB instead of 300 MB hostile answers. */
  small?: boolean;
  /** Registry size for the throughput runs (bench sites of 100 replicas each). */
  sites?: number;
  seconds?: number;
  /** Run the broker with --cpu-prof, writing its profile here (to see where a block's time goes). */
  cpuProfDir?: string;
}

export interface AttackRow {
  finding: string;
  name: string;
  outcome: string;
  refusalMs: number;
  maxLoopBlockMs: number;
  /** CPU time of the broker's main thread during the attack: a block longer than this waited for a core. */
  mainCpuMs: number;
  peakRssMb: number;
}

export interface AttacksResult {
  database: string;
  /** The broker's memory just after its start, and at rest with the registry populated (before the attacks). */
  memory: { startRssMb: number; restRssMb: number; restHeapMb: number; restExternalMb: number };
  sizes: string;
  peakMethod: string;
  replicas: number;
  populateSeconds: number;
  idle: AttackRow;
  rows: AttackRow[];
  failures: string[];
  capture: { requests: number; withAuthorization: number };
  throughput: { bareBeforeRps: number; beforeRps: number; bareAfterRps: number; afterRps: number };
}

const LOOP_TARGET_MS = 100;
const RSS_TARGET_MB = 512;
const TOKEN = 'bench-site-token-that-must-not-leak';
const COSTLY = 'CONSTELLATION_E_QUERY_TOO_COSTLY';
const MB = 2 ** 20;

// The jobs site's tables (as in hostile-jobs.test.ts): a public one, a private one, one advertised huge (runs async).
const STARS: SimTable = { name: 'pub.stars', rows: 60, position: { ra: 'ra', dec: 'dec' }, columns: [{ name: 'source_id', datatype: 'long' }, { name: 'ra', datatype: 'double' }, { name: 'dec', datatype: 'double' }] };
const SECRET: SimTable = { name: 'priv.secret', rows: 10, columns: [{ name: 'source_id', datatype: 'long' }, { name: 'password', datatype: 'char' }] };
const PHOTO: SimTable = { name: 'big.photo', rows: 900_000, heldRows: 40, columns: [{ name: 'objid', datatype: 'long' }, { name: 'mag', datatype: 'double' }] };
// The VOSI site's ten small tables, and the queued site's table whose async jobs never start.
const SURVEY: SimTable[] = Array.from({ length: 10 }, (_, i) => ({ name: `survey.t${i}`, rows: 5, columns: [{ name: 'id', datatype: 'int' }, { name: 'mag', datatype: 'float' }] }));
const SOURCES: SimTable = { name: 'cat.sources', rows: 50_000, heldRows: 200, position: { ra: 'ra', dec: 'dec' }, columns: [{ name: 'source_id', datatype: 'long' }, { name: 'ra', datatype: 'double' }, { name: 'dec', datatype: 'double' }] };

const SYNC_ADQL = 'SELECT TOP 5 source_id, ra, dec FROM pub.stars ORDER BY source_id';
const ASYNC_ADQL = 'SELECT objid, mag FROM big.photo';
const HTML = '<!DOCTYPE html><html><body><script>fetch("/graphql").then(r=>r.text()).then(t=>alert(t))</script></body></html>';

/** A listener on another loopback port that records every request; the broker must never reach it. */
async function startCapture() {
  const seen: { url: string; authorization: boolean }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization !== undefined });
    res.end('captured body: secret internal reply');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

/** A streamed hostile answer: status, size, and how much of it the broker took. */
interface Huge { status: number; bytes: number; counter: { written: number } }

/** The three hostile sites, with the switches the attacks flip. */
async function startPeers(captureUrl: string) {
  const held: (() => void)[] = [];
  const hs = new SimSite();
  const hsTap = mountTapService(hs, { path: '/tap', tables: [STARS, SECRET, PHOTO], asyncDelayMs: 20 });
  const hsMode = { labelHtml: false, hangResults: false, holdSync: false, redirectSubmit: false, redirectResult: false };
  hs.app.addHook('onRequest', async (request, reply) => {
    const result = /\/results\/result/.test(request.url);
    if (hsMode.redirectSubmit && request.method === 'POST' && /\/tap\/async(\?|$)/.test(request.url)) return reply.code(303).header('location', `${captureUrl}/async/j1?token=abc`).send();
    if (hsMode.redirectResult && result) return reply.code(302).header('location', `${captureUrl}/stolen`).send();
    if ((hsMode.hangResults && result) || (hsMode.holdSync && request.method === 'POST' && /\/tap\/sync/.test(request.url))) await new Promise<void>((resolve) => held.push(resolve));
  });
  hs.app.addHook('onSend', async (request, reply, payload) => {
    if (hsMode.labelHtml && /\/tap\/sync|\/results\/result/.test(request.url)) reply.header('content-type', 'text/html; charset=utf-8');
    return payload;
  });

  const hv = new SimSite();
  const hvTap = mountTapService(hv, { path: '/tap', tables: SURVEY });
  const hvMode: { capsToCapture: boolean; huge?: Huge } = { capsToCapture: false };
  hv.app.addHook('onRequest', async (request, reply) => {
    if (hvMode.capsToCapture && /\/tap\/capabilities/.test(request.url)) return reply.type('text/xml').send(capabilities(`${captureUrl}/tap`));
    const huge = hvMode.huge;
    if (huge && /\/tap\/tables/.test(request.url)) {
      // Streamed as it is read, never built: the broker must stop at its byte limit.
      reply.hijack();
      reply.raw.writeHead(huge.status, { 'content-type': huge.status === 200 ? 'text/xml' : 'text/plain' });
      hugeBody(reply.raw, huge.bytes, huge.counter, huge.status === 200 ? ' ' : 'e');
      return reply;
    }
  });

  const hq = new SimSite();
  const hqTap = mountTapService(hq, { path: '/tap', tables: [SOURCES], asyncDelayMs: 3_600_000 });
  await Promise.all([hs.start(), hv.start(), hq.start()]);
  return {
    hs, hsTap, hsMode, hv, hvTap, hvMode, hq, hqTap,
    release: () => held.splice(0).forEach((r) => r()),
    async close() {
      held.splice(0).forEach((r) => r());
      for (const tap of [hsTap, hvTap, hqTap]) await tap.close();
      for (const site of [hs, hv, hq]) await site.close();
    },
  };
}

/** The broker's federation: the three hostile sites (two with a token), open registration for the bench sites. */
function federation(peers: Awaited<ReturnType<typeof startPeers>>): string {
  return `
federation: { name: attack-bench }
registration: { open: true }
harvest: { concurrency: 2, jitterS: 0, timeoutS: 60, maxRemovedShare: 0.5 }
jobs: { pollIntervalS: 0.5 }
results: { firstByteTimeoutS: 1 }
sites:
  - { id: hs, name: Hostile jobs site, adapter: tap, url: "${peers.hs.url}/tap", credentials: { strategy: linked, env: BENCH_SITE_TOKEN } }
  - { id: hv, name: Hostile VOSI site, adapter: tap, url: "${peers.hv.url}/tap", credentials: { strategy: linked, env: BENCH_SITE_TOKEN } }
  - { id: hq, name: Queued-forever site, adapter: tap, url: "${peers.hq.url}/tap" }
`;
}

/** Throws unless `ok`: an attack not refused as expected fails the bench. */
function expectThat(ok: boolean, what: string): void {
  if (!ok) throw new Error(`expected ${what}`);
}

interface Answer { status: number; ms: number; text: string; json: any; headers: Headers }

/** Talking to the broker over HTTP, as an attacker would. */
function client(url: string) {
  const send = async (path: string, init: RequestInit = {}): Promise<Answer> => {
    const started = performance.now();
    const res = await fetch(`${url}${path}`, init);
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, ms: performance.now() - started, text, json, headers: res.headers };
  };
  const gql = (query: string, variables?: unknown) => send('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const code = (a: Answer): string | undefined => a.json?.errors?.[0]?.extensions?.code ?? a.json?.code;
  const jobFields = 'id state error { code message } history { errorCode message }';
  const job = async (id: string) => (await gql(`query($id: ID!) { job(id: $id) { ${jobFields} } }`, { id })).json.data.job;
  return {
    send, gql, code,
    put: (site: string, body: string) => send(`/sites/${site}/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body }),
    harvest: async (site: string, confirm = false) => {
      const a = await gql(`mutation { harvest(siteId: "${site}", confirm: ${confirm}) { outcome errorCode errorMessage } }`);
      return { ...(a.json.data?.harvest as { outcome: string; errorCode: string | null; errorMessage: string | null }), ms: a.ms };
    },
    submit: (input: Record<string, unknown>) => gql(`mutation($input: QueryInput!) { submitQuery(input: $input) { ${jobFields} } }`, { input }),
    job,
    /** Polls the job until `done` holds (60 s at most). */
    async until(id: string, done: (j: any) => boolean, what: string) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const j = await job(id);
        if (done(j)) return j;
        if (Date.now() > deadline) throw new Error(`expected ${what}; job ${id} is ${JSON.stringify(j).slice(0, 300)}`);
        await sleep(50);
      }
    },
    tables: async (site: string) => ((await gql(`{ site(id: "${site}") { replicas { table } } }`)).json.data.site.replicas as { table: string }[]).map((r) => r.table).sort(),
  };
}

interface Attack {
  finding: string;
  name: string;
  /** Runs the attack; returns the outcome seen (checked) and the time to the refusal. */
  run(): Promise<{ outcome: string; ms: number }>;
}

/** Every attack of issue 9, in order; each checks the refusal it expects. */
function attacks(c: ReturnType<typeof client>, peers: Awaited<ReturnType<typeof startPeers>>, broker: AttackBroker, capture: Awaited<ReturnType<typeof startCapture>>, small: boolean): Attack[] {
  const hugeBytes = (small ? 64 : 300) * MB;
  const refusedQuery = async (query: string, measure?: string) => {
    const a = await c.gql(query);
    const ext = a.json?.errors?.[0]?.extensions ?? {};
    expectThat(a.status === 400 && ext.code === COSTLY && (!measure || ext.measure === measure), `400 ${COSTLY} (${measure ?? 'any'}), got ${a.status} ${a.text.slice(0, 200)}`);
    return { outcome: `${a.status} QUERY_TOO_COSTLY ${ext.measure}`, ms: a.ms };
  };
  /** A GraphQL body over the /graphql body limit: 413 before it is parsed. */
  const refusedBody = async (query: string, variables?: Record<string, unknown>) => {
    const a = await c.gql(query, variables);
    expectThat(a.status === 413 && c.code(a) === 'CONSTELLATION_E_PAYLOAD_TOO_LARGE', `413 PAYLOAD_TOO_LARGE, got ${a.status} ${a.text.slice(0, 200)}`);
    return { outcome: '413 PAYLOAD_TOO_LARGE (body not parsed)', ms: a.ms };
  };
  const refusedDocument = async (site: string, body: string, rule: string) => {
    const a = await c.put(site, body);
    const violations = (a.json?.violations ?? []) as { rule: string }[];
    expectThat(a.status === 422 && a.json.code === 'CONSTELLATION_E_INVALID_DOCUMENT' && violations.some((v) => v.rule === rule), `422 INVALID_DOCUMENT (${rule}), got ${a.status} ${a.text.slice(0, 300)}`);
    return { outcome: `422 INVALID_DOCUMENT ${rule}`, ms: a.ms };
  };
  const edited = (edit: (d: any) => void) => {
    const d: any = documentFor('attack-doc', [{ id: 'survey.wide', table: 'survey.wide', coverage: '0/0-11' }]);
    edit(d);
    return JSON.stringify(d);
  };
  const harvestFails = async (site: string, code: string) => {
    const run = await c.harvest(site);
    expectThat(run.outcome === 'FAILED' && run.errorCode === code, `harvest FAILED ${code}, got ${JSON.stringify(run)}`);
    return run;
  };
  const noCapture = (before: number) => expectThat(capture.seen.length === before, `nothing sent to the capture listener, got ${capture.seen.slice(before).map((s) => s.url).join(', ')}`);
  const short = (code: string | null | undefined) => String(code).replace('CONSTELLATION_E_', '');
  const { hsMode, hvMode } = peers;
  const queriesAtHs = () => peers.hs.seen.filter((r) => r.method === 'POST' && /\/tap\/(sync|async)(\?|$)/.test(r.url)).length;
  const completedAsync = async (key: string) => {
    const s = await c.submit({ adql: ASYNC_ADQL, idempotencyKey: key });
    return c.until(s.json.data.submitQuery.id, (j) => j.state === 'COMPLETED', `job ${key} COMPLETED`);
  };
  let keptJobId = '';

  return [
    { finding: '1', name: '10 aliases of datasets(limit:100000){…}', run: () => refusedQuery(bigDatasetsQuery(10), 'cost') },
    { finding: '1', name: '100 aliases of the same', run: () => refusedQuery(bigDatasetsQuery(100)) },
    { finding: '1', name: '1,000 aliases of the same', run: () => refusedQuery(bigDatasetsQuery(1_000), 'bytes') },
    { finding: '1', name: '{sites{replicas{site{replicas{table}}}}} (53 B)', run: () => refusedQuery('{ sites { replicas { site { replicas { table } } } } }', 'cost') },
    { finding: '1', name: '500,000 __typename aliases (9.4 MB)', run: () => refusedBody(`{ ${Array.from({ length: 500_000 }, (_, i) => `a${i}: __typename`).join(' ')} }`) },
    { finding: '1', name: '4 aliases of documents(limit:20){document}', run: () => refusedQuery(`{ ${Array.from({ length: 4 }, (_, i) => `d${i}: site(id: "heavy") { documents(limit: 20) { document } }`).join(' ')} }`, 'cost') },
    {
      finding: '2', name: '14 MB document, 150,000 invalid datasets',
      run: () => refusedDocument('attack-doc', edited((d) => { d.datasets = Array.from({ length: 150_000 }, (_, i) => ({ id: `Bad Id ${i}`, table: `t${i}`, service: 'tap', access: { public: 1 }, title: 'padding-'.repeat(2) })); }), 'maxItems'),
    },
    {
      finding: '3', name: 'seven order-29 MOCs of 2 MB',
      run: () => { const moc = order29Moc(105_000); return refusedDocument('attack-doc', edited((d) => { d.datasets = Array.from({ length: 7 }, (_, i) => ({ ...d.datasets[0], id: `bulk.t${i}`, table: `bulk.t${i}`, coverage: moc })); }), 'limit'); },
    },
    {
      finding: '3', name: '8 MB MOC filter',
      run: () => refusedBody('query($m: String!) { datasets(filter: { region: { moc: $m } }) { id } }', { m: order29Moc(420_000) }),
    },
    {
      finding: '3', name: '600 KB MOC filter (under the body limit)',
      run: async () => {
        const a = await c.gql('query($m: String!) { datasets(filter: { region: { moc: $m } }) { id } }', { m: order29Moc(30_000) });
        expectThat(c.code(a) === 'CONSTELLATION_E_INVALID_MOC', `INVALID_MOC, got ${a.status} ${a.text.slice(0, 200)}`);
        return { outcome: `${a.status} INVALID_MOC ${a.json.errors[0].extensions.violations?.[0]?.rule ?? ''}`, ms: a.ms };
      },
    },
    {
      finding: '4', name: '200,000-level VOSI tableset at harvest',
      run: async () => {
        peers.hvTap.hostile.tables = () => deepTableset(200_000);
        try {
          const run = await harvestFails('hv', 'CONSTELLATION_E_UPSTREAM_MALFORMED');
          expectThat((await c.tables('hv')).length === SURVEY.length, 'the site\'s datasets kept');
          return { outcome: `FAILED ${short(run.errorCode)}`, ms: run.ms };
        } finally {
          delete peers.hvTap.hostile.tables;
        }
      },
    },
    {
      finding: '4', name: '30k-level UWS job document on poll',
      run: async () => {
        const s = await c.submit({ adql: 'SELECT source_id, ra, dec FROM cat.sources', idempotencyKey: 'deep-uws' });
        const id = s.json.data.submitQuery.id;
        peers.hqTap.hostile.job = (honest) => deepJob(honest, 30_000);
        const started = performance.now();
        try {
          const j = await c.until(id, (j) => j.history.some((h: any) => h.errorCode === 'CONSTELLATION_E_UPSTREAM_MALFORMED'), 'a poll refused with UPSTREAM_MALFORMED');
          const ms = performance.now() - started;
          expectThat(['QUEUED', 'EXECUTING'].includes(j.state), `the job kept, got ${j.state}`);
          return { outcome: `poll UPSTREAM_MALFORMED, job kept ${j.state}`, ms };
        } finally {
          delete peers.hqTap.hostile.job;
        }
      },
    },
    {
      finding: '5', name: 'async 303 Location → capture listener',
      run: async () => {
        const before = capture.seen.length;
        hsMode.redirectSubmit = true;
        const started = performance.now();
        try {
          const s = await c.submit({ adql: ASYNC_ADQL, idempotencyKey: 'redirect-303' });
          const j = s.json.data ? await c.until(s.json.data.submitQuery.id, (j) => j.state === 'ERROR', 'the job in ERROR') : undefined;
          const code = j?.error?.code ?? c.code(s);
          expectThat(code === 'CONSTELLATION_E_UPSTREAM_POLICY', `UPSTREAM_POLICY, got ${code}`);
          noCapture(before);
          return { outcome: `job ERROR ${short(code)}`, ms: performance.now() - started };
        } finally {
          hsMode.redirectSubmit = false;
        }
      },
    },
    {
      finding: '5', name: 'UWS result href → capture listener',
      run: async () => {
        const before = capture.seen.length;
        peers.hsTap.hostile.job = (honest) => honest.replace(/xlink:href="[^"]*\/results\/result"/, `xlink:href="${capture.url}/result?token=abc"`);
        try {
          const j = await completedAsync('result-href');
          const a = await c.send(`/results/${j.id}`);
          expectThat(a.status === 502 && c.code(a) === 'CONSTELLATION_E_UPSTREAM_POLICY', `502 UPSTREAM_POLICY, got ${a.status} ${a.text.slice(0, 200)}`);
          noCapture(before);
          return { outcome: `${a.status} UPSTREAM_POLICY`, ms: a.ms };
        } finally {
          delete peers.hsTap.hostile.job;
        }
      },
    },
    {
      finding: '5', name: 'result 302 to another host → capture',
      run: async () => {
        const before = capture.seen.length;
        const j = await completedAsync('redirect-302');
        hsMode.redirectResult = true;
        try {
          const a = await c.send(`/results/${j.id}?format=csv`);
          expectThat(a.status === 502 && c.code(a) === 'CONSTELLATION_E_UPSTREAM_POLICY', `502 UPSTREAM_POLICY, got ${a.status} ${a.text.slice(0, 200)}`);
          expectThat(!a.text.includes('captured body'), 'no byte of the capture listener proxied');
          noCapture(before);
          return { outcome: `${a.status} UPSTREAM_POLICY`, ms: a.ms };
        } finally {
          hsMode.redirectResult = false;
        }
      },
    },
    {
      finding: '5', name: 'VOSI accessURLs → capture, at harvest',
      run: async () => {
        const before = capture.seen.length;
        hvMode.capsToCapture = true;
        try {
          const run = await harvestFails('hv', 'CONSTELLATION_E_UPSTREAM_POLICY');
          expectThat(peers.hv.seen.at(-1)?.headers.authorization === `Bearer ${TOKEN}`, 'the site itself to get the token (the bait)');
          noCapture(before);
          return { outcome: `FAILED ${short(run.errorCode)}`, ms: run.ms };
        } finally {
          hvMode.capsToCapture = false;
        }
      },
    },
    {
      finding: '6', name: 'private table in FROM behind public datasets',
      run: async () => {
        const before = queriesAtHs();
        const a = await c.submit({ adql: 'SELECT source_id FROM pub.stars WHERE EXISTS (SELECT 1 FROM priv.secret AS s WHERE s.source_id = 1)', datasets: ['pub.stars'] });
        expectThat(c.code(a) === 'CONSTELLATION_E_NO_ELIGIBLE_SITE' && !a.json.data?.submitQuery, `NO_ELIGIBLE_SITE, got ${a.text.slice(0, 200)}`);
        expectThat(queriesAtHs() === before, 'no query sent to the site');
        return { outcome: `${a.status} NO_ELIGIBLE_SITE, 0 sent`, ms: a.ms };
      },
    },
    {
      finding: '7', name: 'text/html result with <script>',
      run: async () => {
        peers.hsTap.hostile.result = () => HTML;
        hsMode.labelHtml = true;
        try {
          const j = await completedAsync('html');
          const a = await c.send(`/results/${j.id}`);
          expectThat(a.status === 502 && c.code(a) === 'CONSTELLATION_E_UPSTREAM_MALFORMED' && !a.text.includes('<script') && a.headers.get('x-content-type-options') === 'nosniff', `502 UPSTREAM_MALFORMED without the page, got ${a.status} ${a.text.slice(0, 200)}`);
          return { outcome: `${a.status} UPSTREAM_MALFORMED, nosniff`, ms: a.ms };
        } finally {
          delete peers.hsTap.hostile.result;
          hsMode.labelHtml = false;
        }
      },
    },
    {
      finding: '8', name: '1 submit + 20 GETs of a sync result',
      run: async () => {
        const s = await c.submit({ adql: SYNC_ADQL, idempotencyKey: 'kept' });
        const j = await c.until(s.json.data.submitQuery.id, (j) => j.state === 'COMPLETED', 'the sync job COMPLETED');
        keptJobId = j.id;
        const before = queriesAtHs();
        const started = performance.now();
        for (let i = 0; i < 20; i++) {
          const a = await c.send(`/results/${j.id}?format=${['votable', 'csv', 'json'][i % 3]}`);
          expectThat(a.status === 200, `200 for GET ${i + 1}, got ${a.status}`);
        }
        expectThat(queriesAtHs() === before, `no query re-run at the site, got ${queriesAtHs() - before}`);
        return { outcome: '20 × 200, 0 queries re-run', ms: performance.now() - started };
      },
    },
    {
      finding: '9', name: `${hugeBytes / MB} MB tableset (streamed)`,
      run: async () => {
        const huge: Huge = { status: 200, bytes: hugeBytes, counter: { written: 0 } };
        hvMode.huge = huge;
        try {
          const run = await harvestFails('hv', 'CONSTELLATION_E_UPSTREAM_TOO_LARGE');
          expectThat(huge.counter.written < 64 * MB && (await c.tables('hv')).length === SURVEY.length, `under 64 MB taken and the datasets kept, took ${huge.counter.written}`);
          return { outcome: `FAILED ${short(run.errorCode)}, ${Math.round(huge.counter.written / MB)} MB sent`, ms: run.ms };
        } finally {
          delete hvMode.huge;
        }
      },
    },
    {
      finding: '9', name: `${hugeBytes / MB} MB 500 reply (streamed)`,
      run: async () => {
        const huge: Huge = { status: 500, bytes: hugeBytes, counter: { written: 0 } };
        const asked = () => peers.hv.seen.filter((r) => /\/tap\/tables/.test(r.url)).length;
        const before = asked();
        hvMode.huge = huge;
        try {
          const run = await harvestFails('hv', 'CONSTELLATION_E_UPSTREAM');
          expectThat(asked() - before === 1 && huge.counter.written < 64 * MB, `one request, under 64 MB taken; got ${asked() - before} and ${huge.counter.written}`);
          return { outcome: `FAILED ${short(run.errorCode)}, 1 try, ${Math.round(huge.counter.written / MB)} MB sent`, ms: run.ms };
        } finally {
          delete hvMode.huge;
        }
      },
    },
    {
      finding: '9', name: 'harvest removing 9 of 10 datasets',
      run: async () => {
        peers.hvTap.hostile.tables = keepOnly(['survey.t3']);
        try {
          const run = await c.harvest('hv');
          expectThat(run.outcome === 'HELD' && (await c.tables('hv')).length === SURVEY.length, `HELD with the datasets kept, got ${JSON.stringify(run)}`);
          return { outcome: `HELD ${short(run.errorCode)}`, ms: run.ms };
        } finally {
          delete peers.hvTap.hostile.tables;
        }
      },
    },
    {
      finding: '10', name: 'forged document, then the site answers 304',
      run: async () => {
        // Back to the harvested state, and once more so the site has nothing new (304).
        expectThat(['OK', 'NOT_MODIFIED'].includes((await c.harvest('hv')).outcome), 'an honest harvest');
        expectThat((await c.harvest('hv')).outcome === 'NOT_MODIFIED', 'NOT_MODIFIED before the forgery');
        const forged = { ...documentFor('hv', [{ id: 'forged.everything', table: 'forged.everything' }]), asOf: new Date().toISOString() };
        forged.services[0].url = `${peers.hv.url}/tap`;
        expectThat((await c.put('hv', JSON.stringify(forged))).status === 200, 'the forged document accepted by PUT');
        const run = await c.harvest('hv');
        expectThat(run.outcome === 'RESTORED' && (await c.tables('hv')).length === SURVEY.length, `RESTORED, got ${JSON.stringify(run)}`);
        return { outcome: 'RESTORED (harvested state back)', ms: run.ms };
      },
    },
    {
      finding: '11', name: 'jobs config leaseS 10 < requestTimeoutS 30',
      run: async () => {
        const started = performance.now();
        const bad = await broker.parseConfig('federation: { name: x }\njobs: { leaseS: 10, requestTimeoutS: 30 }\nsites: []\n');
        const ms = performance.now() - started;
        const derived = await broker.parseConfig('federation: { name: x }\njobs: { requestTimeoutS: 60 }\nsites: []\n');
        expectThat(bad.code === 'CONSTELLATION_E_INVALID_CONFIG' && /minimum is 32/.test(bad.message ?? '') && derived.jobs?.leaseS === 62, `INVALID_CONFIG (minimum 32) and a derived lease of 62 s, got ${JSON.stringify([bad, derived])}`);
        return { outcome: 'INVALID_CONFIG, min 32 s; derived 62 s', ms };
      },
    },
    { finding: '12', name: 'NUL in the site name', run: () => refusedDocument('attack-doc', edited((d) => { d.site.name = 'evil\u0000site'; }), 'no-nul') },
    { finding: '12', name: 'lone surrogate in a title', run: () => refusedDocument('attack-doc', edited((d) => { d.datasets[0].title = 'deep \uD83D field'; }), 'unicode') },
    { finding: '12', name: 'rows: 1e300', run: () => refusedDocument('attack-doc', edited((d) => { d.datasets[0].rows = 1e300; }), 'maximum') },
    { finding: '12', name: 'asOf in year 0', run: () => refusedDocument('attack-doc', edited((d) => { d.asOf = '0000-01-01T00:00:00Z'; }), 'not-before') },
    { finding: '12', name: 'asOf in year 9999', run: () => refusedDocument('attack-doc', edited((d) => { d.asOf = '9999-12-31T23:59:59Z'; }), 'not-future') },
    {
      finding: '13', name: '{ job#comment\\n(id:…) } twice (cache)',
      run: async () => {
        const query = `{ job#comment\n(id: "${keptJobId}") { id state } }`;
        const first = await c.gql(query);
        const second = await c.gql(query);
        expectThat(!first.headers.get('x-constellation-cache') && !second.headers.get('x-constellation-cache') && second.json.data?.job?.id === keptJobId, `never served from the cache, got ${second.headers.get('x-constellation-cache')}`);
        return { outcome: 'not cached (read fresh)', ms: second.ms };
      },
    },
    {
      finding: '14', name: 'hanging /results (no byte)',
      run: async () => {
        const j = await completedAsync('hanging');
        hsMode.hangResults = true;
        try {
          const a = await c.send(`/results/${j.id}?format=csv`);
          expectThat(a.status === 504 && c.code(a) === 'CONSTELLATION_E_UPSTREAM_TIMEOUT' && a.ms < 8_000, `504 UPSTREAM_TIMEOUT within 8 s, got ${a.status} after ${a.ms} ms`);
          return { outcome: `${a.status} UPSTREAM_TIMEOUT (firstByteTimeoutS 1)`, ms: a.ms };
        } finally {
          hsMode.hangResults = false;
          peers.release();
        }
      },
    },
    {
      finding: '15', name: 'submit lease (held sync submit)',
      run: async () => {
        hsMode.holdSync = true;
        const started = performance.now();
        const pending = c.submit({ adql: SYNC_ADQL, idempotencyKey: 'lease' });
        try {
          let span: number | undefined;
          while (span === undefined && performance.now() - started < 60_000) {
            span = (await broker.sql<{ span: number }>("SELECT extract(epoch FROM lease_until - submitted_at)::float8 AS span FROM jobs WHERE idempotency_key = 'lease' AND submitted_at IS NOT NULL"))[0]?.span;
            if (span === undefined) await sleep(20);
          }
          const ms = performance.now() - started;
          const derived = (await broker.parseConfig('federation: { name: x }\nsites: []\n')).jobs!;
          expectThat(span !== undefined && span <= derived.submitTimeoutS + 2.5, `a lease of at most submitTimeoutS ${derived.submitTimeoutS} + 2 s, got ${span}`);
          return { outcome: `lease ${span!.toFixed(1)} s = submitTimeoutS ${derived.submitTimeoutS} + 2 (was 120 s)`, ms };
        } finally {
          hsMode.holdSync = false;
          peers.release();
          await pending;
        }
      },
    },
  ];
}

/** Requests/s of the region query on the broker, after a short warm-up. */
async function discovery(url: string, seconds: number): Promise<number> {
  const body = JSON.stringify({ query: REGION_QUERY, variables: { ra: 180, dec: 20 } });
  const r = await load(`${url}/graphql`, body, seconds);
  if (r.errors || r.non2xx) throw new Error(`discovery run had ${r.errors} errors and ${r.non2xx} non-2xx answers`);
  return r.requestsPerSecond;
}

/** Start the peers and the broker, populate, measure discovery, replay every attack, measure again. */
export async function benchAttacks(opts: AttackOptions = {}): Promise<AttacksResult> {
  const small = opts.small ?? false;
  const sites = opts.sites ?? (small ? 50 : 300);
  const seconds = opts.seconds ?? (small ? 3 : 10);
  // With a CPU profile, progress lines carry the monotonic clock (µs) the profile's timestamps use.
  const progress = (m: string) => process.stderr.write(`  [attacks]${opts.cpuProfDir ? ` t=${process.hrtime.bigint() / 1000n}` : ''} ${m}\n`);
  const capture = await startCapture();
  const peers = await startPeers(capture.url);
  const broker = await startAttackBroker(federation(peers), { BENCH_SITE_TOKEN: TOKEN }, opts.cpuProfDir);
  const bare = Fastify({ logger: false });
  try {
    const c = client(broker.url);
    const started = await broker.report();
    progress(`broker pid ${broker.pid} at ${broker.url}; populating ${sites} sites`);
    const populateSeconds = await broker.populate(sites, 100, sites * 10);
    for (const site of ['hs', 'hv', 'hq']) expectThat((await c.harvest(site)).outcome === 'OK', `site ${site} harvested`);
    // The jobs site says its secret table is for one group only (the caller is anonymous).
    const doc = (await c.send('/sites/hs/capabilities')).json;
    const current = doc.document ?? doc;
    current.datasets.find((d: { id: string }) => d.id === 'priv.secret').access = { public: false, groups: ['secret-team'] };
    current.asOf = new Date().toISOString();
    expectThat((await c.put('hs', JSON.stringify(current))).status === 200, 'the private table published');
    // A ~6 MB document whose history the documents(limit:20) attack would multiply.
    const heavy = documentFor('heavy', Array.from({ length: 1_500 }, (_, i) => ({ id: `heavy.t${i}`, table: `h.t${i}`, description: 'x'.repeat(3_900) })));
    expectThat((await c.put('heavy', JSON.stringify(heavy))).status === 200, 'the heavy document published');

    const reference = (await c.gql(REGION_QUERY, { ra: 180, dec: 20 })).text;
    bare.post('/bare', async (_request, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(reference));
    const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });
    progress('measuring discovery before the attacks');
    // The bare route is measured next to each broker run: on a shared machine the load may change in between.
    const bareRps = async () => (await load(`${bareUrl}/bare`, JSON.stringify({ query: REGION_QUERY }), seconds)).requestsPerSecond;
    await discovery(broker.url, 1);
    const bareBeforeRps = await bareRps();
    const beforeRps = await discovery(broker.url, seconds);

    const measure = async (finding: string, name: string, run: () => Promise<{ outcome: string; ms: number }>): Promise<AttackRow> => {
      await broker.reset();
      const { outcome, ms } = await run();
      // Work left running after the answer (a client gone, a poll) counts too.
      await sleep(250);
      const { maxLoopBlockMs, mainCpuMs, peakRssBytes } = await broker.report();
      return { finding, name, outcome, refusalMs: ms, maxLoopBlockMs, mainCpuMs, peakRssMb: peakRssBytes / MB };
    };
    const idle = await measure('-', 'idle (1 s, no request)', async () => { await sleep(1_000); return { outcome: '-', ms: 0 }; });
    const rest = await broker.report();
    const rows: AttackRow[] = [];
    const failures: string[] = [];
    for (const a of attacks(c, peers, broker, capture, small)) {
      progress(`${a.finding} ${a.name}`);
      try {
        rows.push(await measure(a.finding, a.name, a.run));
      } catch (err) {
        failures.push(`${a.finding} ${a.name}: ${(err as Error).message}`);
        rows.push({ finding: a.finding, name: a.name, outcome: `FAILED: ${(err as Error).message.slice(0, 60)}`, refusalMs: NaN, maxLoopBlockMs: NaN, mainCpuMs: NaN, peakRssMb: NaN });
      }
    }
    const withAuthorization = capture.seen.filter((s) => s.authorization).length;
    if (withAuthorization > 0) failures.push(`the capture listener received ${withAuthorization} request(s) with an Authorization header`);

    progress('measuring discovery after the attacks');
    const afterRps = await discovery(broker.url, seconds);
    const bareAfterRps = await bareRps();
    const result: AttacksResult = {
      database: process.env.DATABASE_URL ? 'PostgreSQL' : 'embedded PGlite (in its own process, as serve runs it)',
      sizes: small ? 'small: 50-site registry, 3 s load runs, 64 MB instead of 300 MB hostile answers; every other size as in the issue' : 'as in the issue',
      peakMethod: broker.peakMethod,
      memory: { startRssMb: started.rssBytes / MB, restRssMb: rest.rssBytes / MB, restHeapMb: rest.heapUsedBytes / MB, restExternalMb: rest.externalBytes / MB },
      replicas: sites * 100,
      populateSeconds,
      idle,
      rows,
      failures,
      capture: { requests: capture.seen.length, withAuthorization },
      throughput: { bareBeforeRps, beforeRps, bareAfterRps, afterRps },
    };
    if (failures.length > 0) {
      printAttacks(result);
      throw new Error(`attack bench failed:\n  ${failures.join('\n  ')}`);
    }
    return result;
  } finally {
    await bare.close();
    await broker.close();
    await peers.close();
    await capture.close();
  }
}

/** Print one result the way the bench runner does. */
export function printAttacks(r: AttacksResult): void {
  const fmt = (n: number, d = 0) => (Number.isNaN(n) ? '-' : n.toFixed(d));
  console.log(`attacks: issue 9 replayed against one broker (child process, ${r.database}; ${r.replicas.toLocaleString('en-US')} replicas published in ${r.populateSeconds.toFixed(1)} s; sizes ${r.sizes})`);
  const m = r.memory;
  console.log(`  peak RSS from ${r.peakMethod}; block = longest monitorEventLoopDelay sample (5 ms resolution) from the request to 250 ms after the answer;`);
  console.log('  cpu = CPU time of the broker\'s main thread in that window (10 ms ticks): a block longer than cpu waited for a core');
  console.log(`  broker RSS ${m.startRssMb.toFixed(0)} MB at start; ${m.restRssMb.toFixed(0)} MB at rest before the attacks (JS heap ${m.restHeapMb.toFixed(0)} MB, outside it ${m.restExternalMb.toFixed(0)} MB)`);
  console.log(`  ${'#'.padEnd(3)} ${'attack'.padEnd(48)} ${'outcome'.padEnd(48)} ${'refused'.padStart(9)} ${'block'.padStart(7)} ${'cpu'.padStart(7)} ${'peak RSS'.padStart(9)}`);
  for (const row of [r.idle, ...r.rows]) {
    console.log(`  ${row.finding.padEnd(3)} ${row.name.padEnd(48)} ${row.outcome.padEnd(48)} ${`${fmt(row.refusalMs)} ms`.padStart(9)} ${`${fmt(row.maxLoopBlockMs)} ms`.padStart(7)} ${`${fmt(row.mainCpuMs)} ms`.padStart(7)} ${`${fmt(row.peakRssMb)} MB`.padStart(9)}`);
  }
  const all = [r.idle, ...r.rows].filter((row) => !Number.isNaN(row.maxLoopBlockMs));
  const maxBlock = Math.max(...all.map((row) => row.maxLoopBlockMs));
  const maxRss = Math.max(...all.map((row) => row.peakRssMb));
  const worst = (key: 'maxLoopBlockMs' | 'peakRssMb') => all.reduce((a, b) => (b[key] > a[key] ? b : a));
  console.log(`  max block over all ${maxBlock.toFixed(0)} ms (${worst('maxLoopBlockMs').finding} ${worst('maxLoopBlockMs').name}; target < ${LOOP_TARGET_MS} ms: ${maxBlock < LOOP_TARGET_MS ? 'met' : 'NOT met'}), ` +
    `max RSS over all ${maxRss.toFixed(0)} MB (target < ${RSS_TARGET_MB} MB: ${maxRss < RSS_TARGET_MB ? 'met' : 'NOT met'})`);
  console.log(`  capture listener: ${r.capture.requests} requests, ${r.capture.withAuthorization} with an Authorization header; ${r.failures.length} attacks not refused as expected`);
  const t = r.throughput;
  console.log('  discovery (datasets region query, response cache on, 10 connections; a bare fastify route returning the same JSON beside each run):');
  console.log(`    before the attacks  broker ${t.beforeRps.toFixed(0).padStart(6)} req/s  bare ${t.bareBeforeRps.toFixed(0).padStart(6)} req/s  ratio ${(t.beforeRps / t.bareBeforeRps).toFixed(2)}`);
  console.log(`    after the attacks   broker ${t.afterRps.toFixed(0).padStart(6)} req/s  bare ${t.bareAfterRps.toFixed(0).padStart(6)} req/s  ratio ${(t.afterRps / t.bareAfterRps).toFixed(2)}`);
  console.log(`    after/before: broker ${(t.afterRps / t.beforeRps).toFixed(2)}, against the bare route ${(t.afterRps / t.bareAfterRps / (t.beforeRps / t.bareBeforeRps)).toFixed(2)}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const small = process.argv.includes('--small');
  const prof = process.argv.indexOf('--cpu-prof');
  console.log(`load before: ${execSync('uptime').toString().trim()}`);
  printAttacks(await benchAttacks({ small, cpuProfDir: prof >= 0 ? (process.argv[prof + 1] ?? 'cpu-prof') : undefined }));
  console.log(`load after: ${execSync('uptime').toString().trim()}`);
}
