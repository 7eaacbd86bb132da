/**
 * A client's request held open on a kept-alive connection: its headers are sent now (and the
 * server has read them: it answered 100 Continue), its body when asked. A harness sends one to a
 * broker just before stopping it, so the broker is certainly answering a request when the
 * signal comes, as a busy replica behind a load balancer is; the connection stays open
 * afterwards, as a load balancer's pooled one does.
 */
import http from 'node:http';
import { createConnection } from 'node:net';
import { waitUntil } from './wait.js';

/** An open request: finish() sends the body and resolves to the answer's status; close() drops the connection. */
export interface OpenRequest {
  finish(): Promise<number>;
  close(): void;
}

/** Start a GraphQL read at `base` (a broker) and hold it before its body; resolves once the broker has read the headers. */
export async function openRequest(base: string): Promise<OpenRequest> {
  const url = new URL('/graphql', base);
  const agent = new http.Agent({ keepAlive: true });
  const body = Buffer.from(JSON.stringify({ query: '{ __typename }' }));
  let answer: ((status: number) => void) | undefined;
  let failed: ((err: Error) => void) | undefined;
  const answered = new Promise<number>((resolve, reject) => {
    answer = resolve;
    failed = reject;
  });
  const req = http.request({
    host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent,
    headers: { 'content-type': 'application/json', 'content-length': String(body.length), expect: '100-continue' },
  }, (res) => {
    res.resume();
    res.once('end', () => answer?.(res.statusCode ?? 0));
  });
  req.once('error', (err) => failed?.(err));
  // The server answers 100 Continue once it has read the headers: from then on the request is in flight there.
  await new Promise<void>((resolve, reject) => {
    req.once('continue', () => resolve());
    req.once('error', reject);
    req.flushHeaders();
  });
  return {
    finish: async () => {
      req.end(body);
      return answered;
    },
    close: () => agent.destroy(),
  };
}

/** True when nothing listens at `base` any more (a connection is refused): the server has begun to close. */
function refuses(base: string): Promise<boolean> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Wait until the server at `base` stops accepting connections (it has begun to close), or `gone()` says its process ended. */
export async function untilClosing(base: string, gone: () => boolean): Promise<void> {
  await waitUntil(async () => gone() || (await refuses(base)), (closing) => closing, { intervalMs: 20, describe: () => `${base} still accepts connections` });
}
