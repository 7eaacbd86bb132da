/**
 * The demo's ground: generated catalogues with a known truth, and the simulated TAP centres
 * that serve them. The broker harvests both centres as generic TAP sites; cone queries run
 * through the broker and positional joins with an uploaded table run at a centre, and each
 * answer is compared with what the generator says it must be.
 */
import { ang2pix_nest } from '@hscmap/healpix';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { tapAsyncQuery, tapDelete, tapSync } from '../../adapters/ivoa/tap/client.js';
import { readVOTableToArray, writeVOTableToBuffer, type Row } from '../../adapters/ivoa/votable/index.js';
import { GUARD, PLANTED_SHARE, generateCatalogues, truthInCone, type CatalogueOptions, type DemoCatalogues, type TruePair } from '../../demo/catalogues.js';
import { DEMO_DATASETS, DEMO_SITES, startDemoCentres, type DemoCentres } from '../../demo/demo-centres.js';
import { separationDeg } from '../../demo/sky.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

// Small catalogues: the same generator as the demo's 200,000 × 240,000, a tenth of the density.
const SMALL: CatalogueOptions = { seed: 7, gaiaRows: 20_000, ps1Rows: 24_000, smallPatchRows: 400, specialPairs: 8, edgePairsPerOrder: 3 };
const RADIUS_DEG = 1 / 3600;

/** The rows of `catalogue`'s table (gaia or ps1) as [id, ra, dec]. */
function positions(c: DemoCatalogues, which: 'gaia' | 'ps1'): { id: bigint; ra: number; dec: number }[] {
  const [ids, ras, decs] = c[which].columns;
  const out: { id: bigint; ra: number; dec: number }[] = [];
  for (let i = 0; i < ids.values.length; i++) out.push({ id: ids.values[i] as bigint, ra: ras.values[i] as number, dec: decs.values[i] as number });
  return out;
}

/**
 * Every Gaia–Pan-STARRS pair closer than `maxDeg`, found independently of the generator's own
 * index: Pan-STARRS sorted by declination, each Gaia source compared with the band |Δdec| < maxDeg.
 */
function bruteForcePairs(c: DemoCatalogues, maxDeg: number): Map<string, number> {
  const ps1 = positions(c, 'ps1').sort((a, b) => a.dec - b.dec);
  const decs = ps1.map((p) => p.dec);
  const out = new Map<string, number>();
  for (const g of positions(c, 'gaia')) {
    let lo = 0;
    let hi = decs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (decs[mid] < g.dec - maxDeg) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < decs.length && decs[i] <= g.dec + maxDeg; i++) {
      const sep = separationDeg(g.ra, g.dec, ps1[i].ra, ps1[i].dec);
      if (sep < maxDeg) out.set(`${g.id}:${ps1[i].id}`, sep);
    }
  }
  return out;
}

const key = (p: TruePair) => `${p.sourceId}:${p.objId}`;

describe('demo catalogues', () => {
  const a = generateCatalogues(SMALL);

  it('are the same for the same seed and differ for another', () => {
    const b = generateCatalogues(SMALL);
    for (const which of ['gaia', 'ps1'] as const) {
      expect(b[which].columns.map((c) => c.name)).toEqual(a[which].columns.map((c) => c.name));
      b[which].columns.forEach((c, i) => expect(Buffer.from(c.values.buffer).equals(Buffer.from(a[which].columns[i].values.buffer))).toBe(true));
    }
    expect(b.truth).toEqual(a.truth);
    const other = generateCatalogues({ ...SMALL, seed: 8 });
    expect(Buffer.from(other.gaia.columns[1].values.buffer).equals(Buffer.from(a.gaia.columns[1].values.buffer))).toBe(false);
  });

  it('have the asked sizes and unique identifiers', () => {
    const small = SMALL.smallPatchRows!;
    expect(a.gaia.columns[0].values.length).toBe(SMALL.gaiaRows! + 2 * small);
    expect(a.ps1.columns[0].values.length).toBe(SMALL.ps1Rows! + 2 * Math.round(small * 1.2));
    for (const which of ['gaia', 'ps1'] as const) expect(new Set(positions(a, which).map((p) => p.id)).size).toBe(a[which].columns[0].values.length);
    expect(a.truth.length).toBe(SMALL.gaiaRows! / 2 + 2 * (small / 2));
  });

  it('hold exactly the planted pairs within the radius: no accidental pair, none at the edge of the radius', () => {
    // Everything within the guard band beyond the radius, found by brute force: only planted pairs, all < 0.9 × radius.
    const found = bruteForcePairs(a, RADIUS_DEG * (1 + GUARD));
    expect(found.size).toBe(a.truth.length);
    for (const p of a.truth) {
      expect(found.has(key(p)), key(p)).toBe(true);
      expect(found.get(key(p))! * 3600).toBeLessThan(PLANTED_SHARE);
      expect(p.sepArcsec).toBeCloseTo(found.get(key(p))! * 3600, 9);
    }
  });

  it('plant pairs across RA 0/360, within 0.01° of the pole (one straddling it) and across HEALPix cell edges of each order', () => {
    const wrap = a.truth.filter((p) => p.kind === 'wrap');
    expect(wrap).toHaveLength(SMALL.specialPairs!);
    for (const p of wrap) expect(Math.max(p.gaiaRa, p.ps1Ra) > 359 && Math.min(p.gaiaRa, p.ps1Ra) < 1).toBe(true);
    const pole = a.truth.filter((p) => p.kind === 'pole');
    expect(pole).toHaveLength(SMALL.specialPairs!);
    for (const p of pole) expect(Math.min(p.gaiaDec, p.ps1Dec)).toBeGreaterThan(89.99);
    // Straddling the pole: the two RAs differ by 180°.
    expect(pole.some((p) => Math.abs(Math.abs(p.gaiaRa - p.ps1Ra) - 180) < 1e-6)).toBe(true);
    const edges = a.truth.filter((p) => p.kind === 'edge');
    expect(edges).toHaveLength(12 * SMALL.edgePairsPerOrder!);
    // Checked with another HEALPix implementation than the generator's (nested scheme, orders ≤ 12).
    const cell = (order: number, ra: number, dec: number) => ang2pix_nest(2 ** order, ((90 - dec) * Math.PI) / 180, (ra * Math.PI) / 180);
    for (const p of edges) expect(cell(p.order!, p.gaiaRa, p.gaiaDec), `order ${p.order}`).not.toBe(cell(p.order!, p.ps1Ra, p.ps1Dec));
    expect(new Set(edges.map((p) => p.order))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
  });

  it('refuse a density the radius cannot keep apart, saying so', () => {
    expect(() => generateCatalogues({ gaiaRows: 2_000, ps1Rows: 2_400, radiusArcsec: 600, smallPatchRows: 100, specialPairs: 2, edgeOrders: [] })).toThrow(/too dense for this radius/);
  });
});

describe(`demo centres under a broker (${backend})`, () => {
  let centres: DemoCentres;
  let broker: TestBroker;
  let http: HttpClient;

  beforeAll(async () => {
    centres = await startDemoCentres({ catalogues: SMALL, limits: { gaia: { maxRec: 1000, hardMaxRec: 100_000 } } });
    http = new HttpClient({ retries: 0, connectTimeoutMs: 10_000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
    broker = await startBroker(configFromYaml(centres.federationYaml('demo-test')), undefined, {
      http,
      jobs: { pollIntervalMs: 50, tickMs: 25, requestTimeoutMs: 25_000, backoffBaseMs: 50, backoffMaxMs: 200 },
    });
    for (const id of Object.values(DEMO_SITES)) expect(await broker.harvest(id), id).toMatchObject({ outcome: 'OK' });
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await broker?.close();
    await http?.close();
    await centres?.close();
  });

  it('are harvested as TAP sites: both datasets listed with their positions, row counts and limits', async () => {
    const { data, errors } = await broker.graphql<{
      datasets: { id: string; replicas: { site: { id: string }; table: string; rows: number; position: { ra: string; dec: string } | null; service: { maxRec: number | null; upload: boolean | null } }[] }[];
    }>('{ datasets { id replicas { site { id } table rows position { ra dec } service { maxRec upload } } } }');
    expect(errors).toBeUndefined();
    const byId = new Map(data!.datasets.map((d) => [d.id, d]));
    expect([...byId.keys()].sort()).toEqual([DEMO_DATASETS.gaia, DEMO_DATASETS.ps1]);
    expect(byId.get(DEMO_DATASETS.gaia)!.replicas).toEqual([
      { site: { id: DEMO_SITES.gaia }, table: 'gaiadr3.gaia_source', rows: centres.catalogues.gaia.columns[0].values.length, position: { ra: 'ra', dec: 'dec' }, service: { maxRec: 100_000, upload: true } },
    ]);
    expect(byId.get(DEMO_DATASETS.ps1)!.replicas).toEqual([
      { site: { id: DEMO_SITES.ps1 }, table: 'dbo.MeanObject', rows: centres.catalogues.ps1.columns[0].values.length, position: { ra: 'raMean', dec: 'decMean' }, service: { maxRec: 500_000, upload: true } },
    ]);
  });

  /** Submit `adql` through the broker, wait for it, and return its rows as CSV fields (long ids keep every digit). */
  const viaBroker = async (adql: string): Promise<string[][]> => {
    const { data, errors } = await broker.graphql<{ submitQuery: { id: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id } }', { i: { adql, maxrec: 100_000 } });
    expect(errors).toBeUndefined();
    const id = data!.submitQuery.id;
    const job = await waitUntil(
      async () => (await broker.graphql<{ job: { state: string; results: string | null; error: { message: string } | null } }>('query($id: ID!) { job(id: $id) { state results error { message } } }', { id })).data!.job,
      (j) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(j.state),
      { describe: (j) => `job ${id} still ${j.state}` },
    );
    expect(job.error).toBeNull();
    expect(job.state).toBe('COMPLETED');
    const res = await fetch(`${broker.url}/results/${id}?format=csv`);
    expect(res.status).toBe(200);
    const [, ...lines] = (await res.text()).trim().split('\r\n');
    return lines.map((l) => l.split(','));
  };

  const inCone = (which: 'gaia' | 'ps1', ra: number, dec: number, r: number) =>
    positions(centres.catalogues, which).filter((p) => separationDeg(ra, dec, p.ra, p.dec) <= r).map((p) => String(p.id)).sort();

  it('answer a cone query through the broker with exactly the rows in the cone, in canonical names at either centre', async () => {
    const gaia = await viaBroker(`SELECT source_id, ra, dec FROM ${DEMO_DATASETS.gaia} WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 180, 0, 1))`);
    const expected = inCone('gaia', 180, 0, 1);
    expect(expected.length).toBeGreaterThan(100);
    expect(gaia.map((r) => r[0]).sort()).toEqual(expected);
    // Pan-STARRS' mixed-case columns (objID, raMean) asked by their canonical lower-case names.
    const ps1 = await viaBroker(`SELECT objid, ramean, decmean FROM ${DEMO_DATASETS.ps1} WHERE DISTANCE(POINT(ramean, decmean), POINT(0, 0)) < 0.5`);
    expect(ps1.map((r) => r[0]).sort()).toEqual(inCone('ps1', 0, 0, 0.5));
    expect(ps1.length).toBeGreaterThan(20);
  }, WAITING_TEST_MS);

  /** The Gaia rows `pick` selects as an upload VOTable (source_id, ra, dec). */
  const gaiaUpload = (pick: (p: { ra: number; dec: number }) => boolean) => {
    const rows: Row[] = positions(centres.catalogues, 'gaia').filter(pick).map((p) => [p.id, p.ra, p.dec]);
    return { rows, votable: writeVOTableToBuffer({ fields: [{ name: 'source_id', datatype: 'long' }, { name: 'ra', datatype: 'double', unit: 'deg' }, { name: 'dec', datatype: 'double', unit: 'deg' }] }, rows) };
  };
  const endpoints = () => ({ sync: `${centres.urls.ps1}/sync`, async: `${centres.urls.ps1}/async` });
  const pairsOf = async (body: Buffer) => ((await readVOTableToArray(body)).tables[0].rows as Row[]).map((r) => `${r[0]}:${r[1]}`).sort();

  it('join an uploaded table at the centre (sync, CONTAINS/CIRCLE) into exactly the true pairs, also across RA 0/360 and at the pole', async () => {
    const cases: { what: string; pick: (p: { ra: number; dec: number }) => boolean; truth: TruePair[] }[] = [
      { what: 'cone (180, 0, 1°)', pick: (p) => separationDeg(180, 0, p.ra, p.dec) <= 1, truth: truthInCone(centres.truth, 180, 0, 1) },
      { what: 'across RA 0/360', pick: (p) => p.dec < 2 && (p.ra > 358 || p.ra < 2), truth: centres.truth.filter((t) => t.gaiaDec < 2 && (t.gaiaRa > 358 || t.gaiaRa < 2)) },
      { what: 'round the pole', pick: (p) => p.dec > 89, truth: centres.truth.filter((t) => t.gaiaDec > 89) },
    ];
    for (const c of cases) {
      const { rows, votable } = gaiaUpload(c.pick);
      expect(c.truth.length, c.what).toBeGreaterThan(5);
      const before = centres.ps1.ledger.records.length;
      const res = await tapSync(http, endpoints(), {
        adql: `SELECT u.source_id, p.objID, DISTANCE(POINT(u.ra, u.dec), POINT(p.raMean, p.decMean)) * 3600 AS sep_arcsec
          FROM TAP_UPLOAD.gaia AS u JOIN dbo.MeanObject AS p ON 1 = CONTAINS(POINT('ICRS', p.raMean, p.decMean), CIRCLE('ICRS', u.ra, u.dec, ${RADIUS_DEG}))`,
        upload: { name: 'gaia', votable: await votable },
      });
      const body = await res.bytes();
      expect(await pairsOf(body), c.what).toEqual(c.truth.map(key).sort());
      // The centre counted the query: its text, the upload, rows and bytes out.
      const record = centres.ps1.ledger.records[before];
      expect(record).toMatchObject({ mode: 'sync', uploads: ['gaia'], uploadRows: rows.length, rowsOut: c.truth.length, bytesOut: body.length, bytesSent: body.length });
      expect(record.adql).toContain('TAP_UPLOAD.gaia');
      // The join ran with the declination band the centre adds for its index (the answer is the same without it).
      expect(record.sql).toMatch(/p\."decMean" BETWEEN u\."dec" - 0\.000277\d* AND u\."dec" \+ 0\.000277/);
      expect(record.bytesIn).toBeGreaterThan((await votable).length);
    }
  }, WAITING_TEST_MS);

  it('join an uploaded table as an async UWS job (DISTANCE in WHERE, TABLEDATA) into the same pairs, and drop the upload after', async () => {
    const { votable } = gaiaUpload((p) => separationDeg(180, 0, p.ra, p.dec) <= 1);
    const { jobUrl, response } = await tapAsyncQuery(http, endpoints(), {
      adql: `SELECT u.source_id, p.objid FROM TAP_UPLOAD.g AS u, dbo.MeanObject AS p WHERE DISTANCE(POINT(u.ra, u.dec), POINT(p.ramean, p.decmean)) <= ${RADIUS_DEG}`,
      upload: { name: 'g', votable: await votable },
      format: 'votable/td',
      waitS: 5,
    });
    const body = await response.bytes();
    expect(body.toString('utf8')).toContain('<TABLEDATA>');
    expect(await pairsOf(body)).toEqual(truthInCone(centres.truth, 180, 0, 1).map(key).sort());
    await tapDelete(http, jobUrl);
    // The upload lived for its query only.
    const after = await tapSync(http, endpoints(), { adql: 'SELECT TOP 1 * FROM TAP_UPLOAD.g' }).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    expect(after).toMatch(/TAP_UPLOAD|does not exist/);
  }, WAITING_TEST_MS);

  it('apply MAXREC with an OVERFLOW status, and refuse a bad query with a DALI error', async () => {
    const res = await tapSync(http, { sync: `${centres.urls.gaia}/sync`, async: `${centres.urls.gaia}/async` }, { adql: 'SELECT source_id FROM gaiadr3.gaia_source', maxrec: 10 });
    const doc = await readVOTableToArray(await res.bytes());
    expect(doc.tables[0].rows).toHaveLength(10);
    expect(doc.infos.filter((i) => i.name === 'QUERY_STATUS').map((i) => i.value)).toContain('OVERFLOW');
    const bad = await tapSync(http, endpoints(), { adql: 'SELECT nothing FROM dbo.MeanObject' }).then(
      () => 'answered',
      (err: Error) => err.message,
    );
    expect(bad).toMatch(/HTTP 400.*nothing/);
    expect(centres.ps1.ledger.records.at(-1)?.error).toMatch(/nothing/);
  }, WAITING_TEST_MS);
});
