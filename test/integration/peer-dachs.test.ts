/**
 * The real-peer tier: a GAVO DaCHS TAP server (../shared/peers, brought up by
 * test/peers/up.sh) registered as a member site through the generic TAP adapter. Skips,
 * saying why, when DaCHS does not answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const DACHS = process.env.CONSTELLATION_DACHS_URL ?? 'http://127.0.0.1:8080/tap';

async function dachsUp(): Promise<boolean> {
  try {
    // Nothing listening is refused at once; a DaCHS that is up but slow (a loaded machine) gets time to answer.
    const res = await fetch(`${DACHS}/availability`, { signal: AbortSignal.timeout(30_000) });
    return res.ok;
  } catch {
    return false;
  }
}

const up = await dachsUp();
if (!up) console.warn(`peer tier skipped: no DaCHS TAP service answers at ${DACHS} (run test/peers/up.sh)`);

describe.skipIf(!up)(`GAVO DaCHS as a member site (${backend})`, () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startBroker(configFromYaml(`
federation: { name: peers }
sites:
  - id: dachs
    name: GAVO DaCHS peer
    adapter: tap
    url: "${DACHS}"
    datasets:
      ps1.mean_object: { id: ps1_dr2.mean_object, columns: { ramean: ra, decmean: dec } }
      gaia.gaia_source: { id: gaia_dr3.gaia_source }
`));
  });
  afterAll(() => broker?.close());

  it('harvests its tables, columns and upload support into the registry', async () => {
    const run = await broker.harvest('dachs');
    expect(run, run.errorMessage ?? '').toMatchObject({ outcome: 'OK' });
    const { data } = await broker.graphql<{ site: { status: string; services: { type: string; upload: boolean; maxRec: number; languages: string[] }[];
      replicas: { dataset: { id: string }; table: string; position: { ra: string; dec: string } | null; columns: { name: string; datatype: string }[] }[] } }>(
      '{ site(id: "dachs") { status services { type upload maxRec languages } replicas { dataset { id } table position { ra dec } columns { name datatype } } } }');
    expect(data!.site.status).toBe('UP');
    expect(data!.site.services[0]).toMatchObject({ type: 'tap', upload: true, maxRec: 2000000 });
    expect(data!.site.services[0].languages.join(' ')).toMatch(/ADQL/);
    const byId = new Map(data!.site.replicas.map((r) => [r.dataset.id, r]));
    const gaia = byId.get('gaia_dr3.gaia_source')!;
    expect(gaia.table).toBe('gaia.gaia_source');
    expect(gaia.columns.map((c) => c.name)).toEqual(expect.arrayContaining(['source_id', 'ra', 'dec', 'phot_g_mean_mag', 'parallax', 'pmra', 'pmdec']));
    expect(gaia.position).toEqual({ ra: 'ra', dec: 'dec' });
    const ps1 = byId.get('ps1_dr2.mean_object')!;
    expect(ps1.table).toBe('ps1.mean_object');
    expect(ps1.columns.map((c) => c.name.toLowerCase())).toEqual(expect.arrayContaining(['objid', 'ramean', 'decmean']));
    expect([...byId.keys()].some((id) => id.startsWith('tap_schema.'))).toBe(false);
  }, WAITING_TEST_MS);

  it('runs a routed cross-match at DaCHS, in its own names, with the same answer as asking DaCHS directly', async () => {
    // Canonical names: ps1_dr2.mean_object's ra/dec are ramean/decmean at DaCHS.
    const adql = `SELECT g.source_id, p.objid FROM gaia_dr3.gaia_source AS g
      JOIN ps1_dr2.mean_object AS p ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', p.ra, p.dec, 1.0/3600))
      WHERE 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', 180, 0, 0.1))`;
    const submitted = await broker.graphql<{ submitQuery: { id: string; plan: { candidates: { siteQuery: { adql: string } }[] } } }>(
      'mutation($q: String!) { submitQuery(input: { adql: $q }) { id plan { candidates { ... on QueryCandidate { siteQuery { adql } } } } } }', { q: adql });
    expect(submitted.errors).toBeUndefined();
    const sent = submitted.data!.submitQuery.plan.candidates[0].siteQuery.adql;
    expect(sent).toContain('FROM gaia.gaia_source AS g JOIN ps1.mean_object AS p');
    expect(sent).toContain('CIRCLE(\'ICRS\', p.ramean, p.decmean, 1.0 / 3600)');
    const id = submitted.data!.submitQuery.id;
    // The limit of this wait (PATIENCE_MS) only guards against a job that never ends.
    const job = await waitUntil(
      async () => (await broker.graphql<{ job: { state: string; error: { message: string } | null } }>(`{ job(id: "${id}") { state error { message } } }`)).data!.job,
      (j) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state),
      { intervalMs: 100, describe: (j) => `job ${id} still ${j.state}` },
    );
    if (job.state === 'ERROR') throw new Error(job.error!.message);
    expect(job.state).toBe('COMPLETED');
    const routed = await readVOTableToArray([new Uint8Array(await (await fetch(`${broker.url}/results/${id}`)).arrayBuffer())]);
    const direct = await fetch(`${DACHS}/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: sent }) });
    const expected = await readVOTableToArray([new Uint8Array(await direct.arrayBuffer())]);
    const pairs = (rows: unknown[][]) => rows.map((r) => `${String(r[0])}/${String(r[1])}`).sort();
    expect(routed.tables[0].rows.length).toBeGreaterThan(10);
    expect(pairs(routed.tables[0].rows)).toEqual(pairs(expected.tables[0].rows));
  }, WAITING_TEST_MS);
});
