/**
 * Every log line written while a request is handled carries its request id, including lines
 * services write through the app's logger (a job's error, an upstream call): the request's id
 * travels in an AsyncLocalStorage entered at each hook where fastify may have left the
 * request's async context (the body is read in the socket's), and pino's `mixin` adds it to
 * lines of loggers other than the request's own (which has it already). Once the answer is
 * sent, work the request started (a job's later polls) no longer logs under its id.
 *
 * On Node 20 an enabled AsyncLocalStorage runs a hook for every promise the process makes (20
 * to 30 % of a discovery request's CPU, measured). A GraphQL read does no work that logs
 * through another logger (it calls no site), so it enters no context, and the storage is
 * enabled only while some request that entered one is open.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from './request-id.js';

interface RequestLogContext {
  id: string;
  log: FastifyBaseLogger;
  /** False once the answer is sent or the client went away. */
  open: boolean;
  /** Counted in `entered` (the storage was run with it). */
  counted: boolean;
}

const current = new AsyncLocalStorage<RequestLogContext>();
const contexts = new WeakMap<FastifyRequest, RequestLogContext>();
/** Open requests that entered a context: the storage (and its promise hook) is disabled at 0. */
let entered = 0;

/**
 * True for a GraphQL request that can only read (no `mutation` in its text: a false "yes" only
 * costs the hook), answered from the registry view and the database, never a site; and for a
 * subscription's WebSocket, which stays open (the events it carries come from services' own work).
 */
function graphqlRead(request: FastifyRequest): boolean {
  if (!request.url.startsWith('/graphql')) return false;
  if (request.headers.upgrade !== undefined) return true;
  const body = request.body as { query?: unknown } | undefined;
  const query = request.method === 'GET' ? (request.query as { query?: unknown } | undefined)?.query : body?.query;
  return typeof query === 'string' && !query.includes('mutation');
}

/** Open requests that entered a log context: the storage's promise hook runs while this is above 0. */
export function openRequestContexts(): number {
  return entered;
}

/** pino's mixin: `{reqId}` for a line written inside a request still being handled by a logger other than the request's own. */
export function requestLogMixin(_line: object, _level: number, logger: unknown): object {
  const context = current.getStore();
  if (!context || !context.open || logger === context.log) return {};
  return { reqId: context.id };
}

/** Carry each request's id into the async work it does, and echo it in the answer's X-Request-Id. */
export function carryRequestIds(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    contexts.set(request, { id: request.id, log: request.log, open: true, counted: false });
    done();
  });
  // Entered once the body is read (reading it leaves the request's async context), before
  // validation and again before the handler; not for a GraphQL read.
  const enter = (request: FastifyRequest, _reply: unknown, done: () => void) => {
    const context = contexts.get(request);
    if (!context || graphqlRead(request)) return done();
    if (!context.counted) {
      context.counted = true;
      entered++;
    }
    current.run(context, done);
  };
  app.addHook('preValidation', enter);
  app.addHook('preHandler', enter);
  const close = (request: FastifyRequest, _reply: unknown, done: () => void) => {
    const context = contexts.get(request);
    if (context) {
      context.open = false;
      if (context.counted) {
        context.counted = false;
        // The last open request with a context: the storage's promise hook goes too (run() enables it again).
        if (--entered === 0) current.disable();
      }
    }
    done();
  };
  app.addHook('onResponse', close);
  app.addHook('onRequestAbort', (request, done) => close(request, undefined, done));
}
