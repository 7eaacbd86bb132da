import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { tapAbort, tapAsyncQuery, tapDelete, tapJob, tapPoll, tapResults, tapRun, tapSubmit, tapSync } from '../../adapters/ivoa/tap/client.js';
import { readVOTableToArray, writeVOTableToBuffer } from '../../adapters/ivoa/votable/index.js';
import { isConstellationError } from '../../registry/model/errors.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';

const TABLE: SimTable = {
  name: 'dbo.MeanObjectView',
  columns: [
    { name: 'objID', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'raMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'decMean', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'gMeanPSFMag', datatype: 'float', unit: 'mag' },
    { name: 'nDetections', datatype: 'short' },
  ],
  rows: 3000,
  position: { ra: 'raMean', dec: 'decMean' },
  region: { raMin: 0, raMax: 40, decMin: -10, decMax: 30 },
};

const rad = Math.PI / 180;
function sep(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const s = Math.sin(((dec2 - dec1) * rad) / 2) ** 2 + Math.cos(dec1 * rad) * Math.cos(dec2 * rad) * Math.sin(((ra2 - ra1) * rad) / 2) ** 2;
  return (2 * Math.asin(Math.sqrt(s))) / rad;
}

let site: SimSite;
let tap: TapService;
let http: HttpClient;
let endpoints: { sync: string; async: string };

beforeAll(async () => {
  site = new SimSite();
  tap = mountTapService(site, { path: '/tap', tables: [TABLE], maxRec: 2000, hardMaxRec: 2500, uploadLimitBytes: 1_000_000, asyncDelayMs: 30 });
  await site.start();
  http = new HttpClient({ retries: 1, retryBaseMs: 20 });
  endpoints = { sync: `${site.url}/tap/sync`, async: `${site.url}/tap/async` };
});

afterAll(async () => {
  await http.close();
  await tap.close();
  await site.close();
});

describe('tapSync', () => {
  it('returns exactly the rows inside a cone (case-insensitive ADQL names)', async () => {
    const [ra, dec, r] = [20, 10, 3];
    const res = await tapSync(http, endpoints, {
      adql: `SELECT objid, ramean, decmean FROM dbo.meanobjectview WHERE 1 = CONTAINS(POINT('ICRS', ramean, decmean), CIRCLE('ICRS', ${ra}, ${dec}, ${r}))`,
    });
    expect(res.headers['content-type']).toMatch(/votable/);
    const doc = await readVOTableToArray(res.body);
    expect(doc.status).toBe('OK');
    expect(doc.tables[0].meta.fields.map((f) => f.name)).toEqual(['objID', 'raMean', 'decMean']);
    expect(doc.tables[0].meta.fields[1].unit).toBe('deg');
    const got = doc.tables[0].rows.map((row) => row[0] as bigint).sort();
    const expected = simRows(TABLE)
      .filter((row) => sep(ra, dec, row[1] as number, row[2] as number) <= r)
      .map((row) => row[0] as bigint)
      .sort();
    expect(expected.length).toBeGreaterThan(10);
    expect(got).toEqual(expected);
  });

  it('applies MAXREC with an OVERFLOW status, and the hard limit over a larger MAXREC', async () => {
    const doc = await readVOTableToArray((await tapSync(http, endpoints, { adql: 'SELECT objID FROM dbo.MeanObjectView', maxrec: 10 })).body);
    expect(doc.tables[0].rows).toHaveLength(10);
    expect(doc.overflow).toBe(true);
    const hard = await readVOTableToArray((await tapSync(http, endpoints, { adql: 'SELECT objID FROM dbo.MeanObjectView', maxrec: 100_000 })).body);
    expect(hard.tables[0].rows).toHaveLength(2500);
    expect(hard.overflow).toBe(true);
    const fits = await readVOTableToArray((await tapSync(http, endpoints, { adql: 'SELECT TOP 5 objID FROM dbo.MeanObjectView', maxrec: 10 })).body);
    expect(fits.tables[0].rows).toHaveLength(5);
    expect(fits.overflow).toBe(false);
  });

  it('honours FORMAT: TABLEDATA and CSV', async () => {
    const td = await (await tapSync(http, endpoints, { adql: 'SELECT TOP 3 objID, raMean FROM dbo.MeanObjectView', format: 'votable/td' })).text();
    expect(td).toContain('<TABLEDATA>');
    expect((await readVOTableToArray(td)).tables[0].rows).toHaveLength(3);
    const csv = await (await tapSync(http, endpoints, { adql: 'SELECT TOP 3 objID, raMean FROM dbo.MeanObjectView', format: 'csv' })).text();
    expect(csv.trim().split('\n')).toHaveLength(4);
    expect(csv.split('\n')[0]).toBe('objID,raMean');
  });

  it('checks a COUNT against a brute-force filter', async () => {
    const doc = await readVOTableToArray((await tapSync(http, endpoints, { adql: 'SELECT COUNT(*) AS n FROM dbo.MeanObjectView WHERE gMeanPSFMag < 15 AND decMean > 0' })).body);
    const expected = simRows(TABLE).filter((r) => (r[3] as number) < 15 && (r[2] as number) > 0).length;
    expect(Number(doc.tables[0].rows[0][0])).toBe(expected);
  });

  it('surfaces a service error message as UPSTREAM', async () => {
    const err = await tapSync(http, endpoints, { adql: 'SELECT nosuchcolumn FROM dbo.MeanObjectView' }).catch((e: unknown) => e);
    expect(isConstellationError(err) && err.kind).toBe('UPSTREAM');
    expect((err as Error).message).toMatch(/nosuchcolumn/);
    const syntax = await tapSync(http, endpoints, { adql: 'SELEC oops' }).catch((e: unknown) => e);
    expect(isConstellationError(syntax) && syntax.kind).toBe('UPSTREAM');
  });

  it('joins an uploaded table (TAP_UPLOAD, multipart)', async () => {
    const targets = simRows(TABLE).slice(0, 5).map((r, i) => [i, r[1], r[2]] as [number, number, number]);
    const votable = await writeVOTableToBuffer(
      { fields: [{ name: 'tid', datatype: 'int' }, { name: 'tra', datatype: 'double' }, { name: 'tdec', datatype: 'double' }] },
      targets,
    );
    const res = await tapSync(http, endpoints, {
      adql:
        'SELECT t.tid, m.objID FROM TAP_UPLOAD.targets AS t JOIN dbo.MeanObjectView AS m ' +
        "ON 1 = CONTAINS(POINT('ICRS', m.raMean, m.decMean), CIRCLE('ICRS', t.tra, t.tdec, 0.0001)) ORDER BY t.tid",
      upload: { name: 'targets', votable },
    });
    const doc = await readVOTableToArray(res.body);
    expect(doc.tables[0].rows.map((r) => r[0])).toEqual([0, 1, 2, 3, 4]);
    expect(doc.tables[0].rows.map((r) => r[1])).toEqual(simRows(TABLE).slice(0, 5).map((r) => r[0]));
  });

  it('rejects an upload over the service limit', async () => {
    const big = new Uint8Array(1_100_000).fill(32);
    const err = await tapSync(http, endpoints, { adql: 'SELECT * FROM TAP_UPLOAD.t', upload: { name: 't', votable: big } }).catch((e: unknown) => e);
    expect(isConstellationError(err) && err.kind).toBe('UPSTREAM');
    expect((err as Error).message).toMatch(/upload limit/);
  });
});

describe('async jobs', () => {
  it('submit, run, poll with WAIT, fetch results, delete', async () => {
    const { jobUrl } = await tapSubmit(http, endpoints, { adql: 'SELECT TOP 7 objID FROM dbo.MeanObjectView', format: 'votable' });
    expect(jobUrl).toMatch(/\/tap\/async\/job\d+$/);
    expect((await tapJob(http, jobUrl)).phase).toBe('PENDING');
    await tapRun(http, jobUrl);
    const job = await tapPoll(http, jobUrl, { waitS: 5, timeoutMs: 10_000 });
    expect(job.phase).toBe('COMPLETED');
    const doc = await readVOTableToArray((await tapResults(http, jobUrl, { job })).body);
    expect(doc.tables[0].rows).toHaveLength(7);
    await tapDelete(http, jobUrl);
    const gone = await tapJob(http, jobUrl).catch((e: unknown) => e);
    expect(isConstellationError(gone)).toBe(true);
    // WAIT blocked on the server instead of many quick polls.
    const polls = site.seen.filter((s) => s.url.startsWith(new URL(jobUrl).pathname + '?WAIT=')).length;
    expect(polls).toBeLessThanOrEqual(3);
  });

  it('tapAsyncQuery runs end to end', async () => {
    const { jobUrl, response } = await tapAsyncQuery(http, endpoints, { adql: 'SELECT COUNT(*) FROM dbo.MeanObjectView', waitS: 5 });
    const doc = await readVOTableToArray(response.body);
    expect(Number(doc.tables[0].rows[0][0])).toBe(3000);
    await tapDelete(http, jobUrl);
  });

  it('an ERROR phase raises UPSTREAM with the error summary', async () => {
    const { jobUrl } = await tapSubmit(http, endpoints, { adql: 'SELECT nope FROM dbo.MeanObjectView', run: true });
    const err = await tapPoll(http, jobUrl, { waitS: 5, timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(isConstellationError(err) && err.kind).toBe('UPSTREAM');
    expect((err as Error).message).toMatch(/nope/);
  });

  it('abort stops a queued job', async () => {
    const slowSite = new SimSite();
    const slow = mountTapService(slowSite, { path: '/tap', tables: [{ ...TABLE, rows: 10 }], asyncDelayMs: 5_000 });
    await slowSite.start();
    try {
      const ep = { sync: `${slowSite.url}/tap/sync`, async: `${slowSite.url}/tap/async` };
      const { jobUrl } = await tapSubmit(http, ep, { adql: 'SELECT * FROM dbo.MeanObjectView', run: true });
      expect((await tapJob(http, jobUrl)).phase).toBe('QUEUED');
      await tapAbort(http, jobUrl);
      expect((await tapPoll(http, jobUrl, { waitS: 1 })).phase).toBe('ABORTED');
      await tapDelete(http, jobUrl);
    } finally {
      await slow.close();
      await slowSite.close();
    }
  });

  it('a poll deadline gives UPSTREAM_TIMEOUT', async () => {
    const { jobUrl } = await tapSubmit(http, endpoints, { adql: 'SELECT TOP 1 objID FROM dbo.MeanObjectView' });
    const err = await tapPoll(http, jobUrl, { waitS: 1, initialDelayMs: 50, timeoutMs: 300 }).catch((e: unknown) => e);
    expect(isConstellationError(err) && err.kind).toBe('UPSTREAM_TIMEOUT');
    await tapDelete(http, jobUrl);
  });
});
