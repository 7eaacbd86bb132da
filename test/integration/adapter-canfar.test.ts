import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCanfarAdapter } from '../../adapters/canfar/adapter.js';
import { HttpClient } from '../../adapters/http.js';
import type { AdapterContext } from '../../registry/model/adapter.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';
import { CanfarSite, SIM_CLUSTER } from '../sites/canfar-site.js';
import { HOLD_MS, kindOf, pollThrough } from '../support/site-jobs.js';
import { WAITING_TEST_MS } from '../support/wait.js';

let site: CanfarSite;
let http: HttpClient;

function context(overrides: Partial<AdapterContext> = {}): AdapterContext {
  return {
    site: {
      id: 'canfar',
      name: 'CADC / CANFAR Science Platform',
      platform: 'canfar',
      url: site.registryUrl,
      options: {
        resources: { skaha: 'ivo://cadc.nrc.ca/skaha', argus: 'ivo://cadc.nrc.ca/argus', youcat: 'ivo://cadc.nrc.ca/youcat', arc: 'ivo://cadc.nrc.ca/arc' },
      },
    },
    credential: { kind: 'bearer', token: site.token },
    ...overrides,
  };
}

beforeAll(async () => {
  site = await new CanfarSite({ pendingMs: HOLD_MS, runningMs: HOLD_MS }).start();
  http = new HttpClient({ retries: 2, retryBaseMs: 10, maxRetryDelayMs: 3000, connectTimeoutMs: 2000 });
});
afterAll(async () => {
  await site?.close();
  await http?.close();
});
afterEach(async () => {
  await site.setFault({ kind: 'none' });
  site.corruptJson = false;
  site.available = true;
});

describe('CANFAR adapter harvest', () => {
  it('builds a valid document from resource-caps, VOSI capabilities, skaha v1 and argus tables', async () => {
    site.seen.length = 0;
    const meter = { bytes: 0 };
    const outcome = await createCanfarAdapter(http).harvest(context({ meter }));
    const doc = validateCapabilityDocument(outcome.document);
    expect(outcome.bytes).toBeGreaterThan(1000);
    expect(meter.bytes).toBe(outcome.bytes);

    // arc is configured but the registry does not list it, so it is skipped.
    expect(doc.services.map((s) => [s.id, s.type])).toEqual([['skaha', 'skaha'], ['argus', 'tap'], ['youcat', 'tap']]);
    const skaha = doc.services.find((s) => s.id === 'skaha')!;
    expect(skaha.url).toBe(`${site.url}/skaha`);
    expect(skaha.auth).toEqual(['cookie', 'x509', 'bearer']);
    const argus = doc.services.find((s) => s.id === 'argus')!;
    expect(argus).toMatchObject({ url: `${site.url}/argus`, upload: true, async: true, maxRec: 20000000, uploadLimitBytes: 100000000, languages: ['ADQL-2.0'] });
    expect(argus.auth).toEqual(['anonymous', 'cookie', 'x509']);
    expect(doc.services.find((s) => s.id === 'youcat')!.auth).toEqual(['cookie', 'x509', 'bearer']);

    const free = SIM_CLUSTER.cores - SIM_CLUSTER.baseRequestedCores;
    for (const [id, kind] of [['batch', 'batch'], ['notebook', 'notebook']] as const) {
      expect(doc.compute.find((c) => c.id === id)).toEqual({
        id, kind, service: 'skaha', cores: 512, memoryGb: 4096, freeCores: free, freeMemoryGb: 3096,
        maxWalltimeS: 345600, maxCoresPerJob: 16, maxMemoryGbPerJob: 192, gpus: 2,
      });
    }

    expect(doc.images).toEqual([
      { ref: 'images.canfar.net/skaha/astroml:24.07', types: ['notebook', 'headless'], digest: `sha256:${'a1'.repeat(32)}`, compute: ['notebook', 'batch'] },
      { ref: 'images.canfar.net/skaha/base-notebook:latest', types: ['notebook'], digest: `sha256:${'b2'.repeat(32)}`, compute: ['notebook'] },
      { ref: 'images.canfar.net/skaha/terminal:1.1.2', types: ['headless'], digest: `sha256:${'c3'.repeat(32)}`, compute: ['batch'] },
      { ref: 'images.canfar.net/skaha/desktop:1.0', types: ['desktop'], compute: [] },
      { ref: 'images.canfar.net/skaha/carta:4.1', types: ['carta'], digest: `sha256:${'d4'.repeat(32)}`, compute: ['notebook'] },
    ]);

    // Local names exactly as argus spells them; tap_schema is not a dataset.
    expect(doc.datasets.map((d) => [d.id, d.table, d.service, d.access.public])).toEqual([
      ['caom2.observation', 'caom2.Observation', 'argus', true],
      ['caom2.plane', 'caom2.Plane', 'argus', true],
      ['ivoa.obscore', 'ivoa.ObsCore', 'argus', true],
    ]);
    const obs = doc.datasets[0];
    expect(obs.columns?.map((c) => c.name)).toEqual(['obsID', 'collection', 'observationID', 'target_name', 'instrument_name']);
    expect(obs.columns?.[0]).toMatchObject({ name: 'obsID', datatype: 'char', ucd: 'meta.id;meta.main', description: 'UUID' });
    expect(doc.datasets[2].position).toEqual({ ra: 's_ra', dec: 's_dec' });
  });

  it('sends the bearer token and X-Skaha-Authentication-Type to skaha only', async () => {
    site.seen.length = 0;
    await createCanfarAdapter(http).harvest(context());
    const skahaV1 = site.seen.filter((r) => r.url.startsWith('/skaha/v1/'));
    expect(skahaV1.map((r) => r.url).sort()).toEqual(['/skaha/v1/context', '/skaha/v1/image', '/skaha/v1/session?view=stats']);
    for (const r of skahaV1) {
      expect(r.headers.authorization).toBe(`Bearer ${site.token}`);
      expect(r.headers['x-skaha-authentication-type']).toBe('OIDC');
    }
    // The registry, VOSI documents and public argus tables never see the token.
    const others = site.seen.filter((r) => !r.url.startsWith('/skaha/v1/'));
    expect(others.map((r) => r.url)).toEqual(expect.arrayContaining(['/reg/resource-caps', '/skaha/capabilities', '/argus/capabilities', '/argus/tables']));
    for (const r of others) expect(r.headers.authorization).toBeUndefined();
  });

  it('reads resource-caps from options.resourceCaps when given', async () => {
    site.seen.length = 0;
    const ctx = context();
    ctx.site = { ...ctx.site, url: 'http://127.0.0.1:1/not-used', options: { resourceCaps: `${site.url}/reg/resource-caps` } };
    const doc = validateCapabilityDocument((await createCanfarAdapter(http).harvest(ctx)).document);
    // Without `resources`, the defaults are skaha and argus.
    expect(doc.services.map((s) => s.id)).toEqual(['skaha', 'argus']);
  });

  it('fails with UPSTREAM_AUTH without a credential or with a wrong token', async () => {
    expect(await kindOf(createCanfarAdapter(http).harvest(context({ credential: { kind: 'anonymous' } })))).toBe('UPSTREAM_AUTH');
    expect(await kindOf(createCanfarAdapter(http).harvest(context({ credential: { kind: 'bearer', token: 'wrong' } })))).toBe('UPSTREAM_AUTH');
  });
});

describe('CANFAR adapter faults', () => {
  it('maps refused connections, 500s, malformed XML and malformed JSON to their error kinds', async () => {
    const adapter = createCanfarAdapter(http);
    await site.setFault({ kind: 'refuse' });
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM_UNAVAILABLE');
    await site.setFault({ kind: 'status', status: 500 });
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM');
    await site.setFault({ kind: 'malformed-xml' });
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM_MALFORMED');
    await site.setFault({ kind: 'none' });
    site.corruptJson = true;
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM_MALFORMED');
  });

  it('waits out a 429 with Retry-After and then succeeds', async () => {
    site.seen.length = 0;
    await site.setFault({ kind: 'rate-limit', retryAfterS: 1, times: 1 });
    const started = Date.now();
    const outcome = await createCanfarAdapter(http).harvest(context());
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(validateCapabilityDocument(outcome.document).compute).toHaveLength(2);
    expect(site.seen.filter((r) => r.url === '/reg/resource-caps')).toHaveLength(2);
  });
});

describe('CANFAR adapter job hooks', () => {
  it('runs a headless session to COMPLETED, rounding resources up to skaha options', async () => {
    const adapter = createCanfarAdapter(http);
    const ctx = context();
    const { siteJobId, status } = await adapter.submitContainerJob!(ctx, {
      name: 'My Job #1: x-match', image: 'images.canfar.net/skaha/astroml:24.07', command: 'python',
      args: ['-m', 'crossmatch'], env: { RADIUS: '1.5', LABEL: 'a b=c' }, cores: 3, memoryGb: 5, gpus: 0,
    });
    expect(status.state).toBe('QUEUED');
    const s = site.sessions.get(siteJobId)!;
    expect(s).toMatchObject({ name: 'my-job-1-x-matc', type: 'headless', cores: 4, ram: 8, cmd: 'python', args: '-m crossmatch', env: ['RADIUS=1.5', 'LABEL=a b=c'] });
    const post = site.seen.find((r) => r.method === 'POST' && r.url.startsWith('/skaha/v1/session'))!;
    expect(post.headers.authorization).toBe(`Bearer ${site.token}`);
    expect(post.headers['x-skaha-authentication-type']).toBe('OIDC');

    // skaha: Pending, Running, Succeeded.
    const states = await pollThrough(() => adapter.jobStatus!(ctx, siteJobId), s, [[0, 'QUEUED'], [1, 'EXECUTING'], [2, 'COMPLETED']]);
    expect(states.at(-1)).toEqual({ state: 'COMPLETED', sitePhase: 'Succeeded' });
    expect(states.map((x) => x.state)).toEqual(expect.arrayContaining(['QUEUED', 'EXECUTING', 'COMPLETED']));
  }, WAITING_TEST_MS);

  it('reports a failed session as ERROR', async () => {
    const adapter = createCanfarAdapter(http);
    const ctx = context();
    const { siteJobId } = await adapter.submitContainerJob!(ctx, {
      name: 'fails', image: 'images.canfar.net/skaha/terminal:1.1.2', command: 'false', args: [], env: { SIM_FAIL: '1' }, cores: 1, memoryGb: 1, gpus: 0,
    });
    const last = (await pollThrough(() => adapter.jobStatus!(ctx, siteJobId), site.sessions.get(siteJobId)!, [[2, 'ERROR']])).at(-1)!;
    expect(last.state).toBe('ERROR');
    expect(last.sitePhase).toBe('Error');
    expect(last.error).toContain(siteJobId);
  }, WAITING_TEST_MS);

  it('cancels a session with DELETE', async () => {
    const adapter = createCanfarAdapter(http);
    const ctx = context();
    const { siteJobId } = await adapter.submitContainerJob!(ctx, {
      name: 'to-cancel', image: 'images.canfar.net/skaha/astroml:24.07', command: 'sleep', args: ['600'], env: {}, cores: 1, memoryGb: 2, gpus: 0,
    });
    expect((await adapter.jobStatus!(ctx, siteJobId)).state).toBe('QUEUED');
    site.seen.length = 0;
    await adapter.cancelJob!(ctx, siteJobId);
    expect(site.seen.map((r) => `${r.method} ${r.url}`)).toEqual([`DELETE /skaha/v1/session/${siteJobId}`]);
    expect(site.sessions.has(siteJobId)).toBe(false);
    expect(await kindOf(adapter.jobStatus!(ctx, siteJobId))).toBe('NOT_FOUND');
    // Cancelling again is harmless.
    await adapter.cancelJob!(ctx, siteJobId);
  });

  it('refuses resources beyond the largest skaha option', async () => {
    const adapter = createCanfarAdapter(http);
    expect(await kindOf(adapter.submitContainerJob!(context(), {
      name: 'big', image: 'images.canfar.net/skaha/astroml:24.07', command: 'true', args: [], env: {}, cores: 32, memoryGb: 4, gpus: 0,
    }))).toBe('INVALID_ARGUMENT');
  });
});

describe('CANFAR adapter health', () => {
  it('reads skaha availability', async () => {
    const adapter = createCanfarAdapter(http);
    expect(await adapter.health(context())).toEqual({ status: 'UP' });
    site.available = false;
    expect(await adapter.health(context())).toEqual({ status: 'DOWN', message: 'scheduled maintenance' });
    site.available = true;
    await site.setFault({ kind: 'refuse' });
    expect((await adapter.health(context())).status).toBe('DOWN');
  });
});
