/** multipart/form-data bodies (RFC 7578) streamed part by part, for TAP uploads. */
import { randomBytes } from 'node:crypto';

/** One form field; a `filename` makes it a file part. */
export interface FormPart {
  name: string;
  value: string | Uint8Array | AsyncIterable<Uint8Array>;
  filename?: string;
  contentType?: string;
}

const enc = new TextEncoder();

function quote(s: string): string {
  return s.replace(/[\r\n"]/g, (c) => encodeURIComponent(c));
}

/** Builds a multipart body; the value streams are read once, in order, as the body is sent. */
export function buildMultipart(parts: FormPart[]): { contentType: string; body: AsyncIterable<Uint8Array> } {
  const boundary = `----constellation-${randomBytes(12).toString('hex')}`;
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const p of parts) {
      let head = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(p.name)}"`;
      if (p.filename !== undefined) head += `; filename="${quote(p.filename)}"`;
      head += '\r\n';
      if (p.contentType !== undefined) head += `Content-Type: ${p.contentType}\r\n`;
      yield enc.encode(`${head}\r\n`);
      if (typeof p.value === 'string') yield enc.encode(p.value);
      else if (p.value instanceof Uint8Array) yield p.value;
      else for await (const chunk of p.value) yield chunk;
      yield enc.encode('\r\n');
    }
    yield enc.encode(`--${boundary}--\r\n`);
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: body() };
}
