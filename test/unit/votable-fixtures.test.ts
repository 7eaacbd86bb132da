import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readVOTable, readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import type { Row, TableMeta, VOTableEvent } from '../../adapters/ivoa/votable/index.js';

const DIR = fileURLToPath(new URL('../fixtures/votable/', import.meta.url));
const bytes = (name: string): Buffer => readFileSync(DIR + name);
const read = (name: string) => readVOTableToArray(bytes(name));

function column(table: { meta: TableMeta; rows: Row[] }, name: string): unknown[] {
  const i = table.meta.fields.findIndex((f) => f.name === name);
  if (i < 0) throw new Error(`no column ${name}`);
  return table.rows.map((r) => r[i]);
}

// Every recorded (BSD-3-Clause / MIT) fixture: serialisation, FIELD count, rows.
const SHAPES: [string, string, number, number][] = [
  ['cadc-obscore-sia2-tabledata.xml', 'TABLEDATA', 34, 1],
  ['casda-siap2-cone-tabledata.xml', 'TABLEDATA', 36, 3],
  ['datalink-alma.xml', 'TABLEDATA', 9, 9],
  ['datalink-cadc-macho-cutout.xml', 'TABLEDATA', 9, 6],
  ['datalink-casda-async-soda.xml', 'TABLEDATA', 9, 6],
  ['datalink-gavo-flashheros.xml', 'TABLEDATA', 8, 4],
  ['datalink-rsp-datalinker-calexp.xml', 'TABLEDATA', 8, 4],
  ['datalink-soda-sync-descriptor.xml', 'TABLEDATA', 8, 5],
  ['esa-euclid-observation-stack-binary2.vot', 'BINARY2', 16, 4],
  ['esa-hst-archive-m31-tabledata.vot', 'TABLEDATA', 14, 119],
  ['gaia-dr1-gaia_source-top1-binary2-params.vot', 'BINARY2', 2, 1],
  ['gaia-dr1-gaia_source-top5-binary2-legacy.xml', 'BINARY2', 57, 5],
  ['gaia-dr3-gaia_source-1row-binary2.vot', 'BINARY2', 152, 1],
  ['gaia-dr3-gaia_source-2rows-tabledata.vot', 'TABLEDATA', 152, 2],
  ['gaia-user-table-upload-binary2.vot', 'BINARY2', 4, 2],
  ['gaia-user-table-upload-tabledata.vot', 'TABLEDATA', 4, 2],
  ['gavo-rosat-scs-binary.xml', 'BINARY', 9, 1273],
  ['irsa-gator-cone-votable-1.0-dtd.xml', 'TABLEDATA', 45, 1],
  ['jhu-sdss-ssa-tabledata.xml', 'TABLEDATA', 33, 36],
  ['votable-query-status-overflow-trailing.xml', 'TABLEDATA', 2, 3],
];

describe('recorded VOTable fixtures', () => {
  it.each(SHAPES)('%s parses as %s with %i fields and %i rows', async (name, serialization, fields, rows) => {
    const doc = await read(name);
    expect(doc.tables).toHaveLength(1);
    const t = doc.tables[0];
    expect(t.meta.serialization).toBe(serialization);
    expect(t.meta.fields).toHaveLength(fields);
    expect(t.rows).toHaveLength(rows);
    for (const r of t.rows) expect(r).toHaveLength(fields);
  });

  it('Gaia DR3 TABLEDATA: source_id as exact bigint, doubles, floats, booleans, empty TD as null', async () => {
    const doc = await read('gaia-dr3-gaia_source-2rows-tabledata.vot');
    const t = doc.tables[0];
    expect(doc.version).toBe('1.4');
    expect(doc.status).toBe('OK');
    expect(column(t, 'source_id')).toEqual([4583627001381815936n, 5348723816842275584n]);
    expect(column(t, 'designation')).toEqual(['Gaia DR3 4583627001381815936', 'Gaia DR3 5348723816842275584']);
    expect(column(t, 'ra')).toEqual([268.0676646661466, 171.55081173633306]);
    expect(column(t, 'dec')[1]).toBe(-51.3606309660715);
    // phot_g_mean_mag is a float column: the value is the float32 nearest the text.
    expect(column(t, 'phot_g_mean_mag')[0]).toBe(Math.fround(7.0120187));
    expect(column(t, 'has_xp_continuous')).toEqual([true, true]);
    expect(column(t, 'phot_variable_flag')).toEqual(['VARIABLE', 'VARIABLE']);
    expect(column(t, 'libname_gspphot')).toEqual([null, null]);
    const ra = t.meta.fields.find((f) => f.name === 'ra')!;
    expect(ra).toMatchObject({ datatype: 'double', unit: 'deg', ucd: 'pos.eq.ra;meta.main' });
    expect(t.meta.resource.infos.find((i) => i.name === 'JOBID')?.value).toBe('1710099673321VAL');
  });

  it('Gaia DR3 BINARY2: null-flagged cells, booleans, 64-bit ids', async () => {
    const t = (await read('gaia-dr3-gaia_source-1row-binary2.vot')).tables[0];
    const row = t.rows[0];
    expect(column(t, 'source_id')).toEqual([5929246508730155392n]);
    expect(column(t, 'ra')).toEqual([253.45840143189537]);
    expect(column(t, 'parallax')).toEqual([0.14694054668014928]);
    expect(column(t, 'phot_g_mean_mag')).toEqual([14.182080268859863]);
    expect(column(t, 'libname_gspphot')).toEqual(['MARCS']);
    expect(column(t, 'has_xp_continuous')).toEqual([true]);
    // A real Gaia row has nulls (e.g. radial velocities for faint stars), flagged in the bitmap.
    expect(row.filter((v) => v === null).length).toBeGreaterThan(0);
    expect(t.meta.resource.params.find((p) => p.name === 'RELEASE')?.value).toBe('Gaia DR3');
  });

  it('the BINARY2 and TABLEDATA twins decode to identical rows', async () => {
    const bin = (await read('gaia-user-table-upload-binary2.vot')).tables[0];
    const td = (await read('gaia-user-table-upload-tabledata.vot')).tables[0];
    expect(bin.rows).toEqual(td.rows);
    expect(bin.meta.fields).toEqual(td.meta.fields);
    expect(bin.rows).toEqual([
      [1, 3834447128563320320n, 149.8678677871318, 1.12773018116361],
      [2, 3834447162923057280n, 149.8953864417848, 1.1345712682426434],
    ]);
    expect(bin.meta.fields[0].description).toBe('Object Identifier');
  });

  it('Gaia DR1 (legacy, no XML declaration): NaN parallax read as null', async () => {
    const t = (await read('gaia-dr1-gaia_source-top5-binary2-legacy.xml')).tables[0];
    expect(column(t, 'source_id').slice(0, 2)).toEqual([5991063320161776768n, 5990982265543313408n]);
    expect(column(t, 'ra')[0]).toBe(242.61876101083934);
    expect(column(t, 'parallax')).toEqual([null, null, null, null, null]);
    expect(t.meta.fields.find((f) => f.name === 'ra')?.unit).toBe('Angle[deg]');
  });

  it('Gaia DR1 PARAMs carry typed values', async () => {
    const t = (await read('gaia-dr1-gaia_source-top1-binary2-params.vot')).tables[0];
    expect(t.rows).toEqual([[1635378410781933568n, 4651515861503587200n]]);
    const release = t.meta.resource.params.find((p) => p.name === 'RELEASE');
    expect(release).toMatchObject({ datatype: 'char', value: 'Gaia DR1', rawValue: 'Gaia DR1' });
  });

  it('ESA Euclid BINARY2: fixed char(255) and variable strings, doubles', async () => {
    const t = (await read('esa-euclid-observation-stack-binary2.vot')).tables[0];
    expect(column(t, 'instrument_name')).toEqual(['VIS', 'NISP', 'NISP', 'NISP']);
    expect(column(t, 'observation_stk_oid')[0]).toBe(1n);
    expect(column(t, 'ra')[0]).toBe(268.8119094904);
    expect(String(column(t, 'stc_s')[0])).toMatch(/^Polygon J2000 266\.15/);
  });

  it('GAVO cone search BINARY (VOTable 1.1): 1273 photons', async () => {
    const doc = await read('gavo-rosat-scs-binary.xml');
    const t = doc.tables[0];
    expect(doc.version).toBe('1.1');
    expect(t.meta.name).toBe('ndtmwngpwgpa');
    expect(t.rows[0].slice(0, 3)).toEqual([77.6581, 1.68358, 1990.65777659664]);
    expect(t.rows[0][3]).toBe(Math.fround(0.15));
    expect(t.meta.description).toBe('A table of x-ray photons detected by ROSAT');
    expect(doc.infos.find((i) => i.name === 'queryPars')?.content).toBe("{'SR0': 0.5, 'DEC0': 2.0, 'RA0': 78.0}");
  });

  it('ESA HST: FIELDs with only an ID take the ID as name', async () => {
    const t = (await read('esa-hst-archive-m31-tabledata.vot')).tables[0];
    expect(t.meta.fields[0]).toMatchObject({ name: 'OBSERVATION_ID', ID: 'OBSERVATION_ID', datatype: 'char', arraysize: '*' });
    expect(column(t, 'OBSERVATION_ID')[0]).toBe('u5850104r');
    expect(column(t, 'START_TIME_MJD')[0]).toBe(51382.627934027776);
    expect(column(t, 'MEMBERS_NO')[0]).toBe(0);
  });

  it('IRSA Gator: VOTable 1.0 with a DOCTYPE and no namespace, RESOURCE PARAMs', async () => {
    const doc = await read('irsa-gator-cone-votable-1.0-dtd.xml');
    const t = doc.tables[0];
    expect(doc.version).toBe('1.0');
    expect(doc.status).toBeNull();
    expect(column(t, 'designation')).toEqual(['00424433+4116085']);
    expect(column(t, 'ra')).toEqual([Math.fround(10.684737)]);
    expect(column(t, 'err_ang')).toEqual([87]);
    expect(column(t, 'phi_opt')).toEqual([null]);
    expect(t.meta.fields[0]).toMatchObject({ name: 'ra', ref: 'J2000', precision: 'F3', width: 7 });
    expect(t.meta.resource.params.find((p) => p.name === 'DATABASE')?.value).toBe('2MASS All-Sky Point Source Catalog (PSC) (fp_psc)');
  });

  it('CASDA: leading xml-stylesheet PI, many INFOs', async () => {
    const doc = await read('casda-siap2-cone-tabledata.xml');
    const t = doc.tables[0];
    expect(t.meta.name).toBe('results');
    expect(column(t, 's_ra')[0]).toBe(333.16767306594);
    expect(doc.infos.filter((i) => i.parent === 'RESOURCE').length).toBeGreaterThan(5);
  });

  it('JHU SSA: double[2] arrays and long DataLength', async () => {
    const t = (await read('jhu-sdss-ssa-tabledata.xml')).tables[0];
    expect(column(t, 'TargetPos')[0]).toEqual([179.84916, 0.984768]);
    expect(column(t, 'DataLength')[0]).toBe(4000n);
    expect(t.meta.fields.find((f) => f.name === 'TargetPos')?.shape).toEqual({ dims: [2], variable: false, maxLast: null });
  });

  it('DataLink: rows, and the service descriptor RESOURCEs with their PARAMs and GROUPs', async () => {
    const doc = await read('datalink-rsp-datalinker-calexp.xml');
    const t = doc.tables[0];
    expect(column(t, 'semantics')).toEqual([
      '#this',
      '#cutout',
      'https://rsp.lsst.io/guides/api/soda.html#MaskedImage',
      'https://rsp.lsst.io/guides/api/soda.html#Exposure',
    ]);
    expect(column(t, 'access_url')[0]).toBe('https://presigned-url.example.com/ac691f52-c1a0-4199-b049-182cf403dc37?X-Amz-Signature=abcdef');
    expect(column(t, 'content_length')).toEqual([1234n, null, null, null]);
    const services = doc.resources.filter((r) => r.type === 'meta');
    expect(services.map((r) => r.ID)).toEqual(['cutout-sync', 'cutout-sync-maskedimage', 'cutout-sync-exposure']);
    expect(services[0].utype).toBe('adhoc:service');
    expect(services[0].params.find((p) => p.name === 'standardID')?.value).toBe('ivo://ivoa.net/std/SODA#sync-1.0');
    const input = services[0].groups.find((g) => g.name === 'inputParams')!;
    expect(input.params.map((p) => p.name)).toEqual(['ID', 'POLYGON', 'CIRCLE', 'CUTOUTDETAIL']);
  });

  it('DataLink (CASDA): PARAM ref attributes and async service descriptors', async () => {
    const doc = await read('datalink-casda-async-soda.xml');
    expect(column(doc.tables[0], 'content_length')[0]).toBe(1056024576n);
    const asyncService = doc.resources.find((r) => r.ID === 'async_service')!;
    expect(asyncService.groups[0].params[0]).toMatchObject({ name: 'ID', ref: 'authenticatedIdToken' });
  });

  it('ObsCore (CADC): utypes and VALUES domains', async () => {
    const t = (await read('cadc-obscore-sia2-tabledata.xml')).tables[0];
    expect(column(t, 'obs_id')).toEqual(['TEST-DATASET']);
    expect(t.meta.fields.find((f) => f.name === 's_ra')?.utype).toBe('obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1');
  });

  it('a trailing QUERY_STATUS=OVERFLOW after the table is reported at the end', async () => {
    const events: VOTableEvent[] = [];
    for await (const ev of readVOTable(bytes('votable-query-status-overflow-trailing.xml'))) events.push(ev);
    expect(events.map((e) => e.type)).toEqual(['info', 'table', 'rows', 'info', 'resource', 'end']);
    const end = events[events.length - 1];
    expect(end).toMatchObject({ type: 'end', overflow: true, status: 'OVERFLOW', tableCount: 1, rowCount: 3 });
    const rows = events.find((e) => e.type === 'rows');
    expect(rows).toMatchObject({ rows: [[23n, 'Illuminatus'], [42n, "Don't panic, and always carry a towel"], [1337n, 'Elite']] });
  });

  it('the table event carries FIELD metadata before any row', async () => {
    const it = readVOTable(bytes('gaia-dr3-gaia_source-1row-binary2.vot'), { batchSize: 1 });
    const types: string[] = [];
    for await (const ev of it) {
      types.push(ev.type);
      if (ev.type === 'table') {
        expect(ev.table.fields).toHaveLength(152);
        expect(ev.table.serialization).toBe('BINARY2');
      }
    }
    expect(types.indexOf('table')).toBeLessThan(types.indexOf('rows'));
  });

  it('reads GROUP, FIELDref/PARAMref, LINK, VALUES (MIN/MAX/OPTION, ref), COOSYS and DESCRIPTION', async () => {
    const xml = `<?xml version="1.0"?>
<VOTABLE version="1.5" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
  <DESCRIPTION>doc</DESCRIPTION>
  <COOSYS ID="icrs" system="ICRS" epoch="J2016.0"/>
  <PARAM name="top" datatype="int" value="0x10"/>
  <RESOURCE ID="r1" name="results" type="results" utype="u:r">
    <DESCRIPTION>  the results  </DESCRIPTION>
    <LINK content-role="doc" content-type="text/html" href="https://example.org/doc" title="Docs"/>
    <TABLE ID="t1" name="cat" ucd="meta.table" utype="u:t">
      <FIELD ID="ra" name="ra" datatype="double" ref="icrs" unit="deg">
        <DESCRIPTION>Right ascension</DESCRIPTION>
        <VALUES ID="radom" type="actual"><MIN value="0"/><MAX value="360" inclusive="no"/></VALUES>
        <LINK href="https://example.org/ra"/>
      </FIELD>
      <FIELD name="ra2" datatype="double"><VALUES ref="radom"/></FIELD>
      <FIELD name="flag" datatype="short">
        <VALUES null="-1"><OPTION name="good" value="0"/><OPTION name="bad" value="1"><OPTION name="worse" value="2"/></OPTION></VALUES>
      </FIELD>
      <GROUP name="pos" ucd="pos.eq" utype="u:g">
        <DESCRIPTION>position</DESCRIPTION>
        <PARAM name="frame" datatype="char" arraysize="*" value="ICRS"/>
        <FIELDref ref="ra"/><FIELDref ref="ra2"/><PARAMref ref="frame"/>
        <GROUP name="inner"><FIELDref ref="flag"/></GROUP>
      </GROUP>
      <DATA><TABLEDATA><TR><TD>1</TD><TD>2</TD><TD>-1</TD></TR></TABLEDATA></DATA>
    </TABLE>
    <PARAM name="after" datatype="float" value="NaN"/>
  </RESOURCE>
</VOTABLE>`;
    const doc = await readVOTableToArray(xml);
    const t = doc.tables[0];
    expect(t.rows).toEqual([[1, 2, null]]);
    expect(t.meta).toMatchObject({ ID: 't1', name: 'cat', ucd: 'meta.table', utype: 'u:t' });
    expect(t.meta.fields[0]).toMatchObject({
      ID: 'ra',
      ref: 'icrs',
      description: 'Right ascension',
      values: { ID: 'radom', type: 'actual', min: { value: '0', inclusive: true }, max: { value: '360', inclusive: false } },
      links: [{ href: 'https://example.org/ra' }],
    });
    expect(t.meta.fields[1].values).toMatchObject({ ref: 'radom', min: { value: '0' }, max: { value: '360' } });
    expect(t.meta.fields[2].values).toEqual({
      null: '-1',
      options: [{ name: 'good', value: '0' }, { name: 'bad', value: '1', options: [{ name: 'worse', value: '2' }] }],
    });
    expect(t.meta.groups).toEqual([
      {
        name: 'pos',
        ucd: 'pos.eq',
        utype: 'u:g',
        description: 'position',
        params: [expect.objectContaining({ name: 'frame', value: 'ICRS' })],
        fieldRefs: ['ra', 'ra2'],
        paramRefs: ['frame'],
        groups: [{ name: 'inner', params: [], fieldRefs: ['flag'], paramRefs: [], groups: [] }],
      },
    ]);
    expect(t.meta.resource).toMatchObject({ ID: 'r1', name: 'results', type: 'results', utype: 'u:r', description: 'the results' });
    expect(t.meta.resource.links).toEqual([{ contentRole: 'doc', contentType: 'text/html', href: 'https://example.org/doc', title: 'Docs' }]);
    // The RESOURCE event comes at its end, with the PARAM that followed the TABLE.
    expect(doc.resources[0].params.map((p) => [p.name, p.value])).toEqual([['after', null]]);
    expect(t.meta.resource.params).toEqual([]);
    expect(doc.params.map((p) => [p.name, p.value])).toEqual([['top', 16]]);
  });
});
