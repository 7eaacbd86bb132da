/**
 * A round-robin front for several brokers, as a load balancer would stand before replicas:
 * each request goes to the next broker marked up. A broker that refuses the connection (it
 * is down or restarting) is skipped, since it received nothing; one that fails after the
 * request went out is reported to the caller as a 502 naming it, never sent elsewhere by the
 * front (resending is the client's decision, with its idempotency key). Every answer says which
 * broker gave it (`x-fleet-broker`); `x-fleet-avoid: <i>` asks for any broker but the i-th.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** The header naming the broker (its index) that answered. */
export const BROKER_HEADER = 'x-fleet-broker';
/** The header asking the front not to use the broker with this index. */
export const AVOID_HEADER = 'x-fleet-avoid';

interface Backend {
  url: URL | undefined;
  up: boolean;
}

/** What the front saw: requests forwarded per broker, skipped refusals and 502s. */
export interface FrontStats {
  forwarded: number[];
  refused: number;
  failed: number;
  noBroker: number;
  /** Requests whose client went away before the front read them. */
  clientErrors: number;
}

export class RoundRobinFront {
  private readonly backends: Backend[];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly server: http.Server;
  private next = 0;
  /** Requests forwarded and not yet answered whole, per broker. */
  private readonly busy: number[];
  readonly stats: FrontStats;

  constructor(size: number) {
    this.backends = Array.from({ length: size }, () => ({ url: undefined, up: false }));
    this.busy = Array.from({ length: size }, () => 0);
    this.stats = { forwarded: Array.from({ length: size }, () => 0), refused: 0, failed: 0, noBroker: 0, clientErrors: 0 };
    this.server = http.createServer((req, res) => {
      // A client gone mid-request (its body cut) ends here: there is no one to answer.
      this.handle(req, res).catch(() => {
        this.stats.clientErrors++;
        res.destroy();
      });
    });
  }

  /** Listen on 127.0.0.1; resolves to the front's base URL. */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Send requests to broker `index` at `url` from now on. */
  up(index: number, url: string): void {
    this.backends[index] = { url: new URL(url), up: true };
  }

  /** How many brokers the front stands before. */
  get size(): number {
    return this.backends.length;
  }

  /** Requests broker `index` is answering now. */
  inFlight(index: number): number {
    return this.busy[index];
  }

  /** Send nothing more to broker `index` (it is being stopped or killed). */
  down(index: number): void {
    this.backends[index].up = false;
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(Buffer.from(c));
    const body = Buffer.concat(chunks);
    const avoid = Number(req.headers[AVOID_HEADER] ?? -1);
    const n = this.backends.length;
    for (let tried = 0; tried < n; tried++) {
      const index = (this.next + tried) % n;
      const backend = this.backends[index];
      if (!backend.up || !backend.url || index === avoid) continue;
      this.next = (index + 1) % n;
      const outcome = await this.forward(index, backend.url, req, body, res);
      if (outcome === 'refused') {
        this.stats.refused++;
        continue;
      }
      return;
    }
    this.stats.noBroker++;
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ errors: [{ message: 'front: no broker is up', extensions: { code: 'FRONT_NO_BROKER' } }] }));
  }

  /** Forward one request; 'refused' when the broker took no connection (nothing was sent). */
  private forward(index: number, base: URL, req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<'done' | 'refused'> {
    this.busy[index]++;
    let settled = false;
    const settle = (outcome: 'done' | 'refused', resolve: (o: 'done' | 'refused') => void) => {
      if (settled) return;
      settled = true;
      this.busy[index]--;
      resolve(outcome);
    };
    return new Promise((resolveOuter) => {
      const resolve = (o: 'done' | 'refused') => settle(o, resolveOuter);
      const headers: http.OutgoingHttpHeaders = { ...req.headers, host: base.host, 'content-length': String(body.length) };
      delete headers[AVOID_HEADER];
      const out = http.request({ host: base.hostname, port: base.port, method: req.method, path: req.url, headers, agent: this.agent }, (answer) => {
        this.stats.forwarded[index]++;
        res.writeHead(answer.statusCode ?? 502, { ...answer.headers, [BROKER_HEADER]: String(index) });
        answer.pipe(res);
        // 'close' comes after the end, or after the broker cut the answer short (then so is the client's).
        answer.once('error', () => res.destroy());
        answer.once('close', () => {
          if (!answer.complete) res.destroy();
          resolve('done');
        });
      });
      out.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') return resolve('refused');
        this.stats.failed++;
        if (res.headersSent) res.destroy();
        else {
          res.writeHead(502, { 'content-type': 'application/json', [BROKER_HEADER]: String(index) });
          res.end(JSON.stringify({ errors: [{ message: `front: broker ${index} failed mid-request (${err.code ?? err.message})`, extensions: { code: 'FRONT_BROKER_FAILED' } }] }));
        }
        resolve('done');
      });
      out.end(body);
    });
  }
}
