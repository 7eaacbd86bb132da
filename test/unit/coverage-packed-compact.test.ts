/**
 * PackedCoverage keeps each coverage's bounds at its own maxOrder (Uint16 at order 6 or coarser):
 * over random MOCs every answer equals the one the previous representation gave, every coverage
 * at order 12 in one Uint32Array (a store built with the 5-argument constructor, as before), and
 * a sky index over either store gives the same ids for every cone.
 */
import { describe, expect, it } from 'vitest';
import { Cone } from '../../registry/coverage/cone.js';
import { SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import { PackedCoverageBuilder } from '../../registry/coverage/packed-builder.js';
import { PackedSkyIndex } from '../../registry/coverage/packed-index.js';
import { BIG_SHIFT, NARROW_MAX_ORDER, PACKED_ORDER, PackedCoverage, UNKNOWN } from '../../registry/coverage/packed.js';
import { seededRandom } from '../support/random.js';

const randomRa = (rand: () => number): number => rand() * 360;
const randomDec = (rand: () => number): number => (Math.asin(2 * rand() - 1) * 180) / Math.PI;

/** MOC texts of every order 0-14 (finer than 12 are widened), scattered cells, whole sky, empty, unknown, repeated texts. */
function randomText(rand: () => number, earlier: readonly (string | null)[]): string | null {
  const kind = Math.floor(rand() * 10);
  if (kind === 0) return null;
  if (kind === 1) return ['0/0-11', '', '5/', '0/1-9 6/', '12/'][Math.floor(rand() * 5)];
  if (kind === 2 && earlier.length > 0) return earlier[Math.floor(rand() * earlier.length)];
  if (kind === 3) {
    const order = Math.floor(rand() * 15);
    const cells = Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 12 * 4 ** order));
    return SMoc.fromCells(order, cells).toAscii();
  }
  const order = Math.floor(rand() * 15);
  return SMoc.fromCone(randomRa(rand), randomDec(rand), 0.02 + rand() * (order < 6 ? 40 : 4), order).toAscii();
}

/** The same coverages in the previous representation: order-12 Uint32 bounds, kind, maxOrder and numbers as the compact store has them. */
function atOrder12(texts: readonly (string | null)[], compact: PackedCoverage): PackedCoverage {
  const bounds: number[] = [];
  const span: number[] = [];
  for (const text of texts) {
    span.push(bounds.length);
    if (text !== null) for (const b of parseMocAscii(text).degrade(PACKED_ORDER).ranges) bounds.push(Number(b >> BIG_SHIFT));
    span.push(bounds.length);
  }
  return new PackedCoverage(Uint32Array.from(bounds), Uint32Array.from(span), compact.info.slice(), compact.caps.slice(), compact.prints.slice());
}

function randomCone(rand: () => number): Cone {
  return new Cone(randomRa(rand), randomDec(rand), 10 ** (-2 + rand() * 3.3));
}

function randomArea(rand: () => number): SMoc {
  const order = Math.floor(rand() * 13);
  return rand() < 0.5
    ? SMoc.fromCone(randomRa(rand), randomDec(rand), 0.05 + rand() * 30, order)
    : SMoc.fromCells(order, Array.from({ length: 1 + Math.floor(rand() * 30) }, () => Math.floor(rand() * 12 * 4 ** order)));
}

describe('PackedCoverage at each coverage\'s own order', () => {
  const rand = seededRandom(1313);
  const texts: (string | null)[] = [];
  for (let k = 0; k < 600; k++) texts.push(randomText(rand, texts));
  const b = new PackedCoverageBuilder();
  for (const text of texts) b.addText(text);
  const compact = b.finish();
  const wide = atOrder12(texts, compact);

  it('stores coarse coverages narrow, in fewer bytes, and shares the bounds of a repeated text', () => {
    let narrow = 0;
    for (let i = 0; i < compact.count; i++) if (compact.kind(i) !== UNKNOWN && compact.orders[i] <= NARROW_MAX_ORDER) narrow++;
    expect(narrow).toBeGreaterThan(100);
    expect(compact.narrow.length).toBeGreaterThan(0);
    expect(compact.narrow.BYTES_PER_ELEMENT).toBe(2);
    expect(compact.ranges.byteLength + compact.narrow.byteLength).toBeLessThan(wide.ranges.byteLength);
    const first = new Map<string, number>();
    for (let i = 0; i < texts.length; i++) {
      const text = texts[i];
      // Empty coverage has no bounds to share.
      if (text === null || compact.span[2 * i] === compact.span[2 * i + 1]) continue;
      const j = first.get(text);
      if (j === undefined) first.set(text, i);
      else expect([compact.span[2 * i], compact.span[2 * i + 1]]).toEqual([compact.span[2 * j], compact.span[2 * j + 1]]);
    }
  });

  it('gives the same SMoc, cells at every order, and cone answers as the order-12 store', () => {
    const cells: number[] = [];
    const want: number[] = [];
    for (let i = 0; i < compact.count; i++) {
      expect(compact.kind(i)).toBe(wide.kind(i));
      const got = compact.toSMoc(i);
      const before = wide.toSMoc(i);
      expect(got === null ? null : got.toAscii(), String(texts[i])).toBe(before === null ? null : before.toAscii());
      for (let order = 0; order <= PACKED_ORDER; order++) {
        const limit = order < 5 ? Infinity : 3000;
        expect(compact.cellsAt(i, order, limit, cells)).toBe(wide.cellsAt(i, order, limit, want));
        expect(cells).toEqual(want);
      }
    }
    for (let q = 0; q < 150; q++) {
      const cone = randomCone(rand);
      for (let i = 0; i < compact.count; i++) {
        expect(compact.touchesCone(i, cone)).toBe(wide.touchesCone(i, cone));
        expect(compact.coneFraction(i, cone)).toBe(wide.coneFraction(i, cone));
      }
    }
  });

  it('gives the same intersects and intersectionFraction as the order-12 store over random MOCs', () => {
    for (let q = 0; q < 150; q++) {
      const area = randomArea(rand).lookup();
      for (let i = 0; i < compact.count; i++) {
        if (compact.kind(i) === UNKNOWN) continue;
        expect(compact.intersects(i, area)).toBe(wide.intersects(i, area));
        expect(compact.intersectionFraction(i, area)).toBe(wide.intersectionFraction(i, area));
      }
    }
  });

  it('files into a sky index that answers every cone as one over the order-12 store', () => {
    const a = new PackedSkyIndex();
    const w = new PackedSkyIndex();
    for (let i = 0; i < compact.count; i++) {
      a.add(compact, i);
      w.add(wide, i);
    }
    for (let q = 0; q < 200; q++) {
      const cone = randomCone(rand);
      expect(a.queryCone(cone).sort((x, y) => x - y)).toEqual(w.queryCone(cone).sort((x, y) => x - y));
    }
    // Removing through the compact bounds finds every bucket the coverage was filed in.
    for (let i = 0; i < compact.count; i += 2) a.remove(i);
    for (let q = 0; q < 50; q++) {
      const cone = randomCone(rand);
      const want = w.queryCone(cone).filter((id) => id % 2 === 1).sort((x, y) => x - y);
      expect(a.queryCone(cone).sort((x, y) => x - y)).toEqual(want);
    }
  });

  it('lends a coverage to the next build through its print, bounds brought back to order 12 first', () => {
    const again = new PackedCoverageBuilder();
    for (let i = 0; i < texts.length; i++) again.addText(texts[i], compact, i);
    const lent = again.finish();
    for (let i = 0; i < texts.length; i++) {
      const got = lent.toSMoc(i);
      const want = compact.toSMoc(i);
      expect(got === null ? null : got.toAscii()).toBe(want === null ? null : want.toAscii());
      expect(lent.orders[i]).toBe(compact.orders[i]);
    }
  });
});
