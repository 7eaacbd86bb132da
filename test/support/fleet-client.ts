/**
 * The fleet harness's client: each job submitted through the round-robin front with its
 * idempotency key, then once more with the same key through another broker (the front's
 * x-fleet-avoid), as a client does that cannot tell whether its first try got through.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AVOID_HEADER, BROKER_HEADER } from './round-robin-front.js';
import type { FleetSite, JobSpec } from './fleet-sites.js';

/** One submitQuery call as the client saw it. */
export interface SubmitAttempt {
  /** The broker slot the front used, when it used one. */
  broker?: number;
  status?: number;
  jobId?: string;
  state?: string;
  /** What failed: the GraphQL error code and message, or the network error. */
  error?: string;
  errorCode?: string;
  at: number;
  ms: number;
}

/** A job's two submits. */
export interface SubmittedJob {
  spec: JobSpec;
  first: SubmitAttempt;
  retry: SubmitAttempt;
}

const SUBMIT = 'mutation($i: QueryInput!) { submitQuery(input: $i) { id state } }';

/** How long one submit may take: every candidate's submit deadline (8 s each) and then some. */
const SUBMIT_LIMIT_MS = 120_000;

/** POST submitQuery for `spec` to the front, avoiding broker `avoid` when given. */
export async function submitOnce(front: string, spec: JobSpec, avoid?: number): Promise<SubmitAttempt> {
  const at = Date.now();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (avoid !== undefined) headers[AVOID_HEADER] = String(avoid);
  try {
    const res = await fetch(`${front}/graphql`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: SUBMIT, variables: { i: { adql: spec.adql, idempotencyKey: spec.key } } }),
      signal: AbortSignal.timeout(SUBMIT_LIMIT_MS),
    });
    const brokerHeader = res.headers.get(BROKER_HEADER);
    const broker = brokerHeader === null ? undefined : Number(brokerHeader);
    const text = await res.text();
    const out: SubmitAttempt = { broker, status: res.status, at, ms: Date.now() - at };
    const body = parseBody(text);
    const job = body?.data?.submitQuery;
    if (job && typeof job.id === 'string') return { ...out, jobId: job.id, state: typeof job.state === 'string' ? job.state : undefined };
    const first = body?.errors?.[0];
    return { ...out, error: first?.message ?? text.slice(0, 300), errorCode: first?.extensions?.code ?? `HTTP_${res.status}` };
  } catch (err) {
    return { at, ms: Date.now() - at, error: (err as Error).message, errorCode: (err as Error).name === 'TimeoutError' ? 'CLIENT_TIMEOUT' : 'CLIENT_NETWORK' };
  }
}

/** How long a client waits for the front to have a broker it may use (all being restarted). */
const NO_BROKER_LIMIT_MS = 180_000;

/**
 * One submit through the front; when the front had no broker to use (none up, or only the one to
 * avoid), nothing reached a broker, so it asks again until one is up.
 */
async function submitToSome(front: string, spec: JobSpec, avoid?: number): Promise<SubmitAttempt> {
  const deadline = Date.now() + NO_BROKER_LIMIT_MS;
  for (;;) {
    const attempt = await submitOnce(front, spec, avoid);
    if (attempt.errorCode !== 'FRONT_NO_BROKER' || Date.now() > deadline) return attempt;
    await sleep(250);
  }
}

/** Submit `spec`, then retry it once with the same key through another broker. */
export async function submitWithRetry(front: string, spec: JobSpec): Promise<SubmittedJob> {
  const first = await submitToSome(front, spec);
  const retry = await submitToSome(front, spec, first.broker);
  return { spec, first, retry };
}

interface GraphQLBody {
  data?: { submitQuery?: { id?: unknown; state?: unknown } | null } | null;
  errors?: { message?: string; extensions?: { code?: string } }[];
}

/** The GraphQL answer, or undefined for a body that is not one (a proxy's page, a cut answer). */
function parseBody(text: string): GraphQLBody | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as GraphQLBody) : undefined;
  } catch {
    return undefined;
  }
}

/** Run `work` over `items` with at most `concurrency` at once, calling `onDone` after each; resolves to the results in order. */
export async function pool<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>, onDone?: (done: number) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]);
      onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** Harvest every site once through `broker` (faults are off). */
export async function harvestAll(broker: string, sites: readonly FleetSite[]): Promise<void> {
  for (const s of sites) {
    const body = await gql<{ harvest: { outcome: string; errorMessage: string | null } }>(broker, 'mutation($s: ID!) { harvest(siteId: $s) { outcome errorMessage } }', { s: s.id });
    // RESTORED: the site answered 304 while another document was stored (a scheduled harvest's race); its state is stored again, a success.
    if (!['OK', 'NOT_MODIFIED', 'RESTORED'].includes(body.harvest.outcome)) throw new Error(`harvesting ${s.id}: ${body.harvest.outcome} ${body.harvest.errorMessage ?? ''}`);
  }
}

/** POST a GraphQL request to `base`; its data, or an error naming the errors. */
export async function gql<T>(base: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: T; errors?: unknown };
  if (body.errors || !body.data) throw new Error(`${base}: ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}
