/**
 * CasJobs query answers as VOTable. CasJobs answers `Accept: application/json+array` with
 * {"Result":[{"Columns":[...],"Data":[[...],...]}]}: no column types, so each column's datatype is
 * inferred from its values. The JSON is read with integers kept exact, because SDSS object ids
 * (bigint, beyond 2^53) would otherwise be silently rounded by JSON.parse.
 */
import { writeVOTable, type Cell, type Row, type WritableField } from '../ivoa/votable/index.js';
import { ConstellationError } from '../../registry/model/errors.js';

/** A CasJobs answer with its inferred VOTable fields. */
export interface CasJobsTable {
  fields: WritableField[];
  rows: Row[];
}

type Kind = 'none' | 'boolean' | 'long' | 'double' | 'text';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// CasJobs answers are a handful of levels deep; far deeper nesting is not one of them.
const MAX_DEPTH = 32;

/**
 * Reads a CasJobs JSON answer into typed columns, leaving out the column `omit` if named. Throws
 * UPSTREAM_MALFORMED (naming `where`) when the text is not JSON or not that shape.
 */
export function casjobsTable(text: string, where: string, omit?: string): CasJobsTable {
  let doc: unknown;
  try {
    doc = parseJsonExact(text);
  } catch (err) {
    throw new ConstellationError('UPSTREAM_MALFORMED', `${where} did not return JSON: ${(err as Error).message}`, { cause: err });
  }
  const result = (doc as { Result?: unknown } | null)?.Result;
  const first = Array.isArray(result) ? (result[0] as { Columns?: unknown; Data?: unknown } | undefined) : undefined;
  const columns = first?.Columns;
  const data = first?.Data;
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string') || !Array.isArray(data)) {
    throw new ConstellationError('UPSTREAM_MALFORMED', `${where} did not return a CasJobs result ({Result:[{Columns,Data}]})`);
  }
  data.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== columns.length) {
      throw new ConstellationError('UPSTREAM_MALFORMED', `${where}: result row ${r + 1} does not have ${columns.length} values`);
    }
    row.forEach((v, c) => {
      if (v !== null && typeof v === 'object') throw new ConstellationError('UPSTREAM_MALFORMED', `${where}: result row ${r + 1}, column ${c + 1} is not a single value`);
    });
  });
  const rows = data as Cell[][];
  const keep = columns.map((_c, j) => j).filter((j) => columns[j] !== omit);
  const kinds = keep.map((j) => columnKind(rows, j));
  const fields = keep.map((j, k): WritableField => {
    const name = columns[j] === '' ? `col${j + 1}` : (columns[j] as string);
    switch (kinds[k]) {
      case 'boolean':
      case 'long':
      case 'double':
        return { name, datatype: kinds[k] as 'boolean' | 'long' | 'double' };
      default: {
        const ascii = rows.every((row) => row[j] === null || /^[\x00-\x7f]*$/.test(String(row[j])));
        return { name, datatype: ascii ? 'char' : 'unicodeChar', arraysize: '*' };
      }
    }
  });
  return { fields, rows: rows.map((row) => keep.map((j, k) => cellAs(row[j], kinds[k]))) };
}

/** The table as a streamed VOTable document. */
export function casjobsVOTable(table: CasJobsTable): AsyncIterable<Uint8Array> {
  return writeVOTable({ name: 'result', fields: table.fields }, table.rows, { infos: [{ name: 'QUERY_STATUS', value: 'OK' }] });
}

/** The one datatype all non-null values of column `j` fit; mixed kinds fall back to text. */
function columnKind(rows: Cell[][], j: number): Kind {
  let kind: Kind = 'none';
  for (const row of rows) {
    const v = row[j];
    if (v === null) continue;
    const k: Kind =
      typeof v === 'boolean' ? 'boolean'
      : typeof v === 'bigint' ? (v >= INT64_MIN && v <= INT64_MAX ? 'long' : 'double')
      : typeof v === 'number' ? 'double'
      : 'text';
    if (kind === 'none' || kind === k) kind = k;
    else if ((kind === 'long' && k === 'double') || (kind === 'double' && k === 'long')) kind = 'double';
    else return 'text';
  }
  return kind;
}

function cellAs(v: Cell, kind: Kind): Cell {
  if (v === null) return null;
  switch (kind) {
    case 'double':
      return Number(v);
    case 'text':
      return String(v);
    default:
      return v;
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const SPACE = /[ \t\n\r]*/y;

/** JSON.parse, except that integers (no fraction, no exponent) come back as bigint. */
function parseJsonExact(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };
  const skip = () => {
    SPACE.lastIndex = i;
    SPACE.exec(text);
    i = SPACE.lastIndex;
  };
  const match = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (m) i = re.lastIndex;
    return m;
  };
  const value = (depth: number): unknown => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    skip();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      // No prototype, so a "__proto__" key is just a key.
      const out: unknown[] | Record<string, unknown> = c === '{' ? (Object.create(null) as Record<string, unknown>) : [];
      i++;
      skip();
      if (text[i] === close) {
        i++;
        return out;
      }
      for (;;) {
        if (Array.isArray(out)) out.push(value(depth + 1));
        else {
          skip();
          const key = match(STRING) ?? fail('expected a property name');
          skip();
          if (text[i++] !== ':') fail("expected ':'");
          out[JSON.parse(key[0]) as string] = value(depth + 1);
        }
        skip();
        const next = text[i++];
        if (next === close) return out;
        if (next !== ',') fail(`expected ',' or '${close}'`);
      }
    }
    if (c === '"') return JSON.parse(match(STRING)?.[0] ?? fail('bad string')) as string;
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = match(NUMBER) ?? fail('unexpected character');
    return m[1] === undefined && m[2] === undefined ? BigInt(m[0]) : Number(m[0]);
  };
  const out = value(0);
  skip();
  if (i < text.length) fail('unexpected text after the value');
  return out;
}
