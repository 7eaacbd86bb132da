/**
 * A table with every kind of cell, the converters as they were before the results work (kept as
 * the reference for "means the same as before"), and readers of CSV, TSV and JSON text that
 * check every cell against the VOTable's own values. Shared by votable-text-table.test.ts and
 * the results integration test.
 */
import type { Cell, FieldMeta, Row, WritableField, WritableTable } from '../../adapters/ivoa/votable/index.js';

const f32 = Math.fround;

/** Every datatype and shape, VALUES null sentinels, and text that needs quoting or escaping. */
export const MIXED_FIELDS: WritableField[] = [
  { name: 'source_id', datatype: 'long', ucd: 'meta.id;meta.main' },
  { name: 'ra', datatype: 'double', unit: 'deg' },
  { name: 'mag', datatype: 'float', unit: 'mag' },
  { name: 'n_obs', datatype: 'int' },
  { name: 'n_sent', datatype: 'int', values: { null: '-999' } },
  { name: 'l_sent', datatype: 'long', values: { null: '-1' } },
  { name: 'flags', datatype: 'short' },
  { name: 'qual', datatype: 'unsignedByte' },
  { name: 'ok', datatype: 'boolean' },
  { name: 'bit', datatype: 'bit' },
  { name: 'name', datatype: 'char', arraysize: '*' },
  { name: 'code', datatype: 'char', arraysize: '8' },
  { name: 'c_sent', datatype: 'char', arraysize: '*', values: { null: 'N/A' } },
  { name: 'label', datatype: 'unicodeChar', arraysize: '*' },
  { name: 'fz', datatype: 'floatComplex' },
  { name: 'dz', datatype: 'doubleComplex' },
  { name: 'mags', datatype: 'float', arraysize: '*' },
  { name: 'pos', datatype: 'double', arraysize: '2' },
  { name: 'ids', datatype: 'long', arraysize: '*' },
  { name: 'cnt', datatype: 'int', arraysize: '3', values: { null: '-999' } },
  { name: 'bands', datatype: 'char', arraysize: '2x*' },
  { name: 'oks', datatype: 'boolean', arraysize: '2' },
];

/** The table itself. */
export const MIXED_TABLE: WritableTable = { name: 'mixed', fields: MIXED_FIELDS };

/** Rows with NULLs, extremes, -0, infinities, unicode, and commas, quotes, newlines, tabs, blanks. */
export const MIXED_ROWS: Row[] = [
  [6917528443525529728n, 251.65033405646682, 15.278674125671387, 764, 12, 42n, -7, 255, true, true,
    'Gaia DR3 6917528443525529728', 'ABC', 'x', 'Ωmega', [f32(1.5), f32(-0.1)], [1e300, -5e-324],
    [f32(0.1), null, f32(3.4028234663852886e38)], [0.5, -0.25], [1n, -9223372036854775808n], [1, -999, 3], ['g', 'bp'], [true, null]],
  new Array(MIXED_FIELDS.length).fill(null),
  [-9223372036854775808n, -0, -0, -2147483648, -999, -1n, 32767, 0, false, false,
    'has, comma', 'q"uote', 'N/A', 'tab\there', [0, 0], [Infinity, 1], [f32(1e-45), f32(1.1754942e-38)], [-Infinity, 5e-324], [5n], [0, 0, 0], ['r'], [false, false]],
  [9223372036854775807n, Infinity, Infinity, 2147483647, 5, 9007199254740993n, 0, 1, null, null,
    'line\nbreak and\r\nCRLF', ' lead', 'trail ', 'back\\slash "quoted" ünï', null, null, null, null, null, null, null, null],
  [1n, -Infinity, -Infinity, 0, 0, 0n, 1, 2, true, false,
    '日本語 テキスト', 'plain', 'N/A2', '🚀 rocket', [f32(-2.5), f32(16777216)], [0.1, 0.2], [f32(12.959861)], [1e21, 1e-7], [9007199254740993n], [7, 8, 9], ['ab', 'cd'], [true, false]],
  [123456789012345678n, 0.1, f32(0.1), -1, 1, 2n, -32768, 128, false, true,
    '<tag> & "amp"', 'a,b', 'z', 'x', [f32(3), f32(4)], [3, 4], [f32(1 / 3)], [Math.PI, Math.E], [2n ** 62n], [1, 2, 3], ['xy'], [false, true]],
];

// --- the converters as they were before (broker/jobs/results.ts and broker/tap/formats.ts) ---

function oldCsvField(text: string): string {
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function oldCellText(cell: Cell): string {
  if (cell === null) return '';
  if (Array.isArray(cell)) return cell.map((v) => (v === null ? '' : oldCellText(v))).join(' ');
  return String(cell);
}

function oldCellJson(cell: Cell): string {
  if (cell === null) return 'null';
  if (typeof cell === 'bigint') return cell.toString();
  if (typeof cell === 'number') return Number.isFinite(cell) ? String(cell) : 'null';
  if (typeof cell === 'boolean') return cell ? 'true' : 'false';
  if (typeof cell === 'string') return JSON.stringify(cell);
  return '[' + cell.map((v) => oldCellJson(v)).join(',') + ']';
}

function fieldJson(f: FieldMeta): Record<string, string> {
  const out: Record<string, string> = { name: f.name, datatype: f.datatype };
  if (f.arraysize) out.arraysize = f.arraysize;
  if (f.unit) out.unit = f.unit;
  if (f.ucd) out.ucd = f.ucd;
  if (f.xtype) out.xtype = f.xtype;
  if (f.description) out.description = f.description;
  return out;
}

/** The CSV, TSV or JSON text the converters wrote before, for these rows. */
export function oldText(format: 'csv' | 'tsv' | 'json', fields: FieldMeta[], rows: Row[]): string {
  if (format === 'csv') return fields.map((f) => oldCsvField(f.name)).join(',') + '\r\n' + rows.map((r) => r.map((c) => oldCsvField(oldCellText(c))).join(',') + '\r\n').join('');
  if (format === 'tsv') {
    const clean = (s: string) => s.replace(/[\t\r\n]/g, ' ');
    return fields.map((f) => clean(f.name)).join('\t') + '\n' + rows.map((r) => r.map((c) => clean(oldCellText(c))).join('\t') + '\n').join('');
  }
  return `{"metadata":${JSON.stringify(fields.map(fieldJson))},"data":[` + rows.map((r, i) => (i === 0 ? '\n' : ',\n') + '[' + r.map(oldCellJson).join(',') + ']').join('') + '\n]}\n';
}

// --- reading the text back ---

/** RFC 4180 CSV (CRLF records, quoted fields with doubled quotes) into records of fields. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i++;
      } else {
        field += c;
        i++;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      record.push(field);
      field = '';
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += 2;
    } else {
      if (c === '\r' || c === '\n' || c === '"') throw new Error(`bare ${JSON.stringify(c)} in an unquoted CSV field at ${i}`);
      field += c;
      i++;
    }
  }
  if (field !== '' || record.length > 0) throw new Error('CSV does not end with CRLF');
  return records;
}

/** TSV: LF records, tab-separated. */
export function parseTsv(text: string): string[][] {
  if (!text.endsWith('\n')) throw new Error('TSV does not end with LF');
  return text.slice(0, -1).split('\n').map((l) => l.split('\t'));
}

/** A JSON number kept as its text, so 64-bit integers are compared exactly. */
export interface JsonNumber {
  num: string;
}
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [k: string]: JsonValue };

/** JSON with numbers kept as text (JSON.parse would round 64-bit integers). */
export function parseJson(text: string): JsonValue {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i])) i++;
  };
  const value = (): JsonValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, JsonValue> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        ws();
        const key = value();
        if (typeof key !== 'string') throw new Error(`object key at ${i} is not a string`);
        ws();
        if (text[i++] !== ':') throw new Error(`':' expected at ${i - 1}`);
        out[key] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i++] === '}') return out;
        else throw new Error(`',' or '}' expected at ${i - 1}`);
      }
    }
    if (c === '[') {
      i++;
      const out: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i++] === ']') return out;
        else throw new Error(`',' or ']' expected at ${i - 1}`);
      }
    }
    if (c === '"') {
      const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(i, i + 100_000));
      if (!m) throw new Error(`bad string at ${i}`);
      i += m[0].length;
      return JSON.parse(m[0]) as string;
    }
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 40));
    if (!m) throw new Error(`bad value at ${i}: ${text.slice(i, i + 20)}`);
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    return { num: m[0] };
  };
  const out = value();
  ws();
  if (i !== text.length) throw new Error(`trailing text at ${i}`);
  return out;
}

// --- what a cell's text means ---

const isFloat32 = (f: FieldMeta) => f.datatype === 'float' || f.datatype === 'floatComplex';
const isString = (f: FieldMeta) => f.datatype === 'char' || f.datatype === 'unicodeChar';

/** A number's text read at the column's precision. */
function real(f: FieldMeta, text: string): number {
  const v = Number(text);
  if (Number.isNaN(v) && text !== 'NaN') throw new Error(`"${text}" is not a number`);
  return isFloat32(f) ? f32(v) : v;
}

/** One scalar's text read as the column's type ('' → null, as CSV and TSV write null). */
function scalarOf(f: FieldMeta, text: string): Cell {
  if (text === '') return null;
  if (f.datatype === 'long') return BigInt(text);
  if (f.datatype === 'boolean' || f.datatype === 'bit') {
    if (text !== 'true' && text !== 'false') throw new Error(`"${text}" is not a boolean`);
    return text === 'true';
  }
  return real(f, text);
}

/** What a CSV or TSV field means for column `f` (the inverse of how cells are written). */
export function cellFromText(f: FieldMeta, text: string): Cell {
  if (isString(f)) {
    if (f.shape !== null && f.shape.dims.length + (f.shape.variable ? 1 : 0) >= 2) return text === '' ? null : text.split(' ');
    return text === '' ? null : text;
  }
  const complex = f.datatype === 'floatComplex' || f.datatype === 'doubleComplex';
  if (f.shape === null && !complex) return scalarOf(f, text);
  if (text === '') return null;
  const parts = text.split(' ');
  if (!complex) return parts.map((p) => scalarOf(f, p) as Exclude<Cell, null | Cell[]>);
  if (f.shape === null) return [real(f, parts[0]), real(f, parts[1])];
  const out: ([number, number] | null)[] = [];
  for (let k = 0; k < parts.length; k += 2) out.push(parts[k] === '' ? null : [real(f, parts[k]), real(f, parts[k + 1])]);
  return out;
}

/** What a JSON value means for column `f`. */
export function cellFromJson(f: FieldMeta, v: JsonValue): Cell {
  if (v === null) return null;
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => cellFromJson({ ...f, shape: null, arraysize: undefined }, x)) as Cell;
  if ('num' in v && typeof v.num === 'string') return f.datatype === 'long' ? BigInt(v.num) : real(f, v.num);
  throw new Error(`unexpected JSON value ${JSON.stringify(v)}`);
}

/**
 * The cell as each format can carry it: CSV and TSV write an empty string, and an empty array,
 * as they write null; TSV writes tabs and line breaks as spaces; JSON has no NaN or infinities.
 */
export function carried(f: FieldMeta, cell: Cell, format: 'csv' | 'tsv' | 'json'): Cell {
  if (cell === null) return null;
  if (format === 'json') {
    if (typeof cell === 'number' && !Number.isFinite(cell)) return null;
    if (Array.isArray(cell)) return cell.map((x) => carried({ ...f, shape: null }, x, format)) as Cell;
    return cell;
  }
  if (cell === '' || (Array.isArray(cell) && cell.length === 0)) return null;
  if (format === 'tsv' && typeof cell === 'string') return cell.replace(/[\t\r\n]/g, ' ');
  if (format === 'tsv' && Array.isArray(cell) && isString(f)) return cell.map((s) => (typeof s === 'string' ? s.replace(/[\t\r\n]/g, ' ') : s)) as Cell;
  return cell;
}

/** Same value, -0 and +0 told apart. */
export function sameCell(a: Cell, b: Cell): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, k) => sameCell(x as Cell, b[k] as Cell));
  }
  return Object.is(a, b);
}

/** Every cell of a CSV/TSV/JSON text, read back as its column's type, in rows. */
export function cellsOf(format: 'csv' | 'tsv' | 'json', fields: FieldMeta[], text: string): { header: string[]; rows: Cell[][] } {
  if (format === 'json') {
    const doc = parseJson(text);
    const object = (v: JsonValue): Record<string, JsonValue> | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('num' in v && typeof v.num === 'string') ? (v as Record<string, JsonValue>) : undefined);
    const top = object(doc);
    const metadata = top?.metadata;
    const data = top?.data;
    if (!Array.isArray(metadata) || !Array.isArray(data)) throw new Error('not {"metadata":[…],"data":[…]}');
    const header = metadata.map((m) => {
      const name = object(m)?.name;
      return typeof name === 'string' ? name : '?';
    });
    const rows = data.map((r) => {
      if (!Array.isArray(r) || r.length !== fields.length) throw new Error('a JSON row with the wrong number of cells');
      return r.map((v, c) => cellFromJson(fields[c], v));
    });
    return { header, rows };
  }
  const [header, ...records] = format === 'csv' ? parseCsv(text) : parseTsv(text);
  return { header, rows: records.map((r) => {
    if (r.length !== fields.length) throw new Error(`a record with ${r.length} fields, the table has ${fields.length}`);
    return r.map((t, c) => cellFromText(fields[c], t));
  }) };
}
