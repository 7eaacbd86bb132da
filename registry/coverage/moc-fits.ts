/**
 * Reading space MOCs from FITS (IVOA MOC 1.x / 2.0): a BINTABLE extension with one 32- or 64-bit
 * integer column of NUNIQ cells (uniq = 4·4^order + cell). Time and space-time MOCs, and the
 * RANGE ordering, are refused with a message saying so rather than misread.
 */
import { MAX_ORDER } from './healpix.js';
import { SMoc } from './moc.js';
import { unionAll } from './ranges.js';

/** A FITS file that is not a readable space MOC; `offset` is the byte offset of the problem. */
export class MocFitsError extends Error {
  override readonly name = 'MocFitsError';
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const BLOCK = 2880;

interface Header {
  cards: Map<string, string | number | boolean>;
  /** Byte offset where the HDU's data starts. */
  dataStart: number;
}

/** Parse one header starting at `at` (a block boundary). */
function readHeader(bytes: Uint8Array, at: number): Header {
  const cards = new Map<string, string | number | boolean>();
  for (let pos = at; ; pos += 80) {
    if (pos + 80 > bytes.length) throw new MocFitsError(`FITS header starting at byte ${at} has no END card (file truncated?)`, pos);
    const card = String.fromCharCode(...bytes.subarray(pos, pos + 80));
    const key = card.slice(0, 8).trim();
    if (key === 'END') return { cards, dataStart: Math.ceil((pos + 80) / BLOCK) * BLOCK };
    if (card.slice(8, 10) !== '= ') continue;
    const raw = card.slice(10);
    let value: string | number | boolean;
    const text = raw.trimStart();
    if (text.startsWith("'")) {
      // A quoted string ends at a lone quote; '' is an escaped quote.
      let s = '';
      let i = 1;
      for (; i < text.length; i++) {
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            s += "'";
            i++;
          } else break;
        } else s += text[i];
      }
      value = s.trimEnd();
    } else {
      const token = text.split('/')[0].trim();
      if (token === 'T' || token === 'F') value = token === 'T';
      else if (/^[+-]?\d+$/.test(token)) value = Number(token);
      else value = token;
    }
    cards.set(key, value);
  }
}

function intCard(h: Header, key: string, at: number): number {
  const v = h.cards.get(key);
  if (typeof v !== 'number') throw new MocFitsError(`FITS header at byte ${at} lacks integer ${key}`, at);
  return v;
}

/** Bytes of an HDU's data, padded to whole blocks. */
function dataSize(h: Header, at: number): number {
  const bitpix = intCard(h, 'BITPIX', at);
  const naxis = intCard(h, 'NAXIS', at);
  if (naxis === 0) return 0;
  let n = Math.abs(bitpix) / 8;
  for (let k = 1; k <= naxis; k++) n *= intCard(h, `NAXIS${k}`, at);
  n += typeof h.cards.get('PCOUNT') === 'number' ? (h.cards.get('PCOUNT') as number) : 0;
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** Read a space MOC from the bytes of a FITS file (the first BINTABLE extension holding it). */
export function parseMocFits(bytes: Uint8Array): SMoc {
  if (bytes.length < BLOCK || String.fromCharCode(...bytes.subarray(0, 6)) !== 'SIMPLE') {
    throw new MocFitsError('not a FITS file (no SIMPLE card at the start)', 0);
  }
  const primary = readHeader(bytes, 0);
  const at = primary.dataStart + dataSize(primary, 0);
  if (at >= bytes.length) throw new MocFitsError('FITS file has no extension holding a MOC', at);
  const h = readHeader(bytes, at);
  if (h.cards.get('XTENSION') !== 'BINTABLE') throw new MocFitsError(`extension at byte ${at} is ${String(h.cards.get('XTENSION'))}, not BINTABLE`, at);
  const dim = h.cards.get('MOCDIM');
  if (dim !== undefined && dim !== 'SPACE') throw new MocFitsError(`MOCDIM = ${String(dim)}: this is not a space MOC`, at);
  const ordering = h.cards.get('ORDERING') ?? 'NUNIQ';
  if (ordering !== 'NUNIQ') throw new MocFitsError(`ORDERING = ${String(ordering)}: only NUNIQ space MOCs are read`, at);
  const tform = String(h.cards.get('TFORM1') ?? '').replace(/^1/, '');
  if (tform !== 'J' && tform !== 'K') throw new MocFitsError(`TFORM1 = ${String(h.cards.get('TFORM1'))}: expected 1J or 1K NUNIQ integers`, at);
  const width = tform === 'J' ? 4 : 8;
  const rowBytes = intCard(h, 'NAXIS1', at);
  const rows = intCard(h, 'NAXIS2', at);
  const declared = h.cards.get('MOCORDER') ?? h.cards.get('MOCORD_S');
  if (declared !== undefined && (typeof declared !== 'number' || declared < 0 || declared > MAX_ORDER)) {
    throw new MocFitsError(`MOCORDER = ${String(declared)} is outside 0-29`, at);
  }
  if (h.dataStart + rows * rowBytes > bytes.length) throw new MocFitsError(`MOC table needs ${rows * rowBytes} bytes after byte ${h.dataStart}; the file is truncated`, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const byOrder: bigint[][] = Array.from({ length: MAX_ORDER + 1 }, () => []);
  let deepest = 0;
  for (let r = 0; r < rows; r++) {
    const pos = h.dataStart + r * rowBytes;
    const uniq = width === 4 ? BigInt(view.getInt32(pos, false)) : view.getBigInt64(pos, false);
    if (uniq < 4n) throw new MocFitsError(`row ${r + 1}: ${uniq} is not a NUNIQ value`, pos);
    // uniq = 4·4^order + cell with cell < 12·4^order, so 4^(order+1) ≤ uniq < 16·4^order.
    let order = 0;
    while (order < MAX_ORDER && uniq >= 1n << BigInt(2 * (order + 2))) order++;
    const cell = uniq - (1n << BigInt(2 * (order + 1)));
    if (uniq >= 1n << BigInt(2 * (order + 2)) || cell >= 12n << BigInt(2 * order)) throw new MocFitsError(`row ${r + 1}: NUNIQ ${uniq} is beyond order 29`, pos);
    if (typeof declared === 'number' && order > declared) throw new MocFitsError(`row ${r + 1}: cell of order ${order} is finer than MOCORDER ${declared}`, pos);
    byOrder[order].push(cell);
    if (order > deepest) deepest = order;
  }
  const parts = byOrder.map((cells, order) => (cells.length > 0 ? SMoc.fromCells(order, cells).ranges : new BigInt64Array(0)));
  const maxOrder = typeof declared === 'number' ? declared : deepest;
  return SMoc.fromRanges(unionAll(parts), maxOrder);
}
