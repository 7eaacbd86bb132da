/** DALI request parameters of a demo centre: from the query string, a urlencoded form or multipart/form-data. */

/** A client error, answered as a DALI error VOTable with `status`. */
export class TapFault extends Error {
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

/** Parameters by upper-cased name (DALI names are case-insensitive) and multipart parts by their own name. */
export interface TapParams {
  values: Map<string, string>;
  parts: Map<string, Buffer>;
  /** Bytes of the request body (what the client sent us). */
  bytesIn: number;
}

/** The parameters of a request: query string first, then the body (which wins). */
export function requestParams(query: unknown, body: unknown, contentType: string | undefined): TapParams {
  const out: TapParams = { values: new Map(), parts: new Map(), bytesIn: 0 };
  if (query !== null && typeof query === 'object') {
    for (const [k, v] of Object.entries(query)) {
      const value = Array.isArray(v) ? v[0] : v;
      if (typeof value === 'string') out.values.set(k.toUpperCase(), value);
    }
  }
  if (!Buffer.isBuffer(body)) return out;
  out.bytesIn = body.length;
  if (/^multipart\/form-data/i.test(contentType ?? '')) {
    for (const part of multipartParts(body, contentType ?? '')) {
      out.parts.set(part.name, part.content);
      if (part.filename === undefined) out.values.set(part.name.toUpperCase(), part.content.toString('utf8'));
    }
  } else {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) out.values.set(k.toUpperCase(), v);
  }
  return out;
}

interface Part {
  name: string;
  filename?: string;
  content: Buffer;
}

/** The parts of a multipart/form-data body (RFC 7578). */
function multipartParts(body: Buffer, contentType: string): Part[] {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) throw new TapFault('multipart/form-data body without a boundary');
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const next = Buffer.from(`\r\n--${m[1] ?? m[2]}`);
  const parts: Part[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new TapFault('multipart/form-data body without its boundary');
  for (;;) {
    const after = pos + delimiter.length;
    if (body.subarray(after, after + 2).toString() === '--') return parts;
    const headEnd = body.indexOf('\r\n\r\n', after);
    if (headEnd < 0) throw new TapFault('truncated multipart/form-data body');
    const head = body.subarray(after, headEnd).toString('utf8');
    const end = body.indexOf(next, headEnd + 4);
    if (end < 0) throw new TapFault('truncated multipart/form-data body');
    const name = /\bname="([^"]*)"/i.exec(head)?.[1];
    const filename = /\bfilename="([^"]*)"/i.exec(head)?.[1];
    if (name !== undefined) parts.push({ name, ...(filename === undefined ? {} : { filename }), content: body.subarray(headEnd + 4, end) });
    pos = end + 2;
  }
}
