/**
 * The writing half of ReadOptions.frames: BINARY/BINARY2 rows another reader framed, written as
 * CSV, TSV or JSON by `BinaryTextRows`. Batches of one table may be written by several of these
 * (each its own), the texts put back in batch order give the table's rows as one writer gives them.
 */
import { compileColumn } from './fields.js';
import { BinaryTextRows } from './binary-text.js';
import type { RowFrames } from './row-frames.js';
import { TextTableWriter, type TextFormat } from './text-table.js';
import type { FieldMeta } from './types.js';

/** Writes the row batches of each data section it is told about (`begin`) as text. */
export class FramesTextWriter {
  private writer: TextTableWriter | null = null;
  private rows: BinaryTextRows | null = null;
  private table = -1;
  /** Rows of the current table before the next batch, written here or by another writer. */
  private written = 0;

  constructor(private readonly format: TextFormat) {}

  /** A binary data section begins: table `table`, with these fields. */
  begin(table: number, fields: FieldMeta[], binary2: boolean): void {
    const writer = new TextTableWriter(this.format, fields);
    this.writer = writer;
    // Invalid values are errors, as the converter's own reader has them (ReadOptions' default).
    this.rows = new BinaryTextRows(
      fields.map((f, i) => compileColumn(f, i)),
      binary2,
      writer,
      'error',
    );
    this.table = table;
    this.written = 0;
  }

  /** The text of one batch (rows of the section last begun); errors name the row as the reader would. */
  write(frames: RowFrames): Buffer {
    const writer = this.writer;
    const rows = this.rows;
    if (writer === null || rows === null || frames.table !== this.table) throw new Error(`rows of table ${frames.table} before its data section`);
    const b = frames.bytes;
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    // JSON's row separators depend on how many rows came before, whoever wrote them.
    writer.skipRows(frames.firstRow - this.written);
    rows.write(buf, view, frames.starts, frames.count, frames.firstRow);
    this.written = frames.firstRow + frames.count;
    return writer.take();
  }
}
