/**
 * PackedSkyIndex.queryMoc: the ids it gives equal a scan with PackedCoverage.intersects (unknown
 * coverage always, empty never) over random MOC regions, at every bucket order, through add,
 * remove and id reuse; hostile regions (empty, whole sky, order 29 specks, cell 0 and the last
 * cell) included.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SMoc } from '../../registry/coverage/moc.js';
import { PackedCoverageBuilder } from '../../registry/coverage/packed-builder.js';
import { PackedSkyIndex } from '../../registry/coverage/packed-index.js';
import { UNKNOWN, type PackedCoverage } from '../../registry/coverage/packed.js';
import { seededRandom } from '../support/random.js';

const randomRa = (rand: () => number): number => rand() * 360;
const randomDec = (rand: () => number): number => (Math.asin(2 * rand() - 1) * 180) / Math.PI;

/** Varied coverage: cones at orders 0-14, scattered cells, whole sky, empty, unknown. */
function randomText(rand: () => number): string | null {
  switch (Math.floor(rand() * 8)) {
    case 0:
      return null;
    case 1:
      return ['0/0-11', '', '4/', '0/11', '12/0', `12/${12 * 4 ** 12 - 1}`][Math.floor(rand() * 6)];
    case 2: {
      const order = Math.floor(rand() * 13);
      return SMoc.fromCells(order, Array.from({ length: 1 + Math.floor(rand() * 20) }, () => Math.floor(rand() * 12 * 4 ** order))).toAscii();
    }
    default: {
      const order = Math.floor(rand() * 15);
      return SMoc.fromCone(randomRa(rand), randomDec(rand), 0.02 + rand() * (order < 6 ? 40 : 4), order).toAscii();
    }
  }
}

function store(rand: () => number, n: number): PackedCoverage {
  const b = new PackedCoverageBuilder();
  for (let k = 0; k < n; k++) b.addText(randomText(rand));
  return b.finish();
}

/** A region: cones and cell lists at orders 0-29, the empty MOC, the whole sky, the first and last cells. */
function randomRegion(rand: () => number): SMoc {
  switch (Math.floor(rand() * 8)) {
    case 0:
      return SMoc.empty(Math.floor(rand() * 30));
    case 1:
      return SMoc.fromCells(0, Array.from({ length: 12 }, (_, k) => k));
    case 2: {
      const order = 13 + Math.floor(rand() * 17);
      const at = rand() < 0.5 ? 0n : 12n * 4n ** BigInt(order) - 1n;
      return SMoc.fromCells(order, [rand() < 0.5 ? at : BigInt(Math.floor(rand() * 12 * 4 ** 13)) * 4n ** BigInt(order - 13)]);
    }
    case 3: {
      const order = Math.floor(rand() * 13);
      return SMoc.fromCells(order, Array.from({ length: 1 + Math.floor(rand() * 40) }, () => Math.floor(rand() * 12 * 4 ** order)));
    }
    default:
      return SMoc.fromCone(randomRa(rand), randomDec(rand), 10 ** (-2 + rand() * 3.3), Math.floor(rand() * 15));
  }
}

/** What queryMoc must give for item i: unknown always, else PackedCoverage.intersects. */
function intersects(p: PackedCoverage, i: number, region: SMoc): boolean {
  return p.kind(i) === UNKNOWN || p.intersects(i, region.lookup());
}

const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);

describe('PackedSkyIndex.queryMoc', () => {
  it.each([[undefined], [0], [3], [8]])('answers exactly like a scan with intersects (bucketOrder %s)', (bucketOrder) => {
    const rand = seededRandom(41);
    const n = bucketOrder === undefined ? 800 : 300;
    const p = store(rand, n);
    const index = new PackedSkyIndex({ bucketOrder });
    for (let i = 0; i < n; i++) index.add(p, i);
    for (let q = 0; q < (bucketOrder === undefined ? 250 : 80); q++) {
      const region = randomRegion(rand);
      const want = Array.from({ length: n }, (_, i) => i).filter((i) => intersects(p, i, region));
      const got = index.queryMoc(region.lookup());
      expect(sorted(got), region.toAscii().slice(0, 200)).toEqual(want);
      // Each id once.
      expect(new Set(got).size).toBe(got.length);
    }
  });

  it('gives unknown coverage for the empty region and nothing else', () => {
    const p = store(seededRandom(42), 200);
    const index = new PackedSkyIndex();
    for (let i = 0; i < p.count; i++) index.add(p, i);
    const unknown = Array.from({ length: p.count }, (_, i) => i).filter((i) => p.kind(i) === UNKNOWN);
    expect(unknown.length).toBeGreaterThan(0);
    expect(sorted(index.queryMoc(SMoc.empty(5).lookup()))).toEqual(unknown);
  });

  it('stays exact through add, remove and id reuse across stores (fast-check model)', () => {
    const stores = [store(seededRandom(43), 40), store(seededRandom(44), 40)];
    const regions = Array.from({ length: 30 }, (_, k) => randomRegion(seededRandom(100 + k)));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), store: fc.integer({ min: 0, max: 1 }), item: fc.integer({ min: 0, max: 39 }) }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('query' as const), region: fc.integer({ min: 0, max: regions.length - 1 }) }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const index = new PackedSkyIndex();
      const model = new Map<number, { store: number; item: number }>();
      for (const o of ops) {
        if (o.kind === 'add') model.set(index.add(stores[o.store], o.item), { store: o.store, item: o.item });
        else if (o.kind === 'remove') {
          if (model.size === 0) continue;
          const id = [...model.keys()][o.pick % model.size];
          index.remove(id);
          model.delete(id);
        } else {
          const region = regions[o.region];
          const want = [...model].filter(([, m]) => intersects(stores[m.store], m.item, region)).map(([id]) => id);
          expect(sorted(index.queryMoc(region.lookup()))).toEqual(sorted(want));
        }
      }
    }), { numRuns: 80 });
  });
});
