/**
 * A store rebuilt after a publish takes the coverage of an unchanged MOC text from the previous
 * store (by the text's print, packed-print.ts) and reads a changed one: the result is what
 * reading every text afresh gives.
 */
import { describe, expect, it } from 'vitest';
import { SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import { PackedCoverageBuilder } from '../../registry/coverage/packed-builder.js';
import { PackedCoverage } from '../../registry/coverage/packed.js';
import { lastPrint, printText } from '../../registry/coverage/packed-print.js';
import { seededRandom } from '../support/random.js';

const cone = (rand: () => number): string => SMoc.fromCone(rand() * 360, (Math.asin(2 * rand() - 1) * 180) / Math.PI, 0.5 + rand() * 10, 4 + Math.floor(rand() * 5)).toAscii();

/** Everything a coverage is, as plain values. */
function described(p: PackedCoverage, i: number): unknown {
  return { kind: p.kind(i), maxOrder: p.maxOrder(i), moc: p.toSMoc(i)?.toAscii() ?? null, sky: p.skyFraction(i), reach: p.reach(i) };
}

describe('PackedCoverageBuilder with a previous store', () => {
  it('gives what reading every text afresh gives, whether each text changed or not', () => {
    const rand = seededRandom(31);
    const old = Array.from({ length: 60 }, (_, k) => (k % 10 === 0 ? null : cone(rand)));
    const before = new PackedCoverageBuilder();
    for (const t of old) before.addText(t);
    const previous = before.finish();
    // Every third text changed, one unknown made known and one known made unknown.
    const now = old.map((t, k) => (k % 3 === 0 ? cone(rand) : t));
    now[10] = cone(rand);
    now[11] = null;
    const again = new PackedCoverageBuilder();
    const fresh = new PackedCoverageBuilder();
    for (let k = 0; k < now.length; k++) {
      again.addText(now[k], previous, k);
      fresh.addText(now[k]);
    }
    const reused = again.finish();
    const read = fresh.finish();
    for (let k = 0; k < now.length; k++) {
      expect(described(reused, k), String(k)).toEqual(described(read, k));
      if (now[k] !== null) expect(reused.toSMoc(k)!.toAscii()).toBe(parseMocAscii(now[k]!).degrade(12).toAscii());
    }
  });

  it('copies the coverage whose print matches instead of reading the text, and reads it when the print differs', () => {
    const text = '4/100-120';
    printText(text);
    // A hand-made previous store whose coverage 0 claims to be read from `text` but holds cell 5/7.
    const forged = new PackedCoverage(
      Uint32Array.of(7 * 4 ** 7, 8 * 4 ** 7), Uint32Array.of(0, 2), Uint8Array.of(3, 5),
      Float32Array.of(NaN, NaN, NaN, NaN), Uint32Array.of(lastPrint.hi, lastPrint.lo),
    );
    const b = new PackedCoverageBuilder();
    const copied = b.addText(text, forged, 0);
    const readAnew = b.addText(`${text} `, forged, 0);
    const store = b.finish();
    expect(store.toSMoc(copied)!.toAscii()).toBe('5/7');
    expect(store.toSMoc(readAnew)!.toAscii()).toBe(parseMocAscii(text).toAscii());
  });

  it('never lends a coverage that was not read from a text, nor one at a position out of the store', () => {
    const from = new PackedCoverageBuilder();
    from.addMoc(SMoc.fromCone(10, 10, 2, 5));
    const previous = from.finish();
    const b = new PackedCoverageBuilder();
    const text = '6/1000-1010';
    const i = b.addText(text, previous, 0);
    const j = b.addText('7/5', previous, 3);
    const store = b.finish();
    expect(store.toSMoc(i)!.toAscii()).toBe(parseMocAscii(text).toAscii());
    expect(store.toSMoc(j)!.toAscii()).toBe('7/5');
  });
});

describe('printText', () => {
  it('tells apart ten thousand texts differing by one character, order or length', () => {
    const seen = new Set<string>();
    const rand = seededRandom(32);
    const base = cone(rand);
    const variants = new Set<string>([base, `${base} `, ` ${base}`]);
    for (let k = 0; variants.size < 10_000; k++) {
      const at = Math.floor(rand() * base.length);
      variants.add(base.slice(0, at) + String.fromCharCode(48 + (k % 10)) + base.slice(at + 1));
      variants.add(`${k}/${k}`);
    }
    for (const v of variants) {
      printText(v);
      expect(lastPrint.lo & 1).toBe(1);
      seen.add(`${lastPrint.hi}:${lastPrint.lo}`);
    }
    expect(seen.size).toBe(variants.size);
  });
});
