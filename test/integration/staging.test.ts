/**
 * Staging a result into the user's own space (issue 10, point 5), over real HTTP against the
 * simulated SciServer (CasJobs MyDB), CADC/CANFAR (vault VOSpace) and Data Lab (mydb): the
 * bytes land in the space of the user the credential belongs to, sent in each platform's own
 * form; a refused credential is UPSTREAM_AUTH naming the site; hostile names and too-large
 * results are refused before anything is sent. Then end to end through a job and its record,
 * on the suite's database (PGlite or PostgreSQL).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { createTapAdapter } from '../../adapters/tap/adapter.js';
import { checkStageTarget } from '../../broker/staging/target.js';
import { stageResult, stagedToOf, Stager, type StageSite } from '../../broker/staging/stage-result.js';
import { JobService, type SiteBinding } from '../../broker/jobs/service.js';
import type { SiteCredential, SiteResult } from '../../registry/model/adapter.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import { migrate } from '../../registry/store/migrate.js';
import { claimJobStaging, jobsDueForStaging, jobStaging } from '../../registry/store/queries/job-staging.js';
import { CanfarSite } from '../sites/canfar-site.js';
import { DATALAB_TEST_TOKEN, startDatalabSite, type DatalabSite } from '../sites/datalab-site.js';
import { SciserverSite } from '../sites/sciserver-site.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable } from '../sites/tap-service.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { waitUntil } from '../support/wait.js';

// A small result as a site sends it: a value with a comma and a quote checks the CSV quoting.
const VOTABLE = `<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
  <RESOURCE type="results">
    <INFO name="QUERY_STATUS" value="OK"/>
    <TABLE>
      <FIELD name="source_id" datatype="long"/>
      <FIELD name="ra" datatype="double" unit="deg"/>
      <FIELD name="label" datatype="char" arraysize="*"/>
      <DATA><TABLEDATA>
        <TR><TD>4295806720</TD><TD>45.25</TD><TD>plain</TD></TR>
        <TR><TD>38655544960</TD><TD>45.5</TD><TD>with, comma "and quote"</TD></TR>
        <TR><TD>1275606125952</TD><TD>46</TD><TD></TD></TR>
      </TABLEDATA></DATA>
    </TABLE>
  </RESOURCE>
</VOTABLE>
`;
const CSV = 'source_id,ra,label\r\n4295806720,45.25,plain\r\n38655544960,45.5,"with, comma ""and quote"""\r\n1275606125952,46,\r\n';

/** The result as a fresh stream (each staging reads it once). */
function result(text = VOTABLE): SiteResult {
  return {
    contentType: 'application/x-votable+xml',
    body: (async function* () {
      const bytes = Buffer.from(text, 'utf8');
      // In pieces, as a site's answer arrives.
      for (let i = 0; i < bytes.length; i += 100) yield bytes.subarray(i, i + 100);
    })(),
  };
}

/** A result of about `rows` rows, for the size limit. */
function bigResult(rows: number): SiteResult {
  const tr = '<TR><TD>1</TD><TD>2.5</TD><TD>padding padding padding</TD></TR>\n';
  return result(VOTABLE.replace(/<TR>[\s\S]*<\/TR>/, tr.repeat(rows)));
}

async function failure(p: Promise<unknown>): Promise<ConstellationError> {
  try {
    await p;
  } catch (err) {
    if (isConstellationError(err)) return err as ConstellationError;
    throw err;
  }
  throw new Error('expected the call to fail');
}

const ALICE_KEYSTONE = 'keystone-alice-0c1d';
const BOB_KEYSTONE = 'keystone-bob-77e2';
const ALICE_CADC = 'cadc-alice-token-19ab';
const BOB_CADC = 'cadc-bob-token-5f0e';
const BOB_DATALAB = 'bob.2001.2001.$1$bobhash$QwErTy';

describe('staging into the user\'s own space at a site', () => {
  const http = new HttpClient({ retries: 1, retryBaseMs: 5 });
  let sciserver: SciserverSite;
  let canfar: CanfarSite;
  let datalab: DatalabSite;
  let sites: Record<'sciserver' | 'canfar' | 'datalab' | 'esa', StageSite>;

  beforeAll(async () => {
    sciserver = new SciserverSite({ token: ALICE_KEYSTONE, user: { name: 'alice', password: 'pw' } });
    sciserver.stageAccounts.set(BOB_KEYSTONE, 'bob');
    await sciserver.start();
    canfar = new CanfarSite({ token: 'skaha-only-token' });
    canfar.vaultAccounts.set(ALICE_CADC, 'alice');
    canfar.vaultAccounts.set(BOB_CADC, 'bob');
    await canfar.start();
    datalab = await startDatalabSite({ tokens: [DATALAB_TEST_TOKEN, BOB_DATALAB] });
    sites = {
      sciserver: { id: 'sciserver', name: 'SciServer', adapter: 'sciserver', url: sciserver.url, options: { casjobsUrl: `${sciserver.url}/CasJobs/RestApi` } },
      canfar: { id: 'canfar', name: 'CADC/CANFAR', adapter: 'canfar', url: canfar.registryUrl },
      datalab: { id: 'datalab', name: 'NOIRLab Astro Data Lab', adapter: 'datalab', url: datalab.url },
      esa: { id: 'esa', name: 'ESA Gaia archive', adapter: 'esa', url: 'http://127.0.0.1:9/tap-server' },
    };
  });
  afterAll(async () => {
    await sciserver?.close();
    await canfar?.close();
    await datalab?.close();
    await http.close();
  });

  it('writes a CasJobs MyDB table in the token owner\'s MyDB, with X-Auth-Token', async () => {
    const bob: SiteCredential = { kind: 'bearer', token: BOB_KEYSTONE };
    const staged = await stageResult(http, sites.sciserver, { site: 'sciserver', name: 'gaia_sample' }, result(), bob);

    expect(staged).toMatchObject({ site: 'sciserver', name: 'gaia_sample', location: 'MyDB.gaia_sample', bytes: Buffer.byteLength(CSV) });
    expect(sciserver.stagedMyDb.get('bob')?.get('gaia_sample')).toBe(CSV);
    expect(sciserver.stagedMyDb.get('alice')).toBeUndefined();
    const upload = sciserver.seen.find((r) => r.method === 'POST' && r.url.startsWith('/CasJobs/RestApi/contexts/MyDB/Tables/gaia_sample'));
    expect(upload?.headers['x-auth-token']).toBe(BOB_KEYSTONE);
    expect(upload?.headers.authorization).toBeUndefined();
    expect(upload?.url).toMatch(/\?TaskName=/);

    // A table of that name already in MyDB is the site's refusal, named.
    const again = await failure(stageResult(http, sites.sciserver, { site: 'sciserver', name: 'gaia_sample' }, result(), bob));
    expect(again.kind).toBe('UPSTREAM');
    expect(again.message).toContain('"sciserver"');
    expect(again.message).toContain('already an object named');
    expect(sciserver.stagedMyDb.get('bob')?.get('gaia_sample')).toBe(CSV);
  });

  it('writes a vault file in the credential owner\'s VOSpace home, as VOTable or CSV by its extension', async () => {
    const alice: SiteCredential = { kind: 'bearer', token: ALICE_CADC };
    const vot = await stageResult(http, sites.canfar, { site: 'canfar', name: 'm31-cone.vot' }, result(), alice);
    expect(vot).toMatchObject({ site: 'canfar', location: 'vos://cadc.nrc.ca~vault/alice/m31-cone.vot', bytes: Buffer.byteLength(VOTABLE) });
    const file = canfar.vaultFiles.get('alice')?.get('m31-cone.vot');
    expect(file?.data.toString('utf8')).toBe(VOTABLE);
    expect(file?.contentType).toBe('application/x-votable+xml');

    const csv = await stageResult(http, sites.canfar, { site: 'canfar', name: 'm31-cone.csv' }, result(), { kind: 'bearer', token: BOB_CADC });
    expect(csv.location).toBe('vos://cadc.nrc.ca~vault/bob/m31-cone.csv');
    expect(canfar.vaultFiles.get('bob')?.get('m31-cone.csv')?.data.toString('utf8')).toBe(CSV);
    expect(canfar.vaultFiles.get('alice')?.has('m31-cone.csv')).toBe(false);

    // whoami, the transfer and the put each carried the user's own bearer token.
    const calls = canfar.seen.filter((r) => /^\/(ac\/whoami|vault\/(synctrans|xfer|put))/.test(r.url));
    expect(calls.map((r) => r.url.split('/').slice(1, 3).join('/'))).toEqual(expect.arrayContaining(['ac/whoami', 'vault/synctrans', 'vault/xfer', 'vault/put']));
    for (const r of calls) expect([`Bearer ${ALICE_CADC}`, `Bearer ${BOB_CADC}`]).toContain(r.headers.authorization);
    // The public VOSI documents got no credential.
    for (const r of canfar.seen.filter((x) => x.url.endsWith('/capabilities') || x.url.endsWith('resource-caps'))) expect(r.headers.authorization).toBeUndefined();
  });

  it('loads a Data Lab mydb table in the token owner\'s MyDB through the transfer area and import, with X-DL-AuthToken', async () => {
    const staged = await stageResult(http, sites.datalab, { site: 'datalab', name: 'my_gaia' }, result(), { kind: 'header', name: 'X-DL-AuthToken', value: BOB_DATALAB });
    expect(staged).toMatchObject({ site: 'datalab', location: 'mydb://my_gaia', bytes: Buffer.byteLength(CSV) });
    expect(datalab.mydb.get('bob')?.get('my_gaia')).toBe(CSV);
    expect(datalab.mydb.get('someuser')).toBeUndefined();
    const xfer = datalab.sim.seen.find((r) => r.url === '/storage/xfer');
    expect(xfer?.headers['x-dl-authtoken']).toBe(BOB_DATALAB);
    expect(xfer?.headers['x-dl-initxfer']).toBe('True');
    const load = datalab.sim.seen.find((r) => r.url.startsWith('/query/import?'));
    expect(new URL(load!.url, 'http://x').searchParams.get('table')).toBe('my_gaia');
    expect(load?.headers['x-dl-authtoken']).toBe(BOB_DATALAB);

    // A bearer credential is sent as Data Lab's header; the anonymous token has no MyDB.
    await stageResult(http, sites.datalab, { site: 'datalab', name: 'second' }, result(), { kind: 'bearer', token: DATALAB_TEST_TOKEN });
    expect(datalab.mydb.get('someuser')?.get('second')).toBe(CSV);
    const anon = await failure(stageResult(http, sites.datalab, { site: 'datalab', name: 'third' }, result(), { kind: 'anonymous' }));
    expect(anon.kind).toBe('UPSTREAM_AUTH');
    expect(anon.message).toContain('linkSiteCredential');
  });

  it('a credential the site refuses is UPSTREAM_AUTH naming the site and what to do, and writes nothing', async () => {
    const cases: [StageSite, string, SiteCredential][] = [
      [sites.sciserver, 'refused_t', { kind: 'bearer', token: 'keystone-expired' }],
      [sites.canfar, 'refused.vot', { kind: 'bearer', token: 'cadc-expired' }],
      [sites.datalab, 'refused_t', { kind: 'header', name: 'X-DL-AuthToken', value: 'mallory.1.1.forged' }],
    ];
    for (const [site, name, credential] of cases) {
      const err = await failure(stageResult(http, site, { site: site.id, name }, result(), credential));
      expect(err.kind, site.id).toBe('UPSTREAM_AUTH');
      expect(err.code).toBe('CONSTELLATION_E_UPSTREAM_AUTH');
      expect(err.message).toContain(`site "${site.id}"`);
      expect(err.message).toMatch(/linkSiteCredential|log in again/);
      // No token in the message, not even the refused one.
      expect(err.message).not.toContain(credential.kind === 'bearer' ? credential.token : credential.kind === 'header' ? credential.value : '-');
    }
    expect([...sciserver.stagedMyDb.values()].some((t) => t.has('refused_t'))).toBe(false);
    expect([...canfar.vaultFiles.values()].some((f) => f.has('refused.vot'))).toBe(false);
    expect([...datalab.mydb.values()].some((t) => t.has('refused_t'))).toBe(false);
  });

  it('refuses hostile names with INVALID_ARGUMENT naming stageTo.name, before sending anything', async () => {
    const tableNames = ['', 'x; DROP TABLE users', "t' OR '1'='1", 'MyDB..t', 'a-b', '[t]', '1table', 'with space', 't\u0000', 'a'.repeat(64), 'dbo.t', 'tab"le'];
    const fileNames = ['', '../../alice/steal.vot', '..', '.hidden', 'a/b.vot', '/etc/passwd', 'bob%2Fx.vot', 'x?y=1', 'x#y', 'x\\y.vot', 'a'.repeat(129), 'name..vot', 'sp ace.vot'];
    const before = sciserver.seen.length + canfar.seen.length + datalab.sim.seen.length;
    const credential: SiteCredential = { kind: 'bearer', token: BOB_KEYSTONE };
    for (const [site, names] of [[sites.sciserver, tableNames], [sites.datalab, tableNames], [sites.canfar, fileNames]] as const) {
      for (const name of names) {
        const err = await failure(stageResult(http, site, { site: site.id, name }, result(), credential));
        expect(err.kind, `${site.id} ${JSON.stringify(name)}`).toBe('INVALID_ARGUMENT');
        expect(err.violations[0]?.path).toBe('stageTo.name');
        // The same rule at submit time, naming the field.
        const atSubmit = await failure(Promise.resolve().then(() => checkStageTarget({ site: site.id, name }, Object.values(sites))));
        expect(atSubmit.kind).toBe('INVALID_ARGUMENT');
        expect(atSubmit.message.startsWith('stageTo.name ')).toBe(true);
      }
    }
    expect(sciserver.seen.length + canfar.seen.length + datalab.sim.seen.length).toBe(before);

    // Sites: one not in the federation, one whose platform has no user space to write.
    const unknown = await failure(Promise.resolve().then(() => checkStageTarget({ site: 'nowhere', name: 't' }, Object.values(sites))));
    expect(unknown.kind).toBe('UNKNOWN_SITE');
    expect(unknown.violations[0]?.path).toBe('stageTo.site');
    const noSpace = await failure(Promise.resolve().then(() => checkStageTarget({ site: 'esa', name: 't' }, Object.values(sites))));
    expect(noSpace.kind).toBe('INVALID_ARGUMENT');
    expect(noSpace.message).toMatch(/^stageTo\.site .*no user space/);
    expect(checkStageTarget({ site: 'canfar', name: 'ok-file_1.vot' }, Object.values(sites))).toEqual({ site: 'canfar', name: 'ok-file_1.vot' });
    expect(checkStageTarget(undefined, Object.values(sites))).toBeUndefined();
  });

  it('refuses a result over the staging limit with PAYLOAD_TOO_LARGE, writing nothing', async () => {
    const before = sciserver.seen.length + canfar.seen.length + datalab.sim.seen.length;
    const targets: [StageSite, string, SiteCredential][] = [
      [sites.sciserver, 'too_big', { kind: 'bearer', token: BOB_KEYSTONE }],
      [sites.canfar, 'too-big.vot', { kind: 'bearer', token: BOB_CADC }],
      [sites.datalab, 'too_big', { kind: 'bearer', token: BOB_DATALAB }],
    ];
    for (const [site, name, credential] of targets) {
      const err = await failure(stageResult(http, site, { site: site.id, name }, bigResult(2000), credential, { maxBytes: 16 * 1024 }));
      expect(err.kind, site.id).toBe('PAYLOAD_TOO_LARGE');
      expect(err.message).toContain('16384 bytes');
      expect(err.message).toContain(`"${site.id}"`);
    }
    expect(sciserver.seen.length + canfar.seen.length + datalab.sim.seen.length).toBe(before);
    // Under the limit the same size goes through.
    const ok = await stageResult(http, sites.sciserver, { site: 'sciserver', name: 'big_enough' }, bigResult(2000), { kind: 'bearer', token: BOB_KEYSTONE }, { maxBytes: 1024 * 1024 });
    expect(ok.bytes).toBeGreaterThan(16 * 1024);
    expect(sciserver.stagedMyDb.get('bob')?.get('big_enough')?.split('\r\n').length).toBe(2002);
  });

  it('a result that is not a VOTable is UPSTREAM_MALFORMED and is not written', async () => {
    const err = await failure(stageResult(http, sites.sciserver, { site: 'sciserver', name: 'html_page' }, result('<html><body>maintenance</body></html>'), { kind: 'bearer', token: BOB_KEYSTONE }));
    expect(err.kind).toBe('UPSTREAM_MALFORMED');
    expect(sciserver.stagedMyDb.get('bob')?.has('html_page')).toBe(false);
  });

  describe(`through a job and its record (${backend})`, () => {
    const TABLE: SimTable = {
      name: 'gaia.dr3lite',
      rows: 120,
      position: { ra: 'ra', dec: 'dec' },
      columns: [
        { name: 'source_id', datatype: 'long' },
        { name: 'ra', datatype: 'double', unit: 'deg' },
        { name: 'dec', datatype: 'double', unit: 'deg' },
      ],
    };
    const ADQL = 'SELECT source_id, ra, dec FROM gaia.dr3lite WHERE ra < 15';
    let db: TestDatabase;
    let source: SimSite;
    let jobs: JobService;
    const linked = new Map<string, SiteCredential>();

    beforeAll(async () => {
      db = await freshDatabase();
      await migrate(db.pool);
      source = new SimSite();
      mountTapService(source, { path: '/tap', tables: [TABLE] });
      await source.start();
      const tap = createTapAdapter(http.forSite({ siteId: 'src', url: `${source.url}/tap` }));
      const resolve = (): SiteBinding => ({ adapter: tap, context: { site: { id: 'src', name: 'src', platform: 'tap', url: `${source.url}/tap` }, credential: { kind: 'anonymous' } } });
      jobs = new JobService(db.pool, resolve, { pollIntervalMs: 50, tickMs: 25 });
    });
    afterAll(async () => {
      await jobs?.stop();
      await source?.close();
      await db?.close();
    });

    function stager(maxBytes?: number): Stager {
      return new Stager({
        pool: db.pool,
        http,
        jobs,
        sites: Object.values(sites),
        maxBytes,
        credentialFor: async (job, siteId) => {
          const c = linked.get(`${job.owner}@${siteId}`);
          if (!c) throw new ConstellationError('UPSTREAM_AUTH', `no ${siteId} credential is linked for ${job.owner}: link one with linkSiteCredential`);
          return c;
        },
      });
    }

    async function completedJob(owner: string, stageTo?: { site: string; name: string }) {
      const job = await jobs.submit({
        kind: 'QUERY',
        owner,
        request: { adql: ADQL, ...(stageTo ? { stageTo } : {}) },
        candidates: [{ siteId: 'src', siteQuery: { adql: ADQL, service: 'tap', mode: 'sync' } }],
      });
      expect(job.state).toBe('COMPLETED');
      return job;
    }

    it('stages the job\'s result with its owner\'s credential and records where it went, once', async () => {
      linked.set('bob@canfar', { kind: 'bearer', token: BOB_CADC });
      const job = await completedJob('bob', { site: 'canfar', name: 'job-result.csv' });
      const record = await stager().stageCompleted(job);

      expect(record).toMatchObject({ jobId: job.id, siteId: 'canfar', name: 'job-result.csv', state: 'DONE', location: 'vos://cadc.nrc.ca~vault/bob/job-result.csv', errorCode: null });
      const csv = canfar.vaultFiles.get('bob')?.get('job-result.csv')?.data.toString('utf8') ?? '';
      const expected = simRows(TABLE).filter((r) => (r[1] as number) < 15);
      expect(csv.split('\r\n')[0]).toBe('source_id,ra,dec');
      expect(csv.trimEnd().split('\r\n')).toHaveLength(expected.length + 1);
      expect(record!.bytes).toBe(Buffer.byteLength(csv));

      const stagedTo = await stagedToOf(db.pool, job);
      expect(stagedTo).toMatchObject({ site: 'canfar', name: 'job-result.csv', state: 'DONE', location: 'vos://cadc.nrc.ca~vault/bob/job-result.csv', error: null });
      expect(stagedTo!.at).toBeInstanceOf(Date);

      // A second call (another broker, a repeated hook) finds the record and writes nothing.
      const puts = canfar.seen.filter((r) => r.method === 'PUT').length;
      expect(await stager().stageCompleted(job)).toMatchObject({ state: 'DONE', location: record!.location });
      expect(canfar.seen.filter((r) => r.method === 'PUT').length).toBe(puts);
    });

    it('resume stages a job whose broker stopped before staging or died while staging, and leaves one being staged alone', async () => {
      linked.set('erin@sciserver', { kind: 'bearer', token: ALICE_KEYSTONE });
      const never = await completedJob('erin', { site: 'sciserver', name: 'never_started' });
      const died = await completedJob('erin', { site: 'sciserver', name: 'died_midway' });
      const busy = await completedJob('erin', { site: 'sciserver', name: 'being_staged' });
      // A broker that died holding `died` (its lease ran out) and one still staging `busy`.
      expect(await claimJobStaging(db.pool, died.id, 'sciserver', 'died_midway', 1)).toBe(true);
      expect(await claimJobStaging(db.pool, busy.id, 'sciserver', 'being_staged', 600_000)).toBe(true);
      await waitUntil(async () => (await jobsDueForStaging(db.pool, 100)).includes(died.id), Boolean, { describe: () => 'the dead lease to run out' });

      expect(await stager().resume(100)).toBeGreaterThanOrEqual(2);
      expect(await jobStaging(db.pool, never.id)).toMatchObject({ state: 'DONE', location: 'MyDB.never_started' });
      expect(await jobStaging(db.pool, died.id)).toMatchObject({ state: 'DONE', location: 'MyDB.died_midway' });
      expect(await jobStaging(db.pool, busy.id)).toMatchObject({ state: 'STAGING', location: null });
      expect(sciserver.stagedMyDb.get('alice')?.has('never_started')).toBe(true);
      expect(sciserver.stagedMyDb.get('alice')?.has('being_staged') ?? false).toBe(false);
      expect(await jobsDueForStaging(db.pool, 100)).not.toContain(never.id);
    });

    it('a job without stageTo is left alone', async () => {
      const job = await completedJob('bob');
      expect(await stager().stageCompleted(job)).toBeUndefined();
      expect(await jobStaging(db.pool, job.id)).toBeUndefined();
      expect(await stagedToOf(db.pool, job)).toBeNull();
    });

    it('records a refusal or a missing credential with its coded error, keeping the job COMPLETED, and never uses another user\'s credential', async () => {
      linked.set('carol@sciserver', { kind: 'bearer', token: 'keystone-revoked' });
      const refused = await completedJob('carol', { site: 'sciserver', name: 'carol_t' });
      const r1 = await stager().stageCompleted(refused);
      expect(r1).toMatchObject({ state: 'FAILED', errorCode: 'CONSTELLATION_E_UPSTREAM_AUTH', location: null });
      expect(r1!.errorMessage).toContain('site "sciserver"');
      expect(r1!.errorMessage).not.toContain('keystone-revoked');
      expect((await stagedToOf(db.pool, refused))?.error?.code).toBe('CONSTELLATION_E_UPSTREAM_AUTH');
      expect((await jobs.get(refused.id))?.state).toBe('COMPLETED');

      // dave has linked nothing for datalab: bob's link is not used for him.
      linked.set('bob@datalab', { kind: 'bearer', token: BOB_DATALAB });
      const unlinked = await completedJob('dave', { site: 'datalab', name: 'dave_t' });
      const r2 = await stager().stageCompleted(unlinked);
      expect(r2).toMatchObject({ state: 'FAILED', errorCode: 'CONSTELLATION_E_UPSTREAM_AUTH' });
      expect(datalab.mydb.get('bob')?.has('dave_t') ?? false).toBe(false);

      const tooBig = await completedJob('bob', { site: 'datalab', name: 'bob_big' });
      const r3 = await stager(64).stageCompleted(tooBig);
      expect(r3).toMatchObject({ state: 'FAILED', errorCode: 'CONSTELLATION_E_PAYLOAD_TOO_LARGE' });
      expect(datalab.mydb.get('bob')?.has('bob_big') ?? false).toBe(false);
    });
  });
});
