/**
 * normalMocFraction recognises exactly the texts parseMocAscii reads and prints back unchanged
 * (orders ≤ 24, within the caps), with the same sky fraction; every other text, however close to
 * normal, is left to the full parser (undefined), so validation answers as it did.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MOC_LIMITS } from '../../registry/coverage/limits.js';
import { SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import { normalMocFraction } from '../../registry/coverage/normal-moc.js';

/** Random MOCs of orders 0–24, clustered in a few order-3 cells so that cells merge and nest. */
const cellArb = fc.oneof(
  fc.integer({ min: 0, max: 24 }).chain((o) => fc.tuple(fc.constant(o), fc.bigInt({ min: 0n, max: 12n * 4n ** BigInt(o) - 1n }))),
  fc.tuple(fc.integer({ min: 3, max: 12 }), fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 0n, max: 4n ** 10n - 1n })).map(([o, base, r]) => {
    const span = 4n ** BigInt(o - 3);
    return [o, BigInt(base) * span + (r % span)] as [number, bigint];
  }),
);
const mocArb = fc.tuple(fc.array(cellArb, { maxLength: 40 }), fc.integer({ min: 0, max: 24 })).map(([cells, declared]) => {
  let m = SMoc.empty(declared);
  for (const [o, c] of cells) m = m.union(SMoc.fromCells(o, [c]));
  return m;
});

/** What the full parser says of `text`: its normal form and fraction, or the error. */
function reference(text: string): { normal: string; fraction: number } | 'error' {
  try {
    const m = parseMocAscii(text, MOC_LIMITS);
    return { normal: m.toAscii(), fraction: m.skyFraction() };
  } catch {
    return 'error';
  }
}

/** The fast answer agrees with the parser whenever it gives one. */
function agrees(text: string): boolean {
  const fast = normalMocFraction(text, MOC_LIMITS);
  if (fast === undefined) return true;
  const ref = reference(text);
  return ref !== 'error' && ref.normal === text && ref.fraction === fast;
}

/** Small edits of a normal text, most of which make it not normal (or not a MOC). */
const edits: ((t: string, k: number) => string)[] = [
  (t, k) => t.slice(0, k) + t.slice(k + 1),
  (t, k) => `${t.slice(0, k)} ${t.slice(k)}`,
  (t, k) => `${t.slice(0, k)}0${t.slice(k)}`,
  (t, k) => `${t.slice(0, k)}1${t.slice(k)}`,
  (t, k) => `${t.slice(0, k)}-${t.slice(k)}`,
  (t, k) => `${t.slice(0, k)}/${t.slice(k)}`,
  (t, k) => t.slice(0, k) + String((Number(t[k]) + 1) % 10) + t.slice(k + 1),
  (t) => `${t} `,
  (t) => ` ${t}`,
  (t) => t.replace(' ', '  '),
  (t) => t.replace(' ', '\n'),
  (t, k) => `${t} ${k % 25}/${k}`,
  (t, k) => `${(k % 4) + 1}/${k} ${t}`,
];

describe('normalMocFraction', () => {
  it('recognises every normal MOC of orders up to 24 with the parser\'s sky fraction', () => {
    fc.assert(
      fc.property(mocArb, (m) => {
        const text = m.toAscii();
        expect(normalMocFraction(text, MOC_LIMITS)).toBe(m.skyFraction());
        expect(parseMocAscii(text).toAscii()).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('never calls a text normal that the parser prints otherwise or refuses', () => {
    fc.assert(
      fc.property(mocArb, fc.nat(), fc.nat({ max: edits.length - 1 }), (m, at, e) => {
        const text = m.toAscii();
        const edited = edits[e](text, at % Math.max(1, text.length));
        expect(agrees(edited), JSON.stringify({ text, edited })).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('leaves to the parser what is not its own normal form', () => {
    const notNormal = [
      '', ' 3/1', '3/1 ', '3/ 1', '3/1  2', '3/1\t2', '03/1', '3/01', '3/1-1', '3/2-1', '3/1 1', '3/1 2', '3/1-2 3',
      '3/1 2/0', '3/ 4/1', '3/4/1', '1/0 2/0', '2/0-3', '2/4-11', '1/0-3', '0/0-11', '0/0-12', '3/768', '25/1', '29/', '3/1 29/1',
      's3/1', '3/1,2', '3/1+1', '-3/1', '3/-1', 'x', '3/', '3/1-',
    ];
    for (const text of notNormal) expect(agrees(text), text).toBe(true);
    for (const text of ['1/0-3', '2/0-3', '2/4-11', '1/0 2/0', '3/1 2', '3/1-2 3', '']) expect(normalMocFraction(text, MOC_LIMITS), text).toBeUndefined();
    // Normal: an empty MOC of order 3, the whole sky, cells of two orders, a finer declared maxOrder.
    expect(normalMocFraction('3/', MOC_LIMITS)).toBe(0);
    expect(normalMocFraction('0/0-11', MOC_LIMITS)).toBe(1);
    expect(normalMocFraction('1/0-2 2/12-14', MOC_LIMITS)).toBe(parseMocAscii('1/0-2 2/12-14').skyFraction());
    expect(normalMocFraction('1/0-2 2/12-14 8/', MOC_LIMITS)).toBe(3 / 48 + 3 / 192);
  });

  it('leaves a MOC over the caps to the parser, which refuses it', () => {
    const many = `10/${Array.from({ length: 200 }, (_, k) => 2 * k).join(' ')}`;
    expect(normalMocFraction(many, MOC_LIMITS)).toBeGreaterThan(0);
    expect(normalMocFraction(many, { maxChars: MOC_LIMITS.maxChars, maxCells: 199 })).toBeUndefined();
    expect(normalMocFraction(many, { maxChars: many.length - 1, maxCells: MOC_LIMITS.maxCells })).toBeUndefined();
  });
});
