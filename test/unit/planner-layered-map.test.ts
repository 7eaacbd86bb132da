/** LayeredMap: every generation reads as a plain Map given the same changes would, and older generations never change. */
import { describe, expect, it } from 'vitest';
import { LayeredMap } from '../../broker/planner/layered-map.js';
import { seededRandom } from '../support/random.js';

describe('LayeredMap', () => {
  it('matches a plain Map through many small and large changes, every older generation kept as it was', () => {
    const rand = seededRandom(41);
    const start = new Map(Array.from({ length: 500 }, (_, k) => [`k${k}`, k]));
    let map = LayeredMap.of(new Map(start));
    let model = new Map(start);
    const history: { map: LayeredMap<string, number>; model: Map<string, number> }[] = [];
    for (let step = 0; step < 300; step++) {
      const changes = new Map<string, number | undefined>();
      const n = rand() < 0.1 ? 200 : 1 + Math.floor(rand() * 8);
      for (let c = 0; c < n; c++) changes.set(`k${Math.floor(rand() * 700)}`, rand() < 0.3 ? undefined : step * 1000 + c);
      map = map.with(changes);
      model = new Map(model);
      for (const [k, v] of changes) {
        if (v === undefined) model.delete(k);
        else model.set(k, v);
      }
      history.push({ map, model });
    }
    for (const { map: m, model: want } of history) {
      expect(m.size).toBe(want.size);
      expect([...m.values()].sort((a, b) => a - b)).toEqual([...want.values()].sort((a, b) => a - b));
      for (let k = 0; k < 700; k += 7) expect(m.get(`k${k}`)).toBe(want.get(`k${k}`));
    }
  });
});
