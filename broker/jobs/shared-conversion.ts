/**
 * A conversion whose workers each read every piece of the VOTable and write the rows of every
 * n-th piece (ReadOptions.textShare): for TABLEDATA, whose rows cost about as much to read as
 * to write, so reading them once would leave the workers little to do.
 */
import type { Worker } from 'node:worker_threads';
import type { TextFormat } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { Part } from './text-thread-pool.js';
import type { FromThread } from './text-thread-protocol.js';

/** VOTable pieces sent to a worker beyond those it is known to have read (its texts tell). */
const CHUNKS_IN_FLIGHT = 4;
/** Bytes of text received from the workers and not yet taken by the client: reading pauses above this. */
export const TEXT_QUEUED_BYTES = 4 << 20;

type TextOrDone = Exclude<FromThread, { kind: 'failed' }>;

/** One conversion shared by its workers, each reading every piece (for TABLEDATA): the body pumped to each under flow control, their texts read out in piece order. */
export class SharedConversion {
  private readonly parts: Part[];
  /** Pieces each part has read, at least: those up to the last whose text it sent. */
  private readonly read: number[];
  private readonly source: AsyncIterator<Uint8Array>;
  private receivedBytes = 0;
  /** Pieces of the body sent to every part. */
  private sent = 0;
  /** The body's own failure (a site that broke off), passed on as it is. */
  private failure: unknown = undefined;
  private stopped = false;
  private wakeReader: (() => void) | null = null;
  private wakePump: (() => void) | null = null;

  constructor(workers: Worker[], body: AsyncIterable<Uint8Array>, format: TextFormat) {
    this.source = body[Symbol.asyncIterator]();
    this.parts = workers.map((w, phase) => new Part(w, { format, share: { every: workers.length, phase } }, (part, m) => this.onMessage(part, m)));
    this.read = this.parts.map(() => 0);
  }

  /** The texts in piece order: piece k is written by part k mod n; each part ends with 'done' after its last piece. */
  async *texts(): AsyncGenerator<Uint8Array> {
    void this.pump();
    try {
      let ended = -1;
      for (let piece = 0; ended < 0; piece++) {
        const m = await this.next(this.parts[piece % this.parts.length]);
        if (m.kind === 'done') ended = piece % this.parts.length;
        else for (const p of m.parts) {
          this.receivedBytes -= p.byteLength;
          this.signalPump();
          yield p;
        }
      }
      // That part had no piece left; the others must end cleanly too.
      for (const part of this.parts) if (part !== this.parts[ended]) await this.next(part);
    } finally {
      this.stop();
    }
  }

  /** A part's next text or its end; its failure, and the body's before anything, are thrown. */
  private async next(part: Part): Promise<TextOrDone> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      const m = part.inbox.shift();
      if (m?.kind === 'failed') throw new ConstellationError(m.error.kind, m.error.message, { violations: m.error.violations });
      if (m !== undefined) return m;
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
    }
  }

  private onMessage(part: Part, m: FromThread): void {
    if (m.kind === 'text') {
      // The text of piece phase + k × every: the part has read every piece up to it.
      const phase = this.parts.indexOf(part);
      this.read[phase] = phase + (part.texts - 1) * this.parts.length + 1;
      for (const p of m.parts) this.receivedBytes += p.byteLength;
      this.signalPump();
    }
    part.inbox.push(m);
    this.signalReader();
  }

  /**
   * Whether the pump must wait: a working part is more than CHUNKS_IN_FLIGHT pieces behind (it
   * tells how far it got only with the text of its own pieces, so up to n more), or the client is.
   */
  private full(): boolean {
    const behind = CHUNKS_IN_FLIGHT + this.parts.length;
    return this.receivedBytes >= TEXT_QUEUED_BYTES || this.parts.some((p, phase) => !p.reported && this.sent - this.read[phase] >= behind);
  }

  /** Sends the body's pieces to every part while they have room and the client keeps up. */
  private async pump(): Promise<void> {
    try {
      for (;;) {
        while (!this.stopped && this.full()) await new Promise<void>((resolve) => (this.wakePump = resolve));
        if (this.stopped) return;
        const next = await this.source.next();
        if (this.stopped) return;
        if (next.done) {
          for (const part of this.parts) part.send({ kind: 'end' });
          return;
        }
        for (const part of this.parts) {
          // A copy of each part's own, so moving it does not take a buffer the body still uses.
          const bytes = new Uint8Array(next.value);
          part.send({ kind: 'chunk', bytes }, [bytes.buffer]);
        }
        this.sent++;
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
