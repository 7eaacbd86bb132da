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

/**
 * Room beyond the batch size: a batch goes out once it holds at least that many bytes, so it
 * ends up to one hand-over larger (the decoder's buffer, 256 KB, unless rows are larger).
 */
const SLACK = 1 << 19;
/** A batch's first buffer. */
const FIRST_BYTES = 1 << 16;

/**
 * Buffers of batches already written, given back to be filled again (a reader's FrameSinks
 * share them): a million-row table is ~140 batches of 1.5 MB, and fresh memory for each cost
 * the reading thread about a tenth of its time, and its garbage collector more.
 */
export class FrameSpares {
  private readonly bytes: Uint8Array[] = [];
  private readonly starts: Int32Array[] = [];

  /** A batch's buffers, done with; a few are kept. */
  give(frames: RowFrames): void {
    if (this.bytes.length < MAX_SPARES) this.bytes.push(new Uint8Array(frames.bytes.buffer));
    if (this.starts.length < MAX_SPARES) this.starts.push(new Int32Array(frames.starts.buffer));
  }

  /** A kept byte buffer of at least `n` bytes, or null. */
  bytesOf(n: number): Uint8Array | null {
    const b = this.bytes.pop();
    return b !== undefined && b.length >= n ? b : null;
  }

  /** A kept row-start buffer for at least `n` rows, or null. */
  startsOf(n: number): Int32Array | null {
    const s = this.starts.pop();
    return s !== undefined && s.length >= n ? s : null;
  }
}

/** Spare buffers kept: about what is in flight to the workers. */
const MAX_SPARES = 8;

/**
 * Collects complete rows as the decoder hands them over (they are valid only during that call,
 * so they are copied), until `take` gives them away. Rows are contiguous in the decoder's
 * buffer, so each hand-over is one copy.
 */
export class FrameSink {
  private bytes: Uint8Array = new Uint8Array(0);
  private length = 0;
  private starts: Int32Array = new Int32Array(0);
  private count = 0;
  private firstRow = 0;
  /** Rows in the last batch: the next usually has about as many. */
  private rowsHint = 1024;

  /** `batchBytes`: the size at which the caller takes a batch (ReadOptions.frames). */
  constructor(
    private readonly table: number,
    private readonly batchBytes: number,
    private readonly spares: FrameSpares,
  ) {}

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
    this.rowsHint = Math.max(1024, this.count);
    this.bytes = new Uint8Array(0);
    this.starts = new Int32Array(0);
    this.length = 0;
    this.count = 0;
    return out;
  }

  /**
   * A batch's buffer starts small (a small result's only batch) and then takes the size of a
   * whole batch at once: copying it as it doubled cost as much as copying the rows in.
   */
  private grow(need: number, rows: number): void {
    const whole = Math.max(this.batchBytes + SLACK, this.bytes.length * 2, need);
    const size = this.bytes.length === 0 ? Math.max(FIRST_BYTES, need) : whole;
    // A spare is a whole batch's size. Not zero-filled: only bytes copied in are read. Not from
    // Node's pool: it is moved to another thread.
    const next = this.spares.bytesOf(size) ?? Buffer.allocUnsafeSlow(size);
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
    if (this.starts.length === 0) this.growStarts(Math.max(rows, this.rowsHint));
  }

  private growStarts(need: number): void {
    const size = Math.max(need, this.starts.length * 2);
    const next = this.spares.startsOf(size) ?? new Int32Array(size);
    next.set(this.starts.subarray(0, this.count));
    this.starts = next;
  }
}
