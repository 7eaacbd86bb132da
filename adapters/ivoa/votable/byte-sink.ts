import { float32Digits, float32Text, shortest } from './real-text.js';

/** "00", "01", … "99" as ASCII bytes, two digits written at a time. */
const PAIRS = Uint8Array.from({ length: 200 }, (_, i) => 48 + (i & 1 ? (i >> 1) % 10 : Math.floor((i >> 1) / 10)));

/** What `take` gives when nothing was written: a reader taking after every input piece allocates nothing then. */
const EMPTY = Buffer.alloc(0);

/** Powers of ten up to 10^15, for counting the digits of a safe integer. */
const P10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/** The most characters JavaScript spells a finite double with (see numberBytes). */
export const MAX_DOUBLE_CHARS = 25;

/**
 * A growing byte buffer that text output is written into directly: numbers as ASCII digits with
 * no intermediate string where that can be avoided, text as UTF-8. `take` hands the bytes
 * written so far over as one Buffer, so a table is sent in a few large chunks rather than a
 * string per cell.
 */
export class ByteSink {
  private buf: Buffer;
  private pos = 0;

  constructor(private readonly capacity = 1 << 18) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Bytes written since the last `take`. */
  get length(): number {
    return this.pos;
  }

  /** The bytes written so far (the sink starts again empty, in a new buffer; none written, none made). */
  take(): Buffer {
    if (this.pos === 0) return EMPTY;
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(Math.max(this.capacity, this.pos));
    this.pos = 0;
    return out;
  }

  /** Make room for `n` more bytes. */
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** One byte (an ASCII separator). */
  byte(b: number): void {
    if (this.pos >= this.buf.length) this.room(1);
    this.buf[this.pos++] = b;
  }

  /** A string known to be ASCII (digits, keywords, separators). */
  ascii(s: string): void {
    const n = s.length;
    this.room(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Any string, as UTF-8 (a lone surrogate becomes U+FFFD, as TextEncoder writes it). */
  text(s: string): void {
    const n = s.length;
    this.room(3 * n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        // The rest goes through the native encoder; ASCII, by far the commonest, stays here.
        p += buf.write(i === 0 ? s : s.slice(i), p, 'utf8');
        break;
      }
      buf[p++] = c;
    }
    this.pos = p;
  }

  /**
   * Copies src[start, i) where i is the first NUL (a fixed-length string's padding) or `end`,
   * and returns i, if `plain` (indexed by byte, ASCII only) marks each of those bytes 1;
   * otherwise writes nothing and returns -1.
   */
  bytesToNul(src: Uint8Array, start: number, end: number, plain: Uint8Array): number {
    this.room(end - start);
    const buf = this.buf;
    let p = this.pos;
    let i = start;
    for (; i < end; i++) {
      const b = src[i];
      if (plain[b] !== 1) {
        if (b === 0) break;
        return -1;
      }
      buf[p++] = b;
    }
    this.pos = p;
    return i;
  }

  /** Take back the last `n` bytes written. */
  unwrite(n: number): void {
    this.pos -= n;
  }

  /** A safe integer in decimal. */
  int(n: number): void {
    this.room(17);
    if (n < 0) {
      this.buf[this.pos++] = 45;
      n = -n;
    }
    if (n < 100000000) {
      this.digits(n | 0, 0);
    } else if (n < 1e16) {
      // Two halves below 10^8, so the digit loops stay in 32-bit integer arithmetic.
      let high = Math.floor(n / 1e8);
      let low = n - high * 1e8;
      if (low < 0) {
        high--;
        low += 1e8;
      }
      this.digits(high | 0, 0);
      this.digits(low | 0, 8);
    } else {
      // Past 10^16 (a safe integer near 2^53): let the engine spell it.
      this.ascii(String(n));
    }
  }

  /**
   * A 64-bit signed integer given as its high (signed) and low (unsigned) 32-bit halves, in
   * decimal, with no BigInt made.
   */
  int64(hi: number, lo: number): void {
    // Within ±2^53 the double is exact.
    if (hi >= -0x200000 && hi < 0x200000) {
      this.int(hi * 4294967296 + lo);
      return;
    }
    if (hi < 0) {
      // Two's complement: the magnitude of -2^63 is 2^63, as unsigned halves.
      this.byte(45);
      lo = (~lo + 1) >>> 0;
      hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
    }
    // value = q·10^6 + r: hi = h·10^6 + s, then (s·2^32 + lo) < 4.3·10^15 divides exactly in
    // doubles, and q = h·2^32 + (that quotient) < 2^53. Past 2^53, q has at least 10 digits.
    const h = Math.floor(hi / 1e6);
    const rest = (hi - h * 1e6) * 4294967296 + lo;
    let low = Math.floor(rest / 1e6);
    let r = rest - low * 1e6;
    // A quotient rounded up to the next integer shows as a negative remainder.
    if (r < 0) {
      low--;
      r += 1e6;
    }
    const q = h * 4294967296 + low;
    let top = Math.floor(q / 1e8);
    let middle = q - top * 1e8;
    if (middle < 0) {
      top--;
      middle += 1e8;
    }
    this.room(20);
    this.digits(top | 0, 0);
    this.digits(middle | 0, 8);
    this.digits(r | 0, 6);
  }

  /**
   * 0 ≤ n < 2^31 in decimal, padded with leading zeros to `width` digits (0: no padding). The
   * caller has made room. Two digits per step, from a table.
   */
  private digits(n: number, width: number): void {
    let len = 1;
    while (len < 10 && n >= P10[len]) len++;
    if (len < width) len = width;
    const buf = this.buf;
    const start = this.pos;
    let q = start + len;
    while (n >= 100) {
      const m = (n / 100) | 0;
      const r = (n - m * 100) << 1;
      buf[--q] = PAIRS[r + 1];
      buf[--q] = PAIRS[r];
      n = m;
    }
    if (n >= 10) {
      buf[--q] = PAIRS[(n << 1) + 1];
      buf[--q] = PAIRS[n << 1];
    } else {
      buf[--q] = 48 + n;
    }
    while (q > start) buf[--q] = 48;
    this.pos = start + len;
  }

  /** A finite float32 value as its shortest round-tripping decimal (see real-text.ts). */
  float32(x: number): void {
    const a = x < 0 ? -x : x;
    if (x === 0 || !float32Digits(a)) {
      this.ascii(float32Text(x));
      return;
    }
    if (x < 0) this.byte(45);
    const digits = shortest.digits;
    const exponent = shortest.exponent;
    if (exponent >= 0) {
      this.int(digits);
      for (let i = 0; i < exponent; i++) this.byte(48);
      return;
    }
    let len = 1;
    while (len < 10 && digits >= P10[len]) len++;
    const point = len + exponent;
    this.room(len + 2 + (point < 0 ? -point : 0));
    const buf = this.buf;
    let p = this.pos;
    if (point <= 0) {
      buf[p++] = 48;
      buf[p++] = 46;
      for (let i = point; i < 0; i++) buf[p++] = 48;
    }
    // Digits from the last, with the point after the first `point` of them.
    const end = p + len + (point > 0 ? 1 : 0);
    let q = end;
    let n = digits | 0;
    for (let i = len; i > 0; i--) {
      if (i === point) buf[--q] = 46;
      const m = (n / 10) | 0;
      buf[--q] = 48 + n - m * 10;
      n = m;
    }
    this.pos = end;
  }

  /**
   * The number at `from` in `json` (a JSON array of numbers, as bytes: see SpelledBytes), up
   * to the next ',' or ']'; returns that delimiter's index.
   */
  numberBytes(json: Uint8Array, from: number): number {
    // The longest JSON number a double gives is 25 characters: 17 digits after "-0.00000"
    // (-0.0000012345678901234567); the longest exponent form is 24 (-1.2345678901234567e-308).
    this.room(MAX_DOUBLE_CHARS);
    const buf = this.buf;
    let p = this.pos;
    let i = from;
    for (let c = json[i]; c !== 44 && c !== 93; c = json[++i]) buf[p++] = c;
    this.pos = p;
    return i;
  }

  /** A finite double as JavaScript writes it; -0 keeps its sign. */
  double(x: number): void {
    if (x === 0 && 1 / x < 0) this.ascii('-0');
    else this.ascii(String(x));
  }
}

/**
 * A JSON array of numbers (ASCII) as bytes, in a buffer reused from call to call: the row
 * loops copy each number's digits from it (ByteSink.numberBytes). Copying them from the string
 * JSON.stringify gives, a character at a time, cost more than spelling them (the string is a
 * rope of pieces); one native copy into bytes first makes that copy a plain byte loop.
 */
export class SpelledBytes {
  private bytes = Buffer.allocUnsafeSlow(1 << 16);

  /** `json`'s bytes (valid until the next call; anything after its closing ']' is stale). */
  of(json: string): Buffer {
    if (this.bytes.length < json.length) this.bytes = Buffer.allocUnsafeSlow(Math.max(json.length, this.bytes.length * 2));
    this.bytes.write(json, 0, 'latin1');
    return this.bytes;
  }
}
