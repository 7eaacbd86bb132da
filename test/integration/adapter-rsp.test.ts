import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HttpClient } from '../../adapters/http.js';
import { createRspAdapter, type RspHarvestOutcome } from '../../adapters/rsp/adapter.js';
import type { AdapterContext, SiteCredential } from '../../registry/model/adapter.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';
import { isConstellationError, type ErrorKind } from '../../registry/model/errors.js';
import { RSP_SSOTAP_TABLES, RSP_TAP_TABLES, RSP_TEST_TOKEN, startRspSite, type RspSite } from '../sites/rsp-site.js';
import { simRows } from '../sites/tap-service.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

/** A final state: the limit of a wait for one (PATIENCE_MS) only guards against a job that never ends. */
const finished = (s: { state: string }): boolean => ['COMPLETED', 'ERROR', 'ABORTED'].includes(s.state);

// The options the default federation gives the rsp site, so the test harvests as production would.
const federation = parse(readFileSync(new URL('../../federation.yaml', import.meta.url), 'utf8')) as { sites: { id: string; options: Record<string, unknown> }[] };
const RSP_OPTIONS = federation.sites.find((s) => s.id === 'rsp')!.options;
const BEARER: SiteCredential = { kind: 'bearer', token: RSP_TEST_TOKEN };
// A valid token without read:tap, which Gafaelfawr refuses at TAP with 403.
const NO_TAP_TOKEN = 'gt-bm9UYXBLZXk.bm9UYXBTZWNyZXQ';

function context(site: RspSite, credential: SiteCredential = BEARER, options: Record<string, unknown> = RSP_OPTIONS): AdapterContext {
  return { site: { id: 'rsp', name: 'Rubin Science Platform', platform: 'rsp', url: site.url, options }, credential, meter: { bytes: 0 } };
}

async function failureKind(p: Promise<unknown>): Promise<ErrorKind> {
  try {
    await p;
  } catch (err) {
    if (isConstellationError(err)) return err.kind;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('RSP adapter against a simulated RSP', () => {
  let site: RspSite;
  const http = new HttpClient({ retries: 2, retryBaseMs: 5 });

  beforeAll(async () => {
    // Async jobs stay QUEUED long enough for a cancel to catch them.
    site = await startRspSite({ ssotapDetail: 'min', tokens: [RSP_TEST_TOKEN, NO_TAP_TOKEN], scopes: { [NO_TAP_TOKEN]: ['read:image'] }, asyncDelayMs: 200 });
  });
  afterEach(async () => {
    await site.sim.setFault({ kind: 'none' });
    site.sim.seen.length = 0;
  });
  afterAll(async () => {
    await site?.close();
    await http.close();
  });

  it('harvests discovery, both TAP services and user-info into a valid document', async () => {
    const ctx = context(site);
    const outcome = (await createRspAdapter(http).harvest(ctx)) as RspHarvestOutcome;
    const doc = validateCapabilityDocument(outcome.document);

    expect(doc.site).toMatchObject({ id: 'rsp', platform: 'rsp', url: site.url });
    expect(doc.services.map((s) => [s.id, s.type, s.url])).toEqual([
      ['tap', 'tap', `${site.url}/api/tap`],
      ['ssotap', 'tap', `${site.url}/api/ssotap`],
    ]);
    const tap = doc.services[0];
    expect(tap).toMatchObject({ standardId: 'ivo://ivoa.net/std/TAP', upload: true, async: true, maxRec: 1000000, uploadLimitBytes: 32000000, auth: ['bearer', 'basic'] });
    expect(tap.languages).toContain('ADQL-2.1');
    expect(tap.title).toContain('dp02, dp1');

    expect(doc.datasets.map((d) => [d.id, d.service, d.table])).toEqual([
      ['dp02_dc2_catalogs.object', 'tap', 'dp02_dc2_catalogs.Object'],
      ['dp02_dc2_catalogs.source', 'tap', 'dp02_dc2_catalogs.Source'],
      ['dp1.object', 'tap', 'dp1.Object'],
      ['dp03_catalogs_10yr.ssobject', 'ssotap', 'dp03_catalogs_10yr.SSObject'],
      ['dp03_catalogs_10yr.diasource', 'ssotap', 'dp03_catalogs_10yr.DiaSource'],
    ]);
    const object = doc.datasets[0];
    expect(object.rows).toBe(278318452);
    expect(object.position).toEqual({ ra: 'coord_ra', dec: 'coord_dec' });
    expect(object.columns!.map((c) => c.name)).toEqual(['objectId', 'coord_ra', 'coord_dec', 'detect_isPrimary', 'refExtendedness', 'g_cModelFlux', 'r_cModelFlux', 'i_cModelFlux']);
    expect(object.columns![1]).toMatchObject({ name: 'coord_ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' });
    expect(object.rowBytes).toBeGreaterThan(0);
    // SSObject has no sky position; DiaSource spells its declination "decl".
    expect(doc.datasets[3].position).toBeUndefined();
    expect(doc.datasets[3].columns!.map((c) => c.name)).toContain('ssObjectId');
    expect(doc.datasets[4].position).toEqual({ ra: 'ra', dec: 'decl' });
    for (const d of doc.datasets) expect(d.access).toEqual({ public: false, groups: ['rubin-data-rights'] });
    expect(doc.compute).toEqual([]);
    expect(doc.images).toEqual([]);

    expect(outcome.quota).toEqual({ tapConcurrent: 12, notebookCpu: 4, notebookMemoryGb: 32 });
    expect(outcome.bytes).toBeGreaterThan(0);
    expect(outcome.bytes).toBe(ctx.meter!.bytes);

    // The token goes to TAP and user-info as a bearer, never to the public discovery route,
    // and the prompt dataset's TAP service (not in discoveryDatasets) is never called.
    const discovery = site.sim.seen.filter((r) => r.url.startsWith('/repertoire/'));
    expect(discovery).toHaveLength(1);
    expect(discovery[0].headers.authorization).toBeUndefined();
    const protectedCalls = site.sim.seen.filter((r) => r.url.startsWith('/api/') || r.url.startsWith('/auth/'));
    expect(protectedCalls.length).toBeGreaterThanOrEqual(5);
    for (const r of protectedCalls) expect(r.headers.authorization).toBe(`Bearer ${RSP_TEST_TOKEN}`);
    expect(site.sim.seen.some((r) => r.url.startsWith('/api/ppdbtap'))).toBe(false);
    // ssotap lists its tables without columns, so each is fetched on its own.
    expect(site.sim.seen.map((r) => r.url)).toEqual(expect.arrayContaining(['/api/ssotap/tables/dp03_catalogs_10yr.SSObject', '/api/ssotap/tables/dp03_catalogs_10yr.DiaSource']));
  });

  it('accepts the token as HTTP Basic (x-oauth-basic user), as Gafaelfawr does', async () => {
    const outcome = await createRspAdapter(http).harvest(context(site, { kind: 'basic', username: 'x-oauth-basic', password: RSP_TEST_TOKEN }));
    expect(validateCapabilityDocument(outcome.document).datasets).toHaveLength(5);
    const tapCall = site.sim.seen.find((r) => r.url === '/api/tap/tables')!;
    expect(String(tapCall.headers.authorization)).toMatch(/^Basic /);
  });

  it('fails with UPSTREAM_AUTH without a token or with a wrong one', async () => {
    const adapter = createRspAdapter(http);
    expect(await failureKind(adapter.harvest(context(site, { kind: 'anonymous' })))).toBe('UPSTREAM_AUTH');
    expect(await failureKind(adapter.harvest(context(site, { kind: 'bearer', token: 'gt-wrong.token' })))).toBe('UPSTREAM_AUTH');
    expect(site.stats.unauthorised).toBeGreaterThanOrEqual(2);
  });

  it('builds a notebook pool (capped by the user quota) when options give one', async () => {
    const options = { ...RSP_OPTIONS, notebook: { cores: 2000, memoryGb: 8000, maxCoresPerJob: 8, maxMemoryGbPerJob: 64 } };
    const doc = validateCapabilityDocument((await createRspAdapter(http).harvest(context(site, BEARER, options))).document);
    expect(doc.compute).toEqual([{ id: 'nublado', kind: 'notebook', service: 'nublado', cores: 2000, memoryGb: 8000, maxCoresPerJob: 4, maxMemoryGbPerJob: 32 }]);
    expect(doc.services.map((s) => s.id)).toEqual(['tap', 'ssotap', 'nublado']);
    expect(doc.compute.some((c) => c.kind === 'batch')).toBe(false);
  });

  it('honours options.access and falls back to the configured paths when discovery names no TAP', async () => {
    const options = { ...RSP_OPTIONS, discoveryDatasets: ['dp2'], access: { public: true, groups: [] } };
    const doc = validateCapabilityDocument((await createRspAdapter(http).harvest(context(site, BEARER, options))).document);
    expect(doc.services.map((s) => s.url)).toEqual([`${site.url}/api/tap`, `${site.url}/api/ssotap`]);
    for (const d of doc.datasets) expect(d.access).toEqual({ public: true, groups: [] });
  });

  it('reports UP health, and DOWN when nothing answers', async () => {
    const adapter = createRspAdapter(http);
    expect(await adapter.health(context(site))).toEqual({ status: 'UP' });
    await site.sim.setFault({ kind: 'status', status: 503 });
    expect((await adapter.health(context(site))).status).toBe('DOWN');
  });

  describe('job hooks', () => {
    const OBJECT = RSP_TAP_TABLES[0];
    const SSOBJECT = RSP_SSOTAP_TABLES[0];

    it('runs a sync query on tap, found through Repertoire without a harvest, with the token as a bearer', async () => {
      const adapter = createRspAdapter(http);
      const ctx = context(site);
      const { siteJobId, status } = await adapter.submitQuery!(ctx, {
        adql: 'SELECT objectId, coord_dec FROM dp02_dc2_catalogs.Object WHERE coord_dec < -40 ORDER BY objectId',
        service: 'tap',
        mode: 'sync',
      });
      expect(status.state).toBe('COMPLETED');
      const doc = await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body);
      const expected = simRows(OBJECT).filter((r) => (r[2] as number) < -40).map((r) => [r[0], r[2]]);
      expect(expected.length).toBeGreaterThan(0);
      expect(doc.tables[0].rows).toEqual(expected);

      const sync = site.sim.seen.filter((r) => r.url === '/api/tap/sync');
      expect(sync).toHaveLength(1);
      expect(sync[0].headers.authorization).toBe(`Bearer ${RSP_TEST_TOKEN}`);
      const discovery = site.sim.seen.filter((r) => r.url.startsWith('/repertoire/'));
      expect(discovery).toHaveLength(1);
      expect(discovery[0].headers.authorization).toBeUndefined();
    });

    it('runs an async query on ssotap to COMPLETED, with the token as HTTP Basic', async () => {
      const adapter = createRspAdapter(http);
      const ctx = context(site, { kind: 'basic', username: 'x-oauth-basic', password: RSP_TEST_TOKEN });
      const { siteJobId, status } = await adapter.submitQuery!(ctx, {
        adql: 'SELECT ssObjectId, numObs FROM dp03_catalogs_10yr.SSObject WHERE numObs > 800 ORDER BY ssObjectId',
        service: 'ssotap',
        mode: 'async',
      });
      expect(siteJobId.startsWith(`${site.url}/api/ssotap/async/`)).toBe(true);
      // It runs 200 ms after creation: a loaded machine may see it COMPLETED already.
      expect(['QUEUED', 'EXECUTING', 'COMPLETED']).toContain(status.state);
      const s = finished(status) ? status : await waitUntil(() => adapter.jobStatus!(ctx, siteJobId), finished, { intervalMs: 25 });
      expect(s).toMatchObject({ state: 'COMPLETED', resultUrl: expect.stringMatching(/results\/result$/) });
      const doc = await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body);
      const expected = simRows(SSOBJECT).filter((r) => (r[2] as number) > 800).map((r) => [r[0], r[2]]);
      expect(expected.length).toBeGreaterThan(0);
      expect(doc.tables[0].rows).toEqual(expected);

      const tapCalls = site.sim.seen.filter((r) => r.url.startsWith('/api/'));
      expect(tapCalls.map((r) => r.url)).toEqual(expect.arrayContaining(['/api/ssotap/async', expect.stringMatching(/^\/api\/ssotap\/async\/job\d+\/results\/result$/)]));
      for (const r of tapCalls) expect(String(r.headers.authorization)).toMatch(/^Basic /);
    }, WAITING_TEST_MS);

    it('cancels an async job: ABORTED', async () => {
      const adapter = createRspAdapter(http);
      const ctx = context(site);
      const { siteJobId } = await adapter.submitQuery!(ctx, { adql: 'SELECT * FROM dp02_dc2_catalogs.Source', service: 'tap', mode: 'async' });
      await adapter.cancelJob!(ctx, siteJobId);
      expect((await adapter.jobStatus!(ctx, siteJobId)).state).toBe('ABORTED');
      expect(await failureKind(adapter.jobResult!(ctx, siteJobId))).toBe('UPSTREAM');
    });

    it('refuses a service the harvest would not produce, naming it and the site', async () => {
      const adapter = createRspAdapter(http);
      // ppdbtap is in discovery, but for the prompt dataset, which discoveryDatasets leaves out.
      for (const service of ['nope', 'ppdbtap', 'nublado']) {
        const err = await adapter.submitQuery!(context(site), { adql: 'SELECT 1', service, mode: 'sync' }).catch((e: unknown) => e);
        expect(isConstellationError(err) && err.kind).toBe('INVALID_ARGUMENT');
        expect((err as Error).message).toContain(`"${service}"`);
        expect((err as Error).message).toMatch(/site rsp\b/);
      }
      expect(site.sim.seen.filter((r) => r.url.startsWith('/api/'))).toEqual([]);
    });

    it('is refused by Gafaelfawr without a token (401) and with a token lacking read:tap (403)', async () => {
      const adapter = createRspAdapter(http);
      const query = { adql: 'SELECT TOP 1 objectId FROM dp1.Object', service: 'tap', mode: 'sync' } as const;
      const before = { ...site.stats };
      expect(await failureKind(adapter.submitQuery!(context(site, { kind: 'anonymous' }), query))).toBe('UPSTREAM_AUTH');
      expect(await failureKind(adapter.submitQuery!(context(site, { kind: 'bearer', token: NO_TAP_TOKEN }), { ...query, mode: 'async' }))).toBe('UPSTREAM_AUTH');
      expect(site.stats.unauthorised).toBe(before.unauthorised + 1);
      expect(site.stats.forbidden).toBe(before.forbidden + 1);
    });

    it('asks Repertoire once for several submissions, and falls back to the configured paths when it fails', async () => {
      const adapter = createRspAdapter(http);
      // Discovery wins over the configured path while it answers.
      const ctx = context(site, BEARER, { ...RSP_OPTIONS, tapPath: '/api/elsewhere' });
      const counts: number[] = [];
      for (const [service, table] of [['tap', 'dp1.Object'], ['ssotap', 'dp03_catalogs_10yr.SSObject'], ['tap', 'dp02_dc2_catalogs.Object']]) {
        const { siteJobId } = await adapter.submitQuery!(ctx, { adql: `SELECT COUNT(*) FROM ${table}`, service, mode: 'sync' });
        counts.push(Number((await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body)).tables[0].rows[0][0]));
      }
      expect(counts).toEqual([200, 200, 400]);
      expect(site.sim.seen.filter((r) => r.url.startsWith('/repertoire/'))).toHaveLength(1);
      expect(site.sim.seen.map((r) => r.url).filter((u) => u.endsWith('/sync'))).toEqual(['/api/tap/sync', '/api/ssotap/sync', '/api/tap/sync']);

      const broken = context(site, BEARER, { ...RSP_OPTIONS, discoveryPath: '/repertoire/gone' });
      const { siteJobId } = await adapter.submitQuery!(broken, { adql: 'SELECT COUNT(*) FROM dp1.Object', service: 'tap', mode: 'sync' });
      expect(Number((await readVOTableToArray((await adapter.jobResult!(broken, siteJobId)).body)).tables[0].rows[0][0])).toBe(200);
      expect(await failureKind(adapter.submitQuery!(broken, { adql: 'SELECT 1', service: 'ppdbtap', mode: 'sync' }))).toBe('UPSTREAM');
    });
  });

  describe('fault modes', () => {
    const quick = new HttpClient({ retries: 1, retryBaseMs: 5, headersTimeoutMs: 300, bodyTimeoutMs: 300 });
    afterAll(() => quick.close());

    it.each([
      ['refuse', 'UPSTREAM_UNAVAILABLE', { kind: 'refuse' } as const],
      ['500', 'UPSTREAM', { kind: 'status', status: 500 } as const],
      ['malformed XML', 'UPSTREAM_MALFORMED', { kind: 'malformed-xml' } as const],
      ['hang', 'UPSTREAM_TIMEOUT', { kind: 'hang' } as const],
    ])('%s gives a ConstellationError of kind %s', async (_name, kind, fault) => {
      await site.sim.setFault(fault);
      expect(await failureKind(createRspAdapter(quick).harvest(context(site)))).toBe(kind);
    });
  });
});

describe('RSP adapter under Gafaelfawr rate limits', () => {
  let site: RspSite;
  const http = new HttpClient({ retries: 3, retryBaseMs: 5 });

  beforeAll(async () => {
    site = await startRspSite({ rateLimit: { limit: 3, windowS: 1 } });
  });
  afterAll(async () => {
    await site?.close();
    await http.close();
  });

  it('waits out 429 + Retry-After and completes, exposing the X-RateLimit values', async () => {
    const started = Date.now();
    const outcome = (await createRspAdapter(http).harvest(context(site))) as RspHarvestOutcome;
    expect(validateCapabilityDocument(outcome.document).datasets).toHaveLength(5);
    expect(site.stats.rateLimited).toBeGreaterThan(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(outcome.rateLimit).toMatchObject({ limit: 3, resource: 'tap' });
    expect(outcome.rateLimit!.remaining).toBeLessThan(3);
    expect(outcome.rateLimit!.reset).toBeGreaterThan(Date.now() / 1000 - 5);
  });
});
