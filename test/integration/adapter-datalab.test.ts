import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HttpClient } from '../../adapters/http.js';
import { createDatalabAdapter, parseNameList, type DatalabHarvestOutcome } from '../../adapters/datalab/adapter.js';
import type { AdapterContext, SiteCredential } from '../../registry/model/adapter.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';
import { isConstellationError, type ErrorKind } from '../../registry/model/errors.js';
import { DATALAB_ANONYMOUS, DATALAB_TABLES, DATALAB_TEST_TOKEN, startDatalabSite, type DatalabSite } from '../sites/datalab-site.js';
import { simRows } from '../sites/tap-service.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

/** A final state: the limit of a wait for one (PATIENCE_MS) only guards against a job that never ends. */
const finished = (s: { state: string }): boolean => ['COMPLETED', 'ERROR', 'ABORTED'].includes(s.state);

// The options the default federation gives the datalab site.
const federation = parse(readFileSync(new URL('../../federation.yaml', import.meta.url), 'utf8')) as { sites: { id: string; options: Record<string, unknown> }[] };
const DATALAB_OPTIONS = federation.sites.find((s) => s.id === 'datalab')!.options;
const USER: SiteCredential = { kind: 'header', name: 'X-DL-AuthToken', value: DATALAB_TEST_TOKEN };

function context(site: DatalabSite, credential: SiteCredential = { kind: 'anonymous' }): AdapterContext {
  return { site: { id: 'datalab', name: 'NOIRLab Astro Data Lab', platform: 'datalab', url: site.url, options: DATALAB_OPTIONS }, credential, meter: { bytes: 0 } };
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

describe('Data Lab adapter against a simulated Data Lab', () => {
  let site: DatalabSite;
  const http = new HttpClient({ retries: 2, retryBaseMs: 5 });

  beforeAll(async () => {
    // Async jobs stay QUEUED long enough for a cancel to catch them.
    site = await startDatalabSite({ asyncDelayMs: 200 });
  });
  afterEach(async () => {
    await site.sim.setFault({ kind: 'none' });
    site.sim.seen.length = 0;
  });
  afterAll(async () => {
    await site?.close();
    await http.close();
  });

  it('harvests /tap over VOSI and the query manager into a valid document', async () => {
    const ctx = context(site);
    const outcome = (await createDatalabAdapter(http).harvest(ctx)) as DatalabHarvestOutcome;
    const doc = validateCapabilityDocument(outcome.document);

    expect(doc.site).toMatchObject({ id: 'datalab', platform: 'datalab', url: site.url });
    expect(doc.services.map((s) => [s.id, s.type, s.url])).toEqual([
      ['tap', 'tap', `${site.url}/tap`],
      ['query', 'dlquery', `${site.url}/query`],
    ]);
    expect(doc.services[0]).toMatchObject({ standardId: 'ivo://ivoa.net/std/TAP', upload: true, async: true, maxRec: 1000000, uploadLimitBytes: 100000000, auth: ['anonymous', 'token-header'] });
    expect(doc.services[1]).toMatchObject({ languages: ['ADQL', 'SQL'], auth: ['token-header'] });

    expect(doc.datasets.map((d) => [d.id, d.service, d.table])).toEqual([
      ['gaia_dr3.gaia_source', 'tap', 'gaia_dr3.gaia_source'],
      ['ls_dr10.tractor', 'tap', 'ls_dr10.tractor'],
      ['allwise.source', 'tap', 'allwise.source'],
    ]);
    for (const d of doc.datasets) {
      expect(d.access).toEqual({ public: true, groups: [] });
      expect(d.position).toEqual({ ra: 'ra', dec: 'dec' });
    }
    expect(doc.datasets[0].rows).toBe(1811709771);
    expect(doc.datasets[0].columns!.map((c) => c.name)).toEqual(['source_id', 'ra', 'dec', 'parallax', 'phot_g_mean_mag']);
    expect(doc.datasets[1].columns!.find((c) => c.name === 'type')).toMatchObject({ datatype: 'char', arraysize: '*' });
    expect(doc.compute).toEqual([]);
    expect(doc.images).toEqual([]);

    expect(outcome.queryProfiles).toEqual(['default', 'db01', 'db02']);
    expect(outcome.queryServices).toEqual(['ivoa_tap', 'ls_dr10_scs', 'gaia_dr3_scs']);
    expect(outcome.bytes).toBe(ctx.meter!.bytes);
    expect(outcome.bytes).toBeGreaterThan(0);

    // With no credential of its own the broker speaks as Data Lab's anonymous user.
    expect(site.sim.seen.length).toBeGreaterThanOrEqual(4);
    for (const r of site.sim.seen) {
      expect(r.headers['x-dl-authtoken']).toBe(DATALAB_ANONYMOUS);
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  it('sends a linked token in X-DL-AuthToken, also when given as a bearer', async () => {
    const adapter = createDatalabAdapter(http);
    for (const credential of [USER, { kind: 'bearer', token: DATALAB_TEST_TOKEN } as const]) {
      site.sim.seen.length = 0;
      validateCapabilityDocument((await adapter.harvest(context(site, credential))).document);
      expect(site.sim.seen.filter((r) => r.url.startsWith('/tap/')).length).toBeGreaterThanOrEqual(2);
      for (const r of site.sim.seen) {
        expect(r.headers['x-dl-authtoken']).toBe(DATALAB_TEST_TOKEN);
        expect(r.headers.authorization).toBeUndefined();
      }
    }
  });

  it('simulates the real token rules: /query/query refuses the anonymous token, /auth/isValidToken answers text', async () => {
    const query = `${site.url}/query/query?sql=${encodeURIComponent('SELECT ra, dec FROM gaia_dr3.gaia_source LIMIT 1')}`;
    expect((await fetch(query, { headers: { 'X-DL-AuthToken': DATALAB_ANONYMOUS } })).status).toBe(401);
    expect((await fetch(query)).status).toBe(401);
    // /tap takes queries without a token, but not with one the AuthManager does not know.
    const tapSync = `${site.url}/tap/sync?LANG=ADQL&QUERY=${encodeURIComponent('SELECT TOP 1 ra FROM gaia_dr3.gaia_source')}`;
    expect((await fetch(tapSync)).status).toBe(200);
    expect((await fetch(tapSync, { headers: { 'X-DL-AuthToken': 'someone.1.1.bogus' } })).status).toBe(401);
    const ok = await fetch(query, { headers: { 'X-DL-AuthToken': DATALAB_TEST_TOKEN } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^source_id,ra,dec/);
    expect(await (await fetch(`${site.url}/auth/isValidToken`, { headers: { 'X-DL-AuthToken': DATALAB_TEST_TOKEN } })).text()).toBe('True');
    expect(await (await fetch(`${site.url}/auth/isValidToken`, { headers: { 'X-DL-AuthToken': 'someone.1.1.bogus' } })).text()).toBe('False');
  });

  it('reads query-manager listings as JSON or text', () => {
    expect(parseNameList('["default", {"name": "db01"}]')).toEqual(['default', 'db01']);
    expect(parseNameList('{"ivoa_tap": "https://x/tap"}')).toEqual(['ivoa_tap']);
    expect(parseNameList('default, db01\n')).toEqual(['default', 'db01']);
    expect(parseNameList('')).toEqual([]);
  });

  it('reports UP health from /tap/availability, and DOWN on a 503', async () => {
    const adapter = createDatalabAdapter(http);
    expect(await adapter.health(context(site))).toEqual({ status: 'UP' });
    expect(site.sim.seen.map((r) => r.url)).toEqual(['/tap/availability']);
    await site.sim.setFault({ kind: 'status', status: 503 });
    expect(await adapter.health(context(site))).toMatchObject({ status: 'DOWN', message: expect.stringContaining('UPSTREAM_UNAVAILABLE') });
  });

  describe('job hooks', () => {
    const tapCalls = () => site.sim.seen.filter((r) => r.url.startsWith('/tap/'));

    it('runs a sync query on /tap as the anonymous user, as the harvest does', async () => {
      const adapter = createDatalabAdapter(http);
      const ctx = context(site);
      const { siteJobId, status } = await adapter.submitQuery!(ctx, {
        adql: 'SELECT source_id, dec FROM gaia_dr3.gaia_source WHERE dec > 60 ORDER BY source_id',
        service: 'tap',
        mode: 'sync',
      });
      expect(status.state).toBe('COMPLETED');
      const doc = await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body);
      const expected = simRows(DATALAB_TABLES[0]).filter((r) => (r[2] as number) > 60).map((r) => [r[0], r[2]]);
      expect(expected.length).toBeGreaterThan(0);
      expect(doc.tables[0].rows).toEqual(expected);
      expect(tapCalls().map((r) => [r.url, r.headers['x-dl-authtoken']])).toEqual([['/tap/sync', DATALAB_ANONYMOUS]]);
    });

    it('runs an async query to COMPLETED with the user token in X-DL-AuthToken (also when given as a bearer)', async () => {
      const adapter = createDatalabAdapter(http);
      for (const credential of [USER, { kind: 'bearer', token: DATALAB_TEST_TOKEN } as const]) {
        site.sim.seen.length = 0;
        const ctx = context(site, credential);
        const { siteJobId, status } = await adapter.submitQuery!(ctx, {
          adql: 'SELECT ls_id, mag_g FROM ls_dr10.tractor WHERE mag_g < 12 ORDER BY ls_id',
          service: 'tap',
          mode: 'async',
        });
        expect(siteJobId.startsWith(`${site.url}/tap/async/`)).toBe(true);
        const s = finished(status) ? status : await waitUntil(() => adapter.jobStatus!(ctx, siteJobId), finished, { intervalMs: 25 });
        expect(s.state).toBe('COMPLETED');
        const doc = await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body);
        const expected = simRows(DATALAB_TABLES[1]).filter((r) => (r[4] as number) < 12).map((r) => [r[0], r[4]]);
        expect(expected.length).toBeGreaterThan(0);
        expect(doc.tables[0].rows).toEqual(expected);
        expect(tapCalls().map((r) => r.url)).toEqual(expect.arrayContaining(['/tap/async', expect.stringMatching(/^\/tap\/async\/job\d+\/results\/result$/)]));
        for (const r of tapCalls()) {
          expect(r.headers['x-dl-authtoken']).toBe(DATALAB_TEST_TOKEN);
          expect(r.headers.authorization).toBeUndefined();
        }
      }
    }, WAITING_TEST_MS);

    it('cancels an async job: ABORTED', async () => {
      const adapter = createDatalabAdapter(http);
      const ctx = context(site, USER);
      const { siteJobId } = await adapter.submitQuery!(ctx, { adql: 'SELECT * FROM allwise.source', service: 'tap', mode: 'async' });
      await adapter.cancelJob!(ctx, siteJobId);
      expect((await adapter.jobStatus!(ctx, siteJobId)).state).toBe('ABORTED');
      expect(await failureKind(adapter.jobResult!(ctx, siteJobId))).toBe('UPSTREAM');
    });

    it('refuses any service but tap (the query manager is not TAP), naming it and the site', async () => {
      const adapter = createDatalabAdapter(http);
      for (const service of ['query', 'nope']) {
        const err = await adapter.submitQuery!(context(site), { adql: 'SELECT 1', service, mode: 'sync' }).catch((e: unknown) => e);
        expect(isConstellationError(err) && err.kind).toBe('INVALID_ARGUMENT');
        expect((err as Error).message).toContain(`"${service}"`);
        expect((err as Error).message).toMatch(/site datalab\b/);
      }
      expect(site.sim.seen).toEqual([]);
    });

    it('sends the token it holds: one the AuthManager does not know is refused at /tap', async () => {
      const adapter = createDatalabAdapter(http);
      const bogus = context(site, { kind: 'bearer', token: 'someone.1.1.bogus' });
      expect(await failureKind(adapter.submitQuery!(bogus, { adql: 'SELECT TOP 1 ra FROM allwise.source', service: 'tap', mode: 'sync' }))).toBe('UPSTREAM_AUTH');
      expect(await failureKind(adapter.submitQuery!(bogus, { adql: 'SELECT TOP 1 ra FROM allwise.source', service: 'tap', mode: 'async' }))).toBe('UPSTREAM_AUTH');
      expect(tapCalls().map((r) => [r.url, r.headers['x-dl-authtoken']])).toEqual([
        ['/tap/sync', 'someone.1.1.bogus'],
        ['/tap/async', 'someone.1.1.bogus'],
      ]);
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
      expect(await failureKind(createDatalabAdapter(quick).harvest(context(site)))).toBe(kind);
    });
  });
});
