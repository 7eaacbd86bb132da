/**
 * PackedCoverage: coverage read from MOC text into shared typed arrays answers exactly as the SMoc
 * the planner used before, parseMocAscii(text).degrade(12), for every operation the planner and
 * the sky index use; malformed text throws what parseMocAscii throws.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cone } from '../../registry/coverage/cone.js';
import { MocSyntaxError, SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import { PackedCoverageBuilder, SharedCoverages } from '../../registry/coverage/packed-builder.js';
import { UNKNOWN, type PackedCoverage } from '../../registry/coverage/packed.js';
import { parseMocFast } from '../../registry/coverage/packed-parse.js';
import { seededRandom } from '../support/random.js';

const randomRa = (rand: () => number): number => rand() * 360;
const randomDec = (rand: () => number): number => (Math.asin(2 * rand() - 1) * 180) / Math.PI;

/**
 * MOC text as a site might write it: not normalised, orders repeated and out of sequence, cells
 * overlapping across orders, ranges and single cells, extra whitespace, orders up to 29.
 */
function randomText(rand: () => number): string {
  const kind = Math.floor(rand() * 12);
  if (kind === 0) return '';
  if (kind === 1) return ['0/0-11', '5/', '0/', '12/', '29/', '0/0-11 13/', ' 3/1 \t\n 4/  '][Math.floor(rand() * 7)];
  if (kind <= 4) {
    const order = Math.floor(rand() * 15);
    return SMoc.fromCone(randomRa(rand), randomDec(rand), 0.01 + rand() * (order < 6 ? 40 : 3), order).toAscii();
  }
  const last = new Map<number, number>();
  const parts: string[] = [];
  for (let s = 0, n = 1 + Math.floor(rand() * 6); s < n; s++) {
    const order = rand() < 0.1 ? 25 + Math.floor(rand() * 5) : Math.floor(rand() * (rand() < 0.5 ? 13 : 25));
    // Beyond 2^50 a double would not print the cell it holds.
    const cells = Math.min(12 * 4 ** order, 2 ** 50);
    let next = last.get(order) ?? Math.floor(rand() * Math.min(cells, 64));
    const tokens: string[] = [];
    for (let t = 0, m = Math.floor(rand() * 6); t < m && next < cells; t++) {
      const end = Math.min(cells - 1, next + Math.floor(rand() * 3) * Math.floor(1 + rand() * 4));
      tokens.push(end === next ? String(next) : `${next}-${end}`);
      next = end + 1 + Math.floor(rand() * 2) * Math.floor(rand() * cells * 0.01);
    }
    last.set(order, next);
    parts.push(`${order}/${rand() < 0.2 ? '  ' : ''}${tokens.join(rand() < 0.2 ? '   ' : ' ')}`);
  }
  return parts.join(rand() < 0.2 ? '\n' : ' ');
}

function packOne(text: string | null): { packed: PackedCoverage; i: number } {
  const b = new PackedCoverageBuilder();
  // A coverage before and after, so offsets into the shared arrays are exercised.
  b.addText('3/1-5');
  const i = b.addText(text);
  b.addText('0/0-11');
  return { packed: b.finish(), i };
}

/** The SMoc the planner kept before: parsed, widened to order 12. */
const expected = (text: string) => parseMocAscii(text).degrade(12);

describe('PackedCoverage read from MOC text', () => {
  it('holds exactly parseMocAscii(text).degrade(12) for varied texts (orders 0-29, unnormalised)', () => {
    const rand = seededRandom(21);
    for (let k = 0; k < 3000; k++) {
      const text = randomText(rand);
      const { packed, i } = packOne(text);
      const moc = packed.toSMoc(i)!;
      const want = expected(text);
      expect(moc.maxOrder, text).toBe(want.maxOrder);
      expect([...moc.ranges], text).toEqual([...want.ranges]);
      expect(packed.skyFraction(i)).toBe(want.skyFraction());
      // Texts of orders 0-24 take the fast reading, not parseMocAscii.
      if (!/\b(2[5-9])\//.test(text)) expect(parseMocFast(text, { push: () => {} }), text).toBe(parseMocAscii(text).maxOrder);
    }
  });

  it('shares one reading of a repeated text and keeps unknown coverage unknown', () => {
    const b = new PackedCoverageBuilder();
    const a = b.addText('4/10-20');
    const u = b.addText(null);
    const again = b.addText('4/10-20');
    const packed = b.finish();
    expect(packed.kind(u)).toBe(UNKNOWN);
    expect(packed.toSMoc(u)).toBeNull();
    expect(packed.toSMoc(again)!.equals(packed.toSMoc(a)!)).toBe(true);
    expect(packed.bounds).toBe(2);
  });

  it('throws what parseMocAscii throws on malformed text, and the builder stays usable', () => {
    const bad = ['3/1,2', '3/5 3/4', '3/2-1', '30/1', '3/999999', '-3/1', '1 2', '3/1/', '3/ 4/ 3/1 1', 's3/1', '3/1+2', '3/1-', '3/1 2/ 3/0',
      '003/1', '3/1a', '1/3 1/4 1/0', `24/${'9'.repeat(17)}`, '25/1-0', '4/1 4/1'];
    for (const text of bad) {
      let want: unknown;
      try {
        parseMocAscii(text);
      } catch (err) {
        want = err;
      }
      expect(want, text).toBeInstanceOf(MocSyntaxError);
      const b = new PackedCoverageBuilder();
      b.addText('2/3');
      expect(() => b.addText(text), text).toThrow(expect.objectContaining({ message: (want as Error).message, position: (want as MocSyntaxError).position }));
      const after = b.addText('2/4');
      expect(b.finish().toSMoc(after)!.equals(parseMocAscii('2/4'))).toBe(true);
    }
  });

  it('reads any string parseMocAscii reads, and fails on the ones it fails on (fast-check)', () => {
    const alphabet = fc.constantFrom(...'0123456789/- \t\n,+s'.split(''));
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 24 }).map((cs) => cs.join('')), (text) => {
      let want: SMoc | Error;
      try {
        want = expected(text);
      } catch (err) {
        want = err as Error;
      }
      const b = new PackedCoverageBuilder();
      if (want instanceof Error) {
        expect(() => b.addText(text)).toThrow(want.message);
        return;
      }
      const i = b.addText(text);
      const got = b.finish().toSMoc(i)!;
      expect(got.maxOrder).toBe(want.maxOrder);
      expect([...got.ranges]).toEqual([...want.ranges]);
    }), { numRuns: 3000 });
  });
});

describe('PackedCoverage answers as the SMoc methods', () => {
  it('touchesCone, coneFraction, intersects and intersectionFraction equal SMoc exactly; mayTouch never prunes a touch', () => {
    const rand = seededRandom(22);
    const texts = Array.from({ length: 250 }, () => randomText(rand));
    const b = new PackedCoverageBuilder();
    const ids = texts.map((t) => b.addText(t));
    const packed = b.finish();
    const mocs = texts.map(expected);
    for (let q = 0; q < 80; q++) {
      const cone = new Cone(randomRa(rand), q % 40 === 0 ? 90 : randomDec(rand), q % 33 === 0 ? 180 : 10 ** (-2 + rand() * 3.3));
      const area = q % 3 === 0 ? SMoc.fromCone(randomRa(rand), randomDec(rand), rand() * 30 + 0.1, Math.floor(rand() * 10)) : expected(randomText(rand));
      ids.forEach((i, k) => {
        const moc = mocs[k];
        const touches = moc.intersectsConeOf(cone);
        expect(packed.touchesCone(i, cone), texts[k]).toBe(touches);
        if (touches) expect(packed.mayTouch(i, cone), texts[k]).toBe(true);
        expect(packed.coneFraction(i, cone), texts[k]).toBe(moc.coneOverlapFractionOf(cone));
        expect(packed.intersects(i, area.lookup()), texts[k]).toBe(moc.intersects(area));
        expect(packed.intersectionFraction(i, area.lookup()), texts[k]).toBe(moc.intersection(area).skyFraction());
      });
    }
  });

  it('gives the cells of an order as cap.ts does, and a cap only for partial coverage', () => {
    const b = new PackedCoverageBuilder();
    const part = b.addText('5/100-140 6/700');
    const whole = b.addText('0/0-11');
    const empty = b.addText('7/');
    const packed = b.finish();
    const cells: number[] = [];
    expect(packed.cellsAt(part, 4, 100, cells)).toBe(true);
    expect(cells).toEqual([25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 43]);
    expect(packed.cellsAt(part, 4, 5, cells)).toBe(false);
    expect(packed.reach(part)).not.toBeNull();
    expect(packed.reach(whole)).toBeNull();
    expect(packed.reach(empty)).toBeNull();
  });
});

describe('SharedCoverages', () => {
  it('lets builders of one build reuse a long text another read, with the same coverage, and keeps short ones to each builder', () => {
    const long = SMoc.fromCone(40, 30, 12, 8).toAscii();
    expect(long.length).toBeGreaterThan(256);
    const shared = new SharedCoverages();
    const a = new PackedCoverageBuilder(shared);
    a.addText(long);
    a.addText('3/1-5');
    expect([...shared.texts.keys()]).toEqual([long]);
    const b = new PackedCoverageBuilder(shared);
    b.addText('2/7');
    const i = b.addText(long);
    const fromB = b.finish();
    const alone = packOne(long);
    expect(fromB.toSMoc(i)!.equals(alone.packed.toSMoc(alone.i)!)).toBe(true);
    expect(fromB.reach(i)).toEqual(alone.packed.reach(alone.i));
    expect(fromB.skyFraction(i)).toBe(alone.packed.skyFraction(alone.i));
  });

  it('keeps at most 4,096 texts', () => {
    const shared = new SharedCoverages();
    const b = new PackedCoverageBuilder(shared);
    for (let k = 0; k < 4200; k++) b.addText(`8/${k * 7} ${' '.repeat(256)}`);
    expect(shared.texts.size).toBe(4096);
    expect(b.count).toBe(4200);
  });
});
