/**
 * TAP request parameters (DALI): names are case-insensitive, taken from the query string and a
 * form body (urlencoded or multipart/form-data, whose file parts are inline uploads).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';

/** A request's TAP parameters: upper-case names to values (the last given wins), every value of each name in order, and its multipart parts by part name (uploads). */
export interface TapParams {
  values: Map<string, string>;
  /** Each name's every value (a UWS job list may repeat PHASE). */
  all: Map<string, string[]>;
  files: Map<string, Buffer>;
}

/** Accept TAP's form bodies in `app`'s scope (the rest of the broker keeps its JSON-only bodies). */
export function acceptFormBodies(app: FastifyInstance, bodyLimit: number): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit }, (_request, body, done) => {
    done(null, { kind: 'urlencoded', text: body as string });
  });
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit }, (request, body, done) => {
    try {
      done(null, { kind: 'multipart', parts: parseMultipart(String(request.headers['content-type'] ?? ''), body as Buffer) });
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

/** One part of a multipart body. */
interface Part {
  name: string;
  filename?: string;
  data: Buffer;
}

type Body = { kind: 'urlencoded'; text: string } | { kind: 'multipart'; parts: Part[] } | undefined;

/** The parameters of `request`: its query string, then its form body. */
export function paramsOf(request: FastifyRequest): TapParams {
  const values = new Map<string, string>();
  const all = new Map<string, string[]>();
  const files = new Map<string, Buffer>();
  const set = (name: string, value: string) => {
    const key = name.toUpperCase();
    values.set(key, value);
    const list = all.get(key);
    if (list) list.push(value);
    else all.set(key, [value]);
  };
  const qs = request.url.indexOf('?');
  if (qs >= 0) for (const [k, v] of new URLSearchParams(request.url.slice(qs + 1))) set(k, v);
  const body = request.body as Body | null;
  if (body && typeof body === 'object' && 'kind' in body) {
    if (body.kind === 'urlencoded') for (const [k, v] of new URLSearchParams(body.text)) set(k, v);
    else {
      for (const p of body.parts) {
        // An inline upload is named by its part (UPLOAD=t,param:part), with or without a filename.
        files.set(p.name, p.data);
        if (p.filename === undefined) set(p.name, p.data.toString('utf8'));
      }
    }
  } else if (body !== undefined && body !== null) {
    throw new ConstellationError('UNSUPPORTED_MEDIA_TYPE', 'TAP parameters come as application/x-www-form-urlencoded or multipart/form-data (or in the query string)');
  }
  return { values, all, files };
}

const MAX_PARTS = 100;

/** The parts of a multipart/form-data body (RFC 7578), or INVALID_ARGUMENT saying what is wrong with it. */
export function parseMultipart(contentType: string, body: Buffer): Part[] {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw invalidArgument('body', 'is multipart/form-data without a boundary parameter');
  const boundary = Buffer.from(`--${m[1] ?? m[2]}`);
  const parts: Part[] = [];
  let pos = body.indexOf(boundary);
  if (pos < 0) throw invalidArgument('body', 'is multipart/form-data but holds no part boundary');
  for (;;) {
    const after = pos + boundary.length;
    if (body.subarray(after, after + 2).toString() === '--') return parts;
    const headStart = after + 2;
    const headEnd = body.indexOf('\r\n\r\n', headStart);
    if (headEnd < 0) throw invalidArgument('body', 'has a multipart part without the blank line after its headers');
    const head = body.subarray(headStart, headEnd).toString('utf8');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), boundary]), headEnd + 4);
    if (next < 0) throw invalidArgument('body', 'is a truncated multipart body (a part has no closing boundary)');
    const disposition = /content-disposition:\s*form-data([^\r\n]*)/i.exec(head);
    if (!disposition) throw invalidArgument('body', 'has a multipart part without Content-Disposition: form-data');
    const name = /;\s*name="([^"]*)"/i.exec(disposition[1])?.[1] ?? /;\s*name=([^;\s]+)/i.exec(disposition[1])?.[1];
    if (name === undefined) throw invalidArgument('body', 'has a multipart part without a name');
    const filename = /;\s*filename="([^"]*)"/i.exec(disposition[1])?.[1];
    parts.push({ name, ...(filename !== undefined ? { filename } : {}), data: body.subarray(headEnd + 4, next) });
    if (parts.length > MAX_PARTS) throw invalidArgument('body', `has more than ${MAX_PARTS} multipart parts`);
    pos = next + 2;
  }
}
