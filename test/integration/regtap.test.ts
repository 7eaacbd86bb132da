/**
 * The registry as RegTAP 1.1 (the rr schema at /tap): the queries pyvo's registry search sends
 * (pyvo 1.2's keyword/servicetype/datamodel form, and the later constraint form with
 * ivo_string_agg, GROUP BY and spatial MOC constraints), protected replicas absent for callers
 * outside their groups, and hostile input (quotes in keywords, ADQL errors, bad MOCs) answered
 * with VOTable error documents. Against the DaCHS peer as a member, pyvo itself (Debian's
 * /usr/bin/python3) finds the DaCHS Gaia table by keyword, service type and position, and not
 * outside its coverage; skipped, saying why, when DaCHS or pyvo is absent.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import { SMoc } from '../../registry/coverage/moc.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { registerSecret } from '../support/log-capture.js';
import { BROKER_AUDIENCE, startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';
import { CHILD_PATIENCE_MS, WAITING_TEST_MS } from '../support/wait.js';

const DACHS = process.env.CONSTELLATION_DACHS_URL ?? 'http://127.0.0.1:8080/tap';
const PYTHON = '/usr/bin/python3';

/** The ADQL pyvo 1.2's registry.search(keywords=[word], servicetype='tap') sends (regtap.py), for one keyword. */
function pyvo12Search(word: string): string {
  const k = word.replace(/'/g, "''");
  return `SELECT DISTINCT rr.interface.*, rr.capability.*, rr.resource.*
    FROM rr.capability
    NATURAL JOIN rr.interface
    NATURAL JOIN rr.resource
    WHERE intf_role = 'std' AND rr.interface.ivoid IN (
                SELECT isub0.ivoid FROM rr.res_subject AS isub0
                WHERE isub0.res_subject ILIKE '%${k}%'
                 UNION 
                SELECT ires0.ivoid FROM rr.resource AS ires0
                WHERE 1=ivo_hasword(ires0.res_description, '${k}')
                OR 1=ivo_hasword(ires0.res_title, '${k}')
                ) AND standard_id IN ('ivo://ivoa.net/std/tap')`;
}

/** The ADQL later pyvo (rtcons.build_regtap_query) sends for registry.search(spatial=…) with the given condition. */
function pyvoSpatial(condition: string): string {
  const sep = "':::py VO sep:::'";
  return `SELECT ivoid, res_type, short_name, res_title, content_level, res_description, reference_url, creator_seq, content_type, source_format, region_of_regard, waveband,
  ivo_string_agg(COALESCE(access_url, ''), ${sep}) AS access_urls,
  ivo_string_agg(COALESCE(standard_id, ''), ${sep}) AS standard_ids,
  ivo_string_agg(COALESCE(intf_type, ''), ${sep}) AS intf_types,
  ivo_string_agg(COALESCE(intf_role, ''), ${sep}) AS intf_roles
FROM rr.resource
NATURAL LEFT OUTER JOIN rr.capability
NATURAL LEFT OUTER JOIN rr.interface
NATURAL LEFT OUTER JOIN rr.stc_spatial
WHERE (${condition})
GROUP BY ivoid, res_type, short_name, res_title, content_level, res_description, reference_url, creator_seq, content_type, source_format, region_of_regard, waveband`;
}

function unescapeXml(s: string): string {
  return s.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** Run a command to its end (a nonzero exit is an answer, not a failure). */
function run(cmd: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

// The Gaia-like patch: 5° around (180, 0); a southern one around (300, −30).
const NORTH_MOC = SMoc.fromCone(180, 0, 5, 6).toAscii();
const SOUTH_MOC = SMoc.fromCone(300, -30, 3, 5).toAscii();
const HOSTILE_TITLE = `O'Brien's "quoted" 100% _survey_ \\ <b>bold</b>`;

describe(`RegTAP 1.1 at /tap (${backend})`, () => {
  let idp: TestOidcProvider;
  let broker: TestBroker;
  const tokens: Record<string, string> = {};

  async function sync(query: string, user?: string): Promise<Response> {
    return fetch(`${broker.url}/tap/sync`, {
      method: 'POST',
      headers: user ? { authorization: `Bearer ${tokens[user]}` } : {},
      body: new URLSearchParams({ LANG: 'ADQL', REQUEST: 'doQuery', QUERY: query }),
    });
  }
  /** The rows of a query that must succeed, as objects by column name (the first of a repeated name). */
  async function rows(query: string, user?: string): Promise<Record<string, unknown>[]> {
    const res = await sync(query, user);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(res.status, Buffer.from(body).toString('utf8').slice(0, 2000)).toBe(200);
    const table = (await readVOTableToArray([body])).tables[0];
    const names = table.meta.fields.map((f) => f.name);
    return table.rows.map((r) => {
      const o: Record<string, unknown> = {};
      names.forEach((n, i) => {
        if (!(n in o)) o[n] = r[i];
      });
      return o;
    });
  }
  async function errorOf(query: string): Promise<{ status: number; message: string }> {
    const res = await sync(query);
    const text = await res.text();
    expect(text).toContain('<INFO name="QUERY_STATUS" value="ERROR">');
    return { status: res.status, message: unescapeXml(/value="ERROR">([^<]*)</.exec(text)![1]) };
  }
  const ivoids = (list: Record<string, unknown>[]) => [...new Set(list.map((r) => r.ivoid as string))].sort();

  beforeAll(async () => {
    idp = await startOidcProvider();
    broker = await startBroker(configFromYaml(`
federation: { name: regtap }
registration: { open: true }
identity: { issuer: ${idp.issuer}, audience: ${BROKER_AUDIENCE}, anonymous: submit }
sites: []
`));
    for (const user of ['alice', 'bob'] as const) registerSecret((tokens[user] = await idp.tokenFor(user)));
    const publish = (site: string, doc: ReturnType<typeof documentFor>) => broker.app.services.publisher.publish(site, doc, 'publish');
    await publish('north', documentFor('north', [{ id: 'gaia_dr3.gaia_source', table: 'gaiadr3.gaia_source', title: 'Gaia DR3 source catalogue', description: 'Astrometry and photometry of stars.', coverage: NORTH_MOC, rows: 1_811_709_771 }]));
    await publish('south', documentFor('south', [
      { id: 'ps1_dr2.mean_object', table: 'dbo.MeanObjectView', title: 'Pan-STARRS1 DR2 mean objects', coverage: SOUTH_MOC },
      { id: 'odd.table', table: 'odd.t', title: HOSTILE_TITLE },
    ]));
    // A protected replica for the gaia-team group (alice is in it, bob is not), covering the whole sky.
    await publish('vault', documentFor('vault', [{ id: 'secret.targets', table: 'vault.targets', title: 'Secret Gaia follow-up targets', coverage: '0/0-11', access: { public: false, groups: ['gaia-team'] } }]));
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
    await idp?.close();
  });

  it('publishes the rr tables in /tap/tables and TAP_SCHEMA', async () => {
    const tables = await (await fetch(`${broker.url}/tap/tables`)).text();
    for (const t of ['resource', 'capability', 'interface', 'res_table', 'table_column', 'res_detail', 'res_subject', 'res_role', 'stc_spatial']) expect(tables).toContain(`<name>rr.${t}</name>`);
    const listed = await rows("SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'rr'");
    expect(listed.map((r) => r.table_name)).toContain('rr.stc_spatial');
  });

  it("answers pyvo 1.2's keyword and service-type search with the replica, its standard id and this service's URL", async () => {
    const found = await rows(pyvo12Search('gaia'));
    expect(ivoids(found)).toEqual(['ivo://constellation/north/tap/gaia_dr3.gaia_source']);
    expect(found[0]).toMatchObject({ standard_id: 'ivo://ivoa.net/std/tap', access_url: `${broker.url}/tap`, intf_role: 'std', res_type: 'vs:catalogresource' });
    expect(found[0].res_title).toBe('Gaia DR3 source catalogue (Site north)');
    // The table is described under its canonical name, with its columns.
    const tables = await rows("SELECT t.table_name, t.nrows, c.name, c.ucd FROM rr.res_table AS t NATURAL JOIN rr.table_column AS c WHERE t.ivoid = 'ivo://constellation/north/tap/gaia_dr3.gaia_source'");
    expect(tables.map((r) => r.name).sort()).toEqual(['dec', 'ra']);
    expect(tables[0]).toMatchObject({ table_name: 'gaia_dr3.gaia_source', nrows: 1_811_709_771n });
    // Each member service is a resource too, at the site's own URL.
    const services = await rows("SELECT ivoid, access_url FROM rr.interface NATURAL JOIN rr.capability WHERE standard_id = 'ivo://ivoa.net/std/tap' AND access_url LIKE 'https://%'");
    expect(services.map((r) => `${r.ivoid} ${r.access_url}`).sort()).toEqual([
      'ivo://constellation/north/tap https://north.example.org/tap', 'ivo://constellation/south/tap https://south.example.org/tap', 'ivo://constellation/vault/tap https://vault.example.org/tap',
    ]);
  });

  it('finds the federation itself by the RegTAP data model, and supports the other ivo_ functions', async () => {
    const regtap = await rows("SELECT ivoid FROM rr.res_detail WHERE detail_xpath = '/capability/dataModel/@ivo-id' AND 1 = ivo_nocasematch(detail_value, 'ivo://ivoa.net/std/RegTAP#1.%')");
    expect(ivoids(regtap)).toEqual(['ivo://constellation/tap']);
    const words = await rows("SELECT ivoid, ivo_hashlist_has('optical#radio', 'Radio') AS has, ivo_splitindex('a#b#c', '#', 2) AS part FROM rr.resource WHERE ivoid = 'ivo://constellation/tap'");
    expect(words).toEqual([{ ivoid: 'ivo://constellation/tap', has: 1, part: 'b' }]);
  });

  it('evaluates spatial constraints against each replica MOC: inside, outside, point, intersects', async () => {
    const spatial = async (cond: string) => ivoids(await rows(pyvoSpatial(cond)));
    expect(await spatial('1 = CONTAINS(MOC(6, CIRCLE(180.0, 1.0, 0.5)), coverage)')).toEqual(['ivo://constellation/north/tap/gaia_dr3.gaia_source']);
    expect(await spatial('1 = CONTAINS(MOC(6, POINT(300.0, -30.0)), coverage)')).toEqual(['ivo://constellation/south/tap/ps1_dr2.mean_object']);
    // Far from both: nothing public (the protected all-sky replica is invisible to an anonymous caller).
    expect(await spatial('1 = CONTAINS(MOC(6, CIRCLE(30.0, 60.0, 1.0)), coverage)')).toEqual([]);
    // A circle larger than the northern patch is not contained in it, but intersects it.
    expect(await spatial('1 = CONTAINS(MOC(6, CIRCLE(180.0, 0.0, 10.0)), coverage)')).toEqual([]);
    expect(await spatial('1 = INTERSECTS(coverage, CIRCLE(180.0, 0.0, 10.0))')).toEqual(['ivo://constellation/north/tap/gaia_dr3.gaia_source']);
    expect(await spatial(`1 = CONTAINS(coverage, MOC('${SMoc.fromCone(180, 0, 20, 4).toAscii()}'))`)).toEqual(['ivo://constellation/north/tap/gaia_dr3.gaia_source']);
    // Negated: every replica with a coverage that does not hold the point; NULL coverage is neither.
    expect(await spatial('0 = CONTAINS(POINT(180.0, 0.0), coverage)')).toEqual(['ivo://constellation/south/tap/ps1_dr2.mean_object']);
  });

  it('shows a protected replica only to callers in its group', async () => {
    const q = "SELECT r.ivoid, s.coverage FROM rr.resource AS r NATURAL JOIN rr.stc_spatial AS s WHERE 1 = ivo_hasword(r.res_title, 'secret')";
    expect(ivoids(await rows(q, 'alice'))).toEqual(['ivo://constellation/vault/tap/secret.targets']);
    expect(await rows(q, 'bob')).toEqual([]);
    expect(await rows(q)).toEqual([]);
    expect(await rows("SELECT table_name FROM rr.res_table WHERE table_name = 'secret.targets'", 'bob')).toEqual([]);
    // Spatially, too: the all-sky protected replica holds every point, for alice only.
    expect(ivoids(await rows(pyvoSpatial('1 = CONTAINS(MOC(6, POINT(30.0, 60.0)), coverage)'), 'alice'))).toEqual(['ivo://constellation/vault/tap/secret.targets']);
    expect(await rows(pyvoSpatial('1 = CONTAINS(MOC(6, POINT(30.0, 60.0)), coverage)'), 'bob')).toEqual([]);
  });

  it('takes keywords with quotes and SQL as text: they match only what they say', async () => {
    expect(ivoids(await rows(pyvo12Search("O'Brien's")))).toEqual(['ivo://constellation/south/tap/odd.table']);
    const odd = await rows("SELECT res_title FROM rr.resource WHERE ivoid = 'ivo://constellation/south/tap/odd.table'");
    expect(odd[0].res_title).toBe(`${HOSTILE_TITLE} (Site south)`);
    for (const word of ["x' OR '1'='1", "%' OR 1=1 --", '\\', "'); DROP TABLE sites; --"]) expect(await rows(pyvo12Search(word))).toEqual([]);
    expect((await rows('SELECT COUNT(*) AS n FROM rr.resource'))[0].n).toBeGreaterThan(4n);
  });

  it('answers ADQL errors against rr with VOTable error documents', async () => {
    const unknownColumn = await errorOf('SELECT no_such_column FROM rr.resource');
    expect(unknownColumn.status).toBe(400);
    expect(unknownColumn.message).toMatch(/no_such_column/);
    expect((await errorOf('SELECT * FROM rr.no_such_table')).message).toMatch(/rr\.no_such_table.*not a table of this service/);
    expect((await errorOf("SELECT ivoid FROM rr.resource WHERE res_title = 'unterminated")).status).toBe(400);
    expect((await errorOf('SELECT ivoid FROM rr.stc_spatial WHERE 1 = CONTAINS(MOC(99, POINT(1, 2)), coverage)')).message).toMatch(/order must be an integer from 0 to 29/);
    expect((await errorOf("SELECT ivoid FROM rr.stc_spatial WHERE 1 = CONTAINS(MOC('7/x'), coverage)")).message).toMatch(/not a MOC 2.0 ASCII string/);
    expect((await errorOf('SELECT ivoid FROM rr.stc_spatial WHERE 1 = CONTAINS(POLYGON(1, 2, 3, 4, 5, 6), coverage)')).message).toMatch(/POLYGON and BOX are not supported/);
    expect((await errorOf('SELECT ivoid FROM rr.stc_spatial WHERE 1 = CONTAINS(POINT(1, 95), coverage)')).message).toMatch(/dec from -90 to 90/);
    expect((await errorOf('SELECT ivoid FROM rr.resource WHERE 1 = ivo_no_such_function(ivoid)')).message).toMatch(/ivo_no_such_function/);
    expect((await errorOf('SELECT r.ivoid FROM rr.resource AS r JOIN gaia_dr3.gaia_source AS g ON r.ivoid = g.ra')).status).toBe(400);
  });
});

const up = await (async () => {
  try {
    return (await fetch(`${DACHS}/availability`, { signal: AbortSignal.timeout(30_000) })).ok;
  } catch {
    return false;
  }
})();
const hasPyvo = up && existsSync(PYTHON) && (await run(PYTHON, ['-c', 'import pyvo'], 60_000)).code === 0;
if (!up) console.warn(`RegTAP pyvo check skipped: no DaCHS TAP service answers at ${DACHS} (run test/peers/up.sh)`);
else if (!hasPyvo) console.warn(`RegTAP pyvo check skipped: ${PYTHON} with pyvo is absent`);

// pyvo 1.2 has registry.search(keywords, servicetype, waveband, datamodel) and no spatial
// argument; there the spatial query is the one later pyvo's Spatial constraint builds, sent
// through pyvo's own RegistryQuery. With a later pyvo, registry.search(spatial=…) itself is used.
const PYVO_SCRIPT = String.raw`
import inspect, json, sys
import pyvo
from pyvo.registry import regtap
url = sys.argv[1]
def ids(res): return sorted(set(r.ivoid for r in res))
def spatial(ra, dec, r):
    if 'spatial' in inspect.signature(pyvo.registry.search).parameters:
        return ids(pyvo.registry.search(spatial=(ra, dec, r)))
    q = """SELECT ivoid, res_type, short_name, res_title, res_description, ivo_string_agg(COALESCE(access_url, ''), ':::py VO sep:::') AS access_urls,
  ivo_string_agg(COALESCE(standard_id, ''), ':::py VO sep:::') AS standard_ids
FROM rr.resource NATURAL LEFT OUTER JOIN rr.capability NATURAL LEFT OUTER JOIN rr.interface NATURAL LEFT OUTER JOIN rr.stc_spatial
WHERE (1 = CONTAINS(MOC(6, CIRCLE(%r, %r, %r)), coverage))
GROUP BY ivoid, res_type, short_name, res_title, res_description""" % (float(ra), float(dec), float(r))
    return ids(regtap.RegistryQuery(url, q).execute())
out = {'pyvo': pyvo.__version__}
out['keyword'] = ids(pyvo.registry.search(keywords=['gaia']))
out['servicetype'] = ids(pyvo.registry.search(servicetype='tap'))
out['both'] = ids(pyvo.registry.search(keywords='gaia', servicetype='table'))
out['inside'] = spatial(181.0, 1.0, 0.5)
out['outside'] = spatial(30.0, 60.0, 0.5)
found = [r for r in pyvo.registry.search(keywords='gaia', servicetype='tap') if r.ivoid == 'ivo://constellation/dachs/tap/gaia.gaia_source']
out['access_url'] = found[0].access_url if found else None
out['rows'] = len(found[0].service.run_sync('SELECT TOP 3 source_id FROM gaia.gaia_source').to_table()) if found else None
print(json.dumps(out))
`;

describe.skipIf(!hasPyvo)(`pyvo.registry.search against the broker with DaCHS as its member (${backend})`, () => {
  let broker: TestBroker;
  beforeAll(async () => {
    // DaCHS's Gaia-like table fills 10° × 10° around (180, 0) (/work/shared/peers/rd/gaia); a TAP harvest learns no coverage, so the federation file gives it.
    const coverage = SMoc.fromCone(180, 0, 7.1, 5).toAscii();
    broker = await startBroker(configFromYaml(`
federation: { name: regtap-peers }
sites:
  - id: dachs
    name: GAVO DaCHS peer
    adapter: tap
    url: "${DACHS}"
    datasets:
      gaia.gaia_source: { id: gaia.gaia_source, coverage: "${coverage}" }
`), undefined, { jobs: { pollIntervalMs: 200 } });
    const harvest = await broker.harvest('dachs');
    expect(harvest.outcome, harvest.errorMessage ?? '').toBe('OK');
  }, CHILD_PATIENCE_MS);
  afterAll(async () => {
    await broker?.close();
  });

  it('finds the DaCHS Gaia table by keyword, by service type and inside its coverage, not outside; its service answers', async () => {
    const res = await run(PYTHON, ['-c', PYVO_SCRIPT, `${broker.url}/tap`], CHILD_PATIENCE_MS, { IVOA_REGISTRY: `${broker.url}/tap` });
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    const out = JSON.parse(res.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    const gaia = 'ivo://constellation/dachs/tap/gaia.gaia_source';
    expect(out.keyword, JSON.stringify(out)).toContain(gaia);
    expect(out.servicetype).toContain(gaia);
    expect(out.both).toContain(gaia);
    expect(out.inside).toContain(gaia);
    expect(out.outside).not.toContain(gaia);
    expect(out.access_url).toBe(`${broker.url}/tap`);
    expect(out.rows).toBe(3);
  }, CHILD_PATIENCE_MS + 10_000);
});
