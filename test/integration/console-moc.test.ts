/**
 * The console's MOC reader and projection, without a browser (pure functions of web/src): cells
 * at every order land in the right order-24 ranges, finer cells widen to their parent, bad text
 * is refused naming the token, and the Mollweide projection round-trips.
 */
import { describe, expect, it } from 'vitest';
import { MocReadError, RANGE_ORDER, readMoc, touches } from '../../web/src/moc.js';
import { project, unproject } from '../../web/src/mollweide.js';

const span = (order: number) => 4 ** (RANGE_ORDER - order);

describe('console MOC reader', () => {
  it('reads cells and ranges at several orders into merged order-24 ranges', () => {
    const moc = readMoc('0/0 1/8-9\n 3/300 29/');
    expect(moc.cells).toBe(4);
    // Base cell 0, then order-1 cells 8 and 9 (inside base cell 2), then one order-3 cell: three ranges.
    expect(Array.from(moc.ranges)).toEqual([0, span(0), 8 * span(1), 10 * span(1), 300 * span(3), 301 * span(3)]);
    expect(touches(moc, 0, 1)).toBe(true);
    expect(touches(moc, span(0), span(0) + 1)).toBe(false);
    expect(touches(moc, 300 * span(3) - 1, 300 * span(3) + 1)).toBe(true);
  });

  it('merges adjacent cells and widens cells finer than order 24 to their parent', () => {
    expect(Array.from(readMoc('1/0 1/1-3').ranges)).toEqual([0, span(0)]);
    // An order-29 cell past 2^53 is read exactly (BigInt) and lands in its order-24 parent.
    const fine = 12n * 4n ** 29n - 1n;
    const moc = readMoc(`29/${fine}`);
    expect(Array.from(moc.ranges)).toEqual([12 * 4 ** 24 - 1, 12 * 4 ** 24]);
  });

  it('refuses malformed text, naming the token', () => {
    for (const [text, message] of [['5', /token 1 .*before any order/], ['0/12', /token 1 .*out of order 0/], ['30/1', /bad order/], ['1/3-2', /out of order/], ['1/a', /not a cell/]] as const) {
      expect(() => readMoc(text), text).toThrow(MocReadError);
      expect(() => readMoc(text), text).toThrow(message);
    }
  });
});

describe('console Mollweide projection', () => {
  it('round-trips positions and puts RA 0 at the centre with RA increasing to the left', () => {
    for (const [ra, dec] of [[0, 0], [45, 30], [200, -60], [359, 89], [181, -10]]) {
      const p = project(ra, dec);
      const back = unproject(p.x, p.y)!;
      expect(back.dec).toBeCloseTo(dec, 6);
      expect(((back.ra - ra + 540) % 360) - 180).toBeCloseTo(0, 6);
    }
    expect(Math.abs(project(0, 0).x) + Math.abs(project(0, 0).y)).toBe(0);
    expect(project(90, 0).x).toBeLessThan(0);
    expect(unproject(3, 0)).toBeUndefined();
  });
});
