/**
 * A thread's result, made from its steps' kept results: per tile, the pairs of the tile's own
 * left rows (left rows filtered with leftInTile, every pair checked against the radius with the
 * broker's own separation, BEST applied), written as one VOTable (BINARY2) file under the data
 * directory. Also the upload table an UPLOAD thread sends, written from a read step's rows.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readVOTable, writeVOTableToBuffer, writeVOTable, type Cell, type FieldMeta, type Row, type WritableField } from '../../adapters/ivoa/votable/index.js';
import type { ThreadRunbook } from '../../registry/model/thread.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { crossmatch } from '../crossmatch/index.js';
import { RowChecksum } from './checksum.js';
import { JOIN_NAMES, UPLOAD_NAMES, regionOfBook, tableAt } from './runbook.js';
import { leftInTile, separationDeg, type Tile } from './tiles.js';
import type { CrossmatchRegion } from './types.js';

/** A step's result read whole: its fields, rows and size in bytes. */
export interface StepTable {
  fields: FieldMeta[];
  rows: Row[];
  bytes: number;
}

/** Read a step's VOTable result whole (one tile's worth: bounded by the planner's limits). */
export async function readStepTable(body: AsyncIterable<Uint8Array>): Promise<StepTable> {
  let bytes = 0;
  const counted = (async function* () {
    for await (const chunk of body) {
      bytes += chunk.byteLength;
      yield chunk;
    }
  })();
  let fields: FieldMeta[] | undefined;
  const rows: Row[] = [];
  for await (const ev of readVOTable(counted)) {
    if (ev.type === 'table' && ev.table.index === 0) fields = ev.table.fields;
    else if (ev.type === 'rows' && ev.table === 0) for (const r of ev.rows) rows.push(r);
    // A site that cut the answer at its row limit would silently lose pairs: the step fails instead.
    else if (ev.type === 'end' && ev.overflow) throw new ConstellationError('UPSTREAM_TOO_LARGE', `the site cut a step's answer at its row limit (QUERY_STATUS OVERFLOW after ${rows.length} rows)`);
  }
  if (!fields) throw new ConstellationError('UPSTREAM_MALFORMED', 'a step result VOTable has no table');
  return { fields, rows, bytes };
}

/** Where each column a read step returns sits: position, then the chosen columns (by local name, case-insensitive). */
function readIndexes(table: StepTable, side: ThreadRunbook['left']): { ra: number; dec: number; columns: number[] } {
  const at = (name: string) => {
    const i = table.fields.findIndex((f) => f.name.toLowerCase() === name.toLowerCase());
    if (i < 0) throw new ConstellationError('UPSTREAM_MALFORMED', `${side.site} returned no column ${name} for ${side.dataset}`);
    return i;
  };
  return { ra: at(side.ra), dec: at(side.dec), columns: side.columns.map(at) };
}

/** The upload table: the read rows (left rows only those of the tile) as UPLOAD_NAMES columns. */
export async function uploadTable(book: ThreadRunbook, tile: Tile, read: StepTable, readAt: string | null): Promise<{ votable: string; rows: number }> {
  const side = tableAt(book, book.uploadSide === 'right' ? 'right' : 'left', readAt);
  const ix = readIndexes(read, side);
  const region = regionOfBook(book);
  const keep = book.uploadSide === 'left'
    ? read.rows.filter((r) => positionIn(r, ix.ra, ix.dec, (ra, dec) => leftInTile(tile, region, ra, dec)))
    : read.rows;
  const fields: WritableField[] = [
    { ...plain(read.fields[ix.ra]), name: UPLOAD_NAMES.ra },
    { ...plain(read.fields[ix.dec]), name: UPLOAD_NAMES.dec },
    ...ix.columns.map((c, i) => ({ ...plain(read.fields[c]), name: UPLOAD_NAMES.column(i) })),
  ];
  const rows = keep.map((r) => [r[ix.ra], r[ix.dec], ...ix.columns.map((c) => r[c])]);
  const buffer = await writeVOTableToBuffer({ name: 'xmatch', fields }, rows, { serialization: 'TABLEDATA' });
  return { votable: buffer.toString('utf8'), rows: rows.length };
}

/** One tile's pairs as result rows, with the fields they carry. */
export interface TilePairs {
  fields: WritableField[];
  rows: Row[];
}

/** A join step's rows (SAME_SITE, UPLOAD) as the tile's result rows. */
export function joinPairs(book: ThreadRunbook, tile: Tile, join: StepTable): TilePairs {
  const at = (name: string) => {
    const i = join.fields.findIndex((f) => f.name.toLowerCase() === name);
    if (i < 0) throw new ConstellationError('UPSTREAM_MALFORMED', `a join result has no column ${name}`);
    return i;
  };
  const lRa = at(JOIN_NAMES.lRa), lDec = at(JOIN_NAMES.lDec), rRa = at(JOIN_NAMES.rRa), rDec = at(JOIN_NAMES.rDec);
  const left = book.left.columns.map((_, i) => at(JOIN_NAMES.left(i)));
  const right = book.right.columns.map((_, i) => at(JOIN_NAMES.right(i)));
  const region = regionOfBook(book);
  const candidates: { key: string; sep: number; row: Row; tie: Cell }[] = [];
  for (const r of join.rows) {
    const [la, ld, ra, rd] = [r[lRa], r[lDec], r[rRa], r[rDec]];
    if (typeof la !== 'number' || typeof ld !== 'number' || typeof ra !== 'number' || typeof rd !== 'number') continue;
    if (!leftInTile(tile, region, la, ld)) continue;
    const sep = separationDeg(la, ld, ra, rd) * 3600;
    if (!(sep <= book.radiusArcsec)) continue;
    const out: Row = [...left.map((i) => r[i]), ...right.map((i) => r[i]), sep];
    candidates.push({ key: keyOf([la, ld, ...left.map((i) => r[i])]), sep, row: out, tie: right.length > 0 ? r[right[0]] : ra });
  }
  const fields = outputFields(book, left.map((i) => join.fields[i]), right.map((i) => join.fields[i]));
  if (book.mode === 'ALL') return { fields, rows: candidates.map((c) => c.row) };
  const best = new Map<string, (typeof candidates)[number]>();
  for (const c of candidates) {
    const held = best.get(c.key);
    if (!held || c.sep < held.sep || (c.sep === held.sep && smaller(c.tie, held.tie))) best.set(c.key, c);
  }
  return { fields, rows: [...best.values()].map((c) => c.row) };
}

/** The broker's own match of a tile's two reads (BROKER): left rows of the tile against the widened right read (each read in the names of the site that ran it). */
export async function brokerPairs(
  book: ThreadRunbook,
  tile: Tile,
  leftRead: StepTable,
  rightRead: StepTable,
  readAt: { leftSite: string | null; rightSite: string | null },
  options: { memoryMb: number; spillDir: string; signal?: AbortSignal },
): Promise<TilePairs & { leftRows: number; rightRows: number }> {
  const li = readIndexes(leftRead, tableAt(book, 'left', readAt.leftSite));
  const ri = readIndexes(rightRead, tableAt(book, 'right', readAt.rightSite));
  const region: CrossmatchRegion = regionOfBook(book);
  const lefts = leftRead.rows.filter((r) => positionIn(r, li.ra, li.dec, (ra, dec) => leftInTile(tile, region, ra, dec)));
  const rights = rightRead.rows.filter((r) => positionIn(r, ri.ra, ri.dec, () => true));
  const batch = (rows: Row[], ra: number, dec: number) => ({
    ra: Float64Array.from(rows, (r) => numberOf(r[ra])),
    dec: Float64Array.from(rows, (r) => numberOf(r[dec])),
  });
  const out: Row[] = [];
  for await (const pairs of crossmatch([batch(lefts, li.ra, li.dec)], [batch(rights, ri.ra, ri.dec)], {
    radiusArcsec: book.radiusArcsec, mode: book.mode, memoryMb: options.memoryMb, spillDir: options.spillDir, ...(options.signal ? { signal: options.signal } : {}),
  })) {
    for (let k = 0; k < pairs.left.length; k++) {
      const l = lefts[pairs.left[k]];
      const r = rights[pairs.right[k]];
      out.push([...li.columns.map((i) => l[i]), ...ri.columns.map((i) => r[i]), pairs.sepArcsec[k]]);
    }
  }
  const fields = outputFields(book, li.columns.map((i) => leftRead.fields[i]), ri.columns.map((i) => rightRead.fields[i]));
  return { fields, rows: out, leftRows: lefts.length, rightRows: rights.length };
}

/**
 * Write the result file from tiles produced one after another; returns its rows, bytes and
 * order-independent checksum (checksum.ts), computed as the rows are written. The file appears
 * whole or not at all.
 */
export async function writeResultFile(path: string, tiles: AsyncIterable<TilePairs>): Promise<{ rows: number; bytes: number; checksum: string }> {
  await mkdir(dirname(path), { recursive: true });
  const iterator = tiles[Symbol.asyncIterator]();
  const first = await iterator.next();
  if (first.done) throw new ConstellationError('INTERNAL', 'a thread with no tiles has no result');
  let rows = 0;
  const sum = new RowChecksum();
  const all = (async function* () {
    let tile: IteratorResult<TilePairs> = first;
    while (!tile.done) {
      for (const r of tile.value.rows) {
        rows++;
        sum.add(r);
        yield r;
      }
      tile = await iterator.next();
    }
  })();
  const partial = `${path}.partial`;
  try {
    await pipeline(Readable.from(writeVOTable({ name: 'crossmatch', fields: first.value.fields }, all, { infos: [{ name: 'QUERY_STATUS', value: 'OK' }] })), createWriteStream(partial));
    await rename(partial, path);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  return { rows, bytes: (await stat(path)).size, checksum: sum.hex };
}

/** Result fields: each side's chosen columns under their result names, then sep_arcsec. */
function outputFields(book: ThreadRunbook, left: readonly FieldMeta[], right: readonly FieldMeta[]): WritableField[] {
  return [
    ...left.map((f, i) => ({ ...plain(f), name: book.output.left[i] })),
    ...right.map((f, i) => ({ ...plain(f), name: book.output.right[i] })),
    { name: 'sep_arcsec', datatype: 'double', unit: 'arcsec', ucd: 'pos.angDistance' },
  ];
}

/** A field's type and description, without its ID or references (they belonged to the site's table). */
function plain(f: FieldMeta): WritableField {
  return {
    name: f.name, datatype: f.datatype,
    ...(f.arraysize !== undefined ? { arraysize: f.arraysize } : {}),
    ...(f.unit !== undefined ? { unit: f.unit } : {}),
    ...(f.ucd !== undefined ? { ucd: f.ucd } : {}),
    ...(f.xtype !== undefined ? { xtype: f.xtype } : {}),
    ...(f.description !== undefined ? { description: f.description } : {}),
  };
}

function positionIn(r: Row, ra: number, dec: number, test: (ra: number, dec: number) => boolean): boolean {
  const a = r[ra];
  const d = r[dec];
  return typeof a === 'number' && typeof d === 'number' && Number.isFinite(a) && Number.isFinite(d) && test(a, d);
}

function numberOf(c: Cell): number {
  return typeof c === 'number' ? c : Number.NaN;
}

function keyOf(cells: readonly Cell[]): string {
  return JSON.stringify(cells, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

function smaller(a: Cell, b: Cell): boolean {
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) return a < b;
  return String(a) < String(b);
}
