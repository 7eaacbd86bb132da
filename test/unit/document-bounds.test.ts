import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseMocArgument } from '../../registry/coverage/arguments.js';
import { INDEX_ORDER, MOC_MAX_CELLS, MOC_MAX_CHARS } from '../../registry/coverage/limits.js';
import type { CapabilityDocument } from '../../registry/model/capability.js';
import { ConstellationError, isConstellationError } from '../../registry/model/errors.js';
import {
  AS_OF_MAX_SKEW_MS,
  DOCUMENT_LIMITS,
  capabilityViolations,
  validateCapabilityDocument,
  validateCapabilityDocumentAsync,
} from '../../registry/model/validate.js';
import { snapshotFromDocuments } from '../../broker/planner/snapshot.js';
import { documentFor } from '../support/documents.js';
import { expectLoopTurned, measureLoop } from '../support/event-loop.js';
import { AT_ONCE_MS } from '../support/wait.js';

type Doc = Record<string, any>;

/** The error `fn` throws (fails the test when it returns). */
function thrown(fn: () => unknown): ConstellationError {
  try {
    fn();
  } catch (err) {
    if (isConstellationError(err)) return err;
    throw err;
  }
  throw new Error('expected a ConstellationError');
}

/** A document of `n` datasets made by `make`. */
function withDatasets(n: number, make: (i: number) => unknown): Doc {
  const doc = documentFor('bulk') as Doc;
  doc.datasets = Array.from({ length: n }, (_, i) => make(i));
  return doc;
}

const validDataset = (i: number) => ({
  id: `survey.t${i}`, service: 'tap', table: `local.t${i}`, rows: 1000 + i, access: { public: true },
  columns: [{ name: 'ra', ucd: 'pos.eq.ra' }, { name: 'dec', ucd: 'pos.eq.dec' }, { name: `mag_${i % 7}`, unit: 'mag' }],
  position: { ra: 'ra', dec: 'dec' },
});

/** An order-29 MOC of `cells` single cells spread over the sky (the costliest kind to parse). */
function order29Moc(cells: number): string {
  const step = (12n << 58n) / BigInt(cells + 1);
  const parts = ['29/'];
  for (let i = 1; i <= cells; i++) parts.push(String(step * BigInt(i)));
  return parts.join(' ');
}

/** Milliseconds `fn` takes. */
function timed(fn: () => unknown): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

describe('capability documents: bounded validation (issue 9, finding 2)', () => {
  it('refuses 150,000 invalid datasets (about 14 MB) by the cap, at once', () => {
    const doc = withDatasets(150_000, (i) => ({ id: `Not Canonical ${i}`, service: 'tap', table: `t${i}`, access: { public: true }, title: 'x'.repeat(40) }));
    expect(JSON.stringify(doc).length).toBeGreaterThan(13_000_000);
    let err!: ConstellationError;
    const ms = timed(() => (err = thrown(() => validateCapabilityDocument(doc))));
    expect(err.kind).toBe('INVALID_DOCUMENT');
    expect(err.violations).toEqual([{ path: '/datasets', rule: 'maxItems', message: expect.stringMatching(/150000 datasets; at most 50000/) }]);
    expect(ms).toBeLessThan(AT_ONCE_MS);
  });

  it('stops after the first 100 violations and says there are more, in time that does not grow with the document', () => {
    // "required" errors were the quadratic case: 4k datasets 0.3 s, 16k 13 s before.
    const cost = (n: number) => {
      const doc = withDatasets(n, (i) => ({ id: `a.b${i}`, table: `t${i}` }));
      let err!: ConstellationError;
      const ms = timed(() => (err = thrown(() => validateCapabilityDocument(doc))));
      expect(err.violations).toHaveLength(DOCUMENT_LIMITS.violations);
      expect(err.violations[0]).toMatchObject({ path: '/datasets/0/service', rule: 'required' });
      expect(err.message).toMatch(/more than 100 violations \(the first 100 are listed\)/);
      return ms;
    };
    cost(1000);
    const ms = [4_000, 16_000, 50_000].map(cost);
    expect(Math.max(...ms)).toBeLessThan(AT_ONCE_MS);
  });

  it('counts every violation when there are few', () => {
    const doc = withDatasets(3, validDataset);
    doc.datasets[1].rows = -1;
    doc.datasets[2].colour = 'blue';
    const err = thrown(() => validateCapabilityDocument(doc));
    expect(err.message).toMatch(/^capability document rejected: 2 violation\(s\)/);
    expect(err.violations.map((v) => `${v.path} ${v.rule}`)).toEqual(['/datasets/1/rows minimum', '/datasets/2/colour additionalProperties']);
  });

  it('caps services, columns per dataset, columns per document and coverage per document', () => {
    const services = documentFor('caps') as Doc;
    services.services = Array.from({ length: DOCUMENT_LIMITS.services + 1 }, (_, i) => ({ id: `s${i}`, type: 'tap', url: 'https://x.example.org' }));
    expect(capabilityViolations(services)).toEqual([expect.objectContaining({ path: '/services', rule: 'maxItems' })]);

    const wide = withDatasets(2, validDataset);
    wide.datasets[1].columns = Array.from({ length: DOCUMENT_LIMITS.columnsPerDataset + 1 }, (_, j) => ({ name: `c${j}` }));
    expect(capabilityViolations(wide)).toEqual([expect.objectContaining({ path: '/datasets/1/columns', rule: 'maxItems' })]);

    const columns = Array.from({ length: DOCUMENT_LIMITS.columnsPerDataset }, (_, j) => ({ name: `c${j}` }));
    const many = withDatasets(Math.ceil(DOCUMENT_LIMITS.columns / DOCUMENT_LIMITS.columnsPerDataset) + 1, (i) => ({ ...validDataset(i), position: undefined, columns }));
    expect(capabilityViolations(many)).toEqual([expect.objectContaining({ path: '/datasets', rule: 'limit', message: expect.stringMatching(/columns in all/) })]);

    const moc = `0/${'0 '.repeat(100_000)}`.slice(0, MOC_MAX_CHARS - 10);
    const mocs = withDatasets(Math.ceil(DOCUMENT_LIMITS.mocChars / moc.length) + 1, (i) => ({ ...validDataset(i), coverage: moc }));
    expect(capabilityViolations(mocs)).toEqual([expect.objectContaining({ path: '/datasets', rule: 'limit', message: expect.stringMatching(/characters of coverage/) })]);
  });

  it('validates a large document asynchronously without holding the event loop', async () => {
    const doc = withDatasets(DOCUMENT_LIMITS.datasets, validDataset);
    // Slices are 15 ms of work.
    const m = await measureLoop(() => validateCapabilityDocumentAsync(doc));
    expect(m.result.datasets).toHaveLength(DOCUMENT_LIMITS.datasets);
    expect(m.result).toEqual(doc);
    expectLoopTurned(m, `validated ${DOCUMENT_LIMITS.datasets} datasets`);
  });
});

describe('capability documents: huge MOCs (issue 9, finding 3)', () => {
  it('refuses a MOC over the character cap or the cell cap, naming the dataset', () => {
    const long = withDatasets(1, (i) => ({ ...validDataset(i), coverage: `0/0-11 ${' '.repeat(MOC_MAX_CHARS)}` }));
    expect(capabilityViolations(long)).toEqual([expect.objectContaining({ path: '/datasets/0/coverage', rule: 'maxLength' })]);
    // Short order-12 cells: under the character cap, one past the cell cap.
    const cells = `12/${Array.from({ length: MOC_MAX_CELLS + 1 }, (_, i) => 2 * i).join(' ')}`;
    expect(cells.length).toBeLessThan(MOC_MAX_CHARS);
    const many = withDatasets(2, (i) => ({ ...validDataset(i), coverage: i === 1 ? cells : '0/1' }));
    let violations: ReturnType<typeof capabilityViolations> = [];
    const ms = timed(() => (violations = capabilityViolations(many)));
    expect(violations).toEqual([expect.objectContaining({ path: '/datasets/1/coverage', rule: 'moc-limit' })]);
    expect(ms).toBeLessThan(AT_ONCE_MS);
  });

  it('refuses seven order-29 MOCs of 2 MB each by the caps', () => {
    const doc = withDatasets(7, (i) => ({ ...validDataset(i), coverage: order29Moc(105_000) }));
    expect(doc.datasets[0].coverage.length).toBeGreaterThan(2_000_000);
    let violations: ReturnType<typeof capabilityViolations> = [];
    const ms = timed(() => (violations = capabilityViolations(doc)));
    expect(violations.map((v) => `${v.path} ${v.rule}`)).toEqual(['/datasets limit']);
    expect(ms).toBeLessThan(AT_ONCE_MS);
    const one = withDatasets(1, (i) => ({ ...validDataset(i), coverage: order29Moc(105_000) }));
    expect(capabilityViolations(one).map((v) => `${v.path} ${v.rule}`)).toEqual(['/datasets/0/coverage maxLength']);
  });

  it('gives a MOC argument the same caps (INVALID_MOC, rule moc-limit) at no cost', () => {
    const huge = `0/0 ${'1'.repeat(8 * 1024 * 1024)}`;
    let err!: ConstellationError;
    const ms = timed(() => (err = thrown(() => parseMocArgument(huge, 'filter.region.moc'))));
    expect(err.kind).toBe('INVALID_MOC');
    expect(err.violations).toEqual([{ path: 'filter.region.moc', rule: 'moc-limit', message: expect.stringMatching(/at most 262144/) }]);
    // Refused by its length before any parsing: the 8 MB parse this replaced blocked 4.3 s.
    expect(ms).toBeLessThan(1000);
    const tooMany = thrown(() => parseMocArgument(`12/${Array.from({ length: MOC_MAX_CELLS + 1 }, (_, i) => 2 * i).join(' ')}`, 'request.region.moc'));
    expect(tooMany.violations[0]).toMatchObject({ path: 'request.region.moc', rule: 'moc-limit' });
    expect(parseMocArgument('0/0-11', 'x').isFullSky()).toBe(true);
  });

  it('keeps the published MOC and plans with it widened to the index order', () => {
    const fine = order29Moc(50);
    const doc = validateCapabilityDocument(documentFor('fine', [{ coverage: fine }]));
    expect(doc.datasets[0].coverage!.startsWith('29/')).toBe(true);
    const replica = snapshotFromDocuments([doc]).replicasOf('survey.table0')[0];
    expect(replica.moc!.maxOrder).toBe(INDEX_ORDER);
  });
});

describe('capability documents: values the database cannot store (issue 9, finding 12)', () => {
  const now = Date.parse('2026-12-01T00:00:00Z');
  const rule = (edit: (d: Doc) => void) => {
    const doc = structuredClone(documentFor('store', [{}])) as Doc;
    doc.compute = [{ id: 'b', kind: 'batch', cores: 4, memoryGb: 8 }];
    edit(doc);
    return capabilityViolations(doc, now).map((v) => `${v.path} ${v.rule}`);
  };

  it.each([
    ['a NUL in a name', (d: Doc) => { d.site.name = 'a\u0000b'; }, '/site/name no-nul'],
    ['a NUL in a column unit', (d: Doc) => { d.datasets[0].columns[1].unit = 'deg\u0000'; }, '/datasets/0/columns/1/unit no-nul'],
    ['a NUL in a group', (d: Doc) => { d.datasets[0].access.groups = ['ok', '\u0000']; }, '/datasets/0/access/groups/1 no-nul'],
    ['a lone high surrogate', (d: Doc) => { d.datasets[0].title = 'M\uD800 31'; }, '/datasets/0/title unicode'],
    ['a lone low surrogate', (d: Doc) => { d.services[0].title = '\uDC00'; }, '/services/0/title unicode'],
    ['rows: 1e300', (d: Doc) => { d.datasets[0].rows = 1e300; }, '/datasets/0/rows maximum'],
    ['rows beyond int8', (d: Doc) => { d.datasets[0].rows = 2 ** 63; }, '/datasets/0/rows maximum'],
    ['maxRec beyond int8', (d: Doc) => { d.services[0].maxRec = 1e19; }, '/services/0/maxRec maximum'],
    ['rowBytes beyond int4', (d: Doc) => { d.datasets[0].rowBytes = 2 ** 31; }, '/datasets/0/rowBytes maximum'],
    ['cores beyond int4', (d: Doc) => { d.compute[0].cores = 2 ** 31; }, '/compute/0/cores maximum'],
    ['maxWalltimeS beyond int4', (d: Doc) => { d.compute[0].maxWalltimeS = 1e10; }, '/compute/0/maxWalltimeS maximum'],
    ['asOf in year 0', (d: Doc) => { d.asOf = '0000-01-01T00:00:00Z'; }, '/asOf not-before'],
    ['asOf in year 9999', (d: Doc) => { d.asOf = '9999-12-31T23:59:59Z'; }, '/asOf not-future'],
    ['asOf a day ahead', (d: Doc) => { d.asOf = new Date(now + 86_400_000).toISOString(); }, '/asOf not-future'],
    ['asOf at a leap second', (d: Doc) => { d.asOf = '2016-12-31T23:59:60Z'; }, '/asOf format'],
  ])('refuses %s with its path and rule', (_, edit, expected) => {
    expect(rule(edit)).toEqual([expected]);
  });

  it('accepts the largest storable numbers and an asOf within the clock skew', () => {
    expect(rule((d) => {
      d.datasets[0].rows = Number.MAX_SAFE_INTEGER;
      d.datasets[0].rowBytes = 2 ** 31 - 1;
      d.compute[0].cores = 2 ** 31 - 1;
      d.asOf = new Date(now + AS_OF_MAX_SKEW_MS - 1000).toISOString();
      d.datasets[0].title = 'M 31 \u{1F30C} (a paired surrogate)';
    })).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: every generated valid document validates; a mutated one is accepted or refused
// with INVALID_DOCUMENT, never another error.

const ident = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/);
const text = fc.string({ maxLength: 20 });
const int4 = fc.integer({ min: 0, max: 2 ** 31 - 1 });
const NOW = Date.parse('2026-12-01T00:00:00Z');

const validDocument: fc.Arbitrary<CapabilityDocument> = fc
  .record({
    datasets: fc.uniqueArray(fc.tuple(ident, ident), { maxLength: 6, selector: ([s, t]) => `${s}.${t}` }),
    columns: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/\u0000|\p{Cs}/u.test(s)), { maxLength: 5 }),
    rows: fc.option(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
    rowBytes: fc.option(fc.integer({ min: 1, max: 2 ** 31 - 1 }), { nil: undefined }),
    cores: int4,
    title: fc.option(text.filter((s) => !/\u0000|\p{Cs}/u.test(s)), { nil: undefined }),
    coverage: fc.option(fc.constantFrom('0/0-11', '2/5-9', '1/0 3/', '29/', ''), { nil: undefined }),
    asOf: fc.integer({ min: Date.UTC(2000, 0, 1), max: NOW }),
  })
  .map((g) => {
    const doc = documentFor('prop', [], { asOf: new Date(g.asOf).toISOString() });
    doc.datasets = g.datasets.map(([s, t], i) => ({
      id: `${s}.${t}`, service: 'tap', table: `${s}.${t}`, access: { public: i % 2 === 0 },
      ...(g.rows === undefined ? {} : { rows: g.rows }),
      ...(g.rowBytes === undefined ? {} : { rowBytes: g.rowBytes }),
      ...(g.title === undefined ? {} : { title: g.title }),
      ...(g.coverage === undefined ? {} : { coverage: g.coverage }),
      columns: g.columns.map((name) => ({ name })),
    }));
    doc.compute = [{ id: 'pool', kind: 'batch', cores: g.cores, memoryGb: 1, freeCores: 0 }];
    return doc;
  });

/** Every JSON pointer-like path (as key lists) of a JSON value. */
function pathsOf(value: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...at, i], out));
  else if (typeof value === 'object' && value !== null) for (const [k, v] of Object.entries(value)) pathsOf(v, [...at, k], out);
  return out;
}

const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(1e300, -1, 2 ** 63, 2 ** 31, 0.5, Number.MAX_SAFE_INTEGER + 2, '\u0000', 'a\uD800', '\uDC00b', '', null, true, [], {}),
  fc.constantFrom('0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '2016-12-31T23:59:60Z', '30/1', '0/12', `29/${'1 '.repeat(30_000)}`),
);

describe('capability documents: properties', () => {
  it('any generated valid document validates (and normalising it is stable)', () => {
    fc.assert(fc.property(validDocument, (doc) => {
      expect(capabilityViolations(doc, NOW)).toEqual([]);
      const normal = validateCapabilityDocument(doc, NOW);
      expect(validateCapabilityDocument(normal, NOW)).toEqual(normal);
    }), { numRuns: 200 });
  });

  it('a random mutation is accepted or refused with INVALID_DOCUMENT, never another error', () => {
    fc.assert(fc.property(validDocument, fc.nat(), fc.oneof(fc.constant('delete' as const), hostileValue), (doc, pick, value) => {
      const paths = pathsOf(doc);
      const path = paths[pick % paths.length];
      let mutated: unknown = structuredClone(doc);
      if (path.length === 0) mutated = value === 'delete' ? undefined : value;
      else {
        const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], mutated);
        const key = path[path.length - 1];
        if (value === 'delete') {
          if (Array.isArray(parent)) parent.splice(Number(key), 1);
          else delete parent[key];
        } else parent[key] = value;
      }
      try {
        validateCapabilityDocument(mutated, NOW);
      } catch (err) {
        expect(isConstellationError(err) && err.kind).toBe('INVALID_DOCUMENT');
        const e = err as ConstellationError;
        expect(e.violations.length).toBeGreaterThan(0);
        for (const v of e.violations) expect(v.path).toMatch(/^\//);
      }
    }), { numRuns: 500 });
  });
});
