/**
 * The real-peer tier: a GAVO DaCHS TAP server (../shared/peers, brought up by
 * test/peers/up.sh) registered as a member site through the generic TAP adapter. Skips,
 * saying why, when DaCHS does not answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';

const DACHS = process.env.CONSTELLATION_DACHS_URL ?? 'http://127.0.0.1:8080/tap';

async function dachsUp(): Promise<boolean> {
  try {
    const res = await fetch(`${DACHS}/availability`, { signal: AbortSignal.timeout(3000) });
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
      ps1.mean_object: { id: ps1_dr2.mean_object }
      gaia.gaia_source: { id: gaia_dr3.gaia_source }
`));
  });
  afterAll(() => broker?.close());

  it('harvests its tables, columns and upload support into the registry', async () => {
    const run = await broker.graphql<{ harvest: { outcome: string; errorMessage: string | null } }>('mutation { harvest(siteId: "dachs") { outcome errorMessage } }');
    expect(run.data!.harvest, run.data!.harvest.errorMessage ?? '').toMatchObject({ outcome: 'OK' });
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
    expect(ps1.columns.map((c) => c.name.toLowerCase())).toEqual(expect.arrayContaining(['objid', 'ramean', 'decmean']));
    expect([...byId.keys()].some((id) => id.startsWith('tap_schema.'))).toBe(false);
  });
});
