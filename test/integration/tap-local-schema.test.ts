/**
 * The facade's own tables read in place: TAP_SCHEMA and RegTAP's rr are SELECTs over the registry
 * (nothing copied into temporary tables), and what they answer is what the registry-walking
 * code answers (catalogue.ts publishedSchemas, votableType, encodeURIComponent'd ivoids) for
 * every kind of column type a site may spell, for each kind of caller. Hostile values (quotes
 * and backslashes in a base URL, a group, a title) are only ever values. A table made in the
 * broker (an upload) beyond the load limit is refused before it is loaded, naming it and the limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAdqlOrThrow } from '../../adapters/ivoa/adql/index.js';
import { writeVOTableToBuffer, type Cell } from '../../adapters/ivoa/votable/index.js';
import { isConstellationError } from '../../registry/model/errors.js';
import type { ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import { publishedSchemas, votableType } from '../../broker/tap/catalogue.js';
import { LOCAL_MAX_LOAD_ROWS, runLocalQuery, type SchemaContext } from '../../broker/tap/local-schema.js';
import { LOCAL_SCHEMAS } from '../../broker/tap/schemas.js';
import { uploadSchema } from '../../broker/tap/upload-schema.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { documentFor } from '../support/documents.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { WAITING_TEST_MS } from '../support/wait.js';

/** Every way a site has been seen to spell a column type, with and without an arraysize. */
const TYPES: { datatype?: string; arraysize?: string }[] = [
  { datatype: 'double' }, { datatype: 'float' }, { datatype: 'int' }, { datatype: 'long' }, { datatype: 'short' }, { datatype: 'boolean' }, { datatype: 'bit' },
  { datatype: 'unsignedByte', arraysize: '*' }, { datatype: 'char' }, { datatype: 'char', arraysize: '32' }, { datatype: 'char', arraysize: '' }, { datatype: 'unicodeChar' },
  { datatype: 'double', arraysize: '2' }, { datatype: 'floatComplex' }, { datatype: 'DOUBLE' }, { datatype: 'Double', arraysize: '3' }, { datatype: 'CHAR', arraysize: '8' },
  { datatype: 'adql:VARCHAR' }, { datatype: 'adql:DOUBLE PRECISION' }, { datatype: 'vot:char', arraysize: '12' }, { datatype: 'VOT:int' }, { datatype: ' integer ' },
  { datatype: 'BIGINT' }, { datatype: 'smallint', arraysize: '4' }, { datatype: 'REAL' }, { datatype: 'adql:TIMESTAMP' }, { datatype: 'adql:POINT' }, { datatype: 'circle', arraysize: '9' },
  { datatype: 'polygon' }, { datatype: 'BLOB' }, { datatype: 'varbinary', arraysize: '100' }, { datatype: 'clob' }, { datatype: 'UNSIGNEDBYTE' }, { datatype: 'unicodechar' },
  { datatype: 'geometry' }, { datatype: '' }, {}, { arraysize: '5' },
];

const HOSTILE = `O'Brien "x" \\ 100% _y_ $1 ${'$$'} --`;

describe(`TAP_SCHEMA and rr read in place from the registry (${backend})`, () => {
  let broker: TestBroker;

  /** Run `adql` over the local schemas (and `uploads`) as `visibility` would, with `extra` context. */
  async function local(adql: string, visibility: ReplicaVisibility, extra: Partial<SchemaContext> = {}, uploads: Parameters<typeof uploadSchema>[0] = []) {
    const pool = broker.app.services.pool;
    return runLocalQuery(pool, [...LOCAL_SCHEMAS, uploadSchema(uploads)], parseAdqlOrThrow(adql), { db: pool, visibility, baseUrl: 'http://broker.test/tap', ...extra }, undefined);
  }
  const cells = (rows: Cell[][]) => rows.map((r) => r.map((c) => (typeof c === 'bigint' ? Number(c) : c)));

  beforeAll(async () => {
    broker = await startBroker(configFromYaml('federation: { name: local-tables }\nregistration: { open: true }\nsites: []\n'));
    const columns = TYPES.map((t, i) => ({ name: `Col${i}`, ...(t.datatype !== undefined ? { datatype: t.datatype } : {}), ...(t.arraysize !== undefined ? { arraysize: t.arraysize } : {}),
      ...(i % 3 === 0 ? { xtype: 'custom' } : {}), ...(i % 4 === 0 ? { unit: '' , ucd: '' } : { unit: 'deg', ucd: 'pos.eq.ra' }), ...(i % 5 === 0 ? { description: '' } : { description: `column ${i}` }), indexed: i % 2 === 0 }));
    const publish = (site: string, doc: ReturnType<typeof documentFor>) => broker.app.services.publisher.publish(site, doc, 'publish');
    await publish('alpha', documentFor('alpha', [
      { id: 'survey.types', table: 'local.types', title: HOSTILE, description: '', columns, position: undefined },
      { id: 'survey.plain', table: 'local.plain' },
      { id: 'zeta.last', table: 'z.last', description: 'described' },
      { id: 'b_schema.t', table: 'b.t', title: '' },
    ].map((d) => ({ ...d, service: 'tap:main' })), { services: [{ id: 'tap:main', type: 'tap', url: 'https://alpha.example.org/tap', upload: true, async: true, auth: ['anonymous'] }] }));
    // The same canonical columns described differently by a later site (by id): the first site's description wins.
    await publish('beta', documentFor('beta', [{ id: 'survey.plain', table: 'p.plain', position: undefined, columns: [{ name: 'DEC', datatype: 'float', description: 'beta dec' }, { name: 'extra', datatype: 'int' }] }]));
    // Protected, for a group whose name is hostile.
    await publish('vault', documentFor('vault', [{ id: 'secret.targets', table: 'v.t', title: 'Secret', access: { public: false, groups: [HOSTILE] }, position: undefined, columns: [{ name: 'x', datatype: 'adql:REAL' }] }]));
  }, WAITING_TEST_MS);

  afterAll(async () => {
    await broker?.close();
  });

  it('answers TAP_SCHEMA exactly as the published description (/tap/tables) gives it, for every kind of caller', async () => {
    const pool = broker.app.services.pool;
    for (const visibility of [[], [HOSTILE], 'all'] as ReplicaVisibility[]) {
      const schemas = await publishedSchemas(pool, visibility, LOCAL_SCHEMAS);
      // The rows as TAP_SCHEMA used to be made from this description, in JS.
      const flag = (b: boolean) => (b ? 1 : 0);
      const expected = {
        schemas: schemas.map((s, i) => [s.name, null, s.description ?? null, i]),
        tables: schemas.flatMap((s) => s.tables.map((t) => [s.name, t.name, t.type, null, t.description ?? null])).map((r, i) => [...r, i]),
        columns: schemas.flatMap((s) => s.tables.flatMap((t) => t.columns.map((c, i) => [
          t.name, c.name, null, c.ucd ?? null, c.unit ?? null, c.description ?? null, c.datatype, c.arraysize ?? null, c.xtype ?? null,
          c.arraysize && /^\d+$/.test(c.arraysize) ? Number(c.arraysize) : null, flag(c.principal), flag(c.indexed), flag(c.std), i,
        ]))),
      };
      const order = { schemas: 'schema_index', tables: 'table_index', columns: 'table_name, column_index' };
      for (const table of ['schemas', 'tables', 'columns'] as const) {
        const got = await local(`SELECT * FROM TAP_SCHEMA.${table} ORDER BY ${order[table]}`, visibility);
        const want = table === 'columns' ? [...expected.columns].sort((a, b) => (a[0] === b[0] ? Number(a[13]) - Number(b[13]) : String(a[0]) < String(b[0]) ? -1 : 1)) : expected[table];
        expect(cells(got.rows), `TAP_SCHEMA.${table} for ${JSON.stringify(visibility)}`).toEqual(want);
      }
      // The protected table is described to its group and to 'all' only.
      expect(expected.tables.some((t) => t[1] === 'secret.targets')).toBe(visibility === 'all' || visibility.length > 0);
    }
    const keys = await local('SELECT key_id, from_table, target_table FROM TAP_SCHEMA.keys', []);
    expect(keys.rows.length).toBeGreaterThan(5);
    const keyColumns = await local("SELECT from_column FROM TAP_SCHEMA.key_columns WHERE key_id = 'rr_res_table_resource'", []);
    expect(keyColumns.rows).toEqual([['ivoid']]);
  });

  it('types rr.table_column exactly as votableType does, for every spelling of a type', async () => {
    const got = await local("SELECT name, datatype, arraysize, extended_type, flag FROM rr.table_column WHERE ivoid = 'ivo://constellation/alpha/tap%3Amain/survey.types'", 'all');
    const byName = new Map(got.rows.map((r) => [r[0], r.slice(1)]));
    expect(byName.size).toBe(TYPES.length);
    TYPES.forEach((t, i) => {
      const v = votableType(t.datatype ?? null, t.arraysize ?? null);
      expect(byName.get(`col${i}`), JSON.stringify(t)).toEqual([v.datatype, v.arraysize ?? null, i % 3 === 0 ? 'custom' : v.xtype ?? null, i % 2 === 0 ? 'indexed#nullable' : 'nullable']);
    });
  });

  it('writes ivoids as encodeURIComponent does, and takes hostile base URLs, groups and titles as values', async () => {
    const baseUrl = `http://evil'host\\x/tap?a=$1&b=''`;
    const services = await local("SELECT ivoid, access_url FROM rr.interface WHERE ivoid LIKE 'ivo://constellation/alpha%' ORDER BY ivoid", [], { baseUrl });
    expect(services.rows).toEqual([
      [`ivo://constellation/alpha/${encodeURIComponent('tap:main')}`, 'https://alpha.example.org/tap'],
      ...['b_schema.t', 'survey.plain', 'survey.types', 'zeta.last'].map((d) => [`ivo://constellation/alpha/tap%3Amain/${d}`, baseUrl]),
    ]);
    const titled = await local(`SELECT res_title, res_description FROM rr.resource WHERE ivoid = 'ivo://constellation/alpha/tap%3Amain/survey.types'`, []);
    expect(titled.rows[0][0]).toBe(`${HOSTILE} (Site alpha)`);
    // An empty description adds nothing before the service's own sentence.
    expect(titled.rows[0][1]).toMatch(/^The table survey\.types as held by Site alpha \(site alpha, local table local\.types\); query it as survey\.types through the federation's TAP service/);
    const secret = "SELECT ivoid FROM rr.res_table WHERE table_name = 'secret.targets'";
    expect((await local(secret, [HOSTILE])).rows).toEqual([['ivo://constellation/vault/tap/secret.targets']]);
    expect((await local(secret, [`${HOSTILE}x`])).rows).toEqual([]);
    expect((await local(secret, ["' OR true --"])).rows).toEqual([]);
    // The registry is untouched: every site still there.
    expect((await broker.app.services.pool.query('SELECT count(*)::int AS n FROM sites')).rows[0].n).toBe(3);
  });

  it('reads TAP_SCHEMA and rr in place: no temporary table, nothing inserted, the LIMIT reaching the registry', async () => {
    const before = broker.db.statements.length;
    const result = await local('SELECT TOP 2 * FROM rr.resource NATURAL JOIN rr.capability', []);
    expect(result.rows).toHaveLength(2);
    const sent = broker.db.statements.slice(before);
    expect(sent.some((s) => /CREATE TEMP|INSERT/i.test(s))).toBe(false);
    const query = sent.find((s) => s.includes('AS local_query'));
    expect(query).toMatch(/^WITH "local_rr_resource" AS NOT MATERIALIZED \(/);
    expect(query).toMatch(/LIMIT 2\b/);
  });

  it('refuses a table made in the broker beyond the load limit before loading it, naming it and the limit', async () => {
    const votable = async (n: number) => (await writeVOTableToBuffer({ fields: [{ name: 'id', datatype: 'int' }] }, Array.from({ length: n }, (_, i) => [i]), { serialization: 'TABLEDATA' })).toString('utf8');
    const upload = async (n: number) => [{ name: 'big', columns: ['id'], votable: await votable(n) }];
    const before = broker.db.statements.length;
    const refused = await local('SELECT COUNT(*) AS n FROM TAP_UPLOAD.big', [], { maxLoadRows: 50 }, await upload(51)).catch((e: unknown) => e);
    expect(isConstellationError(refused) && refused.code).toBe('CONSTELLATION_E_QUERY_TOO_COSTLY');
    expect((refused as Error).message).toMatch(/TAP_UPLOAD\.big, which has 51 rows; .* at most 50/);
    expect(broker.db.statements.slice(before).some((s) => /CREATE TEMP|INSERT/i.test(s))).toBe(false);
    // At the limit it runs; and the shipped limit is the one the message names.
    expect(cells((await local('SELECT COUNT(*) AS n FROM TAP_UPLOAD.big', [], { maxLoadRows: 50 }, await upload(50))).rows)).toEqual([[50]]);
    expect(LOCAL_MAX_LOAD_ROWS).toBe(200_000);
  });

  it('refuses a spatial constraint over more coverages than the load limit, saying so', async () => {
    await broker.app.services.publisher.publish('gamma', documentFor('gamma', [0, 1, 2].map((i) => ({ id: `sky.patch${i}`, table: `s.p${i}`, coverage: `3/${i}` }))), 'publish');
    const q = 'SELECT ivoid FROM rr.stc_spatial WHERE 1 = CONTAINS(POINT(10.0, 10.0), coverage)';
    const refused = await local(q, [], { maxLoadRows: 2 }).catch((e: unknown) => e);
    expect(isConstellationError(refused) && refused.code).toBe('CONSTELLATION_E_QUERY_TOO_COSTLY');
    expect((refused as Error).message).toMatch(/rr\.stc_spatial\.coverage, which holds 3 distinct MOCs .* at most 2 MOCs/);
    expect((await local(q, [], { maxLoadRows: 3 })).rows.length).toBeLessThanOrEqual(3);
  });
});
