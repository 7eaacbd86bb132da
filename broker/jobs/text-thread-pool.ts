/**
 * The text-conversion worker threads (text-thread.ts): a small pool of them, and one worker's
 * part in a conversion (its port, what it sent). The conversions themselves are in
 * text-threads.ts (each thread reads every piece) and framed-conversion.ts (rows read here).
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { FromThread, StartMessage, StartOptions, ToThread } from './text-thread-protocol.js';

/** A worker's heap: the converter holds one piece's rows and the largest row (cells up to 64 MB). */
const WORKER_HEAP_MB = 512;
/** Workers one conversion takes: its rows' writing is shared between them. */
export const WORKERS_PER_CONVERSION = 2;
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

/** The process's text-conversion threads. */
export const pool = new TextThreadPool();


/** One worker's part of a conversion: its port, what it sent that is not yet used. */
export class Part {
  readonly port: MessagePort;
  readonly inbox: FromThread[] = [];
  /** Texts it sent. */
  texts = 0;
  /** Sent its last message ('done' or 'failed'): the worker is healthy and free again. */
  reported = false;
  /** The worker's own failure (out of memory, say), seen before its port closes. */
  private crash: unknown = undefined;

  constructor(worker: Worker, start: StartOptions, onMessage: (part: Part, m: FromThread) => void) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const onError = (err: unknown) => (this.crash ??= err);
    port1.on('message', (m: FromThread) => {
      if (m.kind === 'done' || m.kind === 'failed') this.reported = true;
      if (m.kind === 'text') this.texts++;
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
