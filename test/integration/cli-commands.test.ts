/**
 * The command line as a user and a script run it: the real `constellation` in a child process
 * against a real broker on 127.0.0.1 with simulated TAP sites, so `query` returns real rows.
 * Every new command, --json parsed, --help, the exit-code table (usage, unknown job, no broker,
 * a failing job, refused publish key), --out bytes equal to the result route's, a large result
 * streamed, and site strings carrying terminal escape sequences never reaching a terminal raw.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packagePath } from '../../registry/paths.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, simRows, type SimTable, type TapService } from '../sites/tap-service.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { childEnv, runCli, type CliResult } from '../support/cli.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { logSink, registerSecret } from '../support/log-capture.js';
import { freePort } from '../support/ports.js';
import { CHILD_PATIENCE_MS, waitUntil } from '../support/wait.js';

/** Each test runs a few children; each may take CHILD_PATIENCE_MS on a loaded machine. */
const CLI_TEST_MS = 4 * CHILD_PATIENCE_MS;

const SMALL: SimTable = {
  name: 'gaiadr3.gaia_source',
  rows: 300,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'phot_g_mean_mag', datatype: 'double', unit: 'mag' },
  ],
};
// Large enough that the result is megabytes and arrives in many chunks.
const BIG: SimTable = {
  name: 'bigsurvey.sources',
  rows: 40_000,
  position: { ra: 'ra', dec: 'dec' },
  columns: [
    { name: 'id', datatype: 'int' },
    { name: 'ra', datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' },
    { name: 'dec', datatype: 'double', unit: 'deg', ucd: 'pos.eq.dec;meta.main' },
    { name: 'mag', datatype: 'double', unit: 'mag' },
    { name: 'label', datatype: 'char' },
  ],
};
// Only gamma holds it, and gamma's jobs stay queued far longer than any test: one to cancel.
const HELD: SimTable = { ...SMALL, name: 'heldsurvey.sources', rows: 50_000, heldRows: 10 };
const HELD_QUEUE_MS = 600_000;

const PUBLISH_KEY = 'pub-key-0123456789abcdef0123456789abcdef';
/** What a hostile site puts in its strings: clear the screen, set the window title, a one-byte CSI, a bidi override. */
const HOSTILE = 'evil\u001b[2J\u001b]0;pwned\u0007\u009b31m\u202e';

describe(`constellation query, plan, jobs, job, cancel, images, publish (${backend})`, () => {
  let alpha: SimSite;
  let alphaTap: TapService;
  let gamma: SimSite;
  let gammaTap: TapService;
  let broker: TestBroker;
  let dir: string;
  let federationFile: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    alpha = new SimSite();
    alphaTap = mountTapService(alpha, { path: '/tap', tables: [SMALL, BIG], maxRec: 1_000_000, asyncDelayMs: 50 });
    await alpha.start();
    gamma = new SimSite();
    gammaTap = mountTapService(gamma, { path: '/tap', tables: [HELD], asyncDelayMs: HELD_QUEUE_MS });
    await gamma.start();
    const yaml = `
federation: { name: cli-commands-test }
sites:
  - { id: alpha, name: Alpha, adapter: tap, url: "${alpha.url}/tap" }
  - { id: gamma, name: Gamma, adapter: tap, url: "${gamma.url}/tap" }
  - { id: pub, name: Published, adapter: tap, url: "https://pub.example.org", publishKeyEnv: TEST_PUB_KEY }
`;
    dir = await mkdtemp(join(tmpdir(), 'constellation-cli-commands-'));
    federationFile = join(dir, 'federation.yaml');
    await writeFile(federationFile, yaml);
    registerSecret(PUBLISH_KEY);
    broker = await startBroker(configFromYaml(yaml), undefined, { env: { TEST_PUB_KEY: PUBLISH_KEY }, jobs: { pollIntervalMs: 50, tickMs: 25, backoffBaseMs: 50, backoffMaxMs: 200 } });
    for (const id of ['alpha', 'gamma']) expect(await broker.harvest(id), id).toMatchObject({ outcome: 'OK' });
    // A TAP simulator fills its query engine (an in-process PGlite, 40,000 rows here) on its first
    // query, which takes long on a loaded machine: it happens here, not inside a test's first submit.
    const warm = await fetch(`${alpha.url}/tap/sync`, { method: 'POST', body: new URLSearchParams({ REQUEST: 'doQuery', LANG: 'ADQL', QUERY: `SELECT TOP 1 id FROM ${BIG.name}` }) });
    expect(warm.status).toBe(200);
    await warm.arrayBuffer();
    env = { CONSTELLATION_URL: broker.url, NO_COLOR: '' };
  }, CHILD_PATIENCE_MS);

  afterAll(async () => {
    await broker?.close();
    await gammaTap?.close();
    await alphaTap?.close();
    await Promise.all([alpha?.close(), gamma?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => runCli([...args, '--config', federationFile], { ...env, ...extra });
  /** The one JSON document a --json run printed on stdout (it must be exactly one). */
  const json = <T = Record<string, unknown>>(r: CliResult): T => {
    const lines = r.stdout.trim().split('\n');
    expect(lines, r.stdout).toHaveLength(1);
    return JSON.parse(lines[0]) as T;
  };
  const routeBytes = async (path: string): Promise<Buffer> => {
    const res = await fetch(`${broker.url}${path}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };

  it('--help lists every command and the exit codes; each command has its own help with an example', async () => {
    const top = await cli(['--help']);
    expect(top.code, top.stderr).toBe(0);
    for (const command of ['query', 'plan', 'jobs', 'job', 'cancel', 'images', 'publish', 'crossmatch', 'thread', 'whoami']) expect(top.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(top.stdout).toMatch(/exit codes:\n  0  ok\n  1 .*\n  2  usage error.*\n  3  cannot reach the broker\n  4  not authorised.*\n  5  not found/);
    const helps = await Promise.all(['query', 'plan', 'jobs', 'job', 'cancel', 'images', 'publish', 'crossmatch', 'whoami', 'sites'].map(async (c) => [c, await cli([c, '--help'])] as const));
    for (const [command, r] of helps) {
      expect(r.code, `${command}: ${r.stderr}`).toBe(0);
      expect(r.stdout, command).toMatch(new RegExp(`^usage: constellation ${command}`));
      expect(r.stdout, command).toMatch(new RegExp(`example:\\n  .*constellation ${command}`));
      expect(r.stdout, command).toContain('3  cannot reach the broker');
    }
  }, CLI_TEST_MS);

  it('usage errors exit 2 with a message naming the argument, and under --json one error document', async () => {
    const [noAdql, badFormat, unknownOption, extra, noDatasets, badCone, badState, badMaxrec, unknownCommand] = await Promise.all([
      cli(['query']),
      cli(['query', 'SELECT 1', '--format', 'xml', '--json']),
      cli(['jobs', '--frobnicate']),
      cli(['query', 'SELECT', '*', 'FROM', 'x']),
      cli(['plan']),
      cli(['plan', 'gaiadr3.gaia_source', '--cone', '1,2']),
      cli(['jobs', '--state', 'RUNNING']),
      cli(['query', 'SELECT 1', '--maxrec', 'lots']),
      cli(['frobnicate', '--json']),
    ]);
    expect(noAdql.code).toBe(2);
    expect(noAdql.stderr).toMatch(/CONSTELLATION_E_INVALID_ARGUMENT: ADQL is required/);
    expect(badFormat.code).toBe(2);
    expect(json(badFormat)).toEqual({ error: expect.objectContaining({ code: 'CONSTELLATION_E_INVALID_ARGUMENT', message: expect.stringMatching(/^--format must be csv, votable or json/) }), exitCode: 2 });
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toMatch(/frobnicate/);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/quote the whole query/);
    expect(noDatasets.code).toBe(2);
    expect(noDatasets.stderr).toMatch(/DATASET is required/);
    expect(badCone.code).toBe(2);
    expect(badCone.stderr).toMatch(/--cone must be RA,DEC,RADIUS/);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toMatch(/--state must be .* not "RUNNING"/);
    expect(badMaxrec.code).toBe(2);
    expect(badMaxrec.stderr).toMatch(/--maxrec must be a whole number/);
    expect(unknownCommand.code).toBe(2);
    // Nowhere to write the result: refused before anything is submitted.
    const nowhere = await cli(['query', 'SELECT TOP 1 ra FROM gaiadr3.gaia_source', '--out', join(dir, 'no-such-dir', 'x.csv')]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/--out cannot be written: ENOENT/);
    expect(nowhere.stderr).not.toMatch(/submitted/);
    expect(json(unknownCommand)).toMatchObject({ error: { code: 'CONSTELLATION_E_INVALID_ARGUMENT', message: 'unknown command "frobnicate"' }, exitCode: 2 });
    // ADQL the broker cannot parse is the caller's input too.
    const bad = await cli(['query', 'SELEKT nothing FROM', '--json']);
    expect(bad.code, bad.stderr).toBe(2);
    expect(json(bad)).toMatchObject({ error: { code: 'CONSTELLATION_E_INVALID_ARGUMENT' }, exitCode: 2 });
  }, CLI_TEST_MS);

  it('no broker answering exits 3 for every command that talks to one', async () => {
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const runs = await Promise.all([
      cli(['query', 'SELECT TOP 1 ra FROM gaiadr3.gaia_source'], { CONSTELLATION_URL: nobody }),
      cli(['plan', 'gaiadr3.gaia_source', '--json'], { CONSTELLATION_URL: nobody }),
      cli(['jobs', '--broker', nobody]),
      cli(['images', '--json', '--broker', nobody]),
      cli(['thread', '00000000-0000-4000-8000-000000000000'], { CONSTELLATION_URL: nobody }),
    ]);
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`no broker answers at ${nobody}`);
    }
    expect(json(runs[1])).toMatchObject({ error: { code: 'CONSTELLATION_E_UPSTREAM_UNAVAILABLE' }, exitCode: 3 });
    expect(json(runs[3])).toMatchObject({ exitCode: 3 });
  }, CLI_TEST_MS);

  it('query streams real rows to stdout, and --out writes the bytes the result route serves', async () => {
    const adql = 'SELECT TOP 5 source_id, ra, phot_g_mean_mag FROM gaiadr3.gaia_source ORDER BY source_id';
    const stdout = await cli(['query', adql]);
    expect(stdout.code, stdout.stderr).toBe(0);
    const [header, ...lines] = stdout.stdout.trim().split('\r\n');
    expect(header).toBe('source_id,ra,phot_g_mean_mag');
    const expected = simRows(SMALL).sort((a, b) => ((a[0] as bigint) < (b[0] as bigint) ? -1 : 1)).slice(0, 5);
    expect(lines.map((l) => l.split(',')[0])).toEqual(expected.map((r) => String(r[0])));
    const id = /^job ([0-9a-f-]{36}) submitted$/m.exec(stdout.stderr)?.[1];
    expect(id, stdout.stderr).toBeDefined();
    // Not a terminal: no progress line, no colour, no escape at all on either stream.
    expect(stdout.stderr).not.toContain('\u001b');
    expect(stdout.stdout).not.toContain('\u001b');

    for (const [format, file] of [['votable', 'five.vot'], ['json', 'five.json'], ['csv', 'five.csv']] as const) {
      const out = join(dir, file);
      const r = await cli(['query', adql, '--out', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const doc = json<{ job: { id: string; state: string; results: string }; out: string; format: string; bytes: number }>(r);
      expect(doc).toMatchObject({ job: { state: 'COMPLETED' }, out, format });
      const written = await readFile(out);
      expect(doc.bytes).toBe(written.length);
      expect(written.equals(await routeBytes(`/results/${doc.job.id}?format=${format}`))).toBe(true);
    }
    // The file is renamed into place whole: no temporary file is left beside it.
    expect((await readdir(dir)).filter((f) => f.endsWith('.part'))).toEqual([]);

    // --json without --out: the job, with its result's absolute URL, and nothing else.
    const only = await cli(['query', adql, '--format', 'json', '--json']);
    expect(only.code, only.stderr).toBe(0);
    const doc = json<{ job: { id: string; state: string; site: { id: string }; results: string } }>(only);
    expect(doc.job).toMatchObject({ state: 'COMPLETED', site: { id: 'alpha' }, results: `${broker.url}/results/${doc.job.id}?format=json` });
    expect(only.stderr).toBe('');
  }, CLI_TEST_MS);

  it('streams a large result to the file and to stdout, byte for byte', async () => {
    const adql = 'SELECT id, ra, dec, mag, label FROM bigsurvey.sources';
    const out = join(dir, 'big.csv');
    const r = await cli(['query', adql, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = json<{ job: { id: string }; bytes: number }>(r);
    const served = await routeBytes(`/results/${doc.job.id}?format=csv`);
    expect(served.length).toBeGreaterThan(2_000_000);
    const written = await readFile(out);
    expect(written.equals(served)).toBe(true);
    expect(written.toString('utf8').trim().split('\r\n')).toHaveLength(BIG.rows + 1);
    const piped = await cli(['query', adql]);
    expect(piped.code, piped.stderr).toBe(0);
    expect(Buffer.byteLength(piped.stdout)).toBe(served.length);
  }, CLI_TEST_MS);

  it('a failing job exits 1 with the site\'s message escaped; jobs and job show it, job of an unknown id exits 5', async () => {
    await alpha.setFault({ kind: 'status', status: 500, body: `database on fire ${HOSTILE}` });
    let failed: CliResult;
    try {
      failed = await cli(['query', 'SELECT TOP 3 ra FROM gaiadr3.gaia_source WHERE dec > 1']);
    } finally {
      await alpha.setFault({ kind: 'none' });
    }
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toMatch(/job [0-9a-f-]{36} ended ERROR: CONSTELLATION_E_UPSTREAM/);
    const id = /^job ([0-9a-f-]{36}) submitted$/m.exec(failed.stderr)![1];
    // Whatever the site said reaches the terminal only as printable text.
    expect(failed.stderr).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
    expect(failed.stderr).toContain('database on fire evil\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202e');

    const [list, one, oneJson, unknown, unknownJson, notUuid] = await Promise.all([
      cli(['jobs']),
      cli(['job', id]),
      cli(['job', id, '--json']),
      cli(['job', '00000000-0000-4000-8000-000000000000']),
      cli(['job', '00000000-0000-4000-8000-000000000000', '--json']),
      cli(['cancel', 'not-a-job']),
    ]);
    expect(list.code, list.stderr).toBe(0);
    // No site accepted it (alpha answered 500 at submit), so it has no site.
    expect(list.stdout).toMatch(new RegExp(`^${id}  QUERY  ERROR +- .*CONSTELLATION_E_UPSTREAM: .*database on fire evil\\\\x1b\\[2J`, 'm'));
    expect(list.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(new RegExp(`^job ${id}: ERROR$`, 'm'));
    expect(one.stdout).toMatch(/^error: +CONSTELLATION_E_UPSTREAM/m);
    expect(one.stdout).toMatch(/^history:$/m);
    expect(one.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
    expect(json(oneJson)).toMatchObject({ job: { id, state: 'ERROR', kind: 'QUERY', error: { code: expect.stringMatching(/^CONSTELLATION_E_UPSTREAM/), message: expect.stringContaining(`database on fire ${HOSTILE}`) } } });
    expect(oneJson.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toMatch(/CONSTELLATION_E_NOT_FOUND: no job 00000000-0000-4000-8000-000000000000 of yours/);
    expect(json(unknownJson)).toMatchObject({ error: { code: 'CONSTELLATION_E_NOT_FOUND' }, exitCode: 5 });
    expect([2, 5], notUuid.stderr).toContain(notUuid.code);

    const jobsJson = await cli(['jobs', '--state', 'error', '--kind', 'query', '--json']);
    expect(jobsJson.code, jobsJson.stderr).toBe(0);
    const { jobs } = json<{ jobs: { id: string; state: string }[] }>(jobsJson);
    expect(jobs.map((j) => j.id)).toContain(id);
    expect(jobs.every((j) => j.state === 'ERROR')).toBe(true);
  }, CLI_TEST_MS);

  it('cancel aborts a queued job, and shows a finished one as it is', async () => {
    const { data, errors } = await broker.graphql<{ submitQuery: { id: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id } }', { i: { adql: 'SELECT ra, dec FROM heldsurvey.sources' } });
    expect(errors).toBeUndefined();
    const id = data!.submitQuery.id;
    await waitUntil(async () => (await broker.graphql<{ job: { state: string } }>('query($id: ID!) { job(id: $id) { state } }', { id })).data!.job.state, (s) => s === 'QUEUED' || s === 'EXECUTING', { describe: (s) => `job ${id} is ${s}` });
    const cancelled = await cli(['cancel', id, '--json']);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(json(cancelled)).toMatchObject({ job: { id, state: 'ABORTED' } });
    const again = await cli(['cancel', id]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(`job ${id}: ABORTED\n`);
    const unknown = await cli(['cancel', '00000000-0000-4000-8000-000000000000', '--json']);
    expect(unknown.code).toBe(5);
    expect(json(unknown)).toMatchObject({ exitCode: 5 });
  }, CLI_TEST_MS);

  it('plan prints every site holding the data with its verdict and reasons, the chosen first, and counts the rest; --every-site lists them', async () => {
    const text = await cli(['plan', 'gaiadr3.gaia_source', '--cone', '15,5,1']);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(/^plan for gaiadr3\.gaia_source in the cone 15,5,1 \(registry version \d+\): chosen alpha$/);
    expect(lines[1]).toMatch(/^→ alpha +CHOSEN +UP +score [\d.e+-]+, ~[\d,]+ rows, [\d.]+ [kM]?B moved, wait \d+ s$/);
    // gamma and pub hold no replica: counted, and with --every-site rejected, each with its reason.
    expect(text.stdout).not.toMatch(/gamma/);
    expect(text.stdout).toMatch(/^ {2}2 other sites hold none of gaiadr3\.gaia_source \(--every-site lists them\)$/m);
    const every = await cli(['plan', 'gaiadr3.gaia_source', '--cone', '15,5,1', '--every-site']);
    expect(every.code, every.stderr).toBe(0);
    expect(every.stdout).toMatch(/^ {2}gamma +REJECTED/m);
    expect(every.stdout).toMatch(/^ {6}NO_REPLICA \(gaiadr3\.gaia_source\): /m);
    expect(every.stdout).not.toMatch(/hold none of/);
    const doc = await cli(['plan', 'gaiadr3.gaia_source', '--cone', '15,5,1', '--every-site', '--json']);
    expect(doc.code, doc.stderr).toBe(0);
    const { plan } = json<{ plan: { chosen: string; sitesWithoutData: number; candidates: { site: { id: string }; eligible: boolean; reasons: { code: string }[]; terms: unknown[] }[] } }>(doc);
    expect(plan.chosen).toBe('alpha');
    expect(plan.sitesWithoutData).toBe(2);
    expect(plan.candidates[0]).toMatchObject({ site: { id: 'alpha' }, eligible: true });
    expect(plan.candidates.map((c) => c.site.id).sort()).toEqual(['alpha', 'gamma', 'pub']);
    expect(plan.candidates.find((c) => c.site.id === 'gamma')).toMatchObject({ eligible: false, reasons: [expect.objectContaining({ code: 'NO_REPLICA' })] });
    // Nowhere to run it: the answer is shown, and the exit code says so.
    const nowhere = await cli(['plan', 'nosuch.table', '--json']);
    expect(nowhere.code, nowhere.stderr).toBe(1);
    expect(json(nowhere)).toMatchObject({ plan: { chosen: null } });
  }, CLI_TEST_MS);

  it('publish sends the document with the publish key from the environment; a wrong or missing key exits 4; images shows hostile strings escaped', async () => {
    const doc = hostileDocument();
    const image = doc.images[0];
    const file = join(dir, 'pub.json');
    await writeFile(file, JSON.stringify(doc));

    const [noKey, wrongKey, missingFile, noSite] = await Promise.all([
      cli(['publish', file, '--site', 'pub']),
      cli(['publish', file, '--site', 'pub', '--json'], { CONSTELLATION_PUBLISH_KEY: 'not-the-key' }),
      cli(['publish', join(dir, 'nothing-here.json'), '--site', 'pub']),
      cli(['publish', file]),
    ]);
    expect(noKey.code, noKey.stderr).toBe(4);
    expect(noKey.stderr).toMatch(/CONSTELLATION_E_UNAUTHENTICATED: publishing the capabilities of site "pub" needs/);
    expect(wrongKey.code, wrongKey.stderr).toBe(4);
    expect(json(wrongKey)).toMatchObject({ error: { code: 'CONSTELLATION_E_UNAUTHENTICATED' }, exitCode: 4 });
    expect(missingFile.code).toBe(2);
    expect(missingFile.stderr).toMatch(/FILE .*nothing-here\.json cannot be read/);
    expect(noSite.code).toBe(2);
    expect(noSite.stderr).toMatch(/--site is required/);

    const published = await cli(['publish', file, '--site', 'pub', '--key-env', 'MY_PUB_KEY', '--json'], { MY_PUB_KEY: PUBLISH_KEY });
    expect(published.code, published.stderr).toBe(0);
    expect(json(published)).toMatchObject({ published: { siteId: 'pub', replicas: 1 } });
    const text = await cli(['publish', file, '--site', 'pub'], { CONSTELLATION_PUBLISH_KEY: PUBLISH_KEY });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^published .*pub\.json as the capabilities of pub: 1 dataset replica\(s\)/);
    // An invalid document is the caller's input: exit 2 with every violation.
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ ...doc, schemaVersion: 2 }));
    const invalid = await cli(['publish', join(dir, 'bad.json'), '--site', 'pub'], { CONSTELLATION_PUBLISH_KEY: PUBLISH_KEY });
    expect(invalid.code, invalid.stderr).toBe(2);
    expect(invalid.stderr).toMatch(/CONSTELLATION_E_INVALID_DOCUMENT/);
    expect(invalid.stderr).toMatch(/^ {2}\/schemaVersion: /m);

    const images = await cli(['images']);
    expect(images.code, images.stderr).toBe(0);
    expect(images.stdout).toMatch(/^IMAGE +SITE +ARCH +TYPES +SOFTWARE$/m);
    expect(images.stdout).toContain('images.example.org/astro:evil\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202e');
    expect(images.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
    // --json keeps the site's string exactly (JSON escapes it), so a script sees what was published.
    const imagesJson = await cli(['images', '--site', 'pub', '--json']);
    expect(imagesJson.code, imagesJson.stderr).toBe(0);
    expect(imagesJson.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
    expect(json(imagesJson)).toEqual({ images: [expect.objectContaining({ ref: image.ref, software: image.software, site: { id: 'pub' } })] });
    // The site's name is shown by `sites`: escaped there too.
    const sites = await cli(['sites'], { HOST: '127.0.0.1', PORT: new URL(broker.url).port });
    expect(sites.code, sites.stderr).toBe(0);
    expect(sites.stdout).toContain('Published evil\\x1b[2J');
    expect(sites.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
  }, CLI_TEST_MS);

  it('--json on the existing commands: sites, datasets, thread, whoami print one JSON document', async () => {
    const at = { HOST: '127.0.0.1', PORT: new URL(broker.url).port };
    const [sites, datasets, thread, whoami] = await Promise.all([
      cli(['sites', '--json'], at),
      cli(['datasets', '--text', 'gaia', '--json'], at),
      cli(['thread', '00000000-0000-4000-8000-000000000000', '--json']),
      cli(['whoami', '--json']),
    ]);
    expect(sites.code, sites.stderr).toBe(0);
    expect(json<{ sites: { id: string }[] }>(sites).sites.map((s) => s.id)).toEqual(['alpha', 'gamma', 'pub']);
    expect(datasets.code, datasets.stderr).toBe(0);
    expect(json(datasets)).toEqual({ replicas: [expect.objectContaining({ datasetId: 'gaiadr3.gaia_source', siteId: 'alpha' })] });
    // No such thread of yours: not found, as one JSON document.
    expect(thread.code, thread.stderr).toBe(5);
    expect(json(thread)).toMatchObject({ error: { code: 'CONSTELLATION_E_NOT_FOUND' }, exitCode: 5 });
    // This federation has no identity provider: whoami says so, coded, as JSON.
    expect(whoami.code).toBe(1);
    expect(json(whoami)).toMatchObject({ error: { code: 'CONSTELLATION_E_IDENTITY_UNAVAILABLE' }, exitCode: 1 });
    const serve = await cli(['serve', '--json']);
    expect(serve.code).toBe(2);
    expect(json(serve)).toMatchObject({ error: { message: expect.stringMatching(/^serve has no --json/) } });
  }, CLI_TEST_MS);

  it('on a terminal: a progress line rewritten in place and coloured states; NO_COLOR leaves colour out; hostile strings stay escaped', async () => {
    // `script` gives the child a pseudo-terminal, as a user's shell would.
    // pub's document carries terminal escapes in an image reference and its software list.
    const put = await fetch(`${broker.url}/sites/pub/capabilities`, { method: 'PUT', headers: { 'content-type': 'application/json', 'x-publish-key': PUBLISH_KEY }, body: JSON.stringify(hostileDocument()) });
    expect(put.status).toBe(200);
    const query = await onTerminal(['query', 'SELECT ra FROM heldsurvey.sources', '--config', federationFile], { ...env }, (output) => /QUEUED at gamma, \d+\.\d s/.test(output));
    // That query's job stays QUEUED at gamma: the job lists below show it.
    const [jobs, plain, images] = await Promise.all([
      onTerminal(['jobs', '--config', federationFile], { ...env }),
      onTerminal(['jobs', '--config', federationFile], { ...env, NO_COLOR: '1' }),
      onTerminal(['images', '--config', federationFile], { ...env }),
    ]);
    // The query waits at gamma (queued for minutes): its progress line is rewritten in place; stopped once seen.
    expect(query.output).toMatch(/\r\u001b\[2KQUEUED at gamma, \d+\.\d s/);
    expect(jobs.code, jobs.output).toBe(0);
    expect(jobs.output).toMatch(/\u001b\[3[123]m(COMPLETED|ERROR|ABORTED|QUEUED)\u001b\[39m/);
    expect(plain.code, plain.output).toBe(0);
    expect(plain.output).toMatch(/ QUEUED /);
    expect(plain.output).not.toContain('\u001b');
    expect(images.code, images.output).toBe(0);
    expect(images.output).toContain('astro:evil\\x1b[2J');
    expect(images.output).not.toMatch(/[\u001b\u0007\u009b\u202e]/);
  }, CLI_TEST_MS);
});

/** Site pub's capability document, with terminal escape sequences in its name, an image reference and a software entry. */
function hostileDocument(): ReturnType<typeof documentFor> {
  const image = { ref: `images.example.org/astro:${HOSTILE}`, types: ['headless' as const], arch: 'amd64' as const, software: ['astropy=6.1', `numpy ${HOSTILE}`] };
  return documentFor('pub', [{ id: 'pubsurvey.objects', table: 'pub.objects' }], { images: [image], site: { id: 'pub', name: `Published ${HOSTILE}`, platform: 'tap', url: 'https://pub.example.org' } });
}

/**
 * Run `constellation <args>` on a pseudo-terminal (util-linux `script`); resolves with what the
 * terminal showed. With `enough`, the child is stopped once the output satisfies it.
 */
function onTerminal(args: string[], env: Record<string, string>, enough?: (output: string) => boolean): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, '--import', 'tsx', packagePath('broker/cli/run.ts'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: packagePath('.'), env: childEnv({ TERM: 'xterm', ...env }), stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let stopped = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_PATIENCE_MS);
    const take = (d: Buffer) => {
      output += d.toString('utf8');
      logSink.write(d);
      if (enough && !stopped && enough(output)) {
        stopped = true;
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
