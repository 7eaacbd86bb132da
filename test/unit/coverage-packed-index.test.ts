/** PackedSkyIndex: results equal a scan with PackedCoverage.touchesCone (and so SMoc.intersectsCone), through add, remove and id reuse. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cone } from '../../registry/coverage/cone.js';
import { SMoc } from '../../registry/coverage/moc.js';
import { PackedSkyIndex } from '../../registry/coverage/packed-index.js';
import { PackedCoverageBuilder } from '../../registry/coverage/packed-builder.js';
import { EMPTY, UNKNOWN, WHOLE, type PackedCoverage } from '../../registry/coverage/packed.js';
import { seededRandom } from '../support/random.js';

const randomRa = (rand: () => number): number => rand() * 360;
const randomDec = (rand: () => number): number => (Math.asin(2 * rand() - 1) * 180) / Math.PI;

/** Varied coverage texts: cones at many orders (finer ones widened to 12), scattered cells, huge areas, specks, empty, whole sky, unknown. */
function randomText(rand: () => number): string | null {
  switch (Math.floor(rand() * 10)) {
    case 0:
      return null;
    case 1:
      return rand() < 0.5 ? '0/0-11' : `${Math.floor(rand() * 10)}/`;
    case 2:
      return rand() < 0.5 ? SMoc.fromCone(randomRa(rand), randomDec(rand), 30 + rand() * 100, 3 + Math.floor(rand() * 3)).toAscii() : '0/1-9 6/';
    case 3: {
      const order = Math.floor(rand() * 9);
      return SMoc.fromCells(order, Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 12 * 4 ** order))).toAscii();
    }
    case 4: {
      const order = 25 + Math.floor(rand() * 5);
      const cell = BigInt(Math.floor(rand() * 12 * 4 ** 24)) * 4n ** BigInt(order - 24);
      return SMoc.fromCells(order, [cell, cell + 1n]).toAscii();
    }
    default:
      return SMoc.fromCone(randomRa(rand), randomDec(rand), 0.05 + rand() * 4, 4 + Math.floor(rand() * 10)).toAscii();
  }
}

function store(rand: () => number, n: number): PackedCoverage {
  const b = new PackedCoverageBuilder();
  for (let k = 0; k < n; k++) b.addText(randomText(rand));
  return b.finish();
}

/** What the index must answer for item i: unknown and whole sky always, empty never, a part by its own walk. */
function touches(p: PackedCoverage, i: number, cone: Cone): boolean {
  const kind = p.kind(i);
  return kind === UNKNOWN || kind === WHOLE || (kind !== EMPTY && p.touchesCone(i, cone));
}

const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);

describe('PackedSkyIndex', () => {
  it('rebinds an id to the same coverage read into another store, and refuses a different one', () => {
    const rand = seededRandom(33);
    const texts = Array.from({ length: 300 }, () => randomText(rand));
    const first = new PackedCoverageBuilder();
    for (const t of texts) first.addText(t);
    const a = first.finish();
    // The same texts in another order, every fifth one replaced, read into a store of their own.
    const order = texts.map((_, k) => k).reverse();
    const changed = (k: number) => k % 5 === 0;
    const second = new PackedCoverageBuilder();
    for (const k of order) second.addText(changed(k) ? SMoc.fromCone(randomRa(rand), randomDec(rand), 3, 6).toAscii() : texts[k]);
    const b = second.finish();
    const index = new PackedSkyIndex();
    const ids = texts.map((_, k) => index.add(a, k));
    const owner = new Map<number, number>();
    order.forEach((k, j) => {
      const same = index.rebind(ids[k], b, j);
      // Unchanged texts are the same coverage; a changed one is refused (unless it happens to equal the old, as text).
      if (!changed(k)) expect(same).toBe(true);
      if (same) owner.set(ids[k], j);
      else {
        expect(index.source(ids[k])).toBe(a);
        index.remove(ids[k]);
        owner.set(index.add(b, j), j);
      }
    });
    for (let q = 0; q < 100; q++) {
      const cone = new Cone(randomRa(rand), randomDec(rand), 10 ** (-2 + rand() * 3.5));
      const want = Array.from({ length: b.count }, (_, j) => j).filter((j) => touches(b, j, cone));
      const got = index.queryCone(cone).map((id) => {
        expect(index.source(id)).toBe(b);
        return owner.get(id)!;
      });
      expect(sorted(got)).toEqual(want);
    }
  });

  it.each([[undefined], [0], [3], [8]])('answers exactly like a scan over a varied population (bucketOrder %s)', (bucketOrder) => {
    const rand = seededRandom(31);
    const n = bucketOrder === undefined ? 1000 : 300;
    const p = store(rand, n);
    const index = new PackedSkyIndex({ bucketOrder });
    for (let i = 0; i < n; i++) expect(index.add(p, i)).toBe(i);
    expect(index.size).toBe(n);
    for (let q = 0; q < (bucketOrder === undefined ? 200 : 60); q++) {
      const dec = q % 50 === 0 ? (q % 100 === 0 ? 90 : -90) : randomDec(rand);
      const cone = new Cone(randomRa(rand), dec, q % 37 === 0 ? 180 : 10 ** (-3 + rand() * 4.2));
      const want = Array.from({ length: n }, (_, i) => i).filter((i) => touches(p, i, cone));
      expect(sorted(index.queryCone(cone))).toEqual(want);
    }
  });

  it('finds small coverages with cones centred on them and on their rims', () => {
    const rand = seededRandom(32);
    const b = new PackedCoverageBuilder();
    const centres: [number, number][] = [];
    for (let k = 0; k < 250; k++) {
      const ra = randomRa(rand);
      const dec = randomDec(rand);
      centres.push([ra, dec]);
      b.addText(SMoc.fromCone(ra, dec, 0.01 + rand(), 6 + Math.floor(rand() * 7)).toAscii());
    }
    const p = b.finish();
    const index = new PackedSkyIndex();
    for (let i = 0; i < p.count; i++) index.add(p, i);
    for (let q = 0; q < 250; q++) {
      const [ra, dec] = centres[q];
      const r = 10 ** (-3 + rand() * 3);
      const cone = new Cone(ra, dec, r);
      expect(index.queryCone(cone)).toContain(q);
      for (const c of [cone, new Cone(ra, Math.max(-90, Math.min(90, dec + (rand() - 0.5) * 2)), r)]) {
        expect(sorted(index.queryCone(c))).toEqual(Array.from({ length: p.count }, (_, i) => i).filter((i) => touches(p, i, c)));
      }
    }
  });

  it('stays exact through add, remove and id reuse across stores (fast-check model)', () => {
    const stores = [store(seededRandom(33), 40), store(seededRandom(34), 40)];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), store: fc.integer({ min: 0, max: 1 }), item: fc.integer({ min: 0, max: 39 }) }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({
        kind: fc.constant('query' as const),
        ra: fc.double({ min: 0, max: 360, noNaN: true }),
        dec: fc.double({ min: -90, max: 90, noNaN: true }),
        r: fc.double({ min: -3, max: Math.log10(180), noNaN: true }).map((x) => Math.min(180, 10 ** x)),
      }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const index = new PackedSkyIndex();
      const model = new Map<number, { store: number; item: number }>();
      for (const o of ops) {
        if (o.kind === 'add') {
          const id = index.add(stores[o.store], o.item);
          expect(model.has(id)).toBe(false);
          model.set(id, { store: o.store, item: o.item });
        } else if (o.kind === 'remove') {
          if (model.size === 0) continue;
          const id = [...model.keys()][o.pick % model.size];
          index.remove(id);
          model.delete(id);
        } else {
          const cone = new Cone(o.ra, o.dec, o.r);
          const want = [...model].filter(([, m]) => touches(stores[m.store], m.item, cone)).map(([id]) => id);
          expect(sorted(index.queryCone(cone))).toEqual(sorted(want));
        }
        expect(index.size).toBe(model.size);
      }
      for (const [id, m] of model) {
        expect(index.source(id)).toBe(stores[m.store]);
        expect(index.item(id)).toBe(m.item);
      }
    }), { numRuns: 80 });
  });

  it('refuses ids it does not hold and items outside the store, naming them', () => {
    const p = store(seededRandom(35), 3);
    const index = new PackedSkyIndex();
    const id = index.add(p, 2);
    expect(() => index.add(p, 3)).toThrow(/coverage 3 is not in the store \(0-2\)/);
    expect(() => index.add(p, -1)).toThrow(RangeError);
    expect(() => index.remove(id + 1)).toThrow(/no coverage is indexed as id 1/);
    index.remove(id);
    expect(() => index.remove(id)).toThrow(/no coverage is indexed as id 0/);
    expect(() => new PackedSkyIndex({ bucketOrder: 9 })).toThrow(/bucketOrder/);
  });
});
