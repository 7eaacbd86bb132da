/**
 * The query engine of a demo centre: an in-memory PGlite holding the centre's tables (bulk
 * loaded with COPY, declination indexed), ADQL translated with the project's own ADQL →
 * PostgreSQL code, TAP_UPLOAD tables created for one query and dropped after it, and results
 * written as VOTable (BINARY2 or TABLEDATA). One query runs at a time: PGlite is one session.
 */
import { PGlite } from '@electric-sql/pglite';
import { parseAdql, quoteIdentifier, toPostgres } from '../../adapters/ivoa/adql/index.js';
import { readVOTableToArray, writeVOTable, type Cell, type Datatype, type WritableField } from '../../adapters/ivoa/votable/index.js';
import { rowCount, type CentreColumn, type CentreTable } from '../table.js';
import { binaryCopy } from './binary-copy.js';
import { TapFault } from './params.js';
import { addDeclinationBands, respell } from './sql-hints.js';
import { splitTableName } from './vosi.js';

/** One query as the service received it. */
export interface QueryRequest {
  adql: string;
  /** Rows to return at most (the answer says OVERFLOW when there were more). */
  maxrec: number;
  serialization: 'BINARY2' | 'TABLEDATA';
  /** Tables to create as TAP_UPLOAD.<name> for this query: VOTable bytes. */
  uploads: { name: string; votable: Buffer }[];
  /** Called when the query's turn comes; false skips it (an async job aborted while it waited). */
  onStart?: () => boolean;
}

/** A query's answer: the VOTable and what it held. */
export interface QueryAnswer {
  contentType: string;
  body: Buffer;
  rows: number;
  overflow: boolean;
  /** The PostgreSQL the ADQL became, as run. */
  sql: string;
  /** Rows uploaded with the query. */
  uploadRows: number;
}

const OID_TYPE: Record<number, Datatype> = { 16: 'boolean', 20: 'long', 21: 'short', 23: 'int', 700: 'float', 701: 'double', 1700: 'double' };
const PG_TYPE: Record<CentreColumn['datatype'], string> = { long: 'bigint', double: 'double precision' };
const UPLOAD_TYPE: Partial<Record<Datatype, string>> = {
  long: 'bigint', int: 'integer', short: 'smallint', unsignedByte: 'smallint', double: 'double precision', float: 'real', boolean: 'boolean',
};
const UPLOAD_SCHEMA = 'TAP_UPLOAD';

// initdb inside WebAssembly takes seconds; it runs once per process and every centre's
// database starts from a copy of that empty cluster (about a second).
let cluster: Promise<File | Blob> | undefined;

function emptyCluster(): Promise<File | Blob> {
  cluster ??= (async () => {
    const db = await PGlite.create();
    try {
      return await db.dumpDataDir('none');
    } finally {
      await db.close();
    }
  })();
  // A failed initdb is not cached: the next centre tries again.
  cluster.catch(() => (cluster = undefined));
  return cluster;
}
const COPY_ROWS = 50_000;
// Rows per binary COPY block when loading a catalogue (12 MB for 250,000 rows of four columns).
const LOAD_ROWS = 250_000;

/** Column metadata kept for result fields, by lower-case column name. */
interface FieldInfo {
  unit?: string;
  ucd?: string;
  description?: string;
}

/** The centre's database. */
export class QueryEngine {
  private queue: Promise<unknown> = Promise.resolve();
  /** Lower-case name → the centre's spelling, for every schema, table and column. */
  private readonly spelling = new Map<string, string>();
  private readonly fieldInfo = new Map<string, FieldInfo>();

  private constructor(private readonly db: PGlite, tables: readonly CentreTable[]) {
    for (const t of tables) {
      for (const part of splitTableName(t.name)) this.spelling.set(part.toLowerCase(), part);
      for (const c of t.columns) {
        this.spelling.set(c.name.toLowerCase(), c.name);
        if (!this.fieldInfo.has(c.name.toLowerCase())) this.fieldInfo.set(c.name.toLowerCase(), infoOf(c));
      }
    }
  }

  /** Starts PGlite and loads `tables` (COPY in blocks, then a declination index and ANALYZE). */
  static async open(tables: readonly CentreTable[]): Promise<QueryEngine> {
    const db = await PGlite.create({ loadDataDir: await emptyCluster(), parsers: { 20: (v: string) => BigInt(v) } });
    try {
      for (const t of tables) await load(db, t);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new QueryEngine(db, tables);
  }

  /** Runs one query after those already queued. */
  run(request: QueryRequest): Promise<QueryAnswer> {
    const run = this.queue.then(() => {
      if (request.onStart && !request.onStart()) throw new TapFault('the query was aborted before it ran');
      return this.execute(request);
    });
    // The queue only orders queries: a failed one is its caller's error, not the next query's.
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Stops the database. */
  async close(): Promise<void> {
    await this.queue;
    await this.db.close();
  }

  private async execute(request: QueryRequest): Promise<QueryAnswer> {
    const spelling = new Map(this.spelling);
    const fieldInfo = new Map(this.fieldInfo);
    const created: string[] = [];
    try {
      let uploadRows = 0;
      for (const upload of request.uploads) {
        const made = await this.createUpload(upload.name, upload.votable, spelling, fieldInfo);
        created.push(made.table);
        uploadRows += made.rows;
      }
      const sql = translate(request.adql, spelling);
      let res;
      try {
        res = await this.db.query<unknown[]>(`SELECT * FROM (${sql}) AS q LIMIT ${request.maxrec + 1}`, [], { rowMode: 'array' });
      } catch (err) {
        throw new TapFault(`query failed: ${(err as Error).message}`);
      }
      const overflow = res.rows.length > request.maxrec;
      const rows = overflow ? res.rows.slice(0, request.maxrec) : res.rows;
      const fields: WritableField[] = res.fields.map((f) => {
        const datatype = OID_TYPE[f.dataTypeID] ?? 'char';
        const field: WritableField = { name: f.name, datatype, ...fieldInfo.get(f.name.toLowerCase()) };
        if (datatype === 'char') field.arraysize = '*';
        return field;
      });
      const cells = rows.map((r) => r.map((v, i) => cellOf(v, fields[i].datatype)));
      const chunks: Uint8Array[] = [];
      const infos = [{ name: 'QUERY_STATUS', value: 'OK' }];
      const trailingInfos = overflow ? [{ name: 'QUERY_STATUS', value: 'OVERFLOW' }] : [];
      for await (const c of writeVOTable({ name: 'result', fields }, cells, { serialization: request.serialization, infos, trailingInfos })) chunks.push(c);
      const contentType = request.serialization === 'BINARY2' ? 'application/x-votable+xml' : 'application/x-votable+xml;serialization=TABLEDATA';
      return { contentType, body: Buffer.concat(chunks), rows: rows.length, overflow, sql, uploadRows };
    } finally {
      for (const t of created) await this.db.exec(`DROP TABLE IF EXISTS ${t}`);
    }
  }

  /** Creates TAP_UPLOAD.<name> from an uploaded VOTable and loads its rows. */
  private async createUpload(name: string, votable: Buffer, spelling: Map<string, string>, fieldInfo: Map<string, FieldInfo>): Promise<{ table: string; rows: number }> {
    let doc;
    try {
      doc = await readVOTableToArray(votable);
    } catch (err) {
      throw new TapFault(`UPLOAD ${name}: not a readable VOTable: ${(err as Error).message}`);
    }
    const table = doc.tables[0];
    if (!table) throw new TapFault(`UPLOAD ${name}: the VOTable holds no table`);
    const fields = table.meta.fields;
    if (fields.length === 0) throw new TapFault(`UPLOAD ${name}: the table has no columns`);
    const full = `${quoteIdentifier(UPLOAD_SCHEMA)}.${quoteIdentifier(name)}`;
    const columns = fields.map((f) => {
      const scalar = f.arraysize === undefined || f.datatype === 'char' || f.datatype === 'unicodeChar';
      return `${quoteIdentifier(f.name)} ${scalar ? UPLOAD_TYPE[f.datatype] ?? 'text' : 'text'}`;
    });
    await this.db.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(UPLOAD_SCHEMA)}; DROP TABLE IF EXISTS ${full}; CREATE TABLE ${full} (${columns.join(', ')})`);
    for (let i = 0; i < table.rows.length; i += COPY_ROWS) {
      const csv = table.rows.slice(i, i + COPY_ROWS).map((r) => r.map(csvCell).join(',')).join('\n');
      await this.db.query(`COPY ${full} FROM '/dev/blob' WITH (FORMAT csv)`, [], { blob: new Blob([`${csv}\n`]) });
    }
    await this.db.exec(`ANALYZE ${full}`);
    spelling.set(UPLOAD_SCHEMA.toLowerCase(), UPLOAD_SCHEMA);
    spelling.set(name.toLowerCase(), name);
    for (const f of fields) {
      // A column name the centre's own tables spell already keeps that spelling (first wins).
      if (!spelling.has(f.name.toLowerCase())) spelling.set(f.name.toLowerCase(), f.name);
      if (!fieldInfo.has(f.name.toLowerCase())) fieldInfo.set(f.name.toLowerCase(), infoOf(f));
    }
    return { table: full, rows: table.rows.length };
  }
}

function infoOf(c: { unit?: string; ucd?: string; description?: string }): FieldInfo {
  const info: FieldInfo = {};
  if (c.unit) info.unit = c.unit;
  if (c.ucd) info.ucd = c.ucd;
  if (c.description) info.description = c.description;
  return info;
}

/** ADQL → the PostgreSQL the centre runs: names spelt as the centre spells them, declination bands added. */
function translate(adql: string, spelling: ReadonlyMap<string, string>): string {
  try {
    const ast = parseAdql(adql);
    addDeclinationBands(ast);
    respell(ast, spelling);
    return toPostgres(ast);
  } catch (err) {
    throw new TapFault(`ADQL: ${(err as Error).message}`);
  }
}

async function load(db: PGlite, t: CentreTable): Promise<void> {
  const [schema, name] = splitTableName(t.name);
  const full = `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
  const columns = t.columns.map((c) => `${quoteIdentifier(c.name)} ${PG_TYPE[c.datatype]}`);
  await db.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}; CREATE TABLE ${full} (${columns.join(', ')})`);
  const n = rowCount(t);
  for (let start = 0; start < n; start += LOAD_ROWS) {
    const block = binaryCopy(t.columns, start, Math.min(n, start + LOAD_ROWS));
    await db.query(`COPY ${full} FROM '/dev/blob' WITH (FORMAT binary)`, [], { blob: new Blob([block]) });
  }
  for (const c of t.columns) {
    // Declination indexed for the bands a cone or a positional join adds; identifiers for lookups.
    if (/pos\.eq\.dec/.test(c.ucd ?? '') || /meta\.id;meta\.main/.test(c.ucd ?? '')) await db.exec(`CREATE INDEX ON ${full} (${quoteIdentifier(c.name)})`);
  }
  await db.exec(`ANALYZE ${full}`);
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isNaN(v) ? '' : String(v);
  if (typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  const text = typeof v === 'string' ? v : JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  return `"${text.replace(/"/g, '""')}"`;
}

function cellOf(v: unknown, datatype: Datatype): Cell {
  if (v === null || v === undefined) return null;
  if (datatype === 'long') return typeof v === 'bigint' ? v : BigInt(String(v));
  if (datatype === 'double' || datatype === 'float' || datatype === 'int' || datatype === 'short') return Number(v);
  if (datatype === 'boolean') return v === true;
  return typeof v === 'string' ? v : String(v);
}
