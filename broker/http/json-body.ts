/**
 * JSON request bodies for routes that take large documents (a site's capability document, up
 * to CONSTELLATION_BODY_LIMIT). A small body is parsed whole, exactly as fastify does; a large
 * one is parsed piece by piece while it arrives, giving the event loop a turn every few
 * milliseconds: one JSON.parse of a 14 MB document, and the garbage collection of its objects,
 * held the broker for about 300 ms (issue 9's attack bench).
 */
import type { IncomingMessage } from 'node:http';
import { JSONParser, TokenType } from '@streamparser/json';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConstellationError } from '../../registry/model/errors.js';

/** Bodies up to this size are parsed whole (a few ms at most). */
export const WHOLE_BODY_BYTES = 1024 * 1024;

/** Parsing work between two turns of the event loop. */
const SLICE_MS = 8;

/** Parse `application/json` bodies of the routes in `app`'s scope as described above. */
export function parseLargeJsonBodies(app: FastifyInstance): void {
  const whole = app.getDefaultJsonParser('error', 'error');
  const limit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (request, payload, done) => {
    readJson(request, payload, limit, whole).then(
      (value) => done(null, value),
      (err: Error) => done(err, undefined),
    );
  });
}

function tooLarge(limit: number): ConstellationError {
  return new ConstellationError('PAYLOAD_TOO_LARGE', `request body is over ${limit} bytes (CONSTELLATION_BODY_LIMIT)`);
}

function notJson(why: string, cause?: unknown): ConstellationError {
  return new ConstellationError('INVALID_JSON', `request body is not valid JSON: ${why}`, { cause });
}

/** The parser's error as INVALID_JSON (ours, thrown from a token callback, passes through as it is). */
function asNotJson(err: unknown): ConstellationError {
  return err instanceof ConstellationError ? err : notJson((err as Error).message, err);
}

async function readJson(
  request: FastifyRequest,
  payload: IncomingMessage,
  limit: number,
  whole: ReturnType<FastifyInstance['getDefaultJsonParser']>,
): Promise<unknown> {
  const declared = Number(request.headers['content-length']);
  if (declared > limit) throw tooLarge(limit);
  if (declared > 0 && declared <= WHOLE_BODY_BYTES) {
    const text = await collect(payload, limit);
    return new Promise((resolve, reject) => whole(request, text, (err, value) => (err ? reject(err) : resolve(value))));
  }
  return stream(payload, limit);
}

async function collect(payload: IncomingMessage, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of payload as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > limit) throw tooLarge(limit);
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

async function stream(payload: IncomingMessage, limit: number): Promise<unknown> {
  // Strings gather in a 64 KiB buffer: unbuffered, the parser keeps one JS string per character
  // until a string ends, and seven 2 MB strings took 400 MB.
  const parser = new JSONParser({ paths: ['$'], keepStack: false, stringBufferSize: 64 * 1024 });
  let root: { value: unknown } | undefined;
  let failure: Error | undefined;
  parser.onValue = ({ value }) => {
    root = { value };
  };
  parser.onError = (err) => {
    failure ??= err;
  };
  // Refused as fastify refuses it: a "__proto__" key would set the prototype of the object being built.
  let key: string | undefined;
  parser.onToken = ({ token, value }) => {
    if (token === TokenType.COLON && key === '__proto__') throw notJson('a "__proto__" key is not accepted');
    key = token === TokenType.STRING ? String(value) : undefined;
  };
  let bytes = 0;
  let slice = performance.now();
  for await (const chunk of payload as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > limit) throw tooLarge(limit);
    try {
      parser.write(chunk);
    } catch (err) {
      throw asNotJson(err);
    }
    if (failure) throw asNotJson(failure);
    if (performance.now() - slice > SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      slice = performance.now();
    }
  }
  if (bytes === 0) throw notJson('the body is empty');
  try {
    if (!parser.isEnded) parser.end();
  } catch (err) {
    throw asNotJson(err);
  }
  if (failure) throw asNotJson(failure);
  if (!root) throw notJson('the document ends before its value does');
  return root.value;
}
