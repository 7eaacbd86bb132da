/**
 * The soak's view of the broker process: every few seconds its /metrics (prom-client's default
 * process metrics: resident memory, V8 heap, event-loop delay since the previous scrape, since
 * prom-client resets its delay histogram at each collect) and, when its inspector is open, the
 * V8 heap right after a forced full GC (the figure a leak moves; RSS also moves with allocator
 * caching). Nothing is added to the broker: the metrics are its own, the inspector a Node flag.
 */
import { WebSocket } from 'undici';

/** One sample of the broker process. */
export interface Sample {
  /** Milliseconds since the load started. */
  t: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Event-loop delay over the interval since the previous scrape, seconds. */
  lagP50: number;
  lagP99: number;
  lagMax: number;
  /** Heap used right after a forced GC, when this sample took one. */
  heapAfterGcBytes?: number;
}

/** The value of an unlabelled metric in a Prometheus text exposition, or undefined. */
export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+|NaN)`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Scrape `base`/metrics once into a sample (no GC figure). */
export async function scrape(base: string, t: number): Promise<Sample> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${base}/metrics: HTTP ${res.status}: ${text.slice(0, 200)}`);
  const need = (name: string): number => {
    const v = metricValue(text, name);
    if (v === undefined) throw new Error(`${base}/metrics has no ${name}`);
    return v;
  };
  return {
    t,
    rssBytes: need('process_resident_memory_bytes'),
    heapUsedBytes: need('nodejs_heap_size_used_bytes'),
    lagP50: need('nodejs_eventloop_lag_p50_seconds'),
    lagP99: need('nodejs_eventloop_lag_p99_seconds'),
    lagMax: need('nodejs_eventloop_lag_max_seconds'),
  };
}

/** The inspector URL Node prints on stderr when started with --inspect (ws://host:port/uuid), if `text` has it. */
export function inspectorUrl(text: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(text)?.[1];
}

/**
 * Force a full GC in the process behind inspector `url` (Chrome DevTools protocol) and return
 * the V8 heap used afterwards, bytes.
 */
export async function heapAfterGc(url: string, timeoutMs = 30_000): Promise<number> {
  const ws = new WebSocket(url);
  const pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  ws.addEventListener('message', (ev) => {
    const msg = JSON.parse(String(ev.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
    const p = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id as number);
    if (msg.error) p.reject(new Error(`inspector: ${msg.error.message}`));
    else p.resolve(msg.result ?? {});
  });
  const call = (method: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method }));
    });
  const timer = setTimeout(() => ws.close(), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`inspector ${url}: connection failed`)), { once: true });
      ws.addEventListener('close', () => reject(new Error(`inspector ${url}: closed`)), { once: true });
    });
    const closed = new Promise<never>((_r, reject) => ws.addEventListener('close', () => reject(new Error(`inspector ${url}: closed before answering`)), { once: true }));
    await Promise.race([call('HeapProfiler.collectGarbage'), closed]);
    const usage = await Promise.race([call('Runtime.getHeapUsage'), closed]);
    const used = usage.usedSize;
    if (typeof used !== 'number') throw new Error(`inspector ${url}: Runtime.getHeapUsage gave no usedSize`);
    return used;
  } finally {
    clearTimeout(timer);
    ws.close();
  }
}

/**
 * Samples as CSV: one row each, times in seconds, sizes in MB, delays in ms; forced_gc_in_interval
 * is 1 when a forced GC ran in the interval the row's delays cover (right after the previous scrape).
 */
export function samplesCsv(samples: readonly Sample[], warmupMs: number, loadEndMs = Infinity): string {
  const mb = (b: number) => (b / 1048576).toFixed(2);
  const ms = (s: number) => (s * 1000).toFixed(2);
  const lines = ['t_s,phase,rss_mb,heap_used_mb,heap_after_gc_mb,lag_p50_ms,lag_p99_ms,lag_max_ms,forced_gc_in_interval'];
  samples.forEach((s, i) => {
    const phase = s.t < warmupMs ? 'warmup' : s.t <= loadEndMs ? 'steady' : 'drain';
    const gc = i > 0 && samples[i - 1].heapAfterGcBytes !== undefined ? 1 : 0;
    lines.push([(s.t / 1000).toFixed(1), phase, mb(s.rssBytes), mb(s.heapUsedBytes), s.heapAfterGcBytes === undefined ? '' : mb(s.heapAfterGcBytes), ms(s.lagP50), ms(s.lagP99), ms(s.lagMax), gc].join(','));
  });
  return lines.join('\n') + '\n';
}

/** Least-squares slope of y over x (y units per x unit); 0 with fewer than two points. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The q-quantile (0..1) of `xs` (nearest rank); NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
