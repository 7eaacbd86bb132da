import { StringDecoder } from 'node:string_decoder';
import { TextDecoder } from 'node:util';
import { malformed } from './errors.js';

/** A streaming decoder of a document's bytes: `decode(chunk, { stream: true })` per piece, `decode()` at the end. */
export interface DocumentDecoder {
  decode(chunk?: Uint8Array, options?: { stream?: boolean }): string;
}

/**
 * UTF-8 as TextDecoder decodes it (a leading byte-order mark dropped, invalid bytes as U+FFFD),
 * through Node's StringDecoder: about five times faster on the large ASCII base64 STREAMs of
 * binary VOTables (24 against 130 ms for 157 MB), where TextDecoder's streaming mode was a fifth
 * of a reader's time.
 */
class Utf8Decoder implements DocumentDecoder {
  private readonly inner = new StringDecoder('utf8');
  private first = true;

  decode(chunk?: Uint8Array, options?: { stream?: boolean }): string {
    let text = chunk === undefined ? '' : this.inner.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    if (options?.stream !== true) text += this.inner.end();
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    return text;
  }
}

const DECL_ENCODING = /^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/;

/** Bytes needed before `sniffEncoding` can decide: up to the first '>' (end of the XML declaration). */
export function sniffReady(head: Uint8Array): boolean {
  return head.length >= 1024 || head.indexOf(0x3e) >= 0;
}

/**
 * Chooses the decoder for a document from its first bytes: a byte-order mark, the UTF-16
 * pattern of "<?", or the XML declaration's encoding; UTF-8 otherwise (the XML default).
 */
export function decoderFor(head: Uint8Array): DocumentDecoder {
  let label = 'utf-8';
  if (head[0] === 0xfe && head[1] === 0xff) label = 'utf-16be';
  else if (head[0] === 0xff && head[1] === 0xfe) label = 'utf-16le';
  else if (head[0] === 0x00 && head[1] === 0x3c) label = 'utf-16be';
  else if (head[0] === 0x3c && head[1] === 0x00) label = 'utf-16le';
  else {
    const start = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
    const text = Buffer.from(head.buffer, head.byteOffset + start, Math.min(head.length - start, 1024)).toString('latin1');
    const m = DECL_ENCODING.exec(text);
    // A declared UTF-16 without the byte pattern of UTF-16 is mislabelled ASCII-compatible text.
    if (m !== null && !/^utf-?16/i.test(m[1])) label = m[1].toLowerCase();
  }
  if (label === 'utf-8' || label === 'utf8') return new Utf8Decoder();
  try {
    return new TextDecoder(label);
  } catch (err) {
    throw malformed(`unsupported document encoding "${label}"`, err);
  }
}
