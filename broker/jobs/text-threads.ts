/**
 * CSV, TSV and JSON conversion off the broker's event loop, on a small pool of worker threads
 * (text-thread.ts), while this thread only moves bytes (the site's VOTable in, the text out).
 * Converting a million-row result costs about two seconds of CPU: on this thread it would delay
 * every other request for that long. A conversion takes up to two idle workers: each reads every
 * piece of the VOTable (the XML, the base64, the rows' framing: about a fifth of the work) and
 * writes the rows of every other piece (the rest), and their texts are put back in order here.
 * When no worker is idle the result is converted here, as before, rather than queued.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { TextFormat } from '../../adapters/ivoa/votable/index.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { toText } from './to-text.js';
import type { FromThread, StartMessage, ToThread } from './text-thread-protocol.js';

/** VOTable pieces sent to a worker beyond those it is known to have read (its texts tell). */
const CHUNKS_IN_FLIGHT = 4;
/** Bytes of text received from the workers and not yet taken by the client: reading pauses above this. */
const TEXT_QUEUED_BYTES = 4 << 20;
/** A worker's heap: the converter holds one piece's rows and the largest row (cells up to 64 MB). */
const WORKER_HEAP_MB = 512;
/** Workers sharing one conversion: each more one reads every piece again for a smaller share of the writing. */
const WORKERS_PER_CONVERSION = 2;
/** Workers in all: two conversions at once on a large machine, one on a small one. */
const POOL_SIZE = Math.max(WORKERS_PER_CONVERSION, Math.min(4, availableParallelism()));

/** The worker's entry; run from source (tsx, vitest) it is TypeScript and needs tsx's loader first. */
function startWorker(): Worker {
  const options = { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./text-thread.js', import.meta.url), options);
  const entry = new URL('./text-thread.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { ...options, eval: true });
}

/**
 * Idle workers, kept unreferenced so they never hold the process open. A worker joins once it
 * has loaded the converter (it says 'ready'): a conversion never waits for a thread to start
 * (from source, under tsx, that takes a second or more on a busy machine), it runs here instead.
 */
class TextThreadPool {
  private readonly idle: Worker[] = [];
  private running = 0;
  /** Started and not yet ready. */
  private starting = 0;
  private readonly waiting = new Set<() => void>();
  /** A worker died before it was ready: none is started again (each would die the same way), results convert here. */
  private broken = false;

  /** Up to `n` idle workers (none when none is ready); workers are started if the pool is not full. */
  acquire(n: number): Worker[] {
    const workers = this.idle.splice(Math.max(0, this.idle.length - n));
    if (workers.length < n) this.fill(n - workers.length);
    for (const w of workers) w.ref();
    return workers;
  }

  /** Workers ready and not converting. */
  get idleCount(): number {
    return this.idle.length;
  }

  release(worker: Worker): void {
    worker.unref();
    this.idle.push(worker);
  }

  /** Starts the pool's workers; resolves once each is ready (or has died). */
  async warm(): Promise<void> {
    this.fill(POOL_SIZE);
    while (this.starting > 0) await new Promise<void>((resolve) => this.waiting.add(resolve));
  }

  private fill(upTo: number): void {
    while (!this.broken && this.running < POOL_SIZE && upTo-- > 0) this.start();
  }

  private start(): void {
    const worker = startWorker();
    this.running++;
    this.starting++;
    let ready = false;
    worker.unref();
    worker.once('message', () => {
      ready = true;
      this.starting--;
      this.idle.push(worker);
      this.settled();
    });
    // A conversion running on it reports the error too; an idle worker's failure is only this warning.
    worker.on('error', (err) => process.emitWarning(err instanceof Error ? err : String(err), { code: 'CONSTELLATION_TEXT_THREAD' }));
    worker.once('exit', () => {
      this.running--;
      if (!ready) {
        this.starting--;
        this.broken = true;
      }
      const at = this.idle.indexOf(worker);
      if (at >= 0) this.idle.splice(at, 1);
      this.settled();
    });
  }

  private settled(): void {
    for (const wake of this.waiting) wake();
    this.waiting.clear();
  }
}

const pool = new TextThreadPool();

/**
 * Starts the text-conversion threads now rather than at the first CSV or JSON result, which is
 * converted on the event loop while they start. Resolves when they are ready.
 */
export function startTextThreads(): Promise<void> {
  return pool.warm();
}

/** Text-conversion threads ready and not converting (a conversion gives its threads back just after its end). */
export function idleTextThreads(): number {
  return pool.idleCount;
}

/**
 * The first table of a VOTable as CSV, TSV or JSON (as `toText`), converted on worker threads
 * when any is idle. Errors are the converter's (UPSTREAM_MALFORMED for a bad VOTable, UPSTREAM
 * for a QUERY_STATUS of ERROR) or the body's own; stopping early stops the conversion and the
 * body.
 */
export async function* textOnThread(body: AsyncIterable<Uint8Array>, format: TextFormat): AsyncIterable<Uint8Array> {
  const workers = pool.acquire(WORKERS_PER_CONVERSION);
  if (workers.length === 0) {
    yield* toText(body, format);
    return;
  }
  yield* new SharedConversion(workers, body, format).texts();
}

type TextOrDone = Exclude<FromThread, { kind: 'failed' }>;

/** One worker's part of a conversion: its port, what it sent that is not yet used, how far it read. */
class Part {
  readonly port: MessagePort;
  readonly inbox: FromThread[] = [];
  /** Pieces this part has read, at least: those up to the last whose text it sent. */
  read = 0;
  /** Texts it sent: one per piece of its share. */
  texts = 0;
  /** Its share: pieces phase, phase + n, phase + 2n… */
  readonly phase: number;
  /** Sent its last message ('done' or 'failed'): the worker is healthy and free again. */
  reported = false;
  /** The worker's own failure (out of memory, say), seen before its port closes. */
  private crash: unknown = undefined;

  constructor(worker: Worker, start: Omit<StartMessage, 'port'>, onMessage: (part: Part, m: FromThread) => void) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.phase = start.share.phase;
    const onError = (err: unknown) => (this.crash ??= err);
    port1.on('message', (m: FromThread) => {
      if (m.kind === 'done' || m.kind === 'failed') this.reported = true;
      onMessage(this, m);
    });
    // The worker closes its end after its last message; a port closed before it means the worker died.
    port1.once('close', () => {
      worker.off('error', onError);
      if (this.reported) return pool.release(worker);
      void worker.terminate();
      const cause = this.crash instanceof Error ? `: ${this.crash.message}` : '';
      onMessage(this, { kind: 'failed', error: { kind: 'INTERNAL', message: `the text conversion thread stopped${cause}`, violations: [] } });
    });
    worker.on('error', onError);
    const message: StartMessage = { ...start, port: port2 };
    worker.postMessage(message, [port2]);
  }

  send(message: ToThread, transfer: ArrayBuffer[] = []): void {
    this.port.postMessage(message, transfer);
  }
}

/** One conversion shared by its workers: the body pumped to each under flow control, their texts read out in piece order. */
class SharedConversion {
  private readonly parts: Part[];
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
      part.read = part.phase + part.texts++ * this.parts.length + 1;
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
    return this.receivedBytes >= TEXT_QUEUED_BYTES || this.parts.some((p) => !p.reported && this.sent - p.read >= behind);
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
