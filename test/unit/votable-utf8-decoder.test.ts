/**
 * The VOTable reader's UTF-8 decoder (encoding.ts: Node's StringDecoder, for speed) decodes every
 * byte sequence exactly as TextDecoder does, however the bytes are cut: valid text, a leading
 * byte-order mark, and invalid or truncated sequences (each replaced by U+FFFD the same way).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decoderFor } from '../../adapters/ivoa/votable/encoding.js';

/** `bytes` decoded in pieces cut at `cuts`, by a fresh decoder of each kind. */
function both(bytes: Uint8Array, cuts: number[]): [string, string] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const ours = decoderFor(new TextEncoder().encode('<?xml version="1.0" encoding="UTF-8"?>'));
  const reference = new TextDecoder('utf-8');
  let a = '';
  let b = '';
  let from = 0;
  for (const to of [...points, bytes.length]) {
    a += ours.decode(bytes.subarray(from, to), { stream: true });
    b += reference.decode(bytes.subarray(from, to), { stream: true });
    from = to;
  }
  return [a + ours.decode(), b + reference.decode()];
}

describe('the reader’s UTF-8 decoder', () => {
  it('is TextDecoder for any bytes cut anywhere (property)', () => {
    // Bytes drawn mostly from UTF-8's lead and continuation ranges, so invalid sequences are common.
    const byte = fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0x80, max: 0xbf }), fc.integer({ min: 0xc0, max: 0xff }), fc.constantFrom(0xef, 0xbb, 0xbf, 0xf0, 0x9f, 0xe2, 0x82, 0xac));
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 64 }), fc.array(fc.nat(), { maxLength: 6 }), (bytes, cuts) => {
        const [ours, reference] = both(Uint8Array.from(bytes), cuts);
        expect(ours).toBe(reference);
      }),
      { numRuns: 5000 },
    );
  });

  it('drops a leading byte-order mark, even split across pieces, and keeps a later one', () => {
    const text = '\ufeff<VOTABLE>\ufeffé€😀</VOTABLE>';
    const bytes = new TextEncoder().encode(text);
    for (const cuts of [[], [1], [2], [1, 2], [3], [5, 6, 7]]) {
      const [ours, reference] = both(bytes, cuts);
      expect(ours).toBe(reference);
      expect(ours).toBe(text.slice(1));
    }
  });

  it('names other encodings to TextDecoder still (UTF-16, ISO-8859-1)', () => {
    const latin = decoderFor(Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?>', 'latin1'));
    expect(latin.decode(Uint8Array.from([0xe9]))).toBe('é');
    const utf16 = decoderFor(Uint8Array.from([0xff, 0xfe, 0x3c, 0x00]));
    expect(utf16.decode(Uint8Array.from([0xff, 0xfe, 0x3c, 0x00, 0x41, 0x00]))).toBe('<A');
  });
});
