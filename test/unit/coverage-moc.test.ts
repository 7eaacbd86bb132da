/** SMoc: MOC 2.0 ASCII / JSON parsing and normal form, error reporting, and set algebra laws. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MOC_LIMITS } from '../../registry/coverage/limits.js';
import { MocJsonError, MocSyntaxError, SMoc, parseMocAscii, parseMocJson } from '../../registry/coverage/moc.js';
import { countCells } from '../../registry/coverage/ranges.js';
import { cellCenter, nestToFxy, vec3 } from '../../registry/coverage/healpix.js';

/**
 * Random MOCs: cells at any order 0–29, half of them clustered inside a few order-3 cells so that
 * unions and intersections overlap, plus an optional finer declared maxOrder.
 */
const cellArb = fc.oneof(
  fc.integer({ min: 0, max: 29 }).chain((o) => fc.tuple(fc.constant(o), fc.bigInt({ min: 0n, max: 12n * 4n ** BigInt(o) - 1n }))),
  fc.tuple(fc.integer({ min: 3, max: 29 }), fc.integer({ min: 0, max: 3 }), fc.bigInt({ min: 0n, max: 4n ** 26n - 1n })).map(([o, base, r]) => {
    const span = 4n ** BigInt(o - 3);
    return [o, BigInt(base) * span + (r % span)] as [number, bigint];
  }),
);
const mocArb = fc.tuple(fc.array(cellArb, { maxLength: 25 }), fc.integer({ min: 0, max: 29 })).map(([cells, declared]) => {
  let m = SMoc.empty(declared);
  for (const [o, c] of cells) m = m.union(SMoc.fromCells(o, [c]));
  return m;
});

const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`../fixtures/moc/${name}`, import.meta.url)), 'utf8');

describe('MOC 2.0 ASCII fixtures', () => {
  it('parses the IVOA sample and keeps it as its own normal form', () => {
    const text = fixture('smoc-moc2.0-sample.ascii.txt');
    const moc = parseMocAscii(text);
    expect(moc.maxOrder).toBe(29);
    expect(moc.toAscii()).toBe('3/3 10 4/16-18 22 5/19-20 17/222 28/123456789 29/');
    expect(moc.toAscii()).toBe(text.trim());
    // 2 order-3 cells, 4 order-4 cells, 2 order-5 cells and two tiny ones.
    const expected = 2 / 768 + 4 / 3072 + 2 / 12288 + 1 / (12 * 4 ** 17) + 1 / (12 * 4 ** 28);
    expect(moc.skyFraction()).toBeCloseTo(expected, 15);
  });

  it('reads the GLIMPSE JSON MOC: a galactic-plane strip of about 1300 deg²', () => {
    const moc = parseMocJson(JSON.parse(fixture('spitzer-glimpse-survey-moc.json')));
    expect(moc.maxOrder).toBe(9);
    // GLIMPSE (I, II, 3D, 360) maps the inner and outer Galactic plane at |b| of a few degrees;
    // the order-9 MOC footprint is about 1290 deg² (3% of the sky).
    expect(moc.areaSqDeg()).toBeGreaterThan(1000);
    expect(moc.areaSqDeg()).toBeLessThan(1600);
    // Every cell centre lies within 5° of the Galactic equator (north Galactic pole, J2000).
    const ra = (192.85948 * Math.PI) / 180;
    const dec = (27.12825 * Math.PI) / 180;
    const ngp = [Math.cos(dec) * Math.cos(ra), Math.cos(dec) * Math.sin(ra), Math.sin(dec)];
    let worst = 0;
    moc.cellsByOrder().forEach((cells, order) => {
      for (const c of cells) {
        const { f, x, y } = nestToFxy(order, Number(c));
        const v = cellCenter(order, f, x, y, vec3());
        worst = Math.max(worst, Math.abs(Math.asin(v[0] * ngp[0] + v[1] * ngp[1] + v[2] * ngp[2])));
      }
    });
    expect((worst * 180) / Math.PI).toBeLessThan(5);
    // The file is already normalised: the same cells come back per order.
    const raw = JSON.parse(fixture('spitzer-glimpse-survey-moc.json')) as Record<string, number[]>;
    const back = moc.toJson();
    expect(Object.keys(back)).toEqual(Object.keys(raw));
    for (const k of Object.keys(raw)) expect(back[k]).toEqual(raw[k]);
    expect(parseMocAscii(moc.toAscii()).equals(moc)).toBe(true);
    // The strip crosses the Galactic centre (RA 266.4°, Dec −28.9°) and misses the poles.
    expect(moc.containsPoint(266.405, -28.936)).toBe(true);
    expect(moc.intersectsCone(266.405, -28.936, 0.1)).toBe(true);
    expect(moc.intersectsCone(192.85948, 27.12825, 10)).toBe(false);
  });
});

describe('MOC 2.0 ASCII parsing', () => {
  it('accepts the empty string, bare declarations, line breaks and tabs', () => {
    expect(parseMocAscii('').isEmpty()).toBe(true);
    expect(parseMocAscii('').maxOrder).toBe(0);
    expect(parseMocAscii('   \n').isEmpty()).toBe(true);
    const declared = parseMocAscii('29/');
    expect(declared.isEmpty()).toBe(true);
    expect(declared.maxOrder).toBe(29);
    expect(declared.toAscii()).toBe('29/');
    expect(parseMocAscii('1/0\t1\r\n2/ 8-9\n').toAscii()).toBe('1/0-1 2/8-9');
    expect(parseMocAscii('0/0-11').isFullSky()).toBe(true);
    expect(parseMocAscii('0/0-11 8/').toAscii()).toBe('0/0-11 8/');
  });

  it('normalises: coarsest cells, merged runs, overlaps absorbed, orders ascending', () => {
    expect(parseMocAscii('1/0 1 2 3').toAscii()).toBe('0/0 1/');
    expect(parseMocAscii('2/0-3 1/1').toAscii()).toBe('1/0-1 2/');
    expect(parseMocAscii('1/1 2/4').toAscii()).toBe('1/1 2/');
    expect(parseMocAscii('3/5 1/0').toAscii()).toBe('1/0 3/');
    expect(parseMocAscii('2/3 4 5 6 7 8').toAscii()).toBe('1/1 2/3 8');
    expect(parseMocAscii('0/11 29/').toAscii()).toBe('0/11 29/');
    // Cells past 2^53 at fine orders stay exact.
    const fine = '29/3458764513820540927';
    expect(parseMocAscii(fine).toAscii()).toBe(fine);
    expect(parseMocAscii('29/3458764513820540924-3458764513820540927').toAscii()).toBe('28/864691128455135231 29/');
  });

  const bad: [string, string, number, RegExp][] = [
    ['order 30', '3/1 30/5', 4, /order 30 at offset 4 is outside 0-29/],
    ['order 31', '1/2 3/4 5/6 31/7', 12, /order 31 at offset 12 is outside 0-29/],
    ['negative cell', '3/-1', 2, /negative cell at offset 2/],
    ['negative order', '-3/1', 0, /negative order at offset 0/],
    ['reversed range', '1/0 9-4', 4, /range 9-4 at offset 4 is reversed/],
    ['cell beyond its order', '1/50', 2, /cell 50 at offset 2 is outside order 1 \(0-47\)/],
    ['range end beyond its order', '0/3-12', 4, /cell 12 at offset 4 is outside order 0 \(0-11\)/],
    ['order-29 cell beyond the sphere', '29/3458764513820540928', 3, /outside order 29 \(0-3458764513820540927\)/],
    ['descending cells', '3/3 10 4/16-18 22 21', 18, /cells of order 4 are not in ascending order at offset 18/],
    ['repeated cell', '2/5 5', 4, /cells of order 2 are not in ascending order at offset 4/],
    ['overlapping range', '2/5-9 7', 6, /cells of order 2 are not in ascending order at offset 6/],
    ['order repeated out of sequence', '2/5 3/1 2/4', 10, /cells of order 2 are not in ascending order at offset 10/],
    ['junk token', '3/1 abc', 4, /unexpected character "a" at offset 4/],
    ['junk after a cell', '3/12x', 4, /unexpected character "x" at offset 4/],
    ['missing slash', '3 4 5', 0, /cell 3 at offset 0 has no order/],
    ['slash with no order', '/3', 0, /"\/" at offset 0 has no order/],
    ['MOC 1.0 commas', '1/1,3,4', 3, /comma at offset 3/],
    ['range without end', '3/4-', 2, /range at offset 2 has no end/],
    ['decimal point', '3.5/1', 1, /unexpected character "\." at offset 1/],
    ['length range', '3/4+2', 3, /"\+" at offset 3/],
    ['time MOC', 't61/1 3 5', 0, /"t" prefix at offset 0: this is a time MOC/],
    ['space-time prefix', 's3/1-3', 0, /"s" prefix at offset 0/],
    ['orders run together', '3/4/5', 2, /order 4 at offset 2 must be separated/],
    ['non-ASCII space', '3/1\u00a02', 3, /unexpected character "\u00a0" at offset 3/],
    ['absurdly long number', `3/${'9'.repeat(40)}`, 2, /number at offset 2 has too many digits/],
  ];

  it.each(bad)('rejects %s with the offset and the rule', (_what, text, position, message) => {
    let caught: unknown;
    try {
      parseMocAscii(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MocSyntaxError);
    expect(caught).toBeInstanceOf(Error);
    expect((caught as MocSyntaxError).position).toBe(position);
    expect((caught as MocSyntaxError).message).toMatch(message);
  });

  it('parses a 1 MB MOC', () => {
    // Bench (2 shared cores, loaded): ~70–180 ms to parse 1 MB of order-10 cells, ~60 ms for toAscii.
    const parts: string[] = [];
    let c = 0;
    let len = 0;
    for (let k = 0; len < 1_000_000; k++) {
      c += 2 + (k % 5);
      const token = k % 3 === 0 ? `${c}-${(c += 3)}` : String(c);
      parts.push(token);
      len += token.length + 1;
    }
    const text = `10/${parts.join(' ')}`;
    const moc = parseMocAscii(text);
    expect(moc.maxOrder).toBe(10);
    expect(parseMocAscii(moc.toAscii()).equals(moc)).toBe(true);
  });
});

describe('JSON MOCs', () => {
  it('accepts objects or text, any cell sequence, bigints and digit strings for fine orders', () => {
    expect(parseMocJson({ '1': [3, 1, 2, 0] }).toAscii()).toBe('0/0 1/');
    expect(parseMocJson('{"3":[1],"9":[]}').toAscii()).toBe('3/1 9/');
    expect(parseMocJson({ '29': [3458764513820540927n] }).toAscii()).toBe('29/3458764513820540927');
    expect(parseMocJson({ '29': ['3458764513820540927'] }).toAscii()).toBe('29/3458764513820540927');
    expect(parseMocJson({}).isEmpty()).toBe(true);
  });

  it.each([
    [[1, 2], '', /must be an object/],
    [{ '30': [1] }, '/30', /not an order 0-29/],
    [{ a: [1] }, '/a', /not an order 0-29/],
    [{ '1': 5 }, '/1', /must be an array/],
    [{ '1': [0, 48] }, '/1/1', /cell 48 is outside order 1/],
    [{ '1': [-1] }, '/1/0', /cell -1 is outside/],
    [{ '1': [1.5] }, '/1/0', /cell 1.5 is outside/],
    ['{"1": [1', '', /not JSON/],
  ])('rejects %j at %s', (input, path, message) => {
    let caught: unknown;
    try {
      parseMocJson(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MocJsonError);
    expect((caught as MocJsonError).path).toBe(path);
    expect((caught as MocJsonError).message).toMatch(message);
  });
});

describe('constructors and argument checks', () => {
  it('fromCells, fullSky, empty, degrade', () => {
    expect(SMoc.fromCells(2, [9, 8, 8, 10, 11]).toAscii()).toBe('1/2 2/');
    expect(SMoc.fullSky().skyFraction()).toBe(1);
    expect(SMoc.fullSky(7).toAscii()).toBe('0/0-11 7/');
    expect(SMoc.empty(3).toAscii()).toBe('3/');
    expect(parseMocAscii('3/1 5/100').degrade(2).toAscii()).toBe('2/0-1');
    expect(parseMocAscii('3/1').degrade(5).toAscii()).toBe('3/1');
    expect(() => SMoc.fromCells(2, [192])).toThrow(RangeError);
    expect(() => SMoc.fromCells(30, [1])).toThrow(/order must be an integer 0-29/);
    expect(() => parseMocAscii('3/1').degrade(-1)).toThrow(RangeError);
  });

  it('fromRanges checks its input', () => {
    expect(SMoc.fromRanges(BigInt64Array.of(0n, 1n << 58n), 0).toAscii()).toBe('0/0');
    expect(() => SMoc.fromRanges(BigInt64Array.of(0n, 5n), 3)).toThrow(/finer than maxOrder 3/);
    expect(() => SMoc.fromRanges(BigInt64Array.of(4n, 2n), 29)).toThrow(/not sorted/);
    expect(() => SMoc.fromRanges(BigInt64Array.of(0n, 2n, 2n, 4n), 29)).toThrow(/non-adjacent/);
  });

  it.each([
    [NaN, 0, 1, /ra must be a finite number/],
    [Infinity, 0, 1, /ra must be a finite number/],
    [10, 90.5, 1, /dec must be within \[-90, 90\]/],
    [10, NaN, 1, /dec must be within/],
    [10, 0, 0, /radius must be within \(0, 180\]/],
    [10, 0, -1, /radius must be within/],
    [10, 0, 181, /radius must be within/],
    [10, 0, NaN, /radius must be within/],
  ])('cone (%s, %s, %s) is refused with a RangeError naming the argument', (ra, dec, r, message) => {
    const moc = parseMocAscii('0/1');
    expect(() => moc.intersectsCone(ra, dec, r)).toThrow(RangeError);
    expect(() => moc.intersectsCone(ra, dec, r)).toThrow(message);
    expect(() => moc.coneOverlapFraction(ra, dec, r)).toThrow(message);
    expect(() => SMoc.fromCone(ra, dec, r, 3)).toThrow(message);
  });

  it('refuses a cone walk that could not finish', () => {
    expect(() => SMoc.fromCone(0, 0, 90, 29)).toThrow(/too fine/);
    expect(SMoc.fromCone(0, 0, 1 / 3600, 29).isEmpty()).toBe(false);
  });
});

describe('properties', () => {
  it('toAscii is idempotent and parse(toAscii(m)) equals m, maxOrder included', () => {
    fc.assert(
      fc.property(mocArb, (m) => {
        const text = m.toAscii();
        const back = parseMocAscii(text);
        expect(back.equals(m)).toBe(true);
        expect(back.maxOrder).toBe(m.maxOrder);
        expect(back.toAscii()).toBe(text);
        expect(parseMocJson(JSON.parse(JSON.stringify(m.toJson()))).equals(m)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('union and intersection obey the set laws', () => {
    fc.assert(
      fc.property(mocArb, mocArb, mocArb, (a, b, c) => {
        expect(a.union(b).equals(b.union(a))).toBe(true);
        expect(a.intersection(b).equals(b.intersection(a))).toBe(true);
        expect(a.union(b).union(c).equals(a.union(b.union(c)))).toBe(true);
        expect(a.intersection(b).intersection(c).equals(a.intersection(b.intersection(c)))).toBe(true);
        expect(a.union(a).equals(a)).toBe(true);
        expect(a.intersection(a).equals(a)).toBe(true);
        expect(a.intersection(b.union(c)).equals(a.intersection(b).union(a.intersection(c)))).toBe(true);
        expect(a.union(b.intersection(c)).equals(a.union(b).intersection(a.union(c)))).toBe(true);
        expect(a.union(a.intersection(b)).sameCoverage(a)).toBe(true);
        expect(a.intersection(a.union(b)).sameCoverage(a)).toBe(true);
        expect(a.intersects(b)).toBe(!a.intersection(b).isEmpty());
        // Inclusion–exclusion on exact cell counts.
        expect(countCells(a.union(b).ranges) + countCells(a.intersection(b).ranges)).toBe(countCells(a.ranges) + countCells(b.ranges));
        expect(a.union(SMoc.empty()).sameCoverage(a)).toBe(true);
        expect(a.intersection(SMoc.fullSky()).sameCoverage(a)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('degrade gives a coarser superset', () => {
    fc.assert(
      fc.property(mocArb, fc.integer({ min: 0, max: 29 }), (m, order) => {
        const d = m.degrade(order);
        expect(d.maxOrder).toBe(Math.min(order, m.maxOrder));
        expect(d.intersection(m).sameCoverage(m)).toBe(true);
        expect(parseMocAscii(d.toAscii()).equals(d)).toBe(true);
        // Degrading is idempotent and monotone.
        expect(d.degrade(order).equals(d)).toBe(true);
        if (order > 0) expect(m.degrade(order - 1).intersection(d).sameCoverage(d)).toBe(true);
        expect(d.skyFraction()).toBeGreaterThanOrEqual(m.skyFraction());
      }),
      { numRuns: 300 },
    );
  });

  // Hostile input: whatever a site or a caller sends, the parsers answer a MOC or their own coded
  // error (INVALID_MOC at the edges), never another exception, and what they accept round-trips.
  const mocToken = fc.oneof(
    fc.constantFrom('/', '-', ' ', '\n', '\t', ',', 's', 't'),
    fc.integer({ min: 0, max: 40 }).map(String),
    fc.bigInt({ min: 0n, max: 2n ** 66n }).map(String),
    fc.string({ maxLength: 3 }),
  );
  const accepted = (parse: () => SMoc, errorClass: typeof MocSyntaxError | typeof MocJsonError) => {
    let moc: SMoc;
    try {
      moc = parse();
    } catch (err) {
      expect(err).toBeInstanceOf(errorClass);
      return;
    }
    expect(parseMocAscii(moc.toAscii()).equals(moc)).toBe(true);
  };

  it('any text over the MOC alphabet (and beyond) parses or is refused with MocSyntaxError', () => {
    fc.assert(
      fc.property(fc.array(mocToken, { maxLength: 60 }), (tokens) => accepted(() => parseMocAscii(tokens.join(''), MOC_LIMITS), MocSyntaxError)),
      { numRuns: 2000 },
    );
  });

  it('a valid MOC text with one character inserted, replaced or deleted parses or is refused with MocSyntaxError', () => {
    fc.assert(
      fc.property(mocArb, fc.nat(), fc.constantFrom('insert', 'replace', 'delete'), fc.string({ minLength: 1, maxLength: 1 }), (m, at, edit, ch) => {
        const text = m.toAscii();
        const i = text.length === 0 ? 0 : at % text.length;
        const edited = edit === 'insert' ? text.slice(0, i) + ch + text.slice(i) : edit === 'replace' ? text.slice(0, i) + ch + text.slice(i + 1) : text.slice(0, i) + text.slice(i + 1);
        accepted(() => parseMocAscii(edited, MOC_LIMITS), MocSyntaxError);
      }),
      { numRuns: 1000 },
    );
  });

  it('any JSON value parses as a JSON MOC or is refused with MocJsonError', () => {
    const order = fc.oneof(fc.integer({ min: -2, max: 31 }).map(String), fc.string({ maxLength: 4 }));
    const cell = fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.double(), fc.string({ maxLength: 4 }), fc.constant(null), fc.bigInt({ min: 0n, max: 2n ** 60n }).map(String));
    const jsonMoc = fc.oneof(fc.dictionary(order, fc.oneof(fc.array(cell, { maxLength: 8 }), cell), { maxKeys: 4 }), fc.jsonValue());
    fc.assert(
      fc.property(jsonMoc, fc.boolean(), (value, asText) => accepted(() => parseMocJson(asText ? JSON.stringify(value) : value), MocJsonError)),
      { numRuns: 2000 },
    );
  });
});
