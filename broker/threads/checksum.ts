/**
 * An order-independent checksum of a table's rows: the sum, modulo 2^64, of a 64-bit hash of
 * each row's canonical text. A sum, not an XOR, so a row that appears twice is not cancelled
 * out. Two runs that return the same rows in any order have the same checksum; a re-run compares
 * them without keeping either result. The row hash is two 32-bit multiply-xorshift lanes (as
 * cyrb53, kept to 64 bits) fed each cell's type and its bits (a double's 8 bytes, never its
 * decimal text): not a cryptographic digest — it tells runs apart, it does not defend against a
 * site forging rows — because a SHA-256 of each row's text cost about 5 µs a row, this well under 1.
 */
import type { Row } from '../../adapters/ivoa/votable/index.js';

const MASK = (1n << 64n) - 1n;

/** Rows folded into a running checksum. */
export class RowChecksum {
  private sum = 0n;
  private count = 0;

  /** Fold one row in. */
  add(row: Row): void {
    const h = new RowHash();
    h.word(row.length);
    for (const cell of row) h.cell(cell);
    this.sum = (this.sum + h.value()) & MASK;
    this.count++;
  }

  /** Rows folded in so far. */
  get rows(): number {
    return this.count;
  }

  /** The checksum as 16 hex digits. */
  get hex(): string {
    return this.sum.toString(16).padStart(16, '0');
  }
}

/** The checksum of `rows` (16 hex digits). */
export function checksumOf(rows: Iterable<Row>): string {
  const c = new RowChecksum();
  for (const r of rows) c.add(r);
  return c.hex;
}

// A double's two 32-bit words, read through one shared buffer.
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** One row's 64-bit hash: each cell as a type tag and its bits, so 1n, 1 and "1" differ. */
class RowHash {
  private h1 = 0xdeadbeef;
  private h2 = 0x41c6ce57;

  word(w: number): void {
    this.h1 = Math.imul(this.h1 ^ w, 2654435761);
    this.h2 = Math.imul(this.h2 ^ w, 1597334677);
  }

  text(t: string): void {
    this.word(t.length);
    for (let i = 0; i < t.length; i++) this.word(t.charCodeAt(i));
  }

  cell(cell: Row[number]): void {
    if (cell === null) return this.word(1);
    switch (typeof cell) {
      case 'number':
        F64[0] = cell;
        this.word(2);
        this.word(U32[0]);
        this.word(U32[1]);
        return;
      case 'bigint':
        if (cell >= INT64_MIN && cell <= INT64_MAX) {
          const u = BigInt.asUintN(64, cell);
          this.word(3);
          this.word(Number(u & 0xffffffffn));
          this.word(Number(u >> 32n));
        } else {
          this.word(4);
          this.text(cell.toString(16));
        }
        return;
      case 'string':
        this.word(5);
        this.text(cell);
        return;
      case 'boolean':
        this.word(cell ? 6 : 7);
        return;
      default:
        break;
    }
    if (Array.isArray(cell)) {
      this.word(8);
      this.word(cell.length);
      for (const c of cell) this.cell(c);
      return;
    }
    this.word(9);
    this.text(JSON.stringify(cell));
  }

  value(): bigint {
    let { h1, h2 } = this;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (BigInt(h2 >>> 0) << 32n) | BigInt(h1 >>> 0);
  }
}
