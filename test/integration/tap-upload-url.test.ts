/**
 * UPLOAD=name,http(s)://… read by the broker (broker/tap/upload-fetch.ts), against real servers
 * on 127.0.0.1: a table read whole; loopback refused unless the broker is told its callers'
 * tables are on its own network (as these tests do); no client kept per upload host however
 * many hosts callers name (and site clients bounded); a dead host's circuit opening for that
 * host only; a host that trickles its table forever, or never answers, stopped at the deadline
 * with an error naming the host; a table over the limit cut off.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../adapters/circuit.js';
import { HttpClient, MAX_SCOPED_CLIENTS } from '../../adapters/http.js';
import { ConstellationError } from '../../registry/model/errors.js';
import { fetchUpload, UPLOAD_FETCH_DEADLINE_MS } from '../../broker/tap/upload-fetch.js';
import { freePort } from '../support/ports.js';

const TABLE = '<?xml version="1.0"?><VOTABLE version="1.4"><RESOURCE><TABLE><FIELD name="id" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>';

/** A server on 127.0.0.1 answering with `handler`, counting requests and keeping its sockets (to see them closed). */
interface Host {
  server: Server;
  host: string;
  requests: number;
  sockets: Set<Socket>;
  url(path?: string): string;
}

async function host(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Host> {
  const h: Host = { server: createServer(), host: '', requests: 0, sockets: new Set(), url: (path = '/t.xml') => `http://${h.host}${path}` };
  h.server.on('request', (req, res) => {
    h.requests++;
    handler(req, res);
  });
  h.server.on('connection', (socket) => {
    h.sockets.add(socket);
    socket.once('close', () => h.sockets.delete(socket));
  });
  await new Promise<void>((resolve) => h.server.listen(0, '127.0.0.1', resolve));
  h.host = `127.0.0.1:${(h.server.address() as { port: number }).port}`;
  return h;
}

/** The error `p` fails with (it must fail with a ConstellationError). */
async function failure(p: Promise<unknown>): Promise<ConstellationError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConstellationError);
    return err as ConstellationError;
  }
  throw new Error('expected the read to fail');
}

describe('tables uploaded by URL', () => {
  const hosts: Host[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let good: Host;
  let dead: Host;
  let http: HttpClient;
  const read = (url: string, options: Parameters<typeof fetchUpload>[4] = {}) => fetchUpload(http, 't', url, 64 * 1024, { privateAddresses: true, ...options });

  beforeAll(async () => {
    good = await host((_req, res) => res.writeHead(200, { 'content-type': 'application/x-votable+xml' }).end(TABLE));
    dead = await host((_req, res) => res.writeHead(500).end('down'));
    hosts.push(good, dead);
    // No retries, and a circuit that opens after two failures: each read is one request.
    http = new HttpClient({ retries: 0, circuit: { failures: 2, coolDownMs: 600_000 } });
  });
  afterEach(() => {
    for (const t of timers) clearInterval(t);
    timers.clear();
  });
  afterAll(async () => {
    await http?.close();
    for (const h of hosts) {
      for (const s of h.sockets) s.destroy();
      await new Promise((resolve) => h.server.close(resolve));
    }
  });

  it('reads a table whole; refuses loopback unless told the tables are on its own network', async () => {
    expect(await read(good.url())).toBe(TABLE);
    const refused = await failure(fetchUpload(http, 't', good.url(), 64 * 1024));
    expect(refused.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(refused.message).toContain(`UPLOAD t: the table at ${good.host} could not be read`);
    expect(refused.message).toMatch(/private address/);
    // The old call form (a signal as the fifth argument) is still the default policy.
    expect((await failure(fetchUpload(http, 't', good.url(), 64 * 1024, new AbortController().signal))).message).toMatch(/private address/);
    expect((await failure(read('not a url'))).message).toContain('UPLOAD t: "not a url" is not a URL');
  });

  it('keeps no client per upload host, however many hosts callers name; site clients and circuits are bounded', async () => {
    const kept = http.keptClients;
    // 300 distinct hosts (ports nothing listens on: each refused at once).
    const ports = new Set<number>();
    while (ports.size < 300) ports.add(await freePort());
    for (const port of ports) {
      const err = await failure(read(`http://127.0.0.1:${port}/t.xml`));
      expect(err.message).toContain(`the table at 127.0.0.1:${port} could not be read`);
    }
    expect(http.keptClients).toBe(kept);
    // Site clients: one per policy, the least recently used forgotten beyond the cap.
    const sites = new HttpClient({ retries: 0 });
    try {
      const first = sites.forSite({ siteId: 's0', url: 'https://s0.example.org/' });
      for (let i = 1; i < MAX_SCOPED_CLIENTS + 500; i++) {
        sites.forSite({ siteId: `s${i}`, url: `https://s${i}.example.org/` });
        // s0 used all along stays kept (the same client).
        if (i % 100 === 0) expect(sites.forSite({ siteId: 's0', url: 'https://s0.example.org/' })).toBe(first);
      }
      expect(sites.keptClients).toBe(MAX_SCOPED_CLIENTS);
      expect(sites.forSite({ siteId: 's0', url: 'https://s0.example.org/' })).toBe(first);
    } finally {
      await sites.close();
    }
    // Circuits: only failing ones are kept, at most maxCircuits, a success forgets its own.
    const breaker = new CircuitBreaker({ failures: 2, coolDownMs: 60_000, maxCircuits: 10 });
    for (let i = 0; i < 1000; i++) breaker.enter(`h${i}`)('failure');
    expect(breaker.size).toBe(10);
    breaker.enter('h999')('success');
    expect(breaker.size).toBe(9);
    for (let i = 0; i < 1000; i++) breaker.enter(`ok${i}`)('success');
    expect(breaker.size).toBe(9);
  });

  it("opens a dead host's circuit for that host only", async () => {
    for (let i = 0; i < 2; i++) expect((await failure(read(dead.url()))).message).toMatch(/answered 500/);
    const seen = dead.requests;
    const open = await failure(read(dead.url()));
    expect(open.message).toContain(`the table at ${dead.host} could not be read: circuit open for host "${dead.host}"`);
    expect(dead.requests).toBe(seen);
    // Every other host's uploads go on.
    expect(await read(good.url())).toBe(TABLE);
    // A site's own circuit is apart: a site named like the upload circuit is unaffected.
    expect(await http.forSite({ siteId: 'tap-upload', url: `http://${good.host}/` }).text(good.url())).toBe(TABLE);
  });

  it('stops a table that trickles forever, and a host that never answers, at the deadline, naming the host', async () => {
    const trickle = await host((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-votable+xml' });
      res.write('<?xml version="1.0"?><VOTABLE>');
      // A byte every 50 ms: never idle long enough for any per-read timeout.
      const t = setInterval(() => res.write(' '), 50);
      timers.add(t);
      res.once('close', () => clearInterval(t));
    });
    const silent = await host(() => undefined);
    hosts.push(trickle, silent);
    for (const h of [trickle, silent]) {
      const started = performance.now();
      const err = await failure(read(h.url(), { deadlineMs: 1_000 }));
      expect(err.code).toBe('CONSTELLATION_E_UPSTREAM_TIMEOUT');
      expect(err.message).toBe(`UPLOAD t: the table at ${h.host} was not read within 1 s, this service's limit for a table uploaded by URL`);
      expect(performance.now() - started).toBeLessThan(20_000);
      // The connection is dropped, not left streaming.
      await expect.poll(() => h.sockets.size, { timeout: 20_000 }).toBe(0);
    }
    expect(UPLOAD_FETCH_DEADLINE_MS).toBe(60_000);
  });

  it("a caller who leaves stops the read, and that is not the deadline's doing", async () => {
    const silent = await host(() => undefined);
    hosts.push(silent);
    const leaving = new AbortController();
    const pending = failure(read(silent.url(), { signal: leaving.signal }));
    await expect.poll(() => silent.requests, { timeout: 20_000 }).toBe(1);
    leaving.abort();
    const err = await pending;
    expect(err.code).toBe('CONSTELLATION_E_INVALID_ARGUMENT');
    expect(err.message).toMatch(new RegExp(`the table at ${silent.host} could not be read: .*cancelled`));
  });

  it('cuts a table over the limit off and drops its connection', async () => {
    const huge = await host((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-votable+xml' });
      const t = setInterval(() => res.write('x'.repeat(16 * 1024)), 5);
      timers.add(t);
      res.once('close', () => clearInterval(t));
    });
    hosts.push(huge);
    const err = await failure(read(huge.url()));
    expect(err.code).toBe('CONSTELLATION_E_PAYLOAD_TOO_LARGE');
    expect(err.message).toBe(`UPLOAD t: the table at ${huge.host} is larger than 65536 bytes, this service's upload limit`);
    await expect.poll(() => huge.sockets.size, { timeout: 20_000 }).toBe(0);
  });
});
