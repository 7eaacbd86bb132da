import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { createTapAdapter } from '../../adapters/tap/adapter.js';
import type { AdapterContext } from '../../registry/model/adapter.js';
import { isConstellationError, type ErrorKind } from '../../registry/model/errors.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';
import { SimSite, type Fault } from '../sites/sim-site.js';
import { mountTapService, type SimTable, type TapService } from '../sites/tap-service.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

/** A final state: the limit of a wait for one (PATIENCE_MS) only guards against a job that never ends. */
const finished = (s: { state: string }): boolean => ['COMPLETED', 'ERROR', 'ABORTED'].includes(s.state);

const GAIA: SimTable = {
  name: 'gaia.dr3lite',
  description: 'Gaia DR3 subset',
  rows: 500,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'phot_g_mean_mag', datatype: 'float', unit: 'mag', ucd: 'phot.mag;em.opt' },
    { name: 'designation', datatype: 'char', description: 'Unique source designation' },
  ],
};
const OBSCORE: SimTable = {
  name: 'ivoa.ObsCore',
  rows: 20,
  columns: [
    { name: 'obs_id', datatype: 'char' },
    { name: 's_ra', datatype: 'double', ucd: 'pos.eq.ra' },
    { name: 's_dec', datatype: 'double', ucd: 'pos.eq.dec' },
  ],
};
const TAP_SCHEMA: SimTable = { name: 'TAP_SCHEMA.tables', rows: 3, columns: [{ name: 'table_name', datatype: 'char' }] };

let full: SimSite;
let min: SimSite;
let services: TapService[] = [];
let http: HttpClient;
// Short timeouts make the hang fault quick; queries (which start PGlite) use `http`.
let short: HttpClient;

function ctx(site: SimSite, extra: Partial<AdapterContext> = {}): AdapterContext {
  return { site: { id: 'gavo', name: 'A TAP site', platform: 'tap', url: `${site.url}/tap` }, credential: { kind: 'anonymous' }, ...extra };
}

beforeAll(async () => {
  full = new SimSite();
  min = new SimSite();
  services = [
    mountTapService(full, { path: '/tap', tables: [GAIA, OBSCORE, TAP_SCHEMA], maxRec: 1000, hardMaxRec: 5000, uploadLimitBytes: 10_000_000, asyncDelayMs: 20 }),
    mountTapService(min, {
      path: '/tap',
      tables: [GAIA, OBSCORE],
      tablesDetail: 'min',
      maxRec: 200,
      securityMethods: ['', 'ivo://ivoa.net/sso#cookie'],
    }),
  ];
  await Promise.all([full.start(), min.start()]);
  http = new HttpClient({ retries: 1, retryBaseMs: 20 });
  short = new HttpClient({ retries: 1, retryBaseMs: 20, headersTimeoutMs: 600, bodyTimeoutMs: 600, connectTimeoutMs: 600 });
});

afterAll(async () => {
  await http.close();
  await short.close();
  for (const s of services) await s.close();
  await Promise.all([full.close(), min.close()]);
});

describe('generic TAP harvest', () => {
  it('builds a valid document with services, datasets, columns and limits', async () => {
    const adapter = createTapAdapter(http);
    const meter = { bytes: 0 };
    const out = await adapter.harvest(ctx(full, { meter }));
    const doc = validateCapabilityDocument(out.document);
    expect(out.bytes).toBeGreaterThan(0);
    expect(doc.site).toMatchObject({ id: 'gavo', platform: 'tap' });
    expect(doc.services).toEqual([
      expect.objectContaining({ id: 'tap', type: 'tap', url: `${full.url}/tap`, upload: true, async: true, maxRec: 5000, uploadLimitBytes: 10_000_000, auth: ['anonymous'] }),
    ]);
    expect(doc.services[0].languages).toEqual(['ADQL-2.0', 'ADQL-2.1']);
    expect(doc.services[0].formats).toContain('text/csv');
    expect(doc.datasets.map((d) => d.table)).toEqual(['gaia.dr3lite', 'ivoa.ObsCore']);
    const gaia = doc.datasets[0];
    expect(gaia).toMatchObject({ id: 'gaia.dr3lite', service: 'tap', rows: 500, position: { ra: 'ra', dec: 'dec' }, access: { public: true } });
    expect(gaia.columns?.map((c) => c.name)).toEqual(GAIA.columns.map((c) => c.name));
    expect(gaia.columns?.[0]).toMatchObject({ datatype: 'long' });
    expect(gaia.columns?.[1]).toMatchObject({ datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main', indexed: true });
    expect(doc.datasets[1]).toMatchObject({ id: 'ivoa.obscore', table: 'ivoa.ObsCore', position: { ra: 's_ra', dec: 's_dec' } });
    expect(doc.compute).toEqual([]);
    expect(doc.images).toEqual([]);
  });

  it('fetches per-table detail when the tableset lists no columns, and reads auth methods', async () => {
    const out = await createTapAdapter(http).harvest(ctx(min));
    const doc = validateCapabilityDocument(out.document);
    expect(doc.services[0].auth).toEqual(['anonymous', 'cookie']);
    expect(doc.services[0].maxRec).toBe(200);
    expect(doc.datasets.map((d) => d.columns?.length)).toEqual([5, 3]);
    expect(min.seen.some((s) => s.url === '/tap/tables/gaia.dr3lite')).toBe(true);
  });

  it('answers notModified on the second harvest with the validators of the first', async () => {
    const adapter = createTapAdapter(http);
    const first = await adapter.harvest(ctx(min));
    expect(first.notModified).toBeUndefined();
    expect(Object.keys(first.validators ?? {})).toEqual(
      expect.arrayContaining([`${min.url}/tap/capabilities`, `${min.url}/tap/tables`, `${min.url}/tap/tables/gaia.dr3lite`]),
    );
    const before = min.seen.length;
    const second = await adapter.harvest(ctx(min), first.validators);
    expect(second.notModified).toBe(true);
    expect(second.validators).toEqual(first.validators);
    validateCapabilityDocument(second.document);
    expect(second.document.datasets).toEqual(first.document.datasets);
    expect(min.seen.slice(before).filter((s) => s.headers['if-none-match']).length).toBeGreaterThanOrEqual(4);
  });

  it('reports health from availability', async () => {
    expect((await createTapAdapter(http).health(ctx(full))).status).toBe('UP');
  });
});

describe('fault modes', () => {
  const cases: [string, Fault, ErrorKind][] = [
    ['refused connections', { kind: 'refuse' }, 'UPSTREAM_UNAVAILABLE'],
    ['a server that never answers', { kind: 'hang' }, 'UPSTREAM_TIMEOUT'],
    ['HTTP 500', { kind: 'status', status: 500 }, 'UPSTREAM'],
    ['malformed XML', { kind: 'malformed-xml' }, 'UPSTREAM_MALFORMED'],
    ['truncated documents', { kind: 'truncate', afterBytes: 300 }, 'UPSTREAM_MALFORMED'],
  ];
  for (const [what, fault, kind] of cases) {
    it(`${what} → ${kind}`, async () => {
      await min.setFault(fault);
      try {
        const err = await createTapAdapter(short).harvest(ctx(min)).catch((e: unknown) => e);
        expect(isConstellationError(err)).toBe(true);
        expect((err as { kind: string }).kind).toBe(kind);
        expect((await createTapAdapter(short).health(ctx(min))).status).toBe('DOWN');
      } finally {
        await min.setFault({ kind: 'none' });
      }
    });
  }

  it('429 with Retry-After, then success', async () => {
    await min.setFault({ kind: 'rate-limit', retryAfterS: 1, times: 1 });
    const started = Date.now();
    const out = await createTapAdapter(short).harvest(ctx(min));
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    validateCapabilityDocument(out.document);
    await min.setFault({ kind: 'none' });
  });
});

describe('job hooks', () => {
  it('async query: submit, status, result', async () => {
    const adapter = createTapAdapter(http);
    const c = ctx(full);
    const { siteJobId, status } = await adapter.submitQuery!(c, { adql: 'SELECT TOP 4 source_id, ra FROM gaia.dr3lite ORDER BY source_id', service: 'tap', mode: 'async' });
    expect(['QUEUED', 'EXECUTING', 'COMPLETED']).toContain(status.state);
    const s = finished(status) ? status : await waitUntil(() => adapter.jobStatus!(c, siteJobId), finished, { intervalMs: 30 });
    expect(s.state).toBe('COMPLETED');
    expect(s.resultUrl).toMatch(/results\/result$/);
    const result = await adapter.jobResult!(c, siteJobId);
    expect(result.contentType).toMatch(/votable/);
    const doc = await readVOTableToArray(result.body);
    expect(doc.tables[0].rows).toHaveLength(4);
  }, WAITING_TEST_MS);

  it('sync query: held result streamed by jobResult; failing query reports the error', async () => {
    const adapter = createTapAdapter(http);
    const c = ctx(full);
    const { siteJobId, status } = await adapter.submitQuery!(c, { adql: 'SELECT COUNT(*) FROM gaia.dr3lite', service: 'tap', mode: 'sync', format: 'votable/td' });
    expect(status.state).toBe('COMPLETED');
    const doc = await readVOTableToArray((await adapter.jobResult!(c, siteJobId)).body);
    expect(Number(doc.tables[0].rows[0][0])).toBe(500);
    const err = await adapter.submitQuery!(c, { adql: 'SELECT bogus FROM gaia.dr3lite', service: 'tap', mode: 'sync' }).catch((e: unknown) => e);
    expect(isConstellationError(err) && err.kind).toBe('UPSTREAM');
  });

  it('async error surfaces the message; cancel aborts', async () => {
    const adapter = createTapAdapter(http);
    const c = ctx(full);
    const { siteJobId } = await adapter.submitQuery!(c, { adql: 'SELECT bogus FROM gaia.dr3lite', service: 'tap', mode: 'async' });
    const s = await waitUntil(() => adapter.jobStatus!(c, siteJobId), finished, { intervalMs: 30 });
    expect(s.error).toMatch(/bogus/);
    const job2 = await adapter.submitQuery!(c, { adql: 'SELECT * FROM gaia.dr3lite', service: 'tap', mode: 'async' });
    await adapter.cancelJob!(c, job2.siteJobId);
    expect(['ABORTED', 'COMPLETED']).toContain((await adapter.jobStatus!(c, job2.siteJobId)).state);
  }, WAITING_TEST_MS);

  it('a truncated VOTable result fails the reader with UPSTREAM_MALFORMED, not a crash', async () => {
    const adapter = createTapAdapter(http);
    const c = ctx(full);
    await full.setFault({ kind: 'truncate', afterBytes: 700 });
    try {
      const { siteJobId } = await adapter.submitQuery!(c, { adql: 'SELECT TOP 100 * FROM gaia.dr3lite', service: 'tap', mode: 'sync' });
      const err = await readVOTableToArray((await adapter.jobResult!(c, siteJobId)).body).catch((e: unknown) => e);
      expect(isConstellationError(err) && err.kind).toBe('UPSTREAM_MALFORMED');
    } finally {
      await full.setFault({ kind: 'none' });
    }
  });
});
