import { malformed } from './errors.js';

const WS = 0x40;
const PAD = 0x41;
const BAD = 0xff;

// Indexed by UTF-16 code unit so no range check is needed: 0..63 are sextets, everything
// else is white space, padding or an error.
const LUT = new Uint8Array(65536).fill(BAD);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
for (let i = 0; i < 64; i++) LUT[ALPHABET.charCodeAt(i)] = i;
for (const c of [0x20, 0x09, 0x0a, 0x0d]) LUT[c] = WS;
LUT[0x3d] = PAD;

/**
 * Decodes base64 text that arrives in arbitrary pieces (a 4-character group may be split
 * across input chunks) straight into a caller-owned buffer. White space is skipped; '='
 * ends a group early, so concatenated padded blocks are accepted too.
 *
 * Blocks of plain line-wrapped base64 go to Node's native decoder (several times faster than
 * a JavaScript loop over a string). Node skips characters it does not know instead of
 * failing, so each block's output size is checked against its character count; any block
 * with padding, blanks or stray characters is redone by the exact, strict JavaScript path.
 */
export class Base64Decoder {
  /** Sextets of the group in progress. */
  private acc = 0;
  /** Sextets collected in the group in progress (0..3). */
  private n = 0;

  /** Index in `text` where the last `decode` call stopped. */
  consumed = 0;
  /** Bytes the last `decode` call wrote. */
  written = 0;

  /**
   * Decodes text[start, end) into out[outPos, outLimit). Stops early when fewer than 3 bytes
   * of room remain; `consumed` and `written` say how far it got.
   */
  decode(text: string, start: number, end: number, out: Buffer, outPos: number, outLimit: number): void {
    let i = start;
    let o = outPos;
    // Next newline at or after i (-1: none left); only moves forward, so counting is linear.
    let nl = text.indexOf('\n', i);
    while (i < end && outLimit - o >= 3) {
      if (this.n !== 0) {
        // Finish the group split across blocks or chunks one character at a time.
        const stop = Math.min(end, i + 8);
        o = this.slow(text, i, stop, out, o, outLimit, true);
        i = this.consumed;
        continue;
      }
      const e = Math.min(end, i + Math.floor((outLimit - o) / 3) * 4);
      if (nl >= 0 && nl < i) nl = text.indexOf('\n', i);
      let newlines = 0;
      while (nl >= 0 && nl < e) {
        newlines++;
        nl = text.indexOf('\n', nl + 1);
      }
      const chars = e - i - newlines;
      let rest = chars & 3;
      let cut = e;
      while (rest > 0) {
        cut--;
        if (text.charCodeAt(cut) !== 10) rest--;
      }
      const want = ((chars - (chars & 3)) >> 2) * 3;
      if (want > 0) {
        const got = out.write(text.slice(i, cut), o, want, 'base64');
        if (got === want) o += got;
        else o = this.slow(text, i, cut, out, o, outLimit, false);
      }
      // The 1–3 characters of an incomplete group (and any blanks around them).
      o = this.slow(text, cut, e, out, o, outLimit, false);
      i = this.consumed;
    }
    this.consumed = i;
    this.written = o - outPos;
  }

  /**
   * Ends the stream: a trailing group of 2 or 3 characters without padding still yields its
   * 1 or 2 bytes. Returns how many bytes were written to out[outPos...] (room for 2 needed).
   */
  finish(out: Uint8Array, outPos: number): number {
    const n = this.n;
    if (n === 1) throw malformed('base64 STREAM ends with a lone character');
    const o = n >= 2 ? this.flushGroup(this.acc, n, out, outPos) : outPos;
    this.acc = 0;
    this.n = 0;
    return o - outPos;
  }

  /**
   * The strict path: one character at a time, validating each. With `untilGroup` it stops
   * as soon as a group completes. Sets `consumed`; returns the new output position.
   */
  private slow(text: string, i: number, end: number, out: Uint8Array, o: number, outLimit: number, untilGroup: boolean): number {
    let acc = this.acc;
    let n = this.n;
    const lastFull = outLimit - 3;
    while (i < end && o <= lastFull) {
      const code = text.charCodeAt(i);
      const s = LUT[code];
      i++;
      if (s < 64) {
        acc = (acc << 6) | s;
        n++;
        if (n === 4) {
          out[o] = (acc >>> 16) & 255;
          out[o + 1] = (acc >>> 8) & 255;
          out[o + 2] = acc & 255;
          o += 3;
          n = 0;
          acc = 0;
          if (untilGroup) break;
        }
      } else if (s === WS) {
        continue;
      } else if (s === PAD) {
        // '=' ends a short group; further '=' (the rest of the padding) are ignored.
        if (n === 1) throw malformed('base64 data has a lone character before "=" padding');
        if (n >= 2) {
          o = this.flushGroup(acc, n, out, o);
          acc = 0;
          n = 0;
          if (untilGroup) break;
        }
      } else if (code === 0x26) {
        throw malformed('character or entity references inside a base64 STREAM are not supported');
      } else {
        throw malformed(`invalid character ${JSON.stringify(String.fromCharCode(code))} in base64 STREAM`);
      }
    }
    this.acc = acc;
    this.n = n;
    this.consumed = i;
    return o;
  }

  private flushGroup(acc: number, n: number, out: Uint8Array, o: number): number {
    if (n === 2) {
      out[o++] = (acc >>> 4) & 255;
    } else {
      out[o++] = (acc >>> 10) & 255;
      out[o++] = (acc >>> 2) & 255;
    }
    return o;
  }
}
