import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allTables,
  columnDoc,
  normaliseDataType,
  parseVosiTable,
  parseVosiTables,
  tablesNeedingDetail,
  type VosiTable,
} from '../../adapters/ivoa/vosi/tables.js';
import { ConstellationError } from '../../registry/model/errors.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/tables/${name}`, import.meta.url));

function table(tables: VosiTable[], name: string): VosiTable {
  const t = tables.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no table ${name}`);
  return t;
}

describe('parseVosiTables: ESA Gaia archive (vod:tableset root, esatapplus attributes)', () => {
  const ts = parseVosiTables(fixture('gaia-archive-tableset-external-schema.xml'));
  const tables = allTables(ts);

  it('reads the schema, its three tables and all 181 columns', () => {
    expect(ts.schemas.map((s) => s.name)).toEqual(['external']);
    expect(ts.schemas[0].public).toBe(true);
    expect(ts.schemas[0].description).toBe('TAP Schema for external catalogues');
    expect(tables.map((t) => t.name)).toEqual(['external.apassdr9', 'external.catwise2020', 'external.gaiadr2_astrophysical_parameters']);
    expect(tables.map((t) => t.columns.length)).toEqual([25, 71, 85]);
    expect(tables.reduce((n, t) => n + t.columns.length, 0)).toBe(181);
    expect(tablesNeedingDetail(ts)).toEqual([]);
  });

  it('takes nrows and size in bytes from esatapplus:size / size_bytes', () => {
    const apass = table(tables, 'external.apassdr9');
    expect(apass.nrows).toBe(61176401);
    expect(apass.sizeBytes).toBe(22474547200);
    expect(apass.type).toBe('base_table');
    expect(table(tables, 'external.catwise2020').nrows).toBe(1890715640);
  });

  it('reads a known column: unit and ucd from CDATA, VOTableType, flags', () => {
    const ra = table(tables, 'external.apassdr9').columns.find((c) => c.name === 'raj2000')!;
    expect(ra.unit).toBe('deg');
    expect(ra.ucd).toBe('pos.eq.ra;meta.main');
    expect(ra.description).toBe('Right ascension in decimal degrees (J2000)');
    expect(ra.dataType).toMatchObject({ kind: 'votable', value: 'double', xsiType: 'VOTableType' });
    expect(ra.type).toEqual({ datatype: 'double' });
    expect(ra).toMatchObject({ indexed: true, primary: true, nullable: false, std: false });
    expect(columnDoc(ra)).toEqual({
      name: 'raj2000',
      datatype: 'double',
      unit: 'deg',
      ucd: 'pos.eq.ra;meta.main',
      description: 'Right ascension in decimal degrees (J2000)',
      indexed: true,
    });
  });

  it('keeps a multi-line CDATA description, trimmed', () => {
    const d = table(tables, 'external.apassdr9').description!;
    expect(d.startsWith('The AAVSO Photometric All-Sky Survey - Data Release 9\n')).toBe(true);
    expect(d.endsWith('VizieR catalogue II/336.')).toBe(true);
    expect(d).toContain('A&AS 143, 23');
  });

  it('normalises every column type', () => {
    const types = new Set(tables.flatMap((t) => t.columns.map((c) => c.type?.datatype)));
    expect([...types].sort()).toEqual(['char', 'double', 'float', 'long', 'short']);
  });
});

describe('parseVosiTables: Gaia user schema', () => {
  const ts = parseVosiTables(fixture('gaia-archive-user-schema-tableset.xml'));

  it('reads a private schema, empty unit/ucd elements as absent, padded CDATA trimmed', () => {
    expect(ts.schemas[0]).toMatchObject({ name: 'user_jsegovia', public: false });
    expect(ts.schemas[0].description).toBeUndefined();
    const t = ts.schemas[0].tables[0];
    expect(t).toMatchObject({ name: 'user_jsegovia.table6', nrows: 3, description: 'Uploaded from disk' });
    const oid = t.columns[0];
    expect(oid).toMatchObject({ name: 'table6_oid', description: 'Object Identifier', indexed: true, primary: true });
    expect(oid.unit).toBeUndefined();
    expect(oid.ucd).toBeUndefined();
    expect(oid.type).toEqual({ datatype: 'int' });
    expect(t.columns.map((c) => c.type)).toEqual([
      { datatype: 'int' },
      { datatype: 'char', arraysize: '*' },
      { datatype: 'double' },
      { datatype: 'double' },
    ]);
  });
});

describe('parseVosiTables: DaCHS-style documents', () => {
  it('reads title, utype, nrows, TAP dataType attributes and a foreign key', () => {
    const ts = parseVosiTables(fixture('dachs-vosi-tableset-foreign-keys.xml'));
    const t = ts.schemas[0].tables[0];
    expect(ts.schemas[0]).toMatchObject({ name: 'test', description: 'This is a unittest schema' });
    expect(t).toMatchObject({ name: 'test.all', title: 'Test table', description: 'All test data in one table', utype: 'utype', nrows: 30 });
    const id = t.columns[0];
    expect(id.dataType).toEqual({ kind: 'tap', value: 'VARCHAR', xsiType: 'TAP', arraysize: '*', size: 42, delim: ';' });
    expect(id.type).toEqual({ datatype: 'char', arraysize: '*' });
    expect(id).toMatchObject({ unit: 'unit', ucd: 'meta.id;meta.main', utype: 'utype', flags: ['indexed', 'primary'] });
    expect(t.foreignKeys).toEqual([
      {
        targetTable: 'test.foreigntable',
        columns: [{ fromColumn: 'testkey', targetColumn: 'testkey' }],
        description: 'Test foreigner',
        utype: 'utype',
      },
    ]);
  });

  it('marks tables listed without columns (detail=min) as needing detail', () => {
    const ts = parseVosiTables(fixture('dachs-vosi-tableset-min-detail.xml'));
    expect(tablesNeedingDetail(ts)).toEqual(['test.table1', 'test.table2']);
    expect(allTables(ts).every((t) => t.needsDetail && t.columns.length === 0)).toBe(true);
  });

  it('reads the follow-up single-table document (<vosi:table> root)', () => {
    const t = parseVosiTable(fixture('constellation-vosi-table-detail.xml'));
    expect(t).toMatchObject({ name: 'test.table1', type: 'output', nrows: 1200, needsDetail: false, description: 'Positions of test objects.' });
    expect(t.columns.map((c) => c.name)).toEqual(['ra', 'dec', 'pos', 'obs_time']);
    expect(t.columns[2].type).toEqual({ datatype: 'double', arraysize: '2', xtype: 'point' });
    expect(t.columns[3].type).toEqual({ datatype: 'char', arraysize: '*', xtype: 'timestamp' });
    expect(t.columns[3].nullable).toBe(true);
  });
});

describe('datatype normalisation', () => {
  it('maps every TAP type (vs:TAP and vs:TAPType spellings)', () => {
    const ts = parseVosiTables(fixture('vosi-tables-datatypes-tap.xml'));
    for (const t of allTables(ts)) {
      const byName = Object.fromEntries(t.columns.map((c) => [c.name, c.type]));
      expect(byName).toEqual({
        _boolean: { datatype: 'boolean', arraysize: '*' },
        _smallint: { datatype: 'short', arraysize: '*' },
        _integer: { datatype: 'int', arraysize: '*' },
        _bigint: { datatype: 'long', arraysize: '*' },
        _real: { datatype: 'float', arraysize: '*' },
        _double: { datatype: 'double', arraysize: '*' },
        _timestamp: { datatype: 'char', arraysize: '*', xtype: 'timestamp' },
        _char: { datatype: 'char', arraysize: '*' },
        _varchar: { datatype: 'char', arraysize: '*' },
        _binary: { datatype: 'unsignedByte', arraysize: '*' },
        _varbinary: { datatype: 'unsignedByte', arraysize: '*' },
        _point: { datatype: 'double', arraysize: '*', xtype: 'point' },
        _region: { datatype: 'char', arraysize: '*', xtype: 'region' },
        _clob: { datatype: 'char', arraysize: '*' },
        _blob: { datatype: 'unsignedByte', arraysize: '*' },
      });
    }
    expect(allTables(ts).map((t) => t.columns[0].dataType?.kind)).toEqual(['tap', 'tap']);
  });

  it('maps every VOTable type (vs:VOTable and vs:VOTableType spellings)', () => {
    const ts = parseVosiTables(fixture('vosi-tables-datatypes-votable.xml'));
    for (const t of allTables(ts)) {
      expect(t.columns.map((c) => c.type?.datatype)).toEqual([
        'boolean', 'bit', 'unsignedByte', 'short', 'int', 'long', 'char', 'unicodeChar', 'float', 'double', 'floatComplex', 'doubleComplex',
      ]);
    }
  });

  it('derives arraysize from TAP sizes and xtypes from TAP geometry types', () => {
    expect(normaliseDataType({ kind: 'tap', value: 'VARCHAR', size: 64 })).toEqual({ datatype: 'char', arraysize: '64*' });
    expect(normaliseDataType({ kind: 'tap', value: 'CHAR', size: 8 })).toEqual({ datatype: 'char', arraysize: '8' });
    expect(normaliseDataType({ kind: 'tap', value: 'varchar' })).toEqual({ datatype: 'char', arraysize: '*' });
    expect(normaliseDataType({ kind: 'tap', value: 'POINT' })).toEqual({ datatype: 'double', arraysize: '2', xtype: 'point' });
    expect(normaliseDataType({ kind: 'tap', value: 'CIRCLE' })).toEqual({ datatype: 'double', arraysize: '3', xtype: 'circle' });
    expect(normaliseDataType({ kind: 'tap', value: 'POLYGON' })).toEqual({ datatype: 'double', arraysize: '*', xtype: 'polygon' });
    expect(normaliseDataType({ kind: 'tap', value: 'DOUBLE  PRECISION' })).toEqual({ datatype: 'double' });
    expect(normaliseDataType({ kind: 'votable', value: 'char', arraysize: '*', xtype: 'adql:TIMESTAMP' })).toEqual({
      datatype: 'char',
      arraysize: '*',
      xtype: 'timestamp',
    });
    expect(normaliseDataType({ kind: 'other', value: 'string' })).toEqual({ datatype: 'char', arraysize: '*' });
    expect(normaliseDataType({ kind: 'tap', value: 'GEOMETRY' })).toBeUndefined();
    expect(normaliseDataType({ kind: 'votable', value: 'quaternion' })).toBeUndefined();
  });

  it('guesses the kind of an untyped dataType from its spelling', () => {
    const doc = `<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"><schema><name>s</name><table><name>s.t</name>
      <column><name>a</name><dataType>BIGINT</dataType></column>
      <column><name>b</name><dataType>double</dataType></column>
      <column><name>c</name><dataType>Weird</dataType></column>
    </table></schema></vosi:tableset>`;
    const cols = parseVosiTables(doc).schemas[0].tables[0].columns;
    expect(cols.map((c) => c.dataType?.kind)).toEqual(['tap', 'votable', 'other']);
    expect(cols.map((c) => c.type?.datatype)).toEqual(['long', 'double', undefined]);
  });
});

describe('parseVosiTables: TAP_SCHEMA description written for Constellation', () => {
  const ts = parseVosiTables(fixture('constellation-tap-schema-tableset.xml'));

  it('reads std="true" columns, sized VARCHAR and the nullable flag', () => {
    const schemas = table(allTables(ts), 'TAP_SCHEMA.schemas');
    expect(schemas.columns.map((c) => c.std)).toEqual([true, true, true]);
    expect(schemas.columns[0].type).toEqual({ datatype: 'char', arraysize: '64*' });
    expect(schemas.columns[1].nullable).toBe(true);
    expect(schemas.type).toBe('table');
    const columns = table(allTables(ts), 'TAP_SCHEMA.columns');
    expect(columns.columns.find((c) => c.name === 'created')).toMatchObject({ std: false, type: { datatype: 'char', arraysize: '*', xtype: 'timestamp' } });
    expect(columns.foreignKeys[0].targetTable).toBe('TAP_SCHEMA.tables');
  });
});

describe('parseVosiTables: errors', () => {
  it('rejects a table document given to parseVosiTables and vice versa', () => {
    expect(() => parseVosiTables(fixture('constellation-vosi-table-detail.xml'))).toThrow(
      /VOSI tables document: expected <tableset>.*found <vosi:table> \(namespace http:\/\/www\.ivoa\.net\/xml\/VOSITables\/v1\.0\)/,
    );
    expect(() => parseVosiTable(fixture('dachs-vosi-tableset-min-detail.xml'))).toThrow(/found <vtm:tableset>/);
  });

  it('rejects malformed XML with a ConstellationError', () => {
    const truncated = fixture('gaia-archive-user-schema-tableset.xml').subarray(0, 900);
    let caught: unknown;
    try {
      parseVosiTables(truncated);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConstellationError);
    expect((caught as ConstellationError).kind).toBe('UPSTREAM_MALFORMED');
    expect((caught as ConstellationError).message).toMatch(/^VOSI tables document: not well-formed XML/);
  });
});

describe('parseVosiTables: property', () => {
  it('reads column text whatever whitespace and CDATA wrap it', () => {
    const ws = fc.string({ unit: fc.constantFrom(' ', '\n', '\t'), maxLength: 5 });
    const token = fc.string({ unit: fc.constantFrom(...'abcXYZ019_.;:/ '), minLength: 1, maxLength: 20 }).filter((s) => s.trim() !== '');
    const wrap = (v: string, before: string, after: string, cdata: boolean): string =>
      cdata ? `${before}<![CDATA[${before}${v}${after}]]>${after}` : `${before}${v}${after}`;
    fc.assert(
      fc.property(token, token, ws, ws, fc.boolean(), (unit, ucd, before, after, cdata) => {
        const doc = `<tableset xmlns="http://www.ivoa.net/xml/VOSITables/v1.0"><schema><name>s</name><table><name>s.t</name><column>
          <name>${wrap('c', before, after, cdata)}</name><unit>${wrap(unit, before, after, cdata)}</unit><ucd>${wrap(ucd, before, after, !cdata)}</ucd>
          </column></table></schema></tableset>`;
        const col = parseVosiTables(doc).schemas[0].tables[0].columns[0];
        expect(col.name).toBe('c');
        expect(col.unit).toBe(unit.trim());
        expect(col.ucd).toBe(ucd.trim());
      }),
      { numRuns: 200 },
    );
  });
});
