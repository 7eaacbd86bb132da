/**
 * Issue 13, point 4: a result streamed from a site (adapters/http.ts) is a Node stream the
 * pass-through pipes on (broker/jobs/pass-through.ts), with every limit kept: the byte cap
 * (declared or counted), a site that cuts its body or stalls, a reader that leaves, an answer
 * that is not a VOTable. A hostile site on 127.0.0.1; no mocks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient, type ByteMeter, type UpstreamCall } from '../../adapters/http.js';
import { isConstellationError } from '../../registry/model/errors.js';
import { checkedVotableStream, replyStream } from '../../broker/jobs/pass-through.js';
import { waitUntil, within, WAITING_TEST_MS } from '../support/wait.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A site answering each path with its handler; `closed` counts responses it could not finish (the reader dropped them). */
interface Site {
  url: string;
  handlers: Map<string, Handler>;
  closed: Map<string, number>;
  close(): Promise<void>;
}

async function startSite(): Promise<Site> {
  const handlers = new Map<string, Handler>();
  const closed = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    res.once('close', () => {
      if (!res.writableFinished) closed.set(path, (closed.get(path) ?? 0) + 1);
    });
    const handler = handlers.get(path);
    if (handler) handler(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    handlers,
    closed,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Write `total` bytes of 'x' in 64 KiB pieces, as fast as the reader takes them; stops when the response closes. */
function writeMany(res: ServerResponse, total: number): void {
  const piece = Buffer.alloc(64 * 1024, 'x');
  let sent = 0;
  const more = () => {
    while (sent < total && !res.destroyed) {
      const n = Math.min(piece.length, total - sent);
      sent += n;
      if (!res.write(n === piece.length ? piece : piece.subarray(0, n))) {
        res.once('drain', more);
        return;
      }
    }
    if (sent >= total && !res.destroyed) res.end();
  };
  more();
}

/** Read a stream to its end: its bytes, or its error. */
async function drain(body: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer; error?: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of body) parts.push(Buffer.from(chunk));
    return { bytes: Buffer.concat(parts) };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

/** Pipe a stream into memory (as the reply does): its bytes, or its error. */
async function piped(stream: Readable): Promise<{ bytes: Buffer; error?: unknown }> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  try {
    await pipeline(stream, sink);
    return { bytes: Buffer.concat(parts) };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

function kindOf(err: unknown): string | undefined {
  return isConstellationError(err) ? err.kind : undefined;
}

/** More than the socket buffers between the site and the broker hold: a site sending it cannot finish unless it is read. */
const BIG = 256 * 1024 * 1024;

const VOTABLE = '<?xml version="1.0" encoding="UTF-8"?>\n<VOTABLE version="1.4"><RESOURCE type="results"><TABLE><FIELD name="a" datatype="int"/><DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>\n';

describe('a result streamed from a site and passed through', () => {
  let site: Site;
  const limit = 1024 * 1024;
  const http = new HttpClient({ retries: 0, circuit: false, bodyTimeoutMs: 1_000, limits: { resultBytes: limit } });
  const calls: UpstreamCall[] = [];
  http.observe((call) => calls.push(call));

  beforeAll(async () => {
    site = await startSite();
  });
  afterAll(async () => {
    await site.close();
  });

  it('is a Node stream of every byte, counted into the meter, up to the limit exactly', async () => {
    site.handlers.set('/exact', (_req, res) => writeMany(res, limit));
    const meter: ByteMeter = { bytes: 0 };
    const res = await http.request(`${site.url}/exact`, { meter });
    const body = res.body;
    expect(body).toBeInstanceOf(Readable);
    expect(replyStream(body)).toBe(body);
    const out = await piped(replyStream(body));
    expect(out.error).toBeUndefined();
    expect(out.bytes.length).toBe(limit);
    expect(meter.bytes).toBe(limit);
  });

  it('fails a body declared over the limit with UPSTREAM_TOO_LARGE before reading it, and drops the connection', async () => {
    site.handlers.set('/declared', (_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG) });
      writeMany(res, BIG);
    });
    const res = await http.request(`${site.url}/declared`);
    const out = await drain(res.body);
    expect(kindOf(out.error)).toBe('UPSTREAM_TOO_LARGE');
    expect(out.bytes.length).toBe(0);
    await waitUntil(() => site.closed.get('/declared') ?? 0, (n) => n === 1);
    expect(calls.some((c) => c.path === '/declared' && c.phase === 'body' && c.errorCode === 'CONSTELLATION_E_UPSTREAM_TOO_LARGE')).toBe(true);
  });

  it('fails an undeclared body once it passes the limit, passing on no byte beyond it, and drops the connection', async () => {
    site.handlers.set('/chunked', (_req, res) => writeMany(res, 8 * limit));
    const res = await http.request(`${site.url}/chunked`);
    const out = await piped(replyStream(res.body));
    expect(kindOf(out.error)).toBe('UPSTREAM_TOO_LARGE');
    expect(out.bytes.length).toBeLessThanOrEqual(limit);
    await waitUntil(() => site.closed.get('/chunked') ?? 0, (n) => n === 1);
  });

  it('fails a body the site cuts short with an upstream error, after the bytes that came', async () => {
    site.handlers.set('/cut', (_req, res) => {
      res.writeHead(200, { 'content-length': String(limit) });
      res.write(Buffer.alloc(100_000, 'x'), () => res.socket?.destroy());
    });
    const res = await http.request(`${site.url}/cut`);
    const out = await piped(replyStream(res.body));
    expect(kindOf(out.error)).toBe('UPSTREAM_UNAVAILABLE');
    expect(out.bytes.length).toBe(100_000);
  });

  it('fails a body that stalls with UPSTREAM_TIMEOUT (the body timeout)', async () => {
    site.handlers.set('/stall', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-votable+xml' });
      res.write(VOTABLE.slice(0, 60));
    });
    const res = await http.request(`${site.url}/stall`);
    const stream = await checkedVotableStream(replyStream(res.body), 'the stalling site');
    const out = await within(piped(stream), 'the stalled body failing');
    expect(kindOf(out.error)).toBe('UPSTREAM_TIMEOUT');
    await waitUntil(() => site.closed.get('/stall') ?? 0, (n) => n === 1);
  }, WAITING_TEST_MS);

  it('drops the site connection when its reader leaves in the middle', async () => {
    site.handlers.set('/left', (_req, res) => writeMany(res, BIG));
    const res = await http.request(`${site.url}/left`);
    const stream = replyStream(res.body);
    let seen = 0;
    await new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > 64 * 1024) {
          stream.destroy();
          resolve();
        }
      });
    });
    await waitUntil(() => site.closed.get('/left') ?? 0, (n) => n === 1);
    expect(stream.destroyed).toBe(true);
  });

  it('passes a VOTable that ends in its first piece whole (the bytes read to check its root are put back)', async () => {
    site.handlers.set('/small', (_req, res) => res.end(VOTABLE));
    const res = await http.request(`${site.url}/small`);
    const stream = await checkedVotableStream(replyStream(res.body), 'the site');
    const out = await piped(stream);
    expect(out.error).toBeUndefined();
    expect(out.bytes.toString('utf8')).toBe(VOTABLE);
  });

  it('passes a VOTable whose root comes after a prologue spread over many pieces, byte for byte', async () => {
    const comment = `<!-- ${'p'.repeat(40_000)} -->\n`;
    const doc = `<?xml version="1.0"?>\n${comment}${VOTABLE.replace(/^<\?xml[^>]*>\n/, '')}`;
    site.handlers.set('/prologue', (_req, res) => {
      // One byte at a time for the first hundred: the check reads piece after piece.
      let i = 0;
      const step = () => {
        if (i < 100) {
          res.write(doc.slice(i, i + 1), () => setImmediate(step));
          i++;
        } else res.end(doc.slice(i));
      };
      step();
    });
    const res = await http.request(`${site.url}/prologue`);
    const out = await piped(await checkedVotableStream(replyStream(res.body), 'the site'));
    expect(out.error).toBeUndefined();
    expect(out.bytes.toString('utf8')).toBe(doc);
  });

  it('refuses an HTML answer, an empty one and one with no root in 64 KiB as UPSTREAM_MALFORMED, dropping the connection', async () => {
    site.handlers.set('/html', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.write('<!DOCTYPE html><html><body>not a table</body></html>');
      writeMany(res, BIG);
    });
    site.handlers.set('/empty', (_req, res) => res.end());
    site.handlers.set('/noroot', (_req, res) => writeMany(res, BIG));
    const html = await http.request(`${site.url}/html`);
    const htmlError = await checkedVotableStream(replyStream(html.body), 'the site').then(() => undefined, (err: unknown) => err);
    expect(kindOf(htmlError)).toBe('UPSTREAM_MALFORMED');
    expect(String(htmlError)).toContain('<html>');
    await waitUntil(() => site.closed.get('/html') ?? 0, (n) => n === 1);

    const empty = await http.request(`${site.url}/empty`);
    const emptyError = await checkedVotableStream(replyStream(empty.body), 'the site').then(() => undefined, (err: unknown) => err);
    expect(kindOf(emptyError)).toBe('UPSTREAM_MALFORMED');
    expect(String(emptyError)).toContain('(it is empty)');

    const noRoot = await http.request(`${site.url}/noroot`);
    const noRootError = await checkedVotableStream(replyStream(noRoot.body), 'the site').then(() => undefined, (err: unknown) => err);
    expect(kindOf(noRootError)).toBe('UPSTREAM_MALFORMED');
    expect(String(noRootError)).toContain('not found');
    await waitUntil(() => site.closed.get('/noroot') ?? 0, (n) => n === 1);
  });

  it('gives an iterable that is not a stream to the reply through Readable.from, its bytes unchanged', async () => {
    async function* pieces(): AsyncIterable<Uint8Array> {
      yield Buffer.from('ab');
      yield Buffer.from('cd');
    }
    const stream = replyStream(pieces());
    expect((await piped(stream)).bytes.toString()).toBe('abcd');
  });
});
