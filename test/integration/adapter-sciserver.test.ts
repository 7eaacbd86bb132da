import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { convertResult } from '../../broker/jobs/results.js';
import { HttpClient } from '../../adapters/http.js';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { createSciserverAdapter } from '../../adapters/sciserver/adapter.js';
import type { AdapterContext, SiteContainerJob, SiteQuery } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { validateCapabilityDocument } from '../../registry/model/validate.js';
import { SciserverSite } from '../sites/sciserver-site.js';
import { HOLD_MS, kindOf, pollThrough } from '../support/site-jobs.js';
import { WAITING_TEST_MS } from '../support/wait.js';

let site: SciserverSite;
let http: HttpClient;

function context(overrides: Partial<AdapterContext> = {}): AdapterContext {
  return {
    site: {
      id: 'sciserver',
      name: 'SciServer (JHU IDIES)',
      platform: 'sciserver',
      url: site.url,
      options: {
        loginUrl: `${site.url}/login-portal/keystone/v3/tokens`,
        racmUrl: `${site.url}/racm`,
        casjobsUrl: `${site.url}/CasJobs/RestApi`,
        casjobsContexts: ['DR17', 'DR16'],
        computeDomains: { 'small-jobs': 'testComputeDomain1', 'large-jobs': 'Large Jobs Domain' },
        imageRefEncoding: 'uri-component',
        computeCapacity: { 'small-jobs': { cores: 96, memoryGb: 384, maxCoresPerJob: 4, maxMemoryGbPerJob: 16 } },
      },
    },
    credential: { kind: 'header', name: 'X-Auth-Token', value: site.token },
    ...overrides,
  };
}

const job = (overrides: Partial<SiteContainerJob> = {}): SiteContainerJob => ({
  name: 'xmatch-1', image: 'SciServer%20Essentials%203.0', command: 'python', args: ['-c', 'print("hi")'],
  env: { RADIUS: '1.5', LABEL: "it's here" }, cores: 2, memoryGb: 8, gpus: 0, ...overrides,
});

beforeAll(async () => {
  site = await new SciserverSite({ stepMs: HOLD_MS }).start();
  http = new HttpClient({ retries: 2, retryBaseMs: 10, maxRetryDelayMs: 3000, connectTimeoutMs: 2000 });
});
afterAll(async () => {
  await site?.close();
  await http?.close();
});
afterEach(async () => {
  await site.setFault({ kind: 'none' });
  site.corruptJson = false;
});

describe('SciServer adapter harvest', () => {
  it('builds a valid document from RACM compute domains and CasJobs contexts', async () => {
    site.seen.length = 0;
    const meter = { bytes: 0 };
    const outcome = await createSciserverAdapter(http).harvest(context({ meter }));
    const doc = validateCapabilityDocument(outcome.document);
    expect(outcome.bytes).toBeGreaterThan(1000);
    expect(meter.bytes).toBe(outcome.bytes);

    expect(doc.services.map((s) => [s.id, s.type, s.url])).toEqual([
      ['racm', 'racm', `${site.url}/racm`],
      ['casjobs-dr17', 'casjobs', `${site.url}/CasJobs/RestApi/contexts/DR17`],
      ['casjobs-dr16', 'casjobs', `${site.url}/CasJobs/RestApi/contexts/DR16`],
    ]);
    expect(doc.services[1]).toMatchObject({ upload: false, async: true, languages: ['T-SQL'], auth: ['token-header'] });
    expect(doc.services.some((s) => s.type === 'tap')).toBe(false);

    // Mapped domain → configured pool id; the unmapped one gets a slug of its name.
    expect(doc.compute).toEqual([
      { id: 'small-jobs', kind: 'batch', service: 'racm', cores: 96, memoryGb: 384, maxCoresPerJob: 4, maxMemoryGbPerJob: 16 },
      { id: 'testcomputedomain2', kind: 'batch', service: 'racm', cores: 0, memoryGb: 0 },
    ]);
    expect(doc.images).toEqual([
      { ref: 'image', types: ['batch', 'headless'], compute: ['small-jobs', 'testcomputedomain2'] },
      { ref: 'image2', types: ['batch', 'headless'], compute: ['testcomputedomain2'] },
      { ref: 'SciServer%20Essentials%203.0', types: ['batch', 'headless'], compute: ['testcomputedomain2'] },
    ]);

    expect(doc.datasets.map((d) => [d.id, d.table, d.service, d.rows])).toEqual([
      ['dbo.photoobjall', 'dbo.PhotoObjAll', 'casjobs-dr17', 1231051050],
      ['dbo.specobjall', 'dbo.SpecObjAll', 'casjobs-dr17', 5789200],
      ['dbo.field', 'dbo.Field', 'casjobs-dr17', 938046],
      // The same dbo table in a second context is told apart by the context name.
      ['dr16.photoobjall', 'dbo.PhotoObjAll', 'casjobs-dr16', 1231051050],
      ['dbo.zoospec', 'dbo.zooSpec', 'casjobs-dr16', 667944],
    ]);
    expect(doc.datasets.every((d) => d.access.public)).toBe(true);
  });

  it('sends the Keystone token in X-Auth-Token on every request', async () => {
    site.seen.length = 0;
    await createSciserverAdapter(http).harvest(context());
    expect(site.seen.map((r) => r.url).sort()).toEqual([
      '/CasJobs/RestApi/contexts/DR16/Tables',
      '/CasJobs/RestApi/contexts/DR17/Tables',
      '/racm/jobm/rest/computedomains?batch=true&interactive=false',
    ]);
    for (const r of site.seen) {
      expect(r.headers['x-auth-token']).toBe(site.token);
      expect(r.headers.authorization).toBeUndefined();
    }
  });

  it('takes a bearer token as the Keystone token, and logs in once with a password', async () => {
    const adapter = createSciserverAdapter(http);
    validateCapabilityDocument((await adapter.harvest(context({ credential: { kind: 'bearer', token: site.token } }))).document);
    site.seen.length = 0;
    const basic = context({ credential: { kind: 'basic', username: site.user.name, password: site.user.password } });
    await adapter.harvest(basic);
    await adapter.harvest(basic);
    expect(site.seen.filter((r) => r.url === '/login-portal/keystone/v3/tokens')).toHaveLength(1);
    expect(site.seen.filter((r) => r.url.startsWith('/racm/')).every((r) => r.headers['x-auth-token'] === site.token)).toBe(true);
  });

  it('fails with UPSTREAM_AUTH without a credential, with a wrong token or a wrong password', async () => {
    site.seen.length = 0;
    expect(await kindOf(createSciserverAdapter(http).harvest(context({ credential: { kind: 'anonymous' } })))).toBe('UPSTREAM_AUTH');
    // A missing credential is known before any request is made.
    expect(site.seen).toHaveLength(0);
    expect(await kindOf(createSciserverAdapter(http).harvest(context({ credential: { kind: 'header', name: 'X-Auth-Token', value: 'expired' } })))).toBe('UPSTREAM_AUTH');
    expect(await kindOf(createSciserverAdapter(http).harvest(context({ credential: { kind: 'basic', username: 'astro', password: 'nope' } })))).toBe('UPSTREAM_AUTH');
  });
});

describe('SciServer adapter faults', () => {
  it('maps refused connections, 500s and malformed JSON to their error kinds', async () => {
    const adapter = createSciserverAdapter(http);
    await site.setFault({ kind: 'refuse' });
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM_UNAVAILABLE');
    expect((await adapter.health(context())).status).toBe('DOWN');
    await site.setFault({ kind: 'status', status: 500 });
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM');
    await site.setFault({ kind: 'none' });
    site.corruptJson = true;
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM_MALFORMED');
    site.corruptJson = false;
    await site.setFault({ kind: 'truncate', afterBytes: 40 });
    expect(await kindOf(adapter.harvest(context()))).toBe('UPSTREAM_MALFORMED');
  });

  it('rejects a domain list that is not the RACM shape', async () => {
    const saved = site.domains;
    site.domains = [{ id: 1, name: 'no endpoint' }];
    try {
      expect(await kindOf(createSciserverAdapter(http).harvest(context()))).toBe('UPSTREAM_MALFORMED');
    } finally {
      site.domains = saved;
    }
  });

  it('waits out a 429 with Retry-After and then succeeds', async () => {
    site.seen.length = 0;
    await site.setFault({ kind: 'rate-limit', retryAfterS: 1, times: 1 });
    const started = Date.now();
    const doc = validateCapabilityDocument((await createSciserverAdapter(http).harvest(context())).document);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(doc.compute).toHaveLength(2);
    expect(site.seen).toHaveLength(4);
  });

  it('reports RACM reachable as UP, even when it refuses the token', async () => {
    const adapter = createSciserverAdapter(http);
    expect(await adapter.health(context())).toEqual({ status: 'UP' });
    expect((await adapter.health(context({ credential: { kind: 'anonymous' } }))).status).toBe('UP');
  });
});

describe('SciServer adapter job hooks', () => {
  it('runs a JOBM Docker job to COMPLETED', async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    site.seen.length = 0;
    const { siteJobId, status } = await adapter.submitContainerJob!(ctx, job());
    expect(status).toEqual({ state: 'PENDING', sitePhase: 'PENDING' });
    const post = site.seen.find((r) => r.method === 'POST' && r.url === '/racm/jobm/rest/jobs/docker')!;
    expect(post.headers['x-auth-token']).toBe(site.token);
    expect(site.jobs.get(Number(siteJobId))!.body).toEqual({
      command: `env RADIUS=1.5 LABEL='it'\\''s here' python -c 'print("hi")'`,
      submitterDID: 'xmatch-1',
      dockerComputeEndpoint: 'https://alpha02.sciserver.org/compute/api/domains/6/',
      dockerImageName: 'SciServer Essentials 3.0',
      resultsFolderURI: '',
      volumeContainers: [{ name: 'vol' }, { name: 'vol2' }],
      userVolumes: [],
    });

    // JOBM flags, a step each: PENDING, QUEUED, ACCEPTED, STARTED, FINISHED, SUCCESS.
    const states = await pollThrough(() => adapter.jobStatus!(ctx, siteJobId), site.jobs.get(Number(siteJobId))!, [[1, 'QUEUED'], [3, 'EXECUTING'], [5, 'COMPLETED']]);
    expect(states.map((s) => s.state)).toEqual(expect.arrayContaining(['QUEUED', 'EXECUTING', 'COMPLETED']));
    expect(states.at(-1)).toEqual({ state: 'COMPLETED', sitePhase: 'SUCCESS', resultUrl: `/home/idies/workspace/Temporary/astro/jobs/${siteJobId}/` });
  }, WAITING_TEST_MS);

  it('cancels a job, which then reads ABORTED', async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    // "image" is offered by both domains; the first that fits the configured per-job limits is chosen.
    const { siteJobId } = await adapter.submitContainerJob!(ctx, job({ image: 'image', cores: 1, memoryGb: 2, env: {} }));
    const body = site.jobs.get(Number(siteJobId))!.body;
    expect(body.dockerComputeEndpoint).toBe('https://alpha02.sciserver.org/compute/api/domains/1/');
    expect(body.userVolumes).toEqual([{ userVolumeId: 50241, needsWriteAccess: true }]);
    site.seen.length = 0;
    await adapter.cancelJob!(ctx, siteJobId);
    expect(site.seen.map((r) => `${r.method} ${r.url}`)).toEqual([`POST /racm/jobm/rest/jobs/${siteJobId}/cancel`]);
    expect(await adapter.jobStatus!(ctx, siteJobId)).toMatchObject({ state: 'ABORTED', sitePhase: 'CANCELED' });
  });

  it('reports a failed job as ERROR with the JOBM message', async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    const { siteJobId } = await adapter.submitContainerJob!(ctx, job({ command: 'SIM_FAIL' , args: [] }));
    const last = (await pollThrough(() => adapter.jobStatus!(ctx, siteJobId), site.jobs.get(Number(siteJobId))!, [[5, 'ERROR']])).at(-1)!;
    expect(last).toMatchObject({ state: 'ERROR', sitePhase: 'ERROR', error: 'container exited with code 1' });
  }, WAITING_TEST_MS);

  it('refuses an image no domain offers, and reports an unknown job as NOT_FOUND', async () => {
    const adapter = createSciserverAdapter(http);
    expect(await kindOf(adapter.submitContainerJob!(context(), job({ image: 'nope' })))).toBe('INVALID_ARGUMENT');
    expect(await kindOf(adapter.jobStatus!(context(), '999999'))).toBe('NOT_FOUND');
  });
});

const query = (overrides: Partial<SiteQuery> = {}): SiteQuery => ({ adql: 'SELECT objID FROM dbo.PhotoObjAll', service: 'casjobs-dr17', mode: 'sync', ...overrides });

async function text(body: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts).toString('utf8');
}

/** The simulated CasJobs job behind an async siteJobId, and the MyDB table it writes. */
function casjobsJobOf(siteJobId: string) {
  const m = /^casjobs:(\d+):(constellation_[a-z0-9_]+)(:ordered)?$/.exec(siteJobId);
  expect(m, siteJobId).not.toBeNull();
  return { job: site.casjobsJobs.find((j) => j.id === Number(m![1]))!, table: m![2] };
}

describe('SciServer adapter CasJobs queries', () => {
  it('runs a sync query as a CasJobs quick query and answers a VOTable with exact 64-bit ids', async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    site.seen.length = 0;
    const before = site.casjobsQueries.length;
    const { siteJobId, status } = await adapter.submitQuery!(ctx, query({
      adql: 'SELECT objID, ra, "dec", clean, flags FROM dbo.PhotoObjAll WHERE type = 3', maxrec: 2,
    }));
    expect(siteJobId).toMatch(/^casjobs-sync:/);
    expect(status).toEqual({ state: 'COMPLETED', sitePhase: 'Finished' });
    expect(site.casjobsQueries.slice(before)).toEqual([{
      context: 'DR17', query: 'SELECT TOP 2 objID, ra, [dec], clean, flags FROM dbo.PhotoObjAll WHERE type = 3',
      taskName: 'Constellation.CasJobs.query', accept: 'application/json+array',
    }]);
    expect(site.seen.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /CasJobs/RestApi/contexts/DR17/query']);
    expect(site.seen[0].headers['x-auth-token']).toBe(site.token);
    expect(await adapter.jobStatus!(ctx, siteJobId)).toEqual({ state: 'COMPLETED', sitePhase: 'Finished' });

    const result = await adapter.jobResult!(ctx, siteJobId);
    expect(result.contentType).toBe('application/x-votable+xml');
    const doc = await readVOTableToArray(result.body);
    expect(doc.status).toBe('OK');
    expect(doc.tables[0].meta.fields.map((f) => [f.name, f.datatype])).toEqual([
      ['objID', 'long'], ['ra', 'double'], ['dec', 'double'], ['clean', 'boolean'], ['flags', 'long'],
    ]);
    expect(doc.tables[0].rows).toEqual([
      [1237648720693755918n, 195.0134, 2.5134, true, 268435472n],
      [1237648720693755919n, 195.0211, 2.5177, false, 68987912192n],
    ]);
    // A sync result is handed out once.
    expect(await kindOf(adapter.jobResult!(ctx, siteJobId))).toBe('NOT_FOUND');
  });

  it('infers text, empty and mixed columns, names nameless ones, and converts to JSON in the broker', async () => {
    const adapter = createSciserverAdapter(http);
    const { siteJobId } = await adapter.submitQuery!(context(), query({ adql: 'SELECT * FROM dbo.Field' }));
    const doc = await readVOTableToArray((await adapter.jobResult!(context(), siteJobId)).body);
    expect(doc.tables[0].meta.fields.map((f) => [f.name, f.datatype, f.arraysize])).toEqual([
      ['fieldID', 'long', undefined], ['run', 'long', undefined], ['mjd', 'double', undefined],
      ['quality', 'char', '*'], ['comment', 'unicodeChar', '*'], ['col6', 'char', '*'],
    ]);
    expect(doc.tables[0].rows).toEqual([
      [1237648720693690368n, 756n, 51075, null, 'Messier 49 – Virgo', '1'],
      [1237648720693755904n, 756n, 51075.5, null, null, 'x'],
    ]);

    const again = await adapter.submitQuery!(context(), query({ adql: 'SELECT objID FROM dbo.PhotoObjAll', maxrec: 1 }));
    // Compared as text: JSON.parse would round the id the way the adapter must not.
    const json = await text(convertResult(await adapter.jobResult!(context(), again.siteJobId), 'json').body);
    expect(json).toBe('{"metadata":[{"name":"objID","datatype":"long"}],"data":[\n[1237648720693755918]\n]}\n');
  });

  it('runs an async query as a CasJobs job into MyDB, to Finished, and reads the table back', async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    // The service id is matched case-insensitively.
    const { siteJobId, status } = await adapter.submitQuery!(ctx, query({
      adql: 'SELECT specObjID, class AS cls, z FROM dbo.SpecObjAll WHERE z > 0.01', service: 'CasJobs-DR17', mode: 'async',
    }));
    expect(status).toEqual({ state: 'QUEUED', sitePhase: 'Ready' });
    const { job, table } = casjobsJobOf(siteJobId);
    expect(siteJobId).toBe(`casjobs:${job.id}:${table}`);
    expect(job).toMatchObject({
      context: 'DR17', taskName: 'Constellation.CasJobs.submitJob', into: table,
      query: `SELECT specObjID, class AS cls, z INTO MyDB.${table} FROM dbo.SpecObjAll WHERE z > 0.01`,
    });

    // CasJobs Status, a step each: Ready, Started, Finished.
    const states = await pollThrough(() => adapter.jobStatus!(ctx, siteJobId), job, [[1, 'EXECUTING'], [2, 'COMPLETED']]);
    expect(states.map((s) => s.sitePhase)).toEqual(expect.arrayContaining(['Started', 'Finished']));
    for (const s of states) expect(s.state).toBe({ Ready: 'QUEUED', Started: 'EXECUTING', Finished: 'COMPLETED' }[s.sitePhase]);
    expect(states.at(-1)).toEqual({ state: 'COMPLETED', sitePhase: 'Finished' });

    const doc = await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body);
    expect(site.casjobsQueries.at(-1)).toMatchObject({ context: 'MyDB', query: `SELECT * FROM [${table}]` });
    expect(doc.tables[0].meta.fields.map((f) => [f.name, f.datatype])).toEqual([['specObjID', 'long'], ['cls', 'char'], ['z', 'double']]);
    expect(doc.tables[0].rows).toEqual([
      [299489677444933632n, 'GALAXY', 0.0321],
      [299489952322840576n, 'QSO', 1.5318],
      [299490227200747520n, 'STAR', -0.0001],
    ]);
    // Unlike a sync answer, the MyDB table can be read again.
    expect((await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body)).tables[0].rows).toHaveLength(3);
  }, WAITING_TEST_MS);

  it('keeps ORDER BY through MyDB by numbering the rows and reading them back in that order', async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    const { siteJobId } = await adapter.submitQuery!(ctx, query({ adql: 'SELECT objID, ra FROM dbo.PhotoObjAll ORDER BY ra DESC', maxrec: 2, mode: 'async' }));
    expect(siteJobId).toMatch(/:ordered$/);
    const { job, table } = casjobsJobOf(siteJobId);
    expect(job.query).toBe(`SELECT TOP 2 objID, ra, ROW_NUMBER() OVER (ORDER BY ra DESC) AS [constellation_row] INTO MyDB.${table} FROM dbo.PhotoObjAll ORDER BY ra DESC`);
    expect((await pollThrough(() => adapter.jobStatus!(ctx, siteJobId), job, [[2, 'COMPLETED']])).at(-1)?.state).toBe('COMPLETED');
    const doc = await readVOTableToArray((await adapter.jobResult!(ctx, siteJobId)).body);
    expect(site.casjobsQueries.at(-1)).toMatchObject({ context: 'MyDB', query: `SELECT * FROM [${table}] ORDER BY [constellation_row]` });
    expect(doc.tables[0].meta.fields.map((f) => f.name)).toEqual(['objID', 'ra']);
    expect(doc.tables[0].rows).toHaveLength(2);
  }, WAITING_TEST_MS);

  it('cancels an async job, which then reads ABORTED, and drops a held sync answer', async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    const { siteJobId } = await adapter.submitQuery!(ctx, query({ mode: 'async' }));
    const { job } = casjobsJobOf(siteJobId);
    site.seen.length = 0;
    await adapter.cancelJob!(ctx, siteJobId);
    expect(site.seen.map((r) => `${r.method} ${r.url}`)).toEqual([`DELETE /CasJobs/RestApi/jobs/${job.id}`]);
    expect(await adapter.jobStatus!(ctx, siteJobId)).toEqual({ state: 'ABORTED', sitePhase: 'Canceled' });
    const err = await adapter.jobResult!(ctx, siteJobId).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'UPSTREAM', message: `CasJobs job ${job.id} has no result: it is Canceled` });

    const sync = await adapter.submitQuery!(ctx, query());
    site.seen.length = 0;
    await adapter.cancelJob!(ctx, sync.siteJobId);
    expect(site.seen).toHaveLength(0);
    expect(await adapter.jobStatus!(ctx, sync.siteJobId)).toMatchObject({ state: 'ERROR' });
    expect(await kindOf(adapter.jobResult!(ctx, sync.siteJobId))).toBe('NOT_FOUND');
  });

  it("reports a failed job as ERROR with CasJobs's message, and a failed quick query as UPSTREAM", async () => {
    const adapter = createSciserverAdapter(http);
    const ctx = context();
    const { siteJobId } = await adapter.submitQuery!(ctx, query({ adql: 'SELECT SIM_FAIL FROM dbo.PhotoObjAll', mode: 'async' }));
    expect((await pollThrough(() => adapter.jobStatus!(ctx, siteJobId), casjobsJobOf(siteJobId).job, [[2, 'ERROR']])).at(-1)).toEqual({
      state: 'ERROR', sitePhase: 'Failed', error: "Invalid column name 'SIM_FAIL'.",
    });
    expect(await kindOf(adapter.submitQuery!(ctx, query({ adql: 'SELECT SIM_FAIL FROM dbo.PhotoObjAll' })))).toBe('UPSTREAM');
    expect(await kindOf(adapter.jobStatus!(ctx, 'casjobs:99999:constellation_x'))).toBe('NOT_FOUND');
  }, WAITING_TEST_MS);

  it('refuses geometry and unknown services before sending anything to the site', async () => {
    const adapter = createSciserverAdapter(http);
    // A password credential would log in first: a refusal must not get that far.
    const ctx = context({ credential: { kind: 'basic', username: site.user.name, password: site.user.password } });
    site.seen.length = 0;
    const err = await adapter.submitQuery!(ctx, query({
      adql: "SELECT objID FROM dbo.PhotoObjAll\nWHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 195, 2.5, 0.1)) = 1",
    })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConstellationError);
    expect(err).toMatchObject({ kind: 'INVALID_ARGUMENT', violations: [{ path: 'line 2, column 7', rule: 'casjobs-unsupported' }] });
    expect((err as Error).message).toMatch(/^CONTAINS: CasJobs has no ADQL geometry; .*dbo\.fGetNearbyObjEq/);
    expect(await adapter.submitQuery!(ctx, query({ service: 'casjobs-dr99', mode: 'async' })).catch((e: unknown) => e)).toMatchObject({
      kind: 'INVALID_ARGUMENT', message: 'SciServer site sciserver has no CasJobs service "casjobs-dr99"',
    });
    expect(await kindOf(adapter.submitQuery!(ctx, query({ service: 'racm' })))).toBe('INVALID_ARGUMENT');
    expect(site.seen).toHaveLength(0);
  });

  it('maps a CasJobs answer that is not JSON to UPSTREAM_MALFORMED', async () => {
    site.corruptJson = true;
    expect(await kindOf(createSciserverAdapter(http).submitQuery!(context(), query()))).toBe('UPSTREAM_MALFORMED');
  });

  it('keeps container-job ids on JOBM, which serves no result stream', async () => {
    const adapter = createSciserverAdapter(http);
    const { siteJobId } = await adapter.submitContainerJob!(context(), job({ image: 'image', cores: 1, memoryGb: 2, env: {} }));
    site.seen.length = 0;
    expect((await adapter.jobStatus!(context(), siteJobId)).sitePhase).toMatch(/^[A-Z]+$/);
    expect(site.seen.map((r) => r.url)).toEqual([`/racm/jobm/rest/jobs/${siteJobId}`]);
    expect(await kindOf(adapter.jobResult!(context(), siteJobId))).toBe('NOT_FOUND');
  });
});
