/**
 * The reading half of a conversion whose rows are written elsewhere: the VOTable is read once
 * (XML, base64, the rows' framing, every check), and its binary rows come out as batches of
 * bytes (ReadOptions.frames) for the text-conversion threads to write (FramesTextWriter). What
 * it gives, in order, is what the converter on one thread would give: its own text (the
 * header, the end), the batches whose text goes in their place, and the error, if any.
 */
import { TextTableWriter, VOTableReader, type FieldMeta, type TextFormat } from '../../adapters/ivoa/votable/index.js';
import type { RowFrames } from '../../adapters/ivoa/votable/row-frames.js';
import { ConstellationError } from '../../registry/model/errors.js';

/**
 * One step of the conversion, in output order. `frames`: a batch whose text takes this place;
 * with `check` its text is not wanted (the piece it came from failed), only its errors, which
 * come first as they would on one thread. `data`: a binary data section begins (every writer
 * is told). `failed`: the conversion ends with this error.
 */
export type FramedItem =
  | { kind: 'text'; parts: Uint8Array[] }
  | { kind: 'data'; table: number; fields: FieldMeta[]; binary2: boolean }
  | { kind: 'frames'; frames: RowFrames; check: boolean }
  | { kind: 'failed'; error: unknown };

/** Reads a VOTable a piece at a time into FramedItems; the first table's text is the result (as `toText`). */
export class FramedReading {
  private readonly reader: VOTableReader;
  private writer: TextTableWriter | undefined;
  /** How the first data section is serialized, once it has begun. */
  first: 'TABLEDATA' | 'BINARY' | 'BINARY2' | undefined;
  private over = false;

  constructor(
    private readonly format: TextFormat,
    frameBytes: number,
  ) {
    this.reader = new VOTableReader({ text: format, frames: frameBytes });
  }

  /** The items one piece of the VOTable completes; a `failed` item ends the reading. */
  push(chunk: Uint8Array): FramedItem[] {
    if (this.over) return [];
    try {
      this.reader.push(chunk);
      return this.items();
    } catch (err) {
      return this.failed(err);
    }
  }

  /** The rows gathered so far go out now (the next piece is not here yet). */
  flush(): FramedItem[] {
    if (this.over) return [];
    this.reader.flushFrames();
    return this.items();
  }

  /** A batch's buffers, written and given back, to be filled again. */
  recycle(frames: RowFrames): void {
    this.reader.recycleFrames(frames);
  }

  /** The items the end completes: the last rows, the end of the text; a VOTable without a table is UPSTREAM_MALFORMED. */
  end(): FramedItem[] {
    if (this.over) return [];
    this.over = true;
    try {
      this.reader.end();
      const out = this.items();
      if (!this.writer) throw new ConstellationError('UPSTREAM_MALFORMED', 'the result VOTable has no table');
      const tail = this.writer.tail();
      if (tail.length > 0) out.push({ kind: 'text', parts: [tail] });
      return out;
    } catch (err) {
      return this.failed(err);
    }
  }

  /**
   * On one thread the error would end the conversion within this piece: its rows written so far
   * would have thrown first if any was bad, and none of its text would have gone out. So its
   * batches are still checked, its text dropped, and the error comes after them.
   */
  private failed(error: unknown): FramedItem[] {
    this.over = true;
    this.reader.flushFrames();
    const out: FramedItem[] = [];
    for (const item of this.items()) {
      if (item.kind === 'frames') out.push({ ...item, check: true });
      else if (item.kind === 'data') out.push(item);
    }
    out.push({ kind: 'failed', error });
    return out;
  }

  private items(): FramedItem[] {
    const out: FramedItem[] = [];
    for (const ev of this.reader.take()) {
      if (ev.type === 'table' && ev.table.index === 0) {
        this.writer = new TextTableWriter(this.format, ev.table.fields);
        out.push({ kind: 'text', parts: [this.writer.head()] });
      } else if (ev.type === 'data') {
        this.first ??= ev.serialization;
        if (ev.serialization !== 'TABLEDATA') out.push({ kind: 'data', table: ev.table, fields: ev.fields, binary2: ev.serialization === 'BINARY2' });
      } else if (ev.type === 'frames') {
        out.push({ kind: 'frames', frames: ev.frames, check: false });
      } else if (ev.type === 'text' && ev.table === 0) {
        // TABLEDATA rows of the first table, written here (the caller avoids that: see `first`).
        out.push({ kind: 'text', parts: [ev.chunk] });
      }
    }
    return out;
  }
}
