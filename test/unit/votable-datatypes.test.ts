import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readVOTableToArray } from '../../adapters/ivoa/votable/index.js';
import type { Row } from '../../adapters/ivoa/votable/index.js';

const DIR = fileURLToPath(new URL('../fixtures/votable/', import.meta.url));
const f32 = Math.fround;

/** Big-endian bytes assembled by hand from the VOTable spec, independently of the reader. */
class Bytes {
  readonly out: number[] = [];
  private dv = new DataView(new ArrayBuffer(16));
  u8(...xs: number[]): this {
    this.out.push(...xs);
    return this;
  }
  private take(n: number): this {
    for (let k = 0; k < n; k++) this.out.push(this.dv.getUint8(k));
    return this;
  }
  i16(x: number): this {
    this.dv.setInt16(0, x);
    return this.take(2);
  }
  i32(x: number): this {
    this.dv.setInt32(0, x);
    return this.take(4);
  }
  i64(x: bigint): this {
    this.dv.setBigInt64(0, x);
    return this.take(8);
  }
  f32(...xs: number[]): this {
    for (const x of xs) {
      this.dv.setFloat32(0, x);
      this.take(4);
    }
    return this;
  }
  f64(...xs: number[]): this {
    for (const x of xs) {
      this.dv.setFloat64(0, x);
      this.take(8);
    }
    return this;
  }
  /** UTF-8 text NUL-padded to `width` bytes, or count-prefixed when width is undefined. */
  chars(s: string, width?: number): this {
    const b = [...Buffer.from(s, 'utf8')];
    if (width === undefined) this.i32(b.length);
    this.out.push(...b);
    for (let k = b.length; k < (width ?? 0); k++) this.out.push(0);
    return this;
  }
  /** UTF-16BE code units, U+0000-padded to `width`, or count-prefixed. */
  ucs(s: string, width?: number): this {
    if (width === undefined) this.i32(s.length);
    for (let k = 0; k < Math.max(s.length, width ?? 0); k++) this.i16(k < s.length ? s.charCodeAt(k) : 0);
    return this;
  }
  /** Bits packed most significant first into the fewest bytes. */
  bits(bits: number[]): this {
    for (let k = 0; k < bits.length; k += 8) {
      let byte = 0;
      for (let j = 0; j < 8 && k + j < bits.length; j++) if (bits[k + j]) byte |= 0x80 >> j;
      this.out.push(byte);
    }
    return this;
  }
  base64(): string {
    return Buffer.from(this.out).toString('base64');
  }
}

const FIELDS = `
  <FIELD name="b" datatype="boolean"/>
  <FIELD name="bit" datatype="bit"/>
  <FIELD name="bits" datatype="bit" arraysize="10"/>
  <FIELD name="bitv" datatype="bit" arraysize="*"/>
  <FIELD name="ub" datatype="unsignedByte"><VALUES null="255"/></FIELD>
  <FIELD name="s" datatype="short"><VALUES null="-32768"/></FIELD>
  <FIELD name="i" datatype="int"><VALUES null="-2147483648"/></FIELD>
  <FIELD name="l" datatype="long"><VALUES null="-9223372036854775808"/></FIELD>
  <FIELD name="ch" datatype="char"/>
  <FIELD name="c8" datatype="char" arraysize="8"/>
  <FIELD name="vc" datatype="char" arraysize="*"/>
  <FIELD name="strs" datatype="char" arraysize="4x3"/>
  <FIELD name="strv" datatype="char" arraysize="3x*"/>
  <FIELD name="u" datatype="unicodeChar" arraysize="*"/>
  <FIELD name="uf" datatype="unicodeChar" arraysize="5"/>
  <FIELD name="f" datatype="float"/>
  <FIELD name="d" datatype="double"/>
  <FIELD name="fc" datatype="floatComplex"/>
  <FIELD name="dc" datatype="doubleComplex"/>
  <FIELD name="d32" datatype="double" arraysize="3x2"/>
  <FIELD name="i3v" datatype="int" arraysize="3x*"><VALUES null="-999"/></FIELD>
  <FIELD name="fv" datatype="float" arraysize="*"/>
  <FIELD name="bools" datatype="boolean" arraysize="3"/>
  <FIELD name="blob" datatype="unsignedByte" arraysize="*"/>
  <FIELD name="fcv" datatype="floatComplex" arraysize="2"/>
  <FIELD name="lv" datatype="long" arraysize="2*"/>`;
const NCOLS = 26;

/** Row A: a value in every column, including the values that mean null inside arrays. */
function rowA(b: Bytes): void {
  b.u8(0x54).u8(0x80).bits([1, 0, 1, 1, 0, 0, 0, 0, 1, 1]).i32(3).bits([1, 1, 0]);
  b.u8(7).i16(-2).i32(123456).i64(4583627001381815936n);
  b.u8(0x58).chars('Gaia', 8).chars('héllo').chars('ab', 4).chars('cd', 4).chars('ef', 4).i32(2).chars('abc', 3).chars('de', 3);
  b.ucs('Ωmega').ucs('Δα', 5);
  b.f32(1.5).f64(Math.PI).f32(1, -2).f64(1e300, -1e-300).f64(1, 2, 3, 4, 5, 6);
  b.i32(2).i32(1).i32(2).i32(3).i32(4).i32(5).i32(-999);
  b.i32(2).f32(0.5, Number.NaN).u8(0x54, 0x3f, 0x46).i32(3).u8(0, 255, 16).f32(1, 2, Number.NaN, 0);
  b.i32(2).i64(-1n).i64(2n);
}
const ROW_A: Row = [
  true, true, [true, false, true, true, false, false, false, false, true, true], [true, true, false],
  7, -2, 123456, 4583627001381815936n,
  'X', 'Gaia', 'héllo', ['ab', 'cd', 'ef'], ['abc', 'de'], 'Ωmega', 'Δα',
  1.5, Math.PI, [1, -2], [1e300, -1e-300], [1, 2, 3, 4, 5, 6],
  [1, 2, 3, 4, 5, null], [0.5, null], [true, null, false], [0, 255, 16], [[1, 2], null], [-1n, 2n],
];

/** Row C: edge values, none of them null: full-width strings, empty arrays, infinities. */
function rowC(b: Bytes): void {
  b.u8(0x74).u8(0x00).bits([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]).i32(9).bits([1, 0, 0, 0, 0, 0, 0, 0, 1]);
  b.u8(0).i16(32767).i32(-2147483647).i64(-1n);
  b.u8(0x20).chars('abcdefgh', 8).chars('').chars('abcd', 4).chars('', 4).chars('x', 4).i32(0);
  b.ucs('').ucs('abcde', 5);
  b.f32(-Infinity).f64(Infinity).f32(0, 0).f64(-0, 0).f64(0.1, 0.2, 0.3, 0.4, 0.5, 0.6);
  b.i32(1).i32(7).i32(8).i32(9);
  b.i32(0).u8(0x31, 0x30, 0x74).i32(0).f32(0, 0, 3, 4).i32(0);
}
const ROW_C: Row = [
  true, false, [true, true, true, true, true, true, true, true, true, true], [true, false, false, false, false, false, false, false, true],
  0, 32767, -2147483647, -1n,
  ' ', 'abcdefgh', '', ['abcd', '', 'x'], [], '', 'abcde',
  -Infinity, Infinity, [0, 0], [-0, 0], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
  [7, 8, 9], [], [true, false, true], [], [[0, 0], [3, 4]], [],
];

/** Row B for BINARY: every null BINARY can express (sentinels, NaN, boolean '?'/NUL/space). */
function rowBNullsBinary(b: Bytes): void {
  b.u8(0x3f).u8(0).bits(new Array(10).fill(0)).i32(0);
  b.u8(255).i16(-32768).i32(-2147483648).i64(-(2n ** 63n));
  b.u8(0).chars('', 8).chars('').chars('', 4).chars('', 4).chars('', 4).i32(0);
  b.ucs('').ucs('', 5);
  b.f32(Number.NaN).f64(Number.NaN).f32(Number.NaN, Number.NaN).f64(Number.NaN, Number.NaN).f64(...new Array(6).fill(Number.NaN));
  b.i32(0).i32(0).u8(0x00, 0x20, 0x3f).i32(0).f32(Number.NaN, Number.NaN, Number.NaN, 1).i32(0);
}
const ROW_B_BINARY: Row = [
  null, false, new Array(10).fill(false), [],
  null, null, null, null,
  '', '', '', ['', '', ''], [], '', '',
  null, null, null, null, new Array(6).fill(null),
  [], [], [null, null, null], [], [null, null], [],
];

function binaryDoc(kind: 'BINARY' | 'BINARY2', base64: string, version = '1.3'): string {
  return `<?xml version="1.0"?>
<VOTABLE version="${version}" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><TABLE>${FIELDS}
<DATA><${kind}><STREAM encoding="base64">${base64}</STREAM></${kind}></DATA></TABLE></RESOURCE></VOTABLE>`;
}

function binary2Bytes(): Bytes {
  const b = new Bytes();
  b.u8(0, 0, 0, 0);
  rowA(b);
  // Row B: every flag set; the cell bytes are junk that must be skipped, variable ones included.
  b.u8(0xff, 0xff, 0xff, 0xc0);
  b.u8(0x54).u8(0x80).bits(new Array(10).fill(1)).i32(2).bits([1, 1]);
  b.u8(1).i16(1).i32(1).i64(1n);
  b.u8(0x41).chars('zzz', 8).chars('abc').chars('', 4).chars('', 4).chars('', 4).i32(1).chars('q', 3);
  b.ucs('w').ucs('', 5);
  b.f32(1).f64(1).f32(1, 1).f64(1, 1).f64(1, 1, 1, 1, 1, 1);
  b.i32(1).i32(1).i32(1).i32(1).i32(1).f32(9).u8(0x54, 0x54, 0x54).i32(2).u8(1, 2).f32(1, 1, 1, 1).i32(1).i64(5n);
  b.u8(0, 0, 0, 0);
  rowC(b);
  return b;
}

const BINARY2_ROWS: Row[] = [ROW_A, new Array(NCOLS).fill(null), ROW_C];

async function rows(xml: string | Buffer): Promise<Row[]> {
  return (await readVOTableToArray(xml)).tables[0].rows;
}

describe('BINARY2, every datatype', () => {
  it('decodes values, arrays, strings, bits, complex and null flags', async () => {
    expect(await rows(binaryDoc('BINARY2', binary2Bytes().base64()))).toEqual(BINARY2_ROWS);
  });

  it('reports the parsed shapes of multidimensional and variable arraysize', async () => {
    const doc = await readVOTableToArray(binaryDoc('BINARY2', binary2Bytes().base64()));
    const shape = (name: string) => doc.tables[0].meta.fields.find((f) => f.name === name)?.shape;
    expect(shape('d32')).toEqual({ dims: [3, 2], variable: false, maxLast: null });
    expect(shape('i3v')).toEqual({ dims: [3], variable: true, maxLast: null });
    expect(shape('lv')).toEqual({ dims: [], variable: true, maxLast: 2 });
    expect(shape('b')).toBeNull();
  });

  it('reads the same rows whatever the base64 layout', async () => {
    const bytes = binary2Bytes();
    const plain = bytes.base64();
    const lines = plain.replace(/.{76}/g, '$&\n');
    const indented = plain.replace(/.{60}/g, '$&\n\t    ');
    const spaced = plain.replace(/(.{4})/g, '$1 ');
    // Some writers pad every block: concatenated base64 pieces with their own '='.
    const blocks = [0, 5, 11, 97, 200].reduce<string[]>((acc, at, k, all) => {
      const end = k + 1 < all.length ? all[k + 1] : bytes.out.length;
      acc.push(Buffer.from(bytes.out.slice(at, end)).toString('base64'));
      return acc;
    }, []);
    expect(blocks.join('').includes('=')).toBe(true);
    const cdata = `<![CDATA[${lines}]]>`;
    const commented = `${plain.slice(0, 40)}<!-- a comment -->${plain.slice(40)}`;
    for (const text of [lines, `\n${indented}\n`, spaced, blocks.join('\n'), cdata, commented]) {
      expect(await rows(binaryDoc('BINARY2', text))).toEqual(BINARY2_ROWS);
    }
  });
});

describe('BINARY, every datatype', () => {
  it('decodes values and the nulls BINARY can express (sentinels, NaN, boolean ?)', async () => {
    const b = new Bytes();
    rowA(b);
    rowBNullsBinary(b);
    rowC(b);
    expect(await rows(binaryDoc('BINARY', b.base64(), '1.1'))).toEqual([ROW_A, ROW_B_BINARY, ROW_C]);
  });

  it('reads the STIL-style typed-null upload: sentinels for short/int/long, NaN, NUL-padded char', async () => {
    const doc = await readVOTableToArray(readFileSync(DIR + 'typed-nulls-binary.xml'));
    const t = doc.tables[0];
    expect(doc.version).toBe('1.2');
    expect(t.meta).toMatchObject({ name: 'votable', nrows: 23, serialization: 'BINARY' });
    expect(t.rows).toHaveLength(23);
    expect(t.rows[0]).toEqual([0, 0, 0n, 0, 0, 'A', '0', '2000-01-01T00:00:00']);
    expect(t.rows[21]).toEqual([21, 21000, 21_000_000_000_000n, 10.5, 26.25, 'V', '21', '2000-01-22T00:21:00']);
    expect(t.rows[22]).toEqual([null, null, null, null, null, '', '', '']);
    expect(t.meta.fields[7]).toMatchObject({ name: 'd_time', xtype: 'timestamp', arraysize: '19' });
  });
});

describe('astropy-written BINARY and BINARY2', () => {
  it('reads a scalar bit written the astropy way (0x08) as true, as well as the spec way (0x80)', async () => {
    const xml = (data: number[]) =>
      `<VOTABLE><RESOURCE><TABLE><FIELD name="flag" datatype="bit"/><DATA><BINARY2><STREAM encoding="base64">${Buffer.from(data).toString('base64')}</STREAM></BINARY2></DATA></TABLE></RESOURCE></VOTABLE>`;
    expect(await rows(xml([0, 0x08, 0, 0x80, 0, 0, 0x80, 0x80]))).toEqual([[true], [true], [false], [null]]);
  });

  const expected: Row[] = [
    [true, [true, false, true, true, false, false, false, false, true, true], 7, -32767, 2147483647, 4583627001381815936n,
      'Gaia', 'hello <&> world', 'Ωmega ü', 'Δα', 1.5, Math.PI, [1, -2], [1e300, 1e-300],
      [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0.5, -0.25], [true, false, true]],
    [false, new Array(10).fill(false), 0, 0, 0, -1n, '', '', '', '', 0, -2.5, [0, 0], [3, 4],
      [0, 0, 0, 0, 0, 0], [7, 8, 9], [], [false, false, false]],
    [true, new Array(10).fill(true), 200, 12345, -7, 9007199254740993n, 'abcdefgh', 'x'.repeat(40), 'z', 'abcdef',
      f32(-1.25e-20), 6.02214076e23, [0.5, 0.25], [-1, -1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [10, 11, 12], [1, 2, 3],
      [true, true, false]],
    [null, [true, false, true, true, false, false, false, false, true, true], null, null, null, null,
      'Gaia', 'hello <&> world', 'Ωmega ü', 'Δα', null, null, null, null,
      [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0.5, -0.25], [true, false, true]],
  ];
  it.each(['astropy-alltypes-binary.vot', 'astropy-alltypes-binary2.vot'])('%s', async (name) => {
    expect(await rows(readFileSync(DIR + name))).toEqual(expected);
  });
});

describe('TABLEDATA, every datatype', () => {
  it('reads alltypes-tabledata.xml: literals, hex, boolean words, NaN/Inf, entities, CDATA, comments, empty cells', async () => {
    const doc = await readVOTableToArray(readFileSync(DIR + 'alltypes-tabledata.xml'));
    const t = doc.tables[0];
    expect(t.rows).toEqual([
      [true, true, [true, false, true, true, false, false, false, false, true, true], 127, -32767, 2147483647,
        4583627001381815936n, 'X', 'Gaia', 'a <b> & "c" ☺', ['ab', 'cd', 'ef'], 'Ωmega ü', 1.5, Math.PI,
        [1, -2], [1e300, 1e-300], [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6], [0.5, -0.25], [true, false, true], [[1, 2], [3, 4]]],
      [false, false, new Array(10).fill(false), null, null, 2147483647, null, null, '<cdata> & stuff', 'line1\nline2',
        ['abcd', 'xyz', ''], null, null, Infinity, null, [-Infinity, 0], [0, 0, 0, 0, 0, 0], [7, 8, null], null,
        [null, false, true], [null, [5, 6]]],
      new Array(21).fill(null),
      [false, true, new Array(10).fill(true), 200, null, -7, -1n, ' ', 'abcdefghij', 'xy', ['a', 'b', 'c'], 'z',
        f32(-1.25e-20), -Infinity, [0.5, 0.25], [-1, -1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [10, 11, 12, 13, 14, 15],
        [1, 2, 3], [true, false, true], [[1, 2], [3, 4]]],
    ]);
    expect(t.meta.nrows).toBe(4);
    expect(t.meta.fields.find((f) => f.name === 'd')).toMatchObject({ width: 12, precision: '8', unit: 'deg', ucd: 'pos.eq.ra;meta.main' });
    expect(t.meta.fields.find((f) => f.name === 'i')?.xtype).toBe('adql:INTEGER');
    expect(t.meta.params.map((p) => [p.name, p.value])).toEqual([
      ['epoch', 2016],
      ['bands', 'G BP RP'],
      ['corners', [1, 2, 3, 4]],
    ]);
    expect(doc.overflow).toBe(true);
    expect(doc.infos.map((i) => [i.name, i.value, i.content])).toEqual([
      ['QUERY_STATUS', 'OK', ''],
      ['QUERY_STATUS', 'OVERFLOW', 'row limit reached'],
    ]);
  });

  it('reads ns0:-prefixed elements (ElementTree re-serialisation) like unprefixed ones', async () => {
    const plain = readFileSync(DIR + 'alltypes-tabledata.xml', 'utf8');
    const prefixed = plain
      .replace(/<(\/?)([A-Z][A-Za-z]*)/g, '<$1ns0:$2')
      .replace('xmlns="http://www.ivoa.net/xml/VOTable/v1.3"', 'xmlns:ns0="http://www.ivoa.net/xml/VOTable/v1.3"');
    expect(prefixed).toContain('<ns0:TD>');
    expect(await rows(prefixed)).toEqual(await rows(plain));
  });

  it('accepts every VOTable 1.1–1.5 namespace and none', async () => {
    const body = `<RESOURCE><TABLE><FIELD name="x" datatype="int"/><DATA><TABLEDATA><TR><TD>5</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>`;
    for (const ns of ['', ' xmlns="http://www.ivoa.net/xml/VOTable/v1.1"', ' xmlns="http://www.ivoa.net/xml/VOTable/v1.2"', ' xmlns="http://www.ivoa.net/xml/VOTable/v1.3"', ' xmlns="http://www.ivoa.net/xml/VOTable/v1.5"']) {
      expect(await rows(`<VOTABLE version="1.x"${ns}>${body}</VOTABLE>`)).toEqual([[5]]);
    }
  });

  it('skips elements of other namespaces (MIVOT annotations) whole', async () => {
    const xml = `<VOTABLE version="1.5" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results">
      <RESOURCE type="meta"><VODML xmlns="http://www.ivoa.net/xml/mivot"><MODEL name="x"/><INFO name="QUERY_STATUS" value="ERROR"/></VODML></RESOURCE>
      <TABLE><FIELD name="x" datatype="double"/><DATA><TABLEDATA><TR><TD>1.5</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`;
    expect(await rows(xml)).toEqual([[1.5]]);
  });

  it('decodes a Latin-1 document by its XML declaration', async () => {
    const xml = `<?xml version="1.0" encoding="ISO-8859-1"?><VOTABLE><RESOURCE><TABLE><FIELD name="s" datatype="char" arraysize="*"/><DATA><TABLEDATA><TR><TD>Zürich</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`;
    expect(await rows(Buffer.from(xml, 'latin1'))).toEqual([['Zürich']]);
  });

  it('decodes a UTF-16 document with a byte-order mark', async () => {
    const xml = `\uFEFF<?xml version="1.0" encoding="UTF-16"?><VOTABLE><RESOURCE><TABLE><FIELD name="s" datatype="char" arraysize="*"/><DATA><TABLEDATA><TR><TD>Ωmega</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`;
    expect(await rows(Buffer.from(xml, 'utf16le'))).toEqual([['Ωmega']]);
  });

  it('is not misled by a DOCTYPE internal subset holding comments, quotes and a fake <TABLEDATA>', async () => {
    const xml = `<?xml version="1.0"?>
<!DOCTYPE VOTABLE [
  <!-- it's a "test" ] with <TABLEDATA> inside -->
  <?pi don't <TABLEDATA> ?>
  <!ENTITY who "VOTable's reader">
  <!ATTLIST VOTABLE note CDATA "a > b">
]>
<!-- <TABLEDATA> in a comment -->
<VOTABLE><RESOURCE><TABLE><FIELD name="s" datatype="char" arraysize="*"/>
<DATA><TABLEDATA><TR><TD>ok</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>`;
    expect(await rows(xml)).toEqual([['ok']]);
  });

  it('reads several tables and RESOURCEs in document order', async () => {
    const table = (n: string, v: string) => `<TABLE name="${n}"><FIELD name="x" datatype="short"/><DATA><TABLEDATA><TR><TD>${v}</TD></TR></TABLEDATA></DATA></TABLE>`;
    const doc = await readVOTableToArray(`<VOTABLE><RESOURCE>${table('a', '1')}${table('b', '2')}</RESOURCE><RESOURCE>${table('c', '3')}<TABLE name="empty"><FIELD name="y" datatype="int"/></TABLE></RESOURCE></VOTABLE>`);
    expect(doc.tables.map((t) => [t.meta.index, t.meta.name, t.meta.serialization, t.rows])).toEqual([
      [0, 'a', 'TABLEDATA', [[1]]],
      [1, 'b', 'TABLEDATA', [[2]]],
      [2, 'c', 'TABLEDATA', [[3]]],
      [3, 'empty', null, []],
    ]);
    expect(doc.resources.map((r) => r.tableCount)).toEqual([2, 2]);
  });
});
