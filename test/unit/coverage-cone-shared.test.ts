/**
 * A cone keeps the sums below wholly covered cells (down to each walked set's resolution) for the
 * next walk over it: a coverage's cone fraction must not depend on which coverages were walked over
 * the same cone before it, whatever their resolutions.
 */
import { describe, expect, it } from 'vitest';
import { Cone } from '../../registry/coverage/cone.js';
import { SMoc } from '../../registry/coverage/moc.js';
import { PackedCoverageBuilder } from '../../registry/coverage/packed-builder.js';
import { seededRandom } from '../support/random.js';

describe('cone fractions over one shared cone', () => {
  it('equal the fractions each coverage gives over a cone of its own, in any order of walks', () => {
    const rand = seededRandom(17);
    for (let q = 0; q < 30; q++) {
      const ra = rand() * 360;
      const dec = (Math.asin(2 * rand() - 1) * 180) / Math.PI;
      const radius = 10 ** (-1.5 + rand() * 2);
      // Coverages of mixed resolutions around the cone, nested and overlapping.
      const b = new PackedCoverageBuilder();
      const mocs: SMoc[] = [];
      for (let k = 0; k < 12; k++) {
        const moc = SMoc.fromCone(ra + (rand() - 0.5) * 3 * radius, Math.max(-90, Math.min(90, dec + (rand() - 0.5) * 3 * radius)), radius * (0.3 + 2 * rand()), Math.floor(rand() * 13));
        mocs.push(moc);
        b.addMoc(moc);
      }
      const store = b.finish();
      const alone = mocs.map((_, i) => store.coneFraction(i, new Cone(ra, dec, radius)));
      for (let i = 0; i < mocs.length; i++) expect(mocs[i].coneOverlapFraction(ra, dec, radius)).toBe(alone[i]);
      const shared = new Cone(ra, dec, radius);
      for (let i = mocs.length - 1; i >= 0; i--) expect(store.coneFraction(i, shared), `walk ${i} of cone ${q}`).toBe(alone[i]);
      const again = new Cone(ra, dec, radius);
      for (let i = 0; i < mocs.length; i++) expect(store.coneFraction(i, again)).toBe(alone[i]);
    }
  });
});
