/**
 * A conversion whose VOTable is read once, here (framed-reading.ts), and whose binary rows are
 * written by the workers: each batch of rows goes to one worker in turn, whole rows in a buffer
 * moved to it, and the texts are put back in order here with the text this thread writes itself
 * (the header, the end). Reading on every worker (SharedConversion) did that reading once per
 * worker; here it is done once, a fifth of the work, and the workers only write. A TABLEDATA
 * result goes to SharedConversion, its first pieces given again.
 */
import type { Worker } from 'node:worker_threads';
import type { TextFormat } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { FramedReading, type FramedItem } from './framed-reading.js';
import { SharedConversion, TEXT_QUEUED_BYTES } from './shared-conversion.js';
import { Part, pool } from './text-thread-pool.js';
import type { FromThread } from './text-thread-protocol.js';

/** Bytes of rows in one batch for a worker (fewer when the site's next piece is not here yet). */
const FRAME_BYTES = 1 << 20;
/**
 * How long the rows gathered wait for the site's next piece before they go as they are: a
 * piece already received comes at once, and waiting that little makes batches of FRAME_BYTES
 * rather than one per network read (~1,900 for a million rows against ~140), while a site that
 * sends slowly or stalls still has its rows written at once.
 */
const FLUSH_WAIT_MS = 2;
/** Batches sent to a worker and not yet written: reading pauses at this. */
const FRAMES_IN_FLIGHT = 3;
/**
 * VOTable bytes held while it is not known how the rows are serialized (the metadata before the
 * first data section), to be given again to SharedConversion if they are TABLEDATA. Past this,
 * it is given them anyway: the holding is bounded whatever a site sends.
 */
const UNDECIDED_BYTES = 8 << 20;

/** A place in the output: text written here, a batch's text from a worker, or the error that ends it. */
type Slot = { parts: Uint8Array[] } | { batch: { check: boolean; result?: FromThread } } | { error: unknown };

/** The body again: `kept` first (pieces read already), then the rest; giving it up gives up the body. */
function replay(kept: Uint8Array[], rest: AsyncIterator<Uint8Array>): AsyncIterable<Uint8Array> {
  const iterator: AsyncIterator<Uint8Array> = {
    next: () => {
      const value = kept.shift();
      return value === undefined ? rest.next() : Promise.resolve({ done: false, value });
    },
    return: () => (rest.return ? rest.return() : Promise.resolve({ done: true, value: undefined })),
  };
  return { [Symbol.asyncIterator]: () => iterator };
}

/** Whether `p` settles within `ms` milliseconds. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    p.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

/** One conversion: read here, written by `workers`, texts in order. */
export class FramedConversion {
  private readonly source: AsyncIterator<Uint8Array>;
  private readonly reading: FramedReading;
  private parts: Part[] = [];
  /** Per part, its batches not yet answered, oldest first. */
  private waiting: { check: boolean; result?: FromThread }[][] = [];
  /** The output not yet handed on, in order. */
  private readonly slots: Slot[] = [];
  /** Every slot there will be is in `slots`. */
  private finished = false;
  /** Batches sent, for taking the parts in turn. */
  private batches = 0;
  private receivedBytes = 0;
  /** The body's own failure (a site that broke off), passed on as it is. */
  private failure: unknown = undefined;
  private stopped = false;
  private wakeReader: (() => void) | null = null;
  private wakePump: (() => void) | null = null;

  constructor(
    private readonly workers: Worker[],
    body: AsyncIterable<Uint8Array>,
    private readonly format: TextFormat,
  ) {
    this.source = body[Symbol.asyncIterator]();
    this.reading = new FramedReading(format, FRAME_BYTES);
  }

  /** The text, in order; errors as the converter on one thread gives them, or the body's own. */
  async *texts(): AsyncGenerator<Uint8Array> {
    const kept: Uint8Array[] = [];
    const held: FramedItem[] = [];
    let keptBytes = 0;
    let ended = false;
    try {
      // Read until the first data section says how the rows are serialized.
      while (this.reading.first === undefined && !ended && keptBytes < UNDECIDED_BYTES) {
        const next = await this.source.next();
        if (next.done) {
          held.push(...this.reading.end());
          ended = true;
        } else {
          kept.push(next.value);
          keptBytes += next.value.byteLength;
          held.push(...this.reading.push(next.value));
          ended = held.at(-1)?.kind === 'failed';
        }
      }
    } catch (err) {
      this.releaseWorkers();
      throw err;
    }
    if (this.reading.first === undefined && ended) {
      // No rows at all (or an error before them): what was read here is the whole text.
      this.releaseWorkers();
      for (const item of held) {
        if (item.kind === 'text') yield* item.parts;
        else if (item.kind === 'failed') throw item.error;
      }
      return;
    }
    if (this.reading.first === undefined || this.reading.first === 'TABLEDATA') {
      yield* new SharedConversion(this.workers, replay(kept, this.source), this.format).texts();
      return;
    }
    kept.length = 0;
    yield* this.framed(held, ended);
  }

  /** The binary case: the items read so far sent on, the rest read as the workers keep up. */
  private async *framed(held: FramedItem[], ended: boolean): AsyncGenerator<Uint8Array> {
    this.parts = this.workers.map((w) => new Part(w, { format: this.format, frames: true }, (part, m) => this.onMessage(part, m)));
    this.waiting = this.parts.map(() => []);
    this.accept(held);
    if (ended) this.finish();
    else void this.pump();
    try {
      for (;;) {
        const slot = await this.nextSlot();
        if (slot === undefined) return;
        if ('parts' in slot) yield* slot.parts;
        else if ('error' in slot) throw slot.error;
        else {
          const m = slot.batch.result!;
          if (m.kind === 'failed') throw new ConstellationError(m.error.kind, m.error.message, { violations: m.error.violations });
          if (m.kind !== 'text' || slot.batch.check) continue;
          for (const p of m.parts) {
            this.receivedBytes -= p.byteLength;
            this.signalPump();
            yield p;
          }
        }
      }
    } finally {
      this.stop();
    }
  }

  /** The next slot once it is ready (undefined after the last); the body's failure is thrown before anything. */
  private async nextSlot(): Promise<Slot | undefined> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const slot = this.slots[0];
      if (slot === undefined && this.finished) return undefined;
      if (slot !== undefined && (!('batch' in slot) || slot.batch.result !== undefined)) return this.slots.shift();
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
    }
  }

  /** Items read: text and errors take their place in order, rows go to the next part in turn. */
  private accept(items: FramedItem[]): void {
    for (const item of items) {
      if (item.kind === 'text') this.slots.push({ parts: item.parts });
      else if (item.kind === 'failed') {
        this.slots.push({ error: item.error });
        this.finish();
      } else if (item.kind === 'data') {
        for (const part of this.parts) part.send({ kind: 'data', table: item.table, fields: item.fields, binary2: item.binary2 });
      } else {
        const k = this.batches++ % this.parts.length;
        const batch = { check: item.check };
        this.waiting[k].push(batch);
        this.slots.push({ batch });
        const f = item.frames;
        this.parts[k].send({ kind: 'frames', frames: f }, [f.bytes.buffer as ArrayBuffer, f.starts.buffer as ArrayBuffer]);
      }
    }
    this.signalReader();
  }

  /** The reading is over: the parts end once they have written what they were sent. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const part of this.parts) part.send({ kind: 'end' });
    this.signalReader();
  }

  private onMessage(part: Part, m: FromThread): void {
    if (m.kind === 'done') return;
    if (m.kind === 'text' && m.spare) this.reading.recycle(m.spare);
    const batch = this.waiting[this.parts.indexOf(part)].shift();
    if (batch === undefined) {
      // A failure with no batch outstanding (the thread died between batches): it ends the conversion.
      if (m.kind === 'failed') this.failure ??= new ConstellationError(m.error.kind, m.error.message, { violations: m.error.violations });
    } else {
      batch.result = m;
      if (m.kind === 'text' && !batch.check) for (const p of m.parts) this.receivedBytes += p.byteLength;
    }
    this.signalReader();
    this.signalPump();
  }

  /**
   * Whether the pump must wait: a part has FRAMES_IN_FLIGHT batches to write, or the client is
   * behind. A part that ended before the reading did failed: nothing more is read, the client
   * gets to its error.
   */
  private full(): boolean {
    return this.receivedBytes >= TEXT_QUEUED_BYTES || this.parts.some((p, k) => p.reported || this.waiting[k].length >= FRAMES_IN_FLIGHT);
  }

  /** Reads the body while the parts have room and the client keeps up. */
  private async pump(): Promise<void> {
    try {
      let pending: Promise<IteratorResult<Uint8Array>> | null = null;
      while (!this.finished) {
        while (!this.stopped && this.full()) await new Promise<void>((resolve) => (this.wakePump = resolve));
        if (this.stopped) return;
        const next = await (pending ?? this.source.next());
        pending = null;
        if (this.stopped) return;
        if (next.done) {
          this.accept(this.reading.end());
          this.finish();
          return;
        }
        this.accept(this.reading.push(next.value));
        if (this.finished) return;
        // Rows gathered and no more of the body at hand: they go now rather than wait for it.
        pending = this.source.next();
        if (!(await settlesWithin(pending, FLUSH_WAIT_MS))) this.accept(this.reading.flush());
      }
    } catch (err) {
      this.failure ??= err;
      this.signalReader();
    }
  }

  /** The text ended, failed or the client stopped reading: stop the workers and the body if they run on. */
  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const part of this.parts) if (!part.reported) part.send({ kind: 'cancel' });
    // Ends a read the pump may be waiting on (a site that stalls): the body is destroyed. When the
    // body ended already this does nothing.
    this.source.return?.().catch((err: unknown) => (this.failure ??= err));
    this.signalPump();
  }

  /** Workers never given this conversion go back to the pool. */
  private releaseWorkers(): void {
    for (const w of this.workers) pool.release(w);
  }

  private signalReader(): void {
    const wake = this.wakeReader;
    this.wakeReader = null;
    wake?.();
  }

  private signalPump(): void {
    const wake = this.wakePump;
    this.wakePump = null;
    wake?.();
  }
}
