/**
 * Cross-match threads against the real peers (issue 11): the GAVO DaCHS TAP server of
 * ../shared/peers (gaia.gaia_source and ps1.mean_object, brought up by ../shared/peers/up.sh) as
 * the one member site holding both catalogues, and STILTS as an independent matcher. UPLOAD
 * forced (one side's rows in the cone sent to DaCHS as TAP_UPLOAD and joined there) and
 * SAME_SITE forced (one ADQL join at DaCHS) give exactly the pairs of the same join asked of
 * DaCHS directly, and exactly the pairs of STILTS `tmatch2` (find=all for ALL, find=best1 for
 * BEST) on both sides' rows exported from DaCHS. Skips, saying why, when DaCHS does not answer
 * or `stilts` is not on the PATH.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { CHILD_PATIENCE_MS, WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const DACHS = process.env.CONSTELLATION_DACHS_URL ?? 'http://127.0.0.1:8080/tap';
/** A small cone inside the peers' patch (RA 175–185°, Dec −5…+5°): about 225 Gaia and 280 PS1 rows. */
const CONE = { ra: 180.3, dec: 0.4, radiusDeg: 0.2 };
/** Wide enough that some Gaia rows have a second PS1 row in reach, so BEST and ALL differ. */
const RADIUS = 10;
const run = promisify(execFile);

async function dachsUp(): Promise<boolean> {
  try {
    // Nothing listening is refused at once; a DaCHS that is up but slow (a loaded machine) gets time to answer.
    const res = await fetch(`${DACHS}/availability`, { signal: AbortSignal.timeout(30_000) });
    return res.ok;
  } catch {
    return false;
  }
}

async function stiltsPresent(): Promise<boolean> {
  try {
    await run('stilts', ['-version'], { timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}

const up = await dachsUp();
const stilts = up && (await stiltsPresent());
if (!up) console.warn(`peer thread tests skipped: no DaCHS TAP service answers at ${DACHS} (run ../shared/peers/up.sh)`);
else if (!stilts) console.warn('STILTS comparison skipped: `stilts` is not on the PATH (../shared/peers/up.sh installs it)');

/** A synchronous ADQL query asked of DaCHS directly; its rows (VOTable, bigints kept exact). */
async function askDachs(adql: string): Promise<{ names: string[]; rows: unknown[][]; bytes: Uint8Array }> {
  const res = await fetch(`${DACHS}/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: adql, MAXREC: '100000' }) });
  expect(res.status, adql).toBe(200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const { tables } = await readVOTableToArray([bytes]);
  return { names: tables[0].meta.fields.map((f) => f.name.toLowerCase()), rows: tables[0].rows, bytes };
}

/** BEST from all pairs: for each left id the nearest right, ties to the smaller right id. */
function bestOf(all: { left: string; right: string; sep: number }[]): string[] {
  const best = new Map<string, { right: string; sep: number }>();
  for (const p of all) {
    const now = best.get(p.left);
    if (!now || p.sep < now.sep || (p.sep === now.sep && BigInt(p.right) < BigInt(now.right))) best.set(p.left, { right: p.right, sep: p.sep });
  }
  return [...best].map(([l, r]) => `${l} ${r.right}`).sort();
}

/** Pairs "source_id objid" of a CSV with a header (STILTS output). */
function csvPairs(csv: string): string[] {
  const [header, ...lines] = csv.trim().split(/\r?\n/);
  const names = header.split(',').map((n) => n.trim().toLowerCase());
  const l = names.indexOf('source_id');
  const r = names.indexOf('objid');
  expect(l, header).toBeGreaterThanOrEqual(0);
  expect(r, header).toBeGreaterThanOrEqual(0);
  return lines.filter((x) => x.length > 0).map((line) => {
    const cells = line.split(',');
    return `${cells[l]} ${cells[r]}`;
  }).sort();
}

describe.skipIf(!up)(`cross-match threads at the GAVO DaCHS peer, checked against DaCHS and STILTS (${backend})`, () => {
  let broker: TestBroker;
  let dir: string;
  /** The same join asked of DaCHS directly: every pair within the radius, left rows in the cone. */
  let directAll: string[];
  let directBest: string[];
  let leftFile: string;
  let rightFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'threads-peers-'));
    broker = await startBroker(configFromYaml(`
federation: { name: peers-threads }
sites:
  - id: dachs
    name: GAVO DaCHS peer
    adapter: tap
    url: "${DACHS}"
    datasets:
      ps1.mean_object: { id: ps1_dr2.mean_object, columns: { ramean: ra, decmean: dec } }
      gaia.gaia_source: { id: gaia_dr3.gaia_source }
`, { CONSTELLATION_DATA: dir }));
    const harvested = await broker.harvest('dachs');
    expect(harvested, harvested.errorMessage ?? '').toMatchObject({ outcome: 'OK' });

    const cone = `CIRCLE('ICRS', ${CONE.ra}, ${CONE.dec}, ${CONE.radiusDeg})`;
    const direct = await askDachs(`SELECT g.source_id, p.objid, DISTANCE(POINT('ICRS', g.ra, g.dec), POINT('ICRS', p.ramean, p.decmean)) * 3600 AS sep
      FROM gaia.gaia_source AS g JOIN ps1.mean_object AS p ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', p.ramean, p.decmean, ${RADIUS}.0 / 3600))
      WHERE 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), ${cone})`);
    const all = direct.rows.map((r) => ({ left: String(r[0]), right: String(r[1]), sep: Number(r[2]) }));
    directAll = all.map((p) => `${p.left} ${p.right}`).sort();
    directBest = bestOf(all);
    // Enough pairs to mean something, and some left rows with more than one partner.
    expect(directAll.length).toBeGreaterThan(100);
    expect(directAll.length).toBeGreaterThan(directBest.length);

    // Both sides' rows as STILTS will see them: the left rows in the cone, the right rows in the cone widened by the radius.
    const left = await askDachs(`SELECT source_id, ra, dec FROM gaia.gaia_source WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), ${cone})`);
    const right = await askDachs(`SELECT objid, ramean, decmean FROM ps1.mean_object
      WHERE 1 = CONTAINS(POINT('ICRS', ramean, decmean), CIRCLE('ICRS', ${CONE.ra}, ${CONE.dec}, ${CONE.radiusDeg + (2 * RADIUS) / 3600}))`);
    console.info(`threads-peers: ${left.rows.length} Gaia rows in the cone, ${right.rows.length} PS1 rows in the widened cone, ${directAll.length} pairs within ${RADIUS}″ (ALL), ${directBest.length} (BEST)`);
    leftFile = join(dir, 'gaia.vot');
    rightFile = join(dir, 'ps1.vot');
    await writeFile(leftFile, left.bytes);
    await writeFile(rightFile, right.bytes);
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  type View = { id: string; state: string; results: string | null; error: { message: string } | null; steps: { kind: string; site: string | null; state: string }[];
    plan: { forced: string | null; candidates: { strategy: string; chosen: boolean; leftSite: string | null; rightSite: string | null }[] } };
  const VIEW = 'id state results error { message } steps { kind site state } plan { forced candidates { strategy chosen leftSite rightSite } }';

  /** Run a forced thread to its end; its pairs "source_id objid" from the VOTable result, and the thread. */
  async function thread(strategy: 'UPLOAD' | 'SAME_SITE', mode: 'BEST' | 'ALL'): Promise<{ pairs: string[]; view: View }> {
    const started = await broker.graphql<{ crossmatch: View }>(`mutation($i: CrossmatchInput!) { crossmatch(input: $i) { ${VIEW} } }`, {
      i: {
        left: { dataset: 'gaia_dr3.gaia_source', columns: ['source_id'] },
        right: { dataset: 'ps1_dr2.mean_object', columns: ['objid'] },
        region: { cone: CONE },
        radiusArcsec: RADIUS,
        mode,
        strategy,
      },
    });
    expect(started.errors, JSON.stringify(started.errors)).toBeUndefined();
    const id = started.data!.crossmatch.id;
    const view = await waitUntil(
      async () => (await broker.graphql<{ thread: View }>(`query($id: ID!) { thread(id: $id) { ${VIEW} } }`, { id })).data!.thread,
      (t) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(t.state),
      { intervalMs: 100, describe: (t) => `thread ${id} still ${t.state}: ${JSON.stringify(t.steps)}` },
    );
    expect(view.state, JSON.stringify(view.error)).toBe('COMPLETED');
    const res = await fetch(`${broker.url}${view.results}`);
    expect(res.status).toBe(200);
    const { tables } = await readVOTableToArray([new Uint8Array(await res.arrayBuffer())]);
    const names = tables[0].meta.fields.map((f) => f.name);
    const l = names.indexOf('source_id');
    const r = names.indexOf('objid');
    const sep = names.indexOf('sep_arcsec');
    expect([l, r, sep].every((i) => i >= 0), names.join(',')).toBe(true);
    for (const row of tables[0].rows) expect(Number(row[sep])).toBeLessThanOrEqual(RADIUS);
    return { pairs: tables[0].rows.map((row) => `${String(row[l])} ${String(row[r])}`).sort(), view };
  }

  async function tmatch2(find: 'all' | 'best1'): Promise<string[]> {
    const out = join(dir, `stilts-${find}.csv`);
    await run('stilts', ['tmatch2', `in1=${leftFile}`, 'ifmt1=votable', `in2=${rightFile}`, 'ifmt2=votable', 'matcher=sky', 'values1=ra dec', 'values2=ramean decmean',
      `params=${RADIUS}`, `find=${find}`, 'join=1and2', 'ofmt=csv', `out=${out}`], { timeout: CHILD_PATIENCE_MS });
    return csvPairs(await readFile(out, 'utf8'));
  }

  for (const mode of ['ALL', 'BEST'] as const) {
    it(`UPLOAD forced (${mode}): the rows uploaded to DaCHS and joined there give the pairs of the same join asked of DaCHS directly`, async () => {
      const { pairs, view } = await thread('UPLOAD', mode);
      expect(view.plan.forced).toBe('UPLOAD');
      const chosen = view.plan.candidates.find((c) => c.chosen)!;
      expect(chosen).toMatchObject({ strategy: 'UPLOAD', leftSite: 'dachs', rightSite: 'dachs' });
      // A read of one side at DaCHS, then the join of the uploaded rows at DaCHS.
      expect(view.steps.some((s) => s.kind === 'site-read' && s.site === 'dachs' && s.state === 'COMPLETED')).toBe(true);
      expect(view.steps.some((s) => s.kind === 'upload-join' && s.site === 'dachs' && s.state === 'COMPLETED')).toBe(true);
      expect(pairs).toEqual(mode === 'ALL' ? directAll : directBest);
    }, WAITING_TEST_MS);

    it(`SAME_SITE forced (${mode}): one join at DaCHS gives the same pairs`, async () => {
      const { pairs, view } = await thread('SAME_SITE', mode);
      expect(view.steps.filter((s) => s.kind === 'site-join').every((s) => s.site === 'dachs')).toBe(true);
      expect(pairs).toEqual(mode === 'ALL' ? directAll : directBest);
    }, WAITING_TEST_MS);

    it.skipIf(!stilts)(`UPLOAD and SAME_SITE (${mode}) equal STILTS tmatch2 find=${mode === 'ALL' ? 'all' : 'best1'} on both sides' rows exported from DaCHS`, async () => {
      const reference = await tmatch2(mode === 'ALL' ? 'all' : 'best1');
      expect(reference).toEqual(mode === 'ALL' ? directAll : directBest);
      expect((await thread('UPLOAD', mode)).pairs).toEqual(reference);
      expect((await thread('SAME_SITE', mode)).pairs).toEqual(reference);
    }, WAITING_TEST_MS + CHILD_PATIENCE_MS);
  }
});
