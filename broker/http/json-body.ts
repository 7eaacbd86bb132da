/**
 * JSON request bodies for routes that take large documents (a site's capability document, up
 * to CONSTELLATION_BODY_LIMIT). A small body is parsed whole, exactly as fastify does; a large
 * one is parsed piece by piece while it arrives, giving the event loop a turn every few
 * milliseconds: one JSON.parse of a 14 MB document, and the garbage collection of its objects,
 * held the broker for about 300 ms (issue 9's attack bench).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { IncomingMessage } from 'node:http';
import { JSONParser, TokenType } from '@streamparser/json';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConstellationError } from '../../registry/model/errors.js';

/** Bodies up to this size are parsed whole (a few ms at most). */
export const WHOLE_BODY_BYTES = 1024 * 1024;

/** Parsing work between two turns of the event loop. */
const SLICE_MS = 8;

/** A cap on the elements of one array of a streamed body, checked while it arrives. */
export interface ArrayCap {
  /** JSON pointer of the array ("/datasets"). */
  pointer: string;
  max: number;
  /** The error for an array with more than `max` elements; the body is not read further. */
  refuse(): Error;
}

/**
 * Parse `application/json` bodies of the routes in `app`'s scope as described above; a streamed
 * body is refused as soon as an array passes its cap, before the rest is read or built.
 */
export function parseLargeJsonBodies(app: FastifyInstance, caps: readonly ArrayCap[] = []): void {
  const whole = app.getDefaultJsonParser('error', 'error');
  const limit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (request, payload, done) => {
    readJson(request, payload, limit, whole, caps).then(
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
  caps: readonly ArrayCap[],
): Promise<unknown> {
  const declared = Number(request.headers['content-length']);
  if (declared > limit) throw tooLarge(limit);
  if (declared > 0 && declared <= WHOLE_BODY_BYTES) {
    const text = await collect(payload, limit);
    return new Promise((resolve, reject) => whole(request, text, (err, value) => (err ? reject(err) : resolve(value))));
  }
  return stream(payload, limit, caps);
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

async function stream(payload: IncomingMessage, limit: number, caps: readonly ArrayCap[]): Promise<unknown> {
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
  const shape = new Shape(caps);
  parser.onToken = ({ token, value }) => shape.token(token, value);
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
      await yieldToLoop();
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

/** A container being read: its JSON pointer while it can still lead to a capped array, and its element count. */
interface Open {
  array: boolean;
  pointer: string | undefined;
  count: number;
}

/**
 * Follows the structure of a streamed body token by token: refuses a "__proto__" key (as
 * fastify does: it would set the prototype of the object being built) and an array past its cap.
 */
class Shape {
  private readonly open: Open[] = [];
  /** The last string read where a key may stand, and the key whose value comes next. */
  private candidate: string | undefined;
  private key: string | undefined;

  constructor(private readonly caps: readonly ArrayCap[]) {}

  token(type: TokenType, value: unknown): void {
    const top = this.open.at(-1);
    if (type === TokenType.COLON) {
      if (this.candidate === '__proto__') throw notJson('a "__proto__" key is not accepted');
      this.key = this.candidate;
      this.candidate = undefined;
      return;
    }
    if (type === TokenType.STRING && top !== undefined && !top.array && this.key === undefined) {
      this.candidate = String(value);
      return;
    }
    this.candidate = undefined;
    if (type === TokenType.RIGHT_BRACE || type === TokenType.RIGHT_BRACKET) {
      this.open.pop();
      return;
    }
    if (type === TokenType.COMMA || type === TokenType.SEPARATOR) return;
    // A value starts here.
    let where: string | undefined;
    if (top === undefined) where = '';
    else if (top.array) {
      top.count++;
      const cap = top.pointer === undefined ? undefined : this.caps.find((c) => c.pointer === top.pointer);
      if (cap && top.count > cap.max) throw cap.refuse();
      where = top.pointer === undefined ? undefined : `${top.pointer}/${top.count - 1}`;
    } else where = top.pointer === undefined || this.key === undefined ? undefined : `${top.pointer}/${this.key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    this.key = undefined;
    if (type !== TokenType.LEFT_BRACE && type !== TokenType.LEFT_BRACKET) return;
    // Pointers are kept only while they can still lead to a capped array.
    const pointer = where !== undefined && this.caps.some((c) => c.pointer === where || c.pointer.startsWith(`${where}/`)) ? where : undefined;
    this.open.push({ array: type === TokenType.LEFT_BRACKET, pointer, count: 0 });
  }
}
