/**
 * Metrics and request logs against a real broker and simulated TAP sites: a GraphQL query, a
 * harvest, a job and a failing upstream call, then /metrics scraped and its text parsed; the
 * request id in every log line of a request (service lines included) and one line per upstream
 * call; who may scrape; hostile request ids and URLs that must not become labels or log lines.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { SimSite } from '../sites/sim-site.js';
import { mountTapService, type SimTable } from '../sites/tap-service.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { logSink, registerSecret } from '../support/log-capture.js';
import { SubscriptionClient } from '../support/subscriptions.js';
import { AT_ONCE_MS, WAITING_TEST_MS, waitUntil } from '../support/wait.js';
import { openRequestContexts } from '../../broker/metrics/log-context.js';

const TABLE: SimTable = {
  name: 'gaia.dr3lite',
  rows: 200,
  position: { ra: 'ra', dec: 'dec' },
  region: { raMin: 10, raMax: 20, decMin: 0, decMax: 10 },
  columns: [
    { name: 'source_id', datatype: 'long' },
    { name: 'ra', datatype: 'double', unit: 'deg' },
    { name: 'dec', datatype: 'double', unit: 'deg' },
  ],
};

/** One sample of the exposition: name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse Prometheus text format (0.0.4): HELP/TYPE lines, then `name{l="v",…} value`. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

/** The value of the one sample `name` whose labels include `labels` (0 when there is none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

/** Every captured log line, parsed. */
const lines: Record<string, unknown>[] = [];
const rawLines: string[] = [];
/** The brokers' log stream: kept here to read, and passed on to the suite's capture (checked for secrets). */
const logStream = new Writable({
  write(chunk: Buffer | string, _encoding, done) {
    const text = String(chunk);
    rawLines.push(text);
    for (const line of text.split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    logSink.write(chunk, done);
  },
});

describe(`metrics and request logs (${backend})`, () => {
  let alpha: SimSite;
  let beta: SimSite;
  let broker: TestBroker;
  let http: HttpClient;
  const token = randomBytes(24).toString('base64url');

  const scrape = async (headers: Record<string, string> = {}, base = broker.url) => fetch(`${base}/metrics`, { headers });
  const samples = async () => {
    const res = await scrape();
    expect(res.status).toBe(200);
    return parseExposition(await res.text());
  };

  beforeAll(async () => {
    registerSecret(token);
    alpha = new SimSite();
    mountTapService(alpha, { path: '/tap', tables: [TABLE], asyncDelayMs: 30 });
    await alpha.start();
    beta = new SimSite();
    mountTapService(beta, { path: '/tap', tables: [{ ...TABLE, name: 'other.table' }] });
    await beta.start();
    // Open registration: the harvest mutation needs no admin, so a request's own harvest can be logged under its id.
    const yaml = `
federation: { name: metrics }
registration: { open: true }
harvest: { concurrency: 2, jitterS: 0, timeoutS: 30 }
sites:
  - id: alpha
    name: Alpha
    adapter: tap
    url: "${alpha.url}/tap"
  - id: beta
    name: Beta
    adapter: tap
    url: "${beta.url}/tap"
`;
    http = new HttpClient({ retries: 0, connectTimeoutMs: 10_000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
    broker = await startBroker(configFromYaml(yaml), undefined, {
      http,
      logStream,
      env: { CONSTELLATION_METRICS_TOKEN: token },
      jobs: { pollIntervalMs: 50, tickMs: 25, requestTimeoutMs: 25_000, backoffBaseMs: 50, backoffMaxMs: 200 },
    });
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await broker?.close();
    await http?.close();
    await Promise.all([alpha?.close(), beta?.close()]);
  });

  it('counts a GraphQL query, a harvest, a job and a failing upstream call, and logs each upstream call under the request that made it', async () => {
    const before = (await samples()).samples;

    // A harvest asked over GraphQL, under the caller's own request id.
    const res = await fetch(`${broker.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'harvest-alpha-1' },
      body: JSON.stringify({ query: 'mutation HarvestAlpha { harvest(siteId: "alpha") { outcome errorCode } }' }),
    });
    expect(res.headers.get('x-request-id')).toBe('harvest-alpha-1');
    expect(((await res.json()) as { data: { harvest: { outcome: string } } }).data.harvest.outcome).toBe('OK');

    // A named query and an unnamed one.
    expect((await broker.graphql('query SitesForMetrics { sites { id status } }')).data).toBeDefined();
    expect((await broker.graphql('{ sites { id } }')).data).toBeDefined();

    // A job run to the end at alpha.
    const submitted = await broker.graphql<{ submitQuery: { id: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id } }', {
      i: { adql: 'SELECT TOP 5 source_id, ra, dec FROM gaia.dr3lite', site: 'alpha' },
    });
    expect(submitted.errors).toBeUndefined();
    const id = submitted.data!.submitQuery.id;
    await waitUntil(
      async () => (await broker.graphql<{ job: { state: string } }>('query($id: ID!) { job(id: $id) { state } }', { id })).data!.job.state,
      (state) => ['COMPLETED', 'ERROR', 'ABORTED'].includes(state),
    ).then((state) => expect(state).toBe('COMPLETED'));

    // A failing upstream: beta answers 503 to everything.
    await beta.setFault({ kind: 'status', status: 503 });
    try {
      expect(await broker.harvest('beta')).toMatchObject({ outcome: 'FAILED', errorCode: 'CONSTELLATION_E_UPSTREAM_UNAVAILABLE' });
    } finally {
      await beta.setFault({ kind: 'none' });
    }

    const { samples: after, types } = await samples();
    // Every metric the README lists is there, with its type.
    expect(Object.fromEntries([...types].filter(([name]) => name.startsWith('constellation_')))).toEqual({
      constellation_http_request_duration_seconds: 'histogram',
      constellation_graphql_operation_duration_seconds: 'histogram',
      constellation_graphql_subscriptions_started_total: 'counter',
      constellation_graphql_subscriptions_active: 'gauge',
      constellation_graphql_subscription_duration_seconds: 'histogram',
      constellation_harvests_total: 'counter',
      constellation_harvest_duration_seconds: 'histogram',
      constellation_upstream_request_duration_seconds: 'histogram',
      constellation_upstream_errors_total: 'counter',
      constellation_jobs: 'gauge',
      constellation_db_pool_connections: 'gauge',
      constellation_db_pool_idle_connections: 'gauge',
      constellation_db_pool_waiting_clients: 'gauge',
      constellation_db_pool_max_connections: 'gauge',
      constellation_planner_snapshot_version: 'gauge',
      constellation_planner_snapshot_build_seconds: 'gauge',
      constellation_planner_snapshot_built_timestamp_seconds: 'gauge',
    });
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');

    const grew = (name: string, labels: Record<string, string>, by = 1) => expect(value(after, name, labels) - value(before, name, labels), `${name} ${JSON.stringify(labels)}`).toBeGreaterThanOrEqual(by);
    // HTTP: every GraphQL POST above (5 at least), by route pattern and status class, with buckets.
    grew('constellation_http_request_duration_seconds_count', { method: 'POST', route: '/graphql', status_class: '2xx' }, 5);
    const buckets = after.filter((s) => s.name === 'constellation_http_request_duration_seconds_bucket' && s.labels.route === '/graphql' && s.labels.method === 'POST');
    expect(buckets.map((b) => b.labels.le)).toContain('+Inf');
    expect(buckets.length).toBeGreaterThan(5);
    // The +Inf bucket holds every request; buckets never decrease.
    const inf = buckets.find((b) => b.labels.le === '+Inf' && b.labels.status_class === '2xx')!;
    expect(inf.value).toBe(value(after, 'constellation_http_request_duration_seconds_count', { method: 'POST', route: '/graphql', status_class: '2xx' }));
    // GraphQL operations by type and (bounded) name.
    grew('constellation_graphql_operation_duration_seconds_count', { operation_type: 'mutation', operation_name: 'HarvestAlpha' });
    grew('constellation_graphql_operation_duration_seconds_count', { operation_type: 'query', operation_name: 'SitesForMetrics' });
    grew('constellation_graphql_operation_duration_seconds_count', { operation_type: 'query', operation_name: 'anonymous' });
    grew('constellation_graphql_operation_duration_seconds_count', { operation_type: 'mutation', operation_name: 'anonymous' });
    // Harvests by site and outcome, and their durations.
    grew('constellation_harvests_total', { site: 'alpha', outcome: 'OK' });
    grew('constellation_harvests_total', { site: 'beta', outcome: 'FAILED' });
    grew('constellation_harvest_duration_seconds_count', { site: 'alpha' });
    expect(after.some((s) => s.name === 'constellation_harvest_duration_seconds_bucket' && s.labels.site === 'beta' && s.labels.le === '+Inf' && s.value >= 1)).toBe(true);
    // Jobs by state and site, read from the database at the scrape.
    expect(value(after, 'constellation_jobs', { state: 'COMPLETED', site: 'alpha' })).toBeGreaterThanOrEqual(1);
    // Upstream latency and errors per site and code.
    grew('constellation_upstream_request_duration_seconds_count', { site: 'alpha' }, 3);
    grew('constellation_upstream_request_duration_seconds_count', { site: 'beta' });
    grew('constellation_upstream_errors_total', { site: 'beta', code: 'CONSTELLATION_E_UPSTREAM_UNAVAILABLE' });
    expect(value(after, 'constellation_upstream_errors_total', { site: 'alpha' })).toBe(0);
    // The pool and the planner.
    const kind = backend === 'postgresql' ? 'postgresql' : 'embedded';
    expect(value(after, 'constellation_db_pool_connections', { backend: kind })).toBeGreaterThanOrEqual(1);
    expect(value(after, 'constellation_db_pool_max_connections', { backend: kind })).toBeGreaterThanOrEqual(1);
    expect(after.some((s) => s.name === 'constellation_db_pool_waiting_clients' && s.labels.backend === kind)).toBe(true);
    expect(value(after, 'constellation_planner_snapshot_version')).toBeGreaterThan(value(before, 'constellation_planner_snapshot_version'));
    expect(value(after, 'constellation_planner_snapshot_build_seconds')).toBeGreaterThan(0);
    expect(value(after, 'constellation_planner_snapshot_built_timestamp_seconds') * 1000).toBeGreaterThan(Date.now() - 3_600_000);

    // Logs: the harvest's upstream calls were logged under the GraphQL request's id, each with site, path, status and duration, never a query string.
    const ofRequest = lines.filter((l) => l.reqId === 'harvest-alpha-1');
    expect(ofRequest.map((l) => l.msg)).toEqual(expect.arrayContaining(['upstream call', 'request completed']));
    const calls = ofRequest.filter((l) => l.msg === 'upstream call').map((l) => l.upstream as Record<string, unknown>);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    for (const call of calls) {
      expect(call).toMatchObject({ site: 'alpha', method: 'GET', status: 200 });
      expect(call.path).toMatch(/^\/tap\/[a-z]+$/);
      expect(typeof call.durationMs).toBe('number');
    }
    // The failing call: a warning with its status and code.
    const failed = lines.filter((l) => l.msg === 'upstream call failed').map((l) => l.upstream as Record<string, unknown>);
    expect(failed).toEqual(expect.arrayContaining([expect.objectContaining({ site: 'beta', status: 503, code: 'CONSTELLATION_E_UPSTREAM_UNAVAILABLE' })]));
    // No line names the request id twice (the request's own logger has it; the mixin adds it only to other loggers' lines).
    for (const raw of rawLines) expect(raw.match(/"reqId"/g)?.length ?? 0, raw).toBeLessThanOrEqual(1);
    // An upstream call logs no query string (a job's UWS polls carry none either, but sync queries do: REQUEST=doQuery&…).
    for (const l of lines.filter((x) => x.upstream)) expect(String((l.upstream as { path: string }).path)).not.toContain('?');
    // Every answer sent: no request holds a log context, so the storage's per-promise hook is off.
    await expect.poll(() => openRequestContexts(), { timeout: WAITING_TEST_MS }).toBe(0);
  }, WAITING_TEST_MS);

  it('counts GraphQL subscriptions: each start, those open, and each lifetime when it ends (its stream ends or its connection closes); a refused one not at all', async () => {
    const FOLLOW = 'subscription FollowJobForMetrics($id: ID!) { jobUpdated(id: $id) { state } }';
    const name = { operation_name: 'FollowJobForMetrics' };
    const submit = async () => {
      const submitted = await broker.graphql<{ submitQuery: { id: string } }>('mutation($i: QueryInput!) { submitQuery(input: $i) { id } }', {
        i: { adql: 'SELECT TOP 5 source_id, ra, dec FROM gaia.dr3lite', site: 'alpha' },
      });
      expect(submitted.errors).toBeUndefined();
      return submitted.data!.submitQuery.id;
    };
    expect(['OK', 'NOT_MODIFIED']).toContain((await broker.harvest('alpha')).outcome);
    const before = (await samples()).samples;
    const grown = (after: Sample[], metric: string) => value(after, metric, name) - value(before, metric, name);

    // Followed to its end: the server ends the stream once the job is final.
    const client = await SubscriptionClient.connect(broker.url);
    try {
      const states = await client.run<{ jobUpdated: { state: string } }>(FOLLOW, { id: await submit() });
      expect(states.at(-1)?.jobUpdated.state).toBe('COMPLETED');
    } finally {
      client.close();
    }
    await expect.poll(async () => grown((await samples()).samples, 'constellation_graphql_subscription_duration_seconds_count'), { timeout: WAITING_TEST_MS }).toBe(1);
    let after = (await samples()).samples;
    expect(grown(after, 'constellation_graphql_subscriptions_started_total')).toBe(1);
    expect(value(after, 'constellation_graphql_subscriptions_active', name)).toBe(0);
    expect(after.some((s) => s.name === 'constellation_graphql_subscription_duration_seconds_bucket' && s.labels.le === '86400')).toBe(true);

    // Held open while its job is still being submitted (alpha hangs), then its connection closed by the client.
    await alpha.setFault({ kind: 'hang' });
    const submitting = submit().then(() => undefined, (err: unknown) => err);
    const id = await waitUntil(
      async () => (await broker.graphql<{ jobs: { id: string; state: string }[] }>('{ jobs(filter: { states: [PENDING, QUEUED, EXECUTING] }) { id state } }')).data?.jobs[0]?.id,
      (found) => found !== undefined,
    );
    const open = await SubscriptionClient.connect(broker.url);
    try {
      let seen = 0;
      // The client's own wait ends at its guard (a closed connection tells it nothing); the server's is what is measured.
      void open.run(FOLLOW, { id }, AT_ONCE_MS, () => void seen++).catch((err: unknown) => err);
      await expect.poll(() => seen, { timeout: WAITING_TEST_MS }).toBeGreaterThan(0);
      after = (await samples()).samples;
      expect(value(after, 'constellation_graphql_subscriptions_active', name)).toBe(1);
      // Of the open requests only the hanging submitQuery holds a log context: not the subscription's WebSocket.
      expect(openRequestContexts()).toBe(1);
      expect(grown(after, 'constellation_graphql_subscriptions_started_total')).toBe(2);
      open.close();
      await expect.poll(async () => value((await samples()).samples, 'constellation_graphql_subscriptions_active', name), { timeout: WAITING_TEST_MS }).toBe(0);
      expect(grown((await samples()).samples, 'constellation_graphql_subscription_duration_seconds_count')).toBe(2);
    } finally {
      open.close();
      await alpha.setFault({ kind: 'none' });
      await broker.graphql('mutation($id: ID!) { cancelJob(id: $id) { state } }', { id });
      await submitting;
    }

    // Refused (no such job): nothing started, nothing open.
    const refused = await SubscriptionClient.connect(broker.url);
    try {
      await expect(refused.run(FOLLOW, { id: '00000000-0000-0000-0000-000000000000' })).rejects.toThrow(/subscription error/);
    } finally {
      refused.close();
    }
    after = (await samples()).samples;
    expect(grown(after, 'constellation_graphql_subscriptions_started_total')).toBe(2);
    expect(value(after, 'constellation_graphql_subscriptions_active', name)).toBe(0);
  }, WAITING_TEST_MS * 2);

  it('labels routes by pattern only: raw ids, unknown paths and query strings never become labels', async () => {
    const secretish = 'qs-value-that-must-not-appear';
    await fetch(`${broker.url}/sites/raw-site-id-12345/capabilities?token=${secretish}`);
    await fetch(`${broker.url}/no/such/path/98765?x=${secretish}`);
    await fetch(`${broker.url}/graphql?query=${encodeURIComponent('{ sites { id } }')}&junk=${secretish}`);
    await fetch(`${broker.url}/results/00000000-0000-0000-0000-000000000000`);
    const text = await (await scrape()).text();
    expect(text).not.toContain('raw-site-id-12345');
    expect(text).not.toContain(secretish);
    expect(text).not.toContain('00000000-0000');
    const samples = parseExposition(text).samples;
    // A number may hold these digits by chance (a CPU-seconds total did once): only labels must not.
    expect(samples.flatMap((s) => Object.values(s.labels)).filter((v) => v.includes('98765'))).toEqual([]);
    const routes = new Set(samples.filter((s) => s.name === 'constellation_http_request_duration_seconds_count').map((s) => s.labels.route));
    expect(routes).toContain('/sites/:id/capabilities');
    expect(routes).toContain('(unmatched)');
    for (const route of routes) expect(route).not.toMatch(/\?/);
  });

  it('keeps at most 100 operation names; later ones are "other"', async () => {
    for (let i = 0; i < 110; i++) {
      const { status } = await broker.graphql(`query Name${i}x { sites { id } }`);
      expect(status).toBe(200);
    }
    const names = new Set((await samples()).samples.filter((s) => s.name === 'constellation_graphql_operation_duration_seconds_count').map((s) => s.labels.operation_name));
    // 100 names at most, plus anonymous and other.
    expect(names.size).toBeLessThanOrEqual(102);
    expect(names).toContain('other');
    expect(names).toContain('anonymous');
  });

  it('keeps a safe X-Request-Id and replaces a huge or odd one, which is never logged', async () => {
    const kept = await fetch(`${broker.url}/healthz`, { headers: { 'x-request-id': 'abc-123.def:4_5' } });
    expect(kept.headers.get('x-request-id')).toBe('abc-123.def:4_5');
    await waitUntil(() => lines.some((l) => l.reqId === 'abc-123.def:4_5' && l.msg === 'request completed'), Boolean);

    const huge = `huge${'x'.repeat(8_000)}`;
    const odd = ['has spaces in it', '{"json":"injection"}', 'a'.repeat(65), '-leading-dash', 'semi;colon', huge];
    for (const given of odd) {
      const res = await fetch(`${broker.url}/healthz`, { headers: { 'x-request-id': given } });
      const echoed = res.headers.get('x-request-id')!;
      expect(echoed).not.toBe(given);
      expect(echoed).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      await waitUntil(() => lines.some((l) => l.reqId === echoed && l.msg === 'request completed'), Boolean);
    }
    // A request with no id gets a fresh UUID too.
    const none = await fetch(`${broker.url}/healthz`);
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    for (const raw of rawLines) {
      expect(raw).not.toContain('x'.repeat(100));
      expect(raw).not.toContain('injection');
      expect(raw).not.toContain('has spaces in it');
    }
  });

  it('opens /metrics to the broker\'s host and to the scrape token, and to no one else', async () => {
    // The broker's own host (these requests come from 127.0.0.1, unforwarded).
    expect((await scrape()).status).toBe(200);
    // The same request forwarded by a proxy is an outsider's: refused without a word of the metrics.
    const outsider = await scrape({ 'x-forwarded-for': '203.0.113.7' });
    expect(outsider.status).toBe(401);
    expect(outsider.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const refusal = await outsider.text();
    expect(JSON.parse(refusal)).toMatchObject({ code: 'CONSTELLATION_E_UNAUTHENTICATED' });
    expect(refusal).not.toContain('constellation_');
    expect((await scrape({ forwarded: 'for=203.0.113.7' })).status).toBe(401);
    // A wrong token, another scheme, a token that is the right one's prefix: refused.
    for (const authorization of [`Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${Buffer.from(`x:${token}`).toString('base64')}`, 'Bearer ']) {
      const res = await scrape({ 'x-forwarded-for': '203.0.113.7', authorization });
      expect(res.status, authorization.slice(0, 6)).toBe(401);
      expect(await res.text()).not.toContain('constellation_');
    }
    // The operator's scraper, with the token, from anywhere.
    const operator = await scrape({ 'x-forwarded-for': '203.0.113.7', authorization: `Bearer ${token}` });
    expect(operator.status).toBe(200);
    expect(operator.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await operator.text()).toContain('constellation_harvests_total');
  });

  it('opens /metrics to everyone when CONSTELLATION_METRICS_PUBLIC=true, and refuses to start on a weak scrape token', async () => {
    const yaml = 'federation: { name: metrics-public }\nregistration: { open: true }\nsites: []\n';
    const open = await startBroker(configFromYaml(yaml), broker.db, { prepared: true, logStream, env: { CONSTELLATION_METRICS_PUBLIC: 'true' } });
    try {
      const res = await scrape({ 'x-forwarded-for': '203.0.113.7' }, open.url);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('constellation_jobs');
    } finally {
      await open.close();
    }
    await expect(startBroker(configFromYaml(yaml), broker.db, { prepared: true, logStream, env: { CONSTELLATION_METRICS_TOKEN: 'short' } }))
      .rejects.toMatchObject({ code: 'CONSTELLATION_E_INVALID_CONFIG' });
    await expect(startBroker(configFromYaml(yaml), broker.db, { prepared: true, logStream, env: { CONSTELLATION_METRICS_PUBLIC: 'yes' } }))
      .rejects.toMatchObject({ code: 'CONSTELLATION_E_INVALID_CONFIG' });
  }, WAITING_TEST_MS);
});
