/**
 * Every log line written while a request is handled carries its request id, including lines
 * services write through the app's logger (a job's error, an upstream call): the request's id
 * travels in an AsyncLocalStorage entered at each hook where fastify may have left the
 * request's async context (the body is read in the socket's), and pino's `mixin` adds it to
 * lines of loggers other than the request's own (which has it already). Once the answer is
 * sent, work the request started (a job's later polls) no longer logs under its id.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from './request-id.js';

interface RequestLogContext {
  id: string;
  log: FastifyBaseLogger;
  /** False once the answer is sent or the client went away. */
  open: boolean;
}

const current = new AsyncLocalStorage<RequestLogContext>();
const contexts = new WeakMap<FastifyRequest, RequestLogContext>();

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
    const context: RequestLogContext = { id: request.id, log: request.log, open: true };
    contexts.set(request, context);
    current.run(context, done);
  });
  // Reading the body leaves the request's context: entered again before validation and the handler.
  const enter = (request: FastifyRequest, _reply: unknown, done: () => void) => {
    const context = contexts.get(request);
    if (context) current.run(context, done);
    else done();
  };
  app.addHook('preValidation', enter);
  app.addHook('preHandler', enter);
  const close = (request: FastifyRequest, _reply: unknown, done: () => void) => {
    const context = contexts.get(request);
    if (context) context.open = false;
    done();
  };
  app.addHook('onResponse', close);
  app.addHook('onRequestAbort', (request, done) => close(request, undefined, done));
}
