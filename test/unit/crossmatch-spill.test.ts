/**
 * The matcher's bounded memory and control: the spill path (a tiny memoryMb) gives the same pairs
 * and leaves no files (also after an early stop, an error or an abort); abort stops it; the event
 * loop keeps turning during a long match.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossmatch } from '../../broker/crossmatch/index.js';
import { BAND_DEG } from '../../broker/crossmatch/spill.js';
import { seededRandom } from '../support/random.js';
import { batches, bruteForce, keys, offset, runMatch, type Cat } from './crossmatch-support.js';

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'xm-spill-test-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

/** Rows in a strip across several spill bands, 70% of right rows near a left row, pairs planted across band edges. */
function strip(seed: number, n: number): { left: Cat; right: Cat } {
  const rnd = seededRandom(seed);
  const left: Cat = { ra: [], dec: [], id: [] };
  const right: Cat = { ra: [], dec: [], id: [] };
  for (let i = 0; i < n; i++) {
    left.ra.push((359.8 + rnd() * 0.4) % 360);
    left.dec.push(-0.3 + rnd() * 0.6);
    left.id!.push(BigInt(i));
  }
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.7) {
      const [a, d] = offset(left.ra[i], left.dec[i], rnd() * 1.5, rnd() * 2 * Math.PI);
      right.ra.push(a); right.dec.push(d);
    } else {
      right.ra.push((359.8 + rnd() * 0.4) % 360); right.dec.push(-0.3 + rnd() * 0.6);
    }
    right.id!.push(BigInt(n - i));
  }
  for (let b = -6; b <= 6; b++) {
    const edge = b * BAND_DEG;
    for (const pa of [0, Math.PI, 0.3]) {
      left.ra.push(rnd() * 0.4); left.dec.push(edge + (pa === 0 ? -1 : 1) * 0.2 / 3600); left.id!.push(BigInt(left.ra.length + 1e6));
      const [a, d] = offset(left.ra.at(-1)!, left.dec.at(-1)!, 0.9, pa);
      right.ra.push(a); right.dec.push(d); right.id!.push(BigInt(right.ra.length + 1e6));
    }
  }
  return { left, right };
}

describe('crossmatch spill', () => {
  const { left, right } = strip(3, 6000);

  it('gives the in-memory and brute-force pairs with a tiny memoryMb, and removes its files', async () => {
    for (const mode of ['ALL', 'BEST'] as const) {
      const spilled: string[] = [];
      const got = await runMatch(left, right, { radiusArcsec: 1, mode, memoryMb: 0.05, spillDir: dir, onSpill: (d) => spilled.push(d) });
      expect(spilled).toHaveLength(1);
      expect(spilled[0].startsWith(dir)).toBe(true);
      const inMemory = await runMatch(left, right, { radiusArcsec: 1, mode });
      expect(keys(got)).toEqual(keys(inMemory));
      expect(keys(got)).toEqual(keys(bruteForce(left, right, 1, mode)));
      expect(got.length).toBeGreaterThan(mode === 'ALL' ? 2700 : 2500);
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('removes its files when the consumer stops early, on a bad row and on abort', async () => {
    let n = 0;
    for await (const b of crossmatch(batches(left), batches(right), { radiusArcsec: 1, memoryMb: 0.05, spillDir: dir, batchPairs: 10 })) {
      n += b.left.length;
      if (n > 0) break;
    }
    expect(n).toBeGreaterThan(0);
    expect(await readdir(dir)).toEqual([]);

    const bad = [...batches(left), { ra: Float64Array.of(1), dec: Float64Array.of(-95) }];
    await expect(drain(crossmatch(bad, batches(right), { radiusArcsec: 1, memoryMb: 0.05, spillDir: dir }))).rejects.toMatchObject({ code: 'CONSTELLATION_E_INVALID_ARGUMENT' });
    expect(await readdir(dir)).toEqual([]);

    const ac = new AbortController();
    const it = crossmatch(batches(left), batches(right), { radiusArcsec: 1, memoryMb: 0.05, spillDir: dir, batchPairs: 10, signal: ac.signal });
    const first = await it.next();
    expect(first.done).toBe(false);
    expect((await readdir(dir)).length).toBe(1);
    ac.abort();
    await expect(drain(it)).rejects.toMatchObject({ name: 'AbortError' });
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('crossmatch control', () => {
  /** A large uniform catalogue pair, so a match takes a while. */
  function big(n: number): { left: Cat; right: Cat } {
    const rnd = seededRandom(9);
    const c = (): Cat => ({ ra: Array.from({ length: n }, () => rnd() * 3), dec: Array.from({ length: n }, () => rnd() * 3) });
    return { left: c(), right: c() };
  }
  const { left, right } = big(300_000);

  it('stops promptly on abort with the signal reason', async () => {
    const ac = new AbortController();
    const run = drain(crossmatch(batches(left, 10_000), batches(right, 10_000), { radiusArcsec: 30, signal: ac.signal }));
    setImmediate(() => ac.abort());
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    const pre = new AbortController();
    pre.abort(new Error('stop now'));
    await expect(drain(crossmatch([], [], { radiusArcsec: 1, signal: pre.signal }))).rejects.toThrow('stop now');
  });

  it('gives the event loop a turn while it matches', async () => {
    let ticks = 0;
    const timer = setInterval(() => { ticks++; }, 1);
    let pairs = 0;
    try {
      for await (const b of crossmatch(batches(left, 10_000), batches(right, 10_000), { radiusArcsec: 30 })) pairs += b.left.length;
    } finally {
      clearInterval(timer);
    }
    expect(pairs).toBeGreaterThan(100_000);
    expect(ticks).toBeGreaterThan(5);
  });
});

async function drain(it: AsyncGenerator<unknown>): Promise<void> {
  for await (const _ of it) { /* drain */ }
}
