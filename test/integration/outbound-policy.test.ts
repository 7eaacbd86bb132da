/**
 * Issue 9, findings 5, 9 (byte limits), 12 (timeout code) and 14 (circuit breaker): a hostile
 * TAP site on 127.0.0.1 tries to send the broker, with its credential, to a capture listener on
 * another loopback host (127.0.0.2), sends huge answers, and fails until its circuit opens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from '../../adapters/http.js';
import { createAdapters } from '../../adapters/index.js';
import { isPrivateAddress } from '../../adapters/outbound-policy.js';
import type { AdapterContext } from '../../registry/model/adapter.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { configFromYaml } from '../support/config.js';
import { capabilities, hugeBody } from '../support/hostile.js';
import { waitUntil, WAITING_TEST_MS } from '../support/wait.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Listener {
  server: Server;
  port: number;
  /** Every request it received, with its headers. */
  seen: { url: string; headers: IncomingMessage['headers'] }[];
  handler: Handler;
  close(): Promise<void>;
}

async function listen(host: string): Promise<Listener> {
  const l = { seen: [], handler: (_req: IncomingMessage, res: ServerResponse) => res.end('captured body: secret internal reply') } as unknown as Listener;
  l.server = createServer((req, res) => {
    l.seen.push({ url: req.url ?? '', headers: req.headers });
    l.handler(req, res);
  });
  await new Promise<void>((resolve) => l.server.listen(0, host, resolve));
  l.port = (l.server.address() as AddressInfo).port;
  l.close = () => new Promise<void>((resolve) => {
    l.server.closeAllConnections();
    l.server.close(() => resolve());
  });
  return l;
}

const TOKEN = 'site-token-that-must-not-leak';

function uwsJob(phase: string, resultHref?: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink">' +
    `<uws:jobId>j1</uws:jobId><uws:phase>${phase}</uws:phase>` +
    (resultHref ? `<uws:results><uws:result id="result" xlink:href="${resultHref}"/></uws:results>` : '') +
    '</uws:job>'
  );
}

let site: Listener;
let capture: Listener;

beforeAll(async () => {
  site = await listen('127.0.0.1');
  capture = await listen('127.0.0.2');
});

afterAll(async () => {
  await site?.close();
  await capture?.close();
});

afterEach(() => {
  site.seen.length = 0;
  capture.seen.length = 0;
});

function siteUrl(path = '/tap'): string {
  return `http://127.0.0.1:${site.port}${path}`;
}
function captureUrl(path = '/x?token=abc'): string {
  return `http://127.0.0.2:${capture.port}${path}`;
}

async function codeOf(p: Promise<unknown>): Promise<ConstellationError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConstellationError);
    return err as ConstellationError;
  }
  throw new Error('expected a refusal');
}

describe('outbound policy through the adapters (the broker wiring: createAdapters over http.forSite)', () => {
  let http: HttpClient;
  const ctx = (): AdapterContext => ({ site: { id: 'hostile', name: 'Hostile', platform: 'tap', url: siteUrl() }, credential: { kind: 'bearer', token: TOKEN } });

  beforeAll(() => {
    http = new HttpClient({ retries: 0, headersTimeoutMs: 5_000, circuit: false });
  });
  afterAll(async () => http.close());

  it('refuses an async job 303 Location on another host; the listener sees nothing', async () => {
    site.handler = (req, res) => {
      if (req.method === 'POST' && req.url?.startsWith('/tap/async')) {
        res.writeHead(303, { location: captureUrl('/async/j1') }).end();
      } else res.writeHead(404).end();
    };
    const tap = createAdapters(http)('tap');
    const err = await codeOf(tap.submitQuery!(ctx(), { adql: 'SELECT 1', service: 'tap', mode: 'async', runId: 'r1' }));
    expect(err.code).toBe('CONSTELLATION_E_UPSTREAM_POLICY');
    expect(err.message).toContain('"hostile"');
    expect(err.message).toContain(`127.0.0.2:${capture.port}`);
    expect(err.message).not.toContain('/async/j1');
    expect(capture.seen).toEqual([]);
  });

  it('refuses a UWS result href on another host; the listener sees nothing', async () => {
    site.handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/xml' }).end(uwsJob('COMPLETED', captureUrl('/result?token=abc')));
    };
    const tap = createAdapters(http)('tap');
    const err = await codeOf(tap.jobResult!(ctx(), siteUrl('/tap/async/j1')));
    expect(err.code).toBe('CONSTELLATION_E_UPSTREAM_POLICY');
    expect(err.message).not.toContain('token=');
    expect(capture.seen).toEqual([]);
  });

  it('refuses a redirect to another host, follows one on the site\'s own host with the credential', async () => {
    site.handler = (req, res) => {
      if (req.url === '/tap/away') res.writeHead(302, { location: captureUrl('/stolen') }).end();
      else if (req.url === '/tap/moved') res.writeHead(301, { location: '/tap/here' }).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    };
    const scoped = http.forSite({ siteId: 'hostile', url: siteUrl() });
    const err = await codeOf(scoped.text(siteUrl('/tap/away'), { credential: { kind: 'bearer', token: TOKEN } }));
    expect(err.code).toBe('CONSTELLATION_E_UPSTREAM_POLICY');
    expect(capture.seen).toEqual([]);

    expect(await scoped.json(siteUrl('/tap/moved'), { credential: { kind: 'bearer', token: TOKEN } })).toEqual({ ok: true });
    expect(site.seen.map((s) => s.url)).toEqual(['/tap/away', '/tap/moved', '/tap/here']);
    expect(site.seen[2]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('allowHosts permits a listed host; a redirect there drops the credential, a direct request carries it', async () => {
    site.handler = (_req, res) => res.writeHead(307, { location: captureUrl('/data') }).end();
    capture.handler = (_req, res) => res.end('allowed data');
    const scoped = http.forSite({ siteId: 'hostile', url: siteUrl(), allowHosts: ['127.0.0.2'] });
    const headerCred = { kind: 'header', name: 'X-Auth-Token', value: TOKEN } as const;
    expect(await scoped.text(siteUrl('/tap/go'), { credential: headerCred, headers: { cookie: 'session=1' } })).toBe('allowed data');
    expect(capture.seen).toHaveLength(1);
    expect(capture.seen[0]!.headers['x-auth-token']).toBeUndefined();
    expect(capture.seen[0]!.headers.cookie).toBeUndefined();
    expect(site.seen[0]!.headers['x-auth-token']).toBe(TOKEN);

    // An operator-listed host is part of the site (SciServer's CasJobs, CADC's service hosts): it gets the credential.
    expect(await scoped.text(captureUrl('/direct'), { credential: headerCred })).toBe('allowed data');
    expect(capture.seen[1]!.headers['x-auth-token']).toBe(TOKEN);

    // With a port, only that port of the host is allowed.
    const portOnly = http.forSite({ siteId: 'hostile', url: siteUrl(), allowHosts: [`127.0.0.2:${capture.port + 1}`] });
    expect((await codeOf(portOnly.text(captureUrl('/direct')))).code).toBe('CONSTELLATION_E_UPSTREAM_POLICY');
    expect(capture.seen).toHaveLength(2);
    capture.handler = (_req, res) => res.end('captured body: secret internal reply');
  });

  it('reaches private addresses only for a site whose own url is private, and refusals do not tell an open port from a closed one', async () => {
    const closed = await listen('127.0.0.2');
    const closedPort = closed.port;
    await closed.close();
    // A public site (its name does not resolve here, which is all the policy needs to know) that lists loopback hosts.
    const publicSite = http.forSite({ siteId: 'public', url: 'https://tap.example.org/tap', allowHosts: ['127.0.0.2', 'localhost', '[::ffff:127.0.0.2]'] });
    const open = await codeOf(publicSite.text(captureUrl('/')));
    const shut = await codeOf(publicSite.text(`http://127.0.0.2:${closedPort}/`));
    const mapped = await codeOf(publicSite.text(`http://[::ffff:127.0.0.2]:${capture.port}/`));
    const named = await codeOf(publicSite.text(`http://localhost:${site.port}/tap`));
    for (const e of [open, shut, mapped, named]) expect(e.code).toBe('CONSTELLATION_E_UPSTREAM_POLICY');
    expect(open.message.replace(String(capture.port), 'P')).toBe(shut.message.replace(String(closedPort), 'P'));
    expect(named.message).toContain('private address');
    expect(capture.seen).toEqual([]);
    expect(site.seen).toEqual([]);
  });
});

describe('a harvest that follows a VOSI accessURL (through the broker)', () => {
  let broker: TestBroker;

  beforeAll(async () => {
    // The broker builds its own HttpClient here, from the config's limits.
    const config = configFromYaml(`
federation: { name: outbound }
sites:
  - id: hostile
    name: Hostile TAP
    adapter: tap
    url: http://127.0.0.1:${site.port}/tap
    credentials: { strategy: linked, env: HOSTILE_TOKEN }
  - id: trusted
    name: Trusted TAP with a second host
    adapter: tap
    url: http://127.0.0.1:${site.port}/trusted
    allowHosts: [127.0.0.2]
limits: { documentBytes: 1048576 }
`);
    expect(config.limits.documentBytes).toBe(1048576);
    broker = await startBroker(config, undefined, { env: { HOSTILE_TOKEN: TOKEN } });
  }, WAITING_TEST_MS);
  afterAll(async () => {
    await broker?.close();
  });

  const harvest = (siteId: string) => broker.harvest(siteId);

  it('refuses capabilities whose accessURLs point at another host, and never sends the token there', async () => {
    site.handler = (_req, res) => res.writeHead(200, { 'content-type': 'text/xml' }).end(capabilities(captureUrl('/tap')));
    const run = await harvest('hostile');
    expect(run.outcome).toBe('FAILED');
    expect(run.errorCode).toBe('CONSTELLATION_E_UPSTREAM_POLICY');
    expect(run.errorMessage).toContain(`127.0.0.2:${capture.port}`);
    expect(site.seen[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(capture.seen).toEqual([]);
  }, WAITING_TEST_MS);

  it('follows them to a host federation.yaml lists in allowHosts', async () => {
    site.handler = (_req, res) => res.writeHead(200, { 'content-type': 'text/xml' }).end(capabilities(captureUrl('/tap')));
    capture.handler = (req, res) => {
      if (req.url?.endsWith('/availability')) {
        return res.writeHead(200, { 'content-type': 'text/xml' }).end('<?xml version="1.0"?><vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0"><vosi:available>true</vosi:available></vosi:availability>');
      }
      res.writeHead(200, { 'content-type': 'text/xml' }).end(
        '<?xml version="1.0"?><vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"><schema><name>s</name><table><name>s.t</name><column><name>ra</name><dataType>double</dataType></column></table></schema></vosi:tableset>',
      );
    };
    try {
      const run = await harvest('trusted');
      expect(run.errorMessage).toBeNull();
      expect(run.outcome).toBe('OK');
      expect(capture.seen.map((s) => s.url)).toEqual(['/tap/availability', '/tap/tables']);
    } finally {
      capture.handler = (_req, res) => res.end('captured body: secret internal reply');
    }
  }, WAITING_TEST_MS);

  it('cuts a huge tableset at limits.documentBytes', async () => {
    const counter = { written: 0 };
    site.handler = (req, res) => {
      if (req.url?.endsWith('/capabilities')) return res.writeHead(200, { 'content-type': 'text/xml' }).end(capabilities(siteUrl('/tap')));
      if (req.url?.endsWith('/availability')) return res.writeHead(200, { 'content-type': 'text/xml' }).end('<?xml version="1.0"?><vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0"><vosi:available>true</vosi:available></vosi:availability>');
      res.writeHead(200, { 'content-type': 'text/xml' });
      hugeBody(res, 300 * 1024 * 1024, counter, ' ');
    };
    const run = await harvest('hostile');
    expect(run.errorCode).toBe('CONSTELLATION_E_UPSTREAM_TOO_LARGE');
    expect(run.errorMessage).toContain('1048576');
    await waitUntil(() => site.seen.length, (n) => n === 3);
    expect(counter.written).toBeLessThan(32 * 1024 * 1024);
  }, WAITING_TEST_MS);
});

describe('byte limits, circuit breaker and timeouts (HttpClient.forSite)', () => {
  it('reads at most the error excerpt of a 300 MB 500 reply, once, and never retries it', async () => {
    const http = new HttpClient({ retries: 3, retryBaseMs: 10, circuit: false });
    const counter = { written: 0 };
    site.handler = (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      hugeBody(res, 300 * 1024 * 1024, counter, 'e');
    };
    const rss = process.memoryUsage().rss;
    try {
      const err = await codeOf(http.forSite({ siteId: 'hostile', url: siteUrl() }).text(siteUrl('/tap/tables')));
      expect(err.code).toBe('CONSTELLATION_E_UPSTREAM');
      expect(err.message).toContain('not read further');
      expect(site.seen).toHaveLength(1);
      expect(counter.written).toBeLessThan(32 * 1024 * 1024);
      expect(process.memoryUsage().rss - rss).toBeLessThan(100 * 1024 * 1024);
    } finally {
      await http.close();
    }
  }, WAITING_TEST_MS);

  it('refuses a 100 MB UWS document at its limit on every poll, without reading it all', async () => {
    const http = new HttpClient({ retries: 0, circuit: false, limits: { documentBytes: 1024 * 1024 } });
    const counters: { written: number }[] = [];
    site.handler = (_req, res) => {
      const counter = { written: 0 };
      counters.push(counter);
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.write('<?xml version="1.0"?><uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"><uws:jobId>j1</uws:jobId><uws:phase>EXECUTING</uws:phase><uws:parameters>');
      hugeBody(res, 100 * 1024 * 1024, counter, ' ');
    };
    const tap = createAdapters(http)('tap');
    const ctx: AdapterContext = { site: { id: 'hostile', name: 'Hostile', platform: 'tap', url: siteUrl() }, credential: { kind: 'anonymous' } };
    try {
      for (let poll = 0; poll < 3; poll++) {
        const err = await codeOf(tap.jobStatus!(ctx, siteUrl('/tap/async/j1')));
        expect(err.code).toBe('CONSTELLATION_E_UPSTREAM_TOO_LARGE');
        expect(err.message).toContain('"hostile"');
        expect(err.message).toContain('limits.documentBytes');
      }
      expect(counters).toHaveLength(3);
      for (const c of counters) expect(c.written).toBeLessThan(24 * 1024 * 1024);
    } finally {
      await http.close();
    }
  }, WAITING_TEST_MS);

  it('opens the circuit after N failures, fails fast while open, and closes after a successful trial', async () => {
    const http = new HttpClient({ retries: 0, circuit: { failures: 3, coolDownMs: 400 } });
    let failing = true;
    site.handler = (_req, res) => (failing ? res.writeHead(502).end('bad gateway') : res.end('fine'));
    const scoped = http.forSite({ siteId: 'flaky', url: siteUrl() });
    try {
      for (let i = 0; i < 3; i++) expect((await codeOf(scoped.text(siteUrl('/tap/x')))).code).toBe('CONSTELLATION_E_UPSTREAM');
      const open = await codeOf(scoped.text(siteUrl('/tap/x')));
      expect(open.code).toBe('CONSTELLATION_E_UPSTREAM_UNAVAILABLE');
      expect(open.message).toMatch(/circuit open for site "flaky" until \d{4}-/);
      expect(site.seen).toHaveLength(3);
      // Another site on the same client is not affected.
      failing = false;
      expect(await http.forSite({ siteId: 'other', url: siteUrl() }).text(siteUrl('/tap/x'))).toBe('fine');
      // After the cool-down one trial goes through; its success closes the circuit.
      const answer = await waitUntil(
        () => scoped.text(siteUrl('/tap/x')).catch((e: ConstellationError) => e.message),
        (a) => a === 'fine',
      );
      expect(answer).toBe('fine');
      expect(await scoped.text(siteUrl('/tap/x'))).toBe('fine');
    } finally {
      await http.close();
    }
  }, WAITING_TEST_MS);

  it('reports a headers timeout and a deadline (AbortSignal.timeout) as UPSTREAM_TIMEOUT', async () => {
    const http = new HttpClient({ retries: 0, headersTimeoutMs: 300, circuit: false });
    const patient = new HttpClient({ retries: 0, circuit: false });
    site.handler = () => undefined; // never answers
    const scoped = http.forSite({ siteId: 'hanging', url: siteUrl() });
    try {
      const headers = await codeOf(scoped.text(siteUrl('/tap/x')));
      expect(headers.code).toBe('CONSTELLATION_E_UPSTREAM_TIMEOUT');
      expect(headers.message).toContain('UND_ERR_HEADERS_TIMEOUT');
      const deadline = await codeOf(patient.forSite({ siteId: 'hanging', url: siteUrl() }).text(siteUrl('/tap/y'), { signal: AbortSignal.timeout(200) }));
      expect(deadline.code).toBe('CONSTELLATION_E_UPSTREAM_TIMEOUT');
      expect(deadline.message).toContain('deadline passed');
      expect(deadline.message).not.toMatch(/: 23\b/);
    } finally {
      await http.close();
      await patient.close();
      site.server.closeAllConnections();
    }
  }, WAITING_TEST_MS);
});

describe('isPrivateAddress', () => {
  it('knows the loopback, private, link-local and unspecified ranges, IPv4-mapped included', () => {
    const privateOnes = ['127.0.0.1', '127.255.0.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1',
      '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '[::ffff:10.0.0.1]', '::ffff:a9fe:a9fe'];
    const publicOnes = ['8.8.8.8', '172.32.0.1', '192.169.0.1', '169.255.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8', 'example.org'];
    for (const a of privateOnes) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of publicOnes) expect(isPrivateAddress(a), a).toBe(false);
  });
});

describe('federation.yaml allowHosts and limits', () => {
  it('are checked strictly, with the path of what is wrong', () => {
    const bad = (extra: string, site = '') => {
      try {
        configFromYaml(`federation: { name: x }\n${extra}\nsites:\n  - { id: a, name: A, adapter: tap, url: "http://127.0.0.1:1/tap"${site} }\n`);
      } catch (err) {
        return err as ConstellationError;
      }
      throw new Error('expected INVALID_CONFIG');
    };
    const url = bad('', ', allowHosts: ["http://evil.example/x"]');
    expect(url.code).toBe('CONSTELLATION_E_INVALID_CONFIG');
    expect(url.violations?.[0]?.path).toContain('sites[0].allowHosts[0]');
    const unknown = bad('limits: { bodyBytes: 5 }');
    expect(unknown.code).toBe('CONSTELLATION_E_INVALID_CONFIG');
    const tiny = bad('limits: { documentBytes: 10 }');
    expect(tiny.violations?.[0]?.path).toContain('limits.documentBytes');
    const ok = configFromYaml('federation: { name: x }\nsites:\n  - { id: a, name: A, adapter: tap, url: "http://127.0.0.1:1/tap", allowHosts: [data.example.org, "data2.example.org:8443"] }\n');
    expect(ok.sites[0]!.allowHosts).toEqual(['data.example.org', 'data2.example.org:8443']);
    expect(ok.limits).toEqual({ documentBytes: 33554432, errorBodyBytes: 65536, resultBytes: 4294967296 });
  });
});
