/**
 * The base of every simulated member platform: a real fastify server on 127.0.0.1 with
 * switchable faults, so adapters are tested against real HTTP, never against mocks.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

/** A fault the simulated site applies to every request until cleared. */
export type Fault =
  | { kind: 'none' }
  /** Stop listening: connections are refused. */
  | { kind: 'refuse' }
  /** Accept the request and never answer. */
  | { kind: 'hang' }
  /** Answer normally but dribble the body out, `bytesPerTick` every `tickMs`. */
  | { kind: 'slow-body'; bytesPerTick: number; tickMs: number }
  /** Answer with this status (500, 503, ...). */
  | { kind: 'status'; status: number; body?: string }
  /** Answer 429 with a Retry-After header, `times` times, then normally. */
  | { kind: 'rate-limit'; retryAfterS: number; times: number }
  /** Replace XML bodies with malformed XML. */
  | { kind: 'malformed-xml' }
  /** Cut every body after this many bytes (and end the response). */
  | { kind: 'truncate'; afterBytes: number };

/** Requests the site has seen, for assertions (path and the headers that matter). */
export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

/** Where a site takes its credential: Authorization: Bearer, its own header, or a cookie. */
export type CredentialForm = { kind: 'bearer' } | { kind: 'header'; name: string } | { kind: 'cookie'; name: string };

/** Who a credential proves: the user (a JWT's sub, or the owner of a site token) and a JWT's audience. */
export interface CredentialHolder {
  user: string;
  audience?: string;
}

/** A credential gate like the platform's own: requests without a credential it accepts get 401. */
export interface CredentialRequirement {
  form: CredentialForm;
  /** Who `value` proves, or undefined when the site does not accept it. */
  identify(value: string): CredentialHolder | undefined | Promise<CredentialHolder | undefined>;
  /** Which requests need it (default every one). */
  applies?(method: string, url: string): boolean;
}

/** One request a credential gate judged: who it came as, or why it was refused. */
export interface AuthLogEntry {
  method: string;
  url: string;
  /** The user the credential proved; undefined when refused. */
  user?: string;
  audience?: string;
  refused?: 'missing' | 'invalid';
}

/** A simulated site: build its routes on `app`, then `start()`. */
export class SimSite {
  readonly app: FastifyInstance;
  readonly seen: SeenRequest[] = [];
  /** Every request the credential gate judged (requireCredential), in order. */
  readonly authLog: AuthLogEntry[] = [];
  private credentialGate: CredentialRequirement | undefined;
  /** When true, JSON answers sent with sendJson are cut short (malformed JSON). */
  corruptJson = false;
  private fault: Fault = { kind: 'none' };
  private port = 0;

  constructor() {
    this.app = Fastify({ logger: false, forceCloseConnections: true });
    this.app.addHook('onRequest', async (request, reply) => {
      this.seen.push({ method: request.method, url: request.url, headers: request.headers });
      const f = this.fault;
      if (f.kind === 'hang') return new Promise<void>(() => {});
      if (f.kind === 'status') return reply.code(f.status).type('text/plain').send(f.body ?? `simulated ${f.status}`);
      if (f.kind === 'rate-limit' && f.times > 0) {
        f.times--;
        return reply.code(429).header('retry-after', String(f.retryAfterS)).type('text/plain').send('slow down');
      }
      if (this.credentialGate) return this.checkCredential(this.credentialGate, request, reply);
    });
    this.app.addHook('onSend', async (_request, reply, payload) => this.distort(reply, payload));
  }

  /** From now on, refuse (401) requests without a credential of `requirement`'s form that it accepts, and log who each came as. */
  requireCredential(requirement: CredentialRequirement): this {
    this.credentialGate = requirement;
    return this;
  }

  /** True while a credential gate (requireCredential) checks requests; a site's own token check stands aside then. */
  get checksCredentials(): boolean {
    return this.credentialGate !== undefined;
  }

  private async checkCredential(gate: CredentialRequirement, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (gate.applies && !gate.applies(request.method, request.url)) return undefined;
    const entry: AuthLogEntry = { method: request.method, url: request.url };
    const value = credentialValue(gate.form, request.headers);
    const holder = value === undefined ? undefined : await gate.identify(value);
    if (!holder) {
      this.authLog.push({ ...entry, refused: value === undefined ? 'missing' : 'invalid' });
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').type('text/plain').send(value === undefined ? 'authentication required' : 'invalid credential');
    }
    this.authLog.push({ ...entry, user: holder.user, ...(holder.audience ? { audience: holder.audience } : {}) });
    return undefined;
  }

  /** Send JSON text (cut in half while corruptJson is set). */
  protected sendJson(reply: FastifyReply, text: string, code = 200): FastifyReply {
    return reply.code(code).type('application/json').send(this.corruptJson ? text.slice(0, Math.max(1, Math.floor(text.length / 2))) : text);
  }

  /** The base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Listen on 127.0.0.1 (on the same port as before, after a `refuse` fault). */
  async start(): Promise<this> {
    await this.app.listen({ host: '127.0.0.1', port: this.port });
    this.port = (this.app.server.address() as AddressInfo).port;
    return this;
  }

  /** Switch the fault mode; `refuse` stops the listener, leaving it restores it. */
  async setFault(fault: Fault): Promise<void> {
    const wasRefusing = this.fault.kind === 'refuse';
    this.fault = fault;
    if (fault.kind === 'refuse' && !wasRefusing) {
      await new Promise<void>((resolve) => {
        this.app.server.close(() => resolve());
        this.app.server.closeAllConnections();
      });
    } else if (fault.kind !== 'refuse' && wasRefusing) {
      await new Promise<void>((resolve, reject) => {
        this.app.server.once('error', reject);
        this.app.server.listen(this.port, '127.0.0.1', () => resolve());
      });
    }
  }

  async close(): Promise<void> {
    if (this.fault.kind === 'refuse') return;
    await this.app.close();
  }

  private async distort(reply: FastifyReply, payload: unknown): Promise<unknown> {
    const f = this.fault;
    if (f.kind === 'none' || f.kind === 'rate-limit') return payload;
    const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined;
    if (text === undefined) return payload;
    if (f.kind === 'malformed-xml' && /xml/.test(String(reply.getHeader('content-type')))) {
      return text.replace(/<\/[A-Za-z:]+>\s*$/, '').replace(/<([A-Za-z])/, '<$1 broken="') + '<unclosed';
    }
    if (f.kind === 'truncate') {
      reply.removeHeader('content-length');
      return text.slice(0, f.afterBytes);
    }
    if (f.kind === 'slow-body') {
      const { Readable } = await import('node:stream');
      const { setTimeout: sleep } = await import('node:timers/promises');
      reply.removeHeader('content-length');
      return Readable.from((async function* () {
        for (let i = 0; i < text.length; i += f.bytesPerTick) {
          await sleep(f.tickMs);
          yield text.slice(i, i + f.bytesPerTick);
        }
      })());
    }
    return payload;
  }
}

/** The credential a request carries in `form`, or undefined. */
function credentialValue(form: CredentialForm, headers: Record<string, string | string[] | undefined>): string | undefined {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  if (form.kind === 'bearer') return /^Bearer (\S+)$/.exec(one(headers.authorization) ?? '')?.[1];
  if (form.kind === 'header') return one(headers[form.name.toLowerCase()]) || undefined;
  for (const part of (one(headers.cookie) ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === form.name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}
