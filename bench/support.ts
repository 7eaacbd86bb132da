/** Shared bench plumbing: autocannon runs and a fresh database. */
import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
  non2xx: number;
}

/** Drive `url` with POST `body` (or GET when body is undefined) for `seconds`, with `headers` added to every request. */
export async function load(url: string, body: string | undefined, seconds: number, connections = 10, headers: Record<string, string> = {}): Promise<LoadResult> {
  const result = await autocannon({
    url,
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body,
    connections,
    duration: seconds,
  });
  return {
    requestsPerSecond: result.requests.average,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}


/** Reading a bench's command line: `arg('--x')` is the value after `--x`; `num('--x', d)` that value as a positive number (d when absent). */
export function argvReader(argv: readonly string[]): { arg(name: string): string | undefined; num(name: string, fallback: number): number } {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string, fallback: number): number => {
    const v = arg(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not "${v}"`);
    return n;
  };
  return { arg, num };
}
