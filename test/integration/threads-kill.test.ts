/**
 * A cross-match thread whose driving broker is killed with SIGKILL mid-thread (issue 11): two
 * real `constellation serve` processes on one PostgreSQL database, two simulated TAP sites (a
 * small maxRec at beta, so the region is cut into many tiles, and a delay on every query, so the
 * thread runs for seconds); BROKER and UPLOAD forced in turn (UPLOAD: the survivor uploads rows
 * the dead broker read, from the kept answer, without reading them again). The surviving broker takes the thread over once the dead one's lease
 * runs out and finishes it with exactly the brute-force pairs. Every step query is counted at the
 * sites by its text: a step whose job had completed before the kill is never sent again, and every
 * other step is sent exactly once by the survivor. The only re-read allowed is a step whose
 * synchronous query was in flight at the kill: a sync TAP query has no id the site could be asked
 * about, so the survivor cannot tell whether it ran and sends it again (the dead broker never
 * received or kept its answer).
 *
 * PostgreSQL only: two broker processes cannot open one embedded PGlite database at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Row } from '../../adapters/ivoa/votable/index.js';
import { packagePath } from '../../registry/paths.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable } from '../sites/tap-service.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { logSink } from '../support/log-capture.js';
import { freePort } from '../support/ports.js';
import { CHILD_PATIENCE_MS, PATIENCE_MS, waitForReady, waitUntil, within } from '../support/wait.js';

const RADIUS = 2;
const CONE = { ra: 0.4, dec: 0, radiusDeg: 0.5 };
const PATCH = { raMin: 0, raMax: 0.9, decMin: -0.55, decMax: 0.55 };
/** How long each simulated site holds every synchronous query before answering it. */
const QUERY_DELAY_MS = 1000;

/** Known pairs 0.1 to 0.9 × the radius apart, so the match is not only chance neighbours. */
function plantedPairs(): { gaia: Row[]; ps: Row[] } {
  const gaia: Row[] = [];
  const ps: Row[] = [];
  for (let k = 0; k < 30; k++) {
    const ra = 0.05 + k * 0.027;
    const dec = ((k % 7) - 3) * 0.1;
    const sepDeg = ((0.1 + (0.8 * k) / 29) * RADIUS) / 3600;
    const angle = (k * Math.PI) / 5;
    gaia.push([BigInt(1_000_000 + k), ra, dec, 15]);
    ps.push([BigInt(2_000_000 + k), ra + (sepDeg * Math.cos(angle)) / Math.cos((dec * Math.PI) / 180), dec + sepDeg * Math.sin(angle), 16]);
  }
  return { gaia, ps };
}
const PLANTED = plantedPairs();

const GAIA: SimTable = {
  name: 'gaia_dr3.gaia_source',
  // Advertised larger than held too, so an UPLOAD's read of this side is tiled as well (each
  // tile's read covers the circle around its cell, which the planner counts).
  rows: 20_000_000,
  heldRows: 400,
  position: { ra: 'ra', dec: 'dec' },
  region: PATCH,
  planted: PLANTED.gaia,
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'phot_g_mean_mag', datatype: 'double', unit: 'mag' },
  ],
};
// Advertised far larger than held, so the planner cuts the region into tiles that fit beta's maxRec.
const PS: SimTable = {
  name: 'ps1_dr2.mean_object',
  rows: 50_000_000,
  heldRows: 400,
  position: { ra: 'ra', dec: 'dec' },
  region: PATCH,
  planted: PLANTED.ps,
  columns: [
    { name: 'objid', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'rmag', datatype: 'double', unit: 'mag' },
  ],
};

/** Great-circle separation in arcseconds (unit vectors; atan2 form). */
function sepArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const v = (ra: number, dec: number) => {
    const a = (ra * Math.PI) / 180;
    const d = (dec * Math.PI) / 180;
    return [Math.cos(d) * Math.cos(a), Math.cos(d) * Math.sin(a), Math.sin(d)];
  };
  const [x1, y1, z1] = v(ra1, dec1);
  const [x2, y2, z2] = v(ra2, dec2);
  const cross = Math.hypot(y1 * z2 - z1 * y2, z1 * x2 - x1 * z2, x1 * y2 - y1 * x2);
  return (Math.atan2(cross, x1 * x2 + y1 * y2 + z1 * z2) * 180 * 3600) / Math.PI;
}

/** The expected BEST pairs "leftId rightId", by brute force over every held row of both tables. */
function bruteForce(): string[] {
  const inCone = (r: Row) => sepArcsec(CONE.ra, CONE.dec, Number(r[1]), Number(r[2])) <= CONE.radiusDeg * 3600;
  const lefts = [...simRows(GAIA), ...PLANTED.gaia].filter(inCone);
  const rights = [...simRows(PS), ...PLANTED.ps];
  const out: string[] = [];
  for (const l of lefts) {
    const near = rights
      .map((r) => ({ r, s: sepArcsec(Number(l[1]), Number(l[2]), Number(r[1]), Number(r[2])) }))
      .filter((x) => x.s <= RADIUS)
      .sort((a, b) => a.s - b.s || Number(a.r[0]) - Number(b.r[0]));
    for (const x of near.slice(0, 1)) out.push(`${l[0]} ${x.r[0]}`);
  }
  return out.sort();
}

/** The ADQL of a synchronous TAP request's body (form-encoded, or the QUERY part of a multipart one). */
function queryText(body: unknown): string | undefined {
  if (typeof body === 'string') return new URLSearchParams(body).get('QUERY') ?? undefined;
  if (Buffer.isBuffer(body)) return /name="QUERY"\r\n(?:[^\r\n]*\r\n)*?\r\n([\s\S]*?)\r\n--/i.exec(body.toString('latin1'))?.[1];
  return undefined;
}

interface Served {
  url: string;
  child: ChildProcess;
  gql: <T>(query: string, variables?: Record<string, unknown>) => Promise<T>;
}

interface StepJob {
  ordinal: number;
  kind: string;
  jobId: string | null;
  jobState: string | null;
  adql: string | null;
}

if (backend !== 'postgresql') console.warn('threads-kill skipped: two broker processes cannot share one embedded PGlite database; run with DATABASE_URL set to a PostgreSQL server');

describe.skipIf(backend !== 'postgresql')(`a broker killed with SIGKILL mid-thread, another finishes it (${backend})`, () => {
  let db: TestDatabase;
  let alpha: SimSite;
  let beta: SimSite;
  let configFile: string;
  const children: ChildProcess[] = [];
  /** Every synchronous query each site received, in order, with whether the driving broker was already dead. */
  const received: { site: string; adql: string; afterKill: boolean }[] = [];
  let killed = false;
  /** Queries a site is holding (its delay not over, so not answered yet): text → when its delay ends. */
  const held = new Map<string, number>();
  /** The held queries whose delay still has `ms` to run: certainly unanswered for that long. */
  const heldFor = (ms: number) => [...held].filter(([, until]) => until - Date.now() >= ms).map(([adql]) => adql);

  /** `constellation serve` from source on the shared database; resolves once it answers ready. */
  async function serve(): Promise<Served> {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, CONSTELLATION_CONFIG: configFile, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', CONSTELLATION_DATA: db.dataDir, DATABASE_URL: db.url };
    const child = spawn(process.execPath, ['--import', 'tsx', packagePath('broker/cli/run.ts'), 'serve'], { cwd: packagePath('.'), env, stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    // The child's log lines join the file's capture, checked for secrets.
    child.stderr!.on('data', (d) => {
      stderr += d;
      logSink.write(d);
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForReady(url, {
      exited: () => (child.exitCode !== null || child.signalCode !== null ? `serve exited with ${child.exitCode ?? child.signalCode}` : undefined),
    }).catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${stderr}`);
    });
    const gql = async <T>(query: string, variables: Record<string, unknown> = {}): Promise<T> => {
      const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      const body = (await res.json()) as { data?: T; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data!;
    };
    return { url, child, gql };
  }

  /** Each step of the thread with its job's state and the ADQL of the candidate it was sent to, read from the shared database. */
  async function stepJobs(threadId: string): Promise<StepJob[]> {
    const { rows } = await db.pool.query<{ ordinal: number; kind: string; job_id: string | null; state: string | null; adql: string | null }>(
      `SELECT s.ordinal, s.kind, s.job_id, j.state, j.plan -> 'candidates' -> j.candidate_index -> 'siteQuery' ->> 'adql' AS adql
         FROM thread_steps s LEFT JOIN jobs j ON j.id = s.job_id WHERE s.thread_id = $1 ORDER BY s.ordinal`,
      [threadId],
    );
    return rows.map((r) => ({ ordinal: r.ordinal, kind: r.kind, jobId: r.job_id, jobState: r.state, adql: r.adql }));
  }

  async function leaseOwner(threadId: string): Promise<string | null> {
    const { rows } = await db.pool.query<{ lease_owner: string | null }>('SELECT lease_owner FROM threads WHERE id = $1', [threadId]);
    return rows[0]?.lease_owner ?? null;
  }

  beforeAll(async () => {
    db = await freshDatabase();
    alpha = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [GAIA], maxRec: 120 });
    beta = new SimSite();
    mountTapService(beta, { path: '/tap', tables: [PS], maxRec: 120 });
    for (const [name, site] of [['alpha', alpha], ['beta', beta]] as const) {
      // After the body is parsed: count the query by its text, then hold it so the thread runs for seconds.
      site.app.addHook('preHandler', async (request) => {
        if (request.method !== 'POST' || !request.url.split('?')[0].endsWith('/tap/sync')) return;
        const adql = queryText(request.body);
        if (adql === undefined) return;
        received.push({ site: name, adql, afterKill: killed });
        held.set(adql, Date.now() + QUERY_DELAY_MS);
        await sleep(QUERY_DELAY_MS);
        held.delete(adql);
      });
      await site.start();
      // Boot each simulator's query engine now, not while a broker waits on it.
      const warm = await fetch(`${site.url}/tap/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: `SELECT TOP 1 * FROM ${name === 'alpha' ? GAIA.name : PS.name}` }) });
      expect(warm.status).toBe(200);
      await warm.arrayBuffer();
    }
    received.length = 0;
    configFile = join(db.dataDir, 'federation.yaml');
    await writeFile(configFile, `
federation: { name: threads-kill }
# A development federation: the test harvests through the API without an admin's token.
registration: { open: true }
harvest: { concurrency: 1, jitterS: 0, timeoutS: 20 }
jobs: { pollIntervalS: 0.2, leaseS: 5, submitTimeoutS: 15 }
crossmatch: { maxParallelPerSite: 2, leaseS: 8, sweepS: 1 }
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${alpha.url}/tap" }
  - { id: beta, name: Beta, adapter: tap, url: "${beta.url}/tap" }
`);
  }, CHILD_PATIENCE_MS);

  afterAll(async () => {
    // Every child is gone before its database is dropped under it.
    await Promise.all(children.map((c) => {
      if (c.exitCode !== null || c.signalCode !== null) return undefined;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      return exited;
    }));
    await Promise.all([alpha?.close(), beta?.close()]);
    await db?.close();
  });

  for (const strategy of ['BROKER', 'UPLOAD'] as const) it(`${strategy}: the other broker resumes the thread: COMPLETED with the brute-force pairs, no finished step sent again, every other step sent once by the survivor`, async () => {
    killed = false;
    const first = await serve();
    for (const id of ['alpha', 'beta']) {
      const { harvest } = await first.gql<{ harvest: { outcome: string } }>(`mutation { harvest(siteId: "${id}") { outcome } }`);
      expect(harvest.outcome, id).toBe('OK');
    }
    const second = await serve();
    // Harvests ask TAP_SCHEMA; from here on the sites count only the thread's queries.
    received.length = 0;
    const input = {
      left: { dataset: 'gaia_dr3.gaia_source', columns: ['source_id'] },
      right: { dataset: 'ps1_dr2.mean_object', columns: ['objid'] },
      region: { cone: CONE },
      radiusArcsec: RADIUS,
      mode: 'BEST',
      strategy,
      sites: ['alpha', 'beta'],
    };
    const { crossmatch } = await first.gql<{ crossmatch: { id: string; steps: { kind: string }[]; plan: { candidates: { chosen: boolean; tiling: { tiles: number } | null }[] } } }>(
      'mutation($i: CrossmatchInput!) { crossmatch(input: $i) { id steps { kind } plan { candidates { chosen tiling { tiles } } } } }', { i: input });
    const id = crossmatch.id;
    const tiles = crossmatch.plan.candidates.find((c) => c.chosen)!.tiling!.tiles;
    // Many steps: each tile is a read at alpha and a read at beta (BROKER, then one match in the broker),
    // or a read of one side and the join of its rows uploaded to the other side's site (UPLOAD).
    expect(tiles, JSON.stringify(crossmatch.plan)).toBeGreaterThanOrEqual(8);
    const siteSteps = crossmatch.steps.filter((s) => s.kind !== 'match').length;
    expect(siteSteps).toBe(2 * tiles);
    expect(crossmatch.steps.filter((s) => s.kind === (strategy === 'BROKER' ? 'site-read' : 'upload-join')).length).toBe(strategy === 'BROKER' ? 2 * tiles : tiles);

    // The first broker drives it (it was asked, and claims the thread at once).
    const driver = await waitUntil(() => leaseOwner(id), (o) => o !== null, { describe: () => `thread ${id} was never claimed` });
    // Mid-thread: some step jobs completed, not all, and a step's query held at a site for a while yet
    // (so its answer certainly has not reached the broker when it dies).
    const mid = await waitUntil(() => stepJobs(id), (s) => s.filter((x) => x.jobState === 'COMPLETED').length >= Math.ceil(siteSteps / 4) && heldFor(QUERY_DELAY_MS / 2).length > 0, {
      describe: (s) => `steps: ${JSON.stringify(s.map((x) => x.jobState))}; queries held at the sites: ${held.size}`,
    });
    const inFlight = heldFor(QUERY_DELAY_MS / 4);
    expect(mid.filter((x) => x.kind !== 'match' && x.jobState === 'COMPLETED').length).toBeLessThan(siteSteps);
    const exited = new Promise((r) => first.child.once('exit', (_code, signal) => r(signal)));
    first.child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    killed = true;
    // Nothing moves between the kill and the takeover (the leases are the dead broker's): this is the state it left.
    const atKill = await stepJobs(id);
    const doneAtKill = new Set(atKill.filter((s) => s.jobState === 'COMPLETED').map((s) => s.ordinal));
    expect(await leaseOwner(id)).toBe(driver);

    // The survivor takes the thread over once the dead broker's lease runs out (crossmatch.leaseS, 8 s) and finishes it.
    const owners = new Set<string>();
    const done = await waitUntil(
      async () => {
        const owner = await leaseOwner(id);
        if (owner !== null) owners.add(owner);
        return (await second.gql<{ thread: { state: string; results: string | null; error: { message: string } | null; progress: { stepsDone: number; stepsTotal: number } } }>(
        'query($id: ID!) { thread(id: $id) { state results error { message } progress { stepsDone stepsTotal } } }', { id })).thread;
      },
      (t) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(t.state),
      { timeoutMs: 2 * PATIENCE_MS, describe: (t) => `thread ${id} still ${t.state} after the kill (${t.progress.stepsDone}/${t.progress.stepsTotal})` },
    );
    expect(done.state, JSON.stringify(done.error)).toBe('COMPLETED');
    // The killed broker was the driver, so the survivor finished it (the site counts below show it sent
    // every unfinished step). Its lease is only sampled here, and on a loaded machine one poll can
    // span its whole run, so it may go unseen; no third holder ever appears.
    expect([...owners].filter((o) => o !== driver).length).toBeLessThanOrEqual(1);
    expect(done.progress.stepsDone).toBe(done.progress.stepsTotal);
    const res = await fetch(`${second.url}${done.results}?format=json`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { metadata: { name: string }[]; data: unknown[][] };
    const names = body.metadata.map((m) => m.name);
    const pairs = body.data.map((row) => `${String(row[names.indexOf('source_id')])} ${String(row[names.indexOf('objid')])}`).sort();
    expect(pairs).toEqual(bruteForce());
    expect(pairs.length).toBeGreaterThanOrEqual(PLANTED.gaia.filter((r) => sepArcsec(CONE.ra, CONE.dec, Number(r[1]), Number(r[2])) <= CONE.radiusDeg * 3600).length);

    // Each step's query counted at its site by its text.
    const after = await stepJobs(id);
    const site = after.filter((s) => s.kind !== 'match');
    expect(site.every((s) => s.jobState === 'COMPLETED' && s.adql !== null)).toBe(true);
    expect(new Set(site.map((s) => s.adql)).size).toBe(site.length);
    const count = (adql: string, afterKill: boolean) => received.filter((r) => r.adql === adql && r.afterKill === afterKill).length;
    const resent: number[] = [];
    for (const s of site) {
      const before = count(s.adql!, false);
      const survivor = count(s.adql!, true);
      expect(before, `step ${s.ordinal} sent by the first broker`).toBeLessThanOrEqual(1);
      if (doneAtKill.has(s.ordinal)) {
        // Finished before the kill: its kept answer is used, the site is not asked again.
        expect(before, `step ${s.ordinal}`).toBe(1);
        expect(survivor, `finished step ${s.ordinal} sent again after the kill`).toBe(0);
      } else {
        expect(survivor, `step ${s.ordinal} sent by the survivor`).toBe(1);
        if (before === 1) resent.push(s.ordinal);
      }
    }
    // The only re-reads are steps whose synchronous query was in flight at the kill (its job unfinished then):
    // every query a site was still answering is among them, and there are at most as many as run at once.
    for (const ordinal of resent) expect(atKill.find((s) => s.ordinal === ordinal)!.jobId, `re-read step ${ordinal} had a job at the kill`).not.toBeNull();
    const resentText = new Set(resent.map((o) => site.find((s) => s.ordinal === o)!.adql));
    for (const adql of inFlight) expect(resentText.has(adql), `a query held at the kill was not sent again: ${adql}`).toBe(true);
    expect(resent.length).toBeGreaterThanOrEqual(1);
    expect(resent.length).toBeLessThanOrEqual(2 * 2);
    // Nothing but step queries reached the sites.
    expect(received.filter((r) => !/tap_schema/i.test(r.adql)).length).toBe(site.length + resent.length);
    console.info(`threads-kill ${strategy}: ${tiles} tiles, ${siteSteps} site steps, ${doneAtKill.size} done at the kill, ${resent.length} in flight and re-read, ${pairs.length} pairs`);

    const stopped = new Promise((r) => second.child.once('exit', r));
    second.child.kill('SIGTERM');
    await within(stopped, 'serve did not exit on SIGTERM');
  }, 2 * CHILD_PATIENCE_MS + 3 * PATIENCE_MS);
});
