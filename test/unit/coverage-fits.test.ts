/** FITS MOCs (NUNIQ) from CDS VizieR and the CDS MOCServer; time MOCs and damaged files refused. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as hp from '@hscmap/healpix';
import { describe, expect, it } from 'vitest';
import { MocFitsError, parseMocFits } from '../../registry/coverage/moc-fits.js';
import { parseMocAscii } from '../../registry/coverage/moc.js';

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(fileURLToPath(new URL(`../fixtures/moc/${name}`, import.meta.url))));

/** The NUNIQ column values, read independently of the module under test (1J only). */
function uniqColumn32(bytes: Uint8Array, rows: number): number[] {
  // Both 1J fixtures have a one-block primary header and a one-block extension header.
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  return Array.from({ length: rows }, (_, r) => view.getInt32(2 * 2880 + 4 * r, false));
}

describe('FITS space MOCs', () => {
  it.each([
    ['cds-vizier-I-125A-catalog-moc.fits', 8, 8336],
    ['cds-vizier-II-339-summary-moc.fits', 11, 12712],
  ])('reads %s (1J NUNIQ, MOCORDER %i) cell for cell', (name, order, rows) => {
    const bytes = fixture(name);
    const moc = parseMocFits(bytes);
    expect(moc.maxOrder).toBe(order);
    expect(moc.isEmpty()).toBe(false);
    expect(moc.skyFraction()).toBeGreaterThan(0);
    expect(moc.skyFraction()).toBeLessThan(1);
    // Decode the same rows independently (uniq = 4·4^order + ipix, MOC 1.0 §2.3.1) and compare as sets.
    // @hscmap/healpix's uniq2orderpix is not used: it encodes 4·(4^order − 1) + ipix, off by 4.
    expect(hp.orderpix2uniq(5, 7199)).toBe(11291);
    const expected = new Map<number, number[]>();
    for (const u of uniqColumn32(bytes, rows)) {
      const o = Math.floor(Math.log2(u / 4) / 2);
      const ipix = u - 4 * 4 ** o;
      expect(ipix).toBeGreaterThanOrEqual(0);
      expect(ipix).toBeLessThan(12 * 4 ** o);
      if (!expected.has(o)) expected.set(o, []);
      expected.get(o)!.push(ipix);
    }
    let again = parseMocAscii(`${order}/`);
    for (const [o, cells] of expected) again = again.union(parseMocAscii(`${o}/${[...cells].sort((a, b) => a - b).join(' ')}`));
    expect(moc.equals(again)).toBe(true);
    // Writers emit normalised MOCs, so the normal form has exactly one cell per row.
    expect(moc.cellsByOrder().reduce((n, cells) => n + cells.length, 0)).toBe(rows);
    expect(parseMocAscii(moc.toAscii()).equals(moc)).toBe(true);
  });

  it('reads 64-bit NUNIQ cells of order 29 from the CDS MOCServer file', () => {
    const moc = parseMocFits(fixture('cds-mocserver-moc-order29.fits'));
    expect(moc.maxOrder).toBe(29);
    expect(moc.cellsByOrder().reduce((n, cells) => n + cells.length, 0)).toBe(398);
    expect(parseMocAscii(moc.toAscii()).equals(moc)).toBe(true);
    expect(moc.skyFraction()).toBeGreaterThan(0);
  });

  it('refuses a time MOC, a non-FITS file and a truncated table with the reason', () => {
    expect(() => parseMocFits(fixture('hst-sdss-g-time-moc.fits'))).toThrow(/MOCDIM = TIME: this is not a space MOC/);
    expect(() => parseMocFits(new TextEncoder().encode('0/0-11'))).toThrow(MocFitsError);
    const whole = fixture('cds-vizier-I-125A-catalog-moc.fits');
    expect(() => parseMocFits(whole.subarray(0, 3 * 2880))).toThrow(/truncated/);
    expect(() => parseMocFits(whole.subarray(0, 2880 + 400))).toThrow(/no END card/);
  });
});
