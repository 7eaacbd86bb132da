import { describe, expect, it } from 'vitest';
import { compareC, foldAscii } from '../../broker/services/catalogue-text.js';
import { seededRandom } from '../support/random.js';

// Characters from every range whose UTF-16 order differs from UTF-8 byte order, and ASCII around '_' and '.'.
const ALPHABET = ['a', 'b', 'A', 'Z', '_', '.', '0', '9', '~', 'é', 'ß', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\uffef', '\u{1f600}', '\u{10000}', '\u{10ffff}'];

function randomString(rnd: () => number): string {
  const n = Math.floor(rnd() * 6);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)];
  return s;
}

const sign = (x: number) => (x < 0 ? -1 : x > 0 ? 1 : 0);

describe('the C collation in memory', () => {
  it('orders strings as their UTF-8 bytes (PostgreSQL COLLATE "C")', () => {
    const rnd = seededRandom(42);
    for (let k = 0; k < 20_000; k++) {
      const a = randomString(rnd);
      const b = randomString(rnd);
      expect(sign(compareC(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
    }
  });

  it('folds ASCII letters only, as every database locale does', () => {
    expect(foldAscii('Gaia DR3 ÉTOILE \u212a')).toBe('gaia dr3 Étoile \u212a');
    expect(foldAscii('already lower')).toBe('already lower');
  });
});
