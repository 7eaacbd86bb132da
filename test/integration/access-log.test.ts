/**
 * The access log (issue 13): one compact line per answered request (method, URL with secret
 * parameters blanked, status, milliseconds, the request id), nothing for GraphQL reads unless
 * a share is sampled, nothing at all when turned off; its settings checked at start.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConstellationError } from '../../registry/model/errors.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { configFromYaml } from '../support/config.js';
import { backend } from '../support/database.js';
import { logSink } from '../support/log-capture.js';
import { WAITING_TEST_MS, waitUntil } from '../support/wait.js';

const YAML = 'federation: { name: access-log }\nsites: []\n';

/** A broker whose log lines are parsed into `lines` (and passed on to the suite's secret check). */
async function brokerWithLog(env: Record<string, string>): Promise<{ broker: TestBroker; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const logStream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      logSink.write(chunk, done);
    },
  });
  const broker = await startBroker(configFromYaml(YAML, env), undefined, { logStream });
  return { broker, lines };
}

describe(`the access log (${backend})`, () => {
  let plain: Awaited<ReturnType<typeof brokerWithLog>>;
  let sampled: Awaited<ReturnType<typeof brokerWithLog>>;
  let off: Awaited<ReturnType<typeof brokerWithLog>>;
  beforeAll(async () => {
    plain = await brokerWithLog({});
    sampled = await brokerWithLog({ CONSTELLATION_ACCESS_LOG_SAMPLE: '1' });
    off = await brokerWithLog({ CONSTELLATION_ACCESS_LOG: 'off' });
  }, WAITING_TEST_MS);
  afterAll(async () => {
    for (const b of [plain, sampled, off]) await b?.broker.close();
  });

  const ask = (b: TestBroker, id: string, path: string, init: RequestInit = {}) =>
    fetch(`${b.url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), 'x-request-id': id } }).then((r) => r.text());
  const graphql = (b: TestBroker, id: string, query: string) => ask(b, id, '/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  const of = (lines: Record<string, unknown>[], id: string) => lines.filter((l) => l.reqId === id);

  it('writes one compact line per request, a secret query parameter blanked, and none for a GraphQL read', async () => {
    const { broker, lines } = plain;
    await ask(broker, 'probe-1', '/healthz?token=access-log-secret-value-1');
    await graphql(broker, 'read-1', '{ sites { id } }');
    await ask(broker, 'read-2', `/graphql?query=${encodeURIComponent('{ sites { id } }')}`);
    // A document that says "mutation" only in a comment and a string is still a read.
    await graphql(broker, 'read-3', '# mutation\n{ site(id: "mutation") { id } }');
    await graphql(broker, 'write-1', 'mutation { cancelJob(id: "00000000-0000-0000-0000-000000000000") { id } }');
    // The mutation's line comes after the reads were answered: once it is there, the reads' would be too.
    await waitUntil(() => of(lines, 'write-1'), (l) => l.length > 0);
    const probe = of(lines, 'probe-1');
    expect(probe).toHaveLength(1);
    expect(probe[0]).toMatchObject({ msg: 'request completed', method: 'GET', url: '/healthz?token=[redacted]', status: 200, level: 30 });
    expect(typeof probe[0].ms).toBe('number');
    // Compact: no headers, no request or response objects.
    expect(Object.keys(probe[0]).sort()).toEqual(['hostname', 'level', 'method', 'ms', 'msg', 'pid', 'reqId', 'status', 'time', 'url']);
    for (const id of ['read-1', 'read-2', 'read-3']) expect(of(lines, id).filter((l) => l.msg === 'request completed'), id).toEqual([]);
    expect(of(lines, 'write-1').filter((l) => l.msg === 'request completed')).toEqual([expect.objectContaining({ method: 'POST', url: '/graphql', status: 404 })]);
    expect(JSON.stringify(lines)).not.toContain('access-log-secret-value-1');
  });

  it('logs the sampled share of GraphQL reads, and nothing at all when turned off', async () => {
    await graphql(sampled.broker, 'sampled-1', '{ sites { id } }');
    await waitUntil(() => of(sampled.lines, 'sampled-1'), (l) => l.length > 0);
    expect(of(sampled.lines, 'sampled-1')).toEqual([expect.objectContaining({ msg: 'request completed', url: '/graphql' })]);
    await graphql(off.broker, 'off-1', 'mutation { cancelJob(id: "00000000-0000-0000-0000-000000000000") { id } }');
    await ask(off.broker, 'off-2', '/healthz');
    expect(off.lines.filter((l) => l.msg === 'request completed')).toEqual([]);
  });

  it('refuses settings it cannot follow, naming the variable', () => {
    for (const env of [{ CONSTELLATION_ACCESS_LOG: 'maybe' }, { CONSTELLATION_ACCESS_LOG_SAMPLE: '2' }, { CONSTELLATION_ACCESS_LOG_SAMPLE: 'half' }, { CONSTELLATION_ACCESS_LOG_SAMPLE: '' }, { CONSTELLATION_ACCESS_LOG_SAMPLE: '-0.1' }] as Record<string, string>[]) {
      let thrown: unknown;
      try {
        configFromYaml(YAML, env);
      } catch (err) {
        thrown = err;
      }
      expect(isConstellationError(thrown) && thrown.code, JSON.stringify(env)).toBe('CONSTELLATION_E_INVALID_CONFIG');
      expect((thrown as Error).message).toContain(Object.keys(env)[0]);
    }
  });
});
