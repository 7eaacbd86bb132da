/**
 * Binary rows gathered as bytes for another thread to write as text (ReadOptions.frames): the
 * reading (XML, base64, the rows' framing) is done once, and whoever writes the text gets whole
 * rows in a buffer of its own that can be moved rather than copied.
 */

/** Whole BINARY/BINARY2 rows of one table: row i is at bytes[starts[i]…], rows `firstRow`… of the table (0-based). */
export interface RowFrames {
  table: number;
  bytes: Uint8Array;
  starts: Int32Array;
  count: number;
  firstRow: number;
}

/** Initial room for rows, grown by doubling (a row up to the cell limit fits in the end). */
const INITIAL_BYTES = 1 << 16;
/** A batch's buffers start at the last batch's size, up to this: one huge row does not make every later batch huge. */
const HINT_LIMIT = 1 << 22;

/**
 * Collects complete rows as the decoder hands them over (they are valid only during that call,
 * so they are copied), until `take` gives them away. Rows are contiguous in the decoder's
 * buffer, so each hand-over is one copy.
 */
export class FrameSink {
  private bytes = new Uint8Array(0);
  private length = 0;
  private starts = new Int32Array(0);
  private count = 0;
  private firstRow = 0;
  /** The last batch's bytes and rows: the next is usually about as large. */
  private hintBytes = INITIAL_BYTES;
  private hintRows = 1024;

  constructor(private readonly table: number) {}

  /** Bytes of rows held. */
  get size(): number {
    return this.length;
  }

  /** Rows starts[0…count) of `buf`, the last ending at `end`; `firstRow` numbers the first. */
  add(buf: Uint8Array, starts: Int32Array, count: number, firstRow: number, end: number): void {
    if (count === 0) return;
    if (this.count === 0) this.firstRow = firstRow;
    const from = starts[0];
    const n = end - from;
    if (this.length + n > this.bytes.length) this.grow(this.length + n, this.count + count);
    if (this.count + count > this.starts.length) this.growStarts(this.count + count);
    this.bytes.set(buf.subarray(from, end), this.length);
    const shift = this.length - from;
    const s = this.starts;
    for (let i = 0, k = this.count; i < count; i++, k++) s[k] = starts[i] + shift;
    this.length += n;
    this.count += count;
  }

  /** The rows held, in buffers of their own (movable to another thread); null when there are none. */
  take(): RowFrames | null {
    if (this.count === 0) return null;
    const out: RowFrames = { table: this.table, bytes: this.bytes.subarray(0, this.length), starts: this.starts.subarray(0, this.count), count: this.count, firstRow: this.firstRow };
    this.hintBytes = Math.min(HINT_LIMIT, Math.max(INITIAL_BYTES, this.length));
    this.hintRows = Math.min(HINT_LIMIT >> 4, Math.max(1024, this.count));
    this.bytes = new Uint8Array(0);
    this.starts = new Int32Array(0);
    this.length = 0;
    this.count = 0;
    return out;
  }

  private grow(need: number, rows: number): void {
    const next = new Uint8Array(Math.max(this.hintBytes, need, this.bytes.length * 2));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    if (this.starts.length === 0) this.growStarts(Math.max(rows, this.hintRows));
  }

  private growStarts(need: number): void {
    const next = new Int32Array(Math.max(need, this.starts.length * 2));
    next.set(this.starts.subarray(0, this.count));
    this.starts = next;
  }
}
