/**
 * Validation of capability documents: caps, JSON Schema (ajv, strict) and the rules a schema
 * cannot say, at a cost linear in the document and in bounded slices of the event loop.
 *
 * ajv with allErrors concatenates the errors of every `$ref`'d part into one growing array, so a
 * document of n invalid items cost O(n²) (38.6 s at 16,000 invalid datasets). Here the envelope
 * and each service, dataset, column, compute pool and image are validated on their own, the
 * violations stop at DOCUMENT_LIMITS.violations, and the caps are checked first, before anything
 * looks inside an item. The work is a generator that yields between items: the synchronous entry
 * points run it straight through, the asynchronous one gives the event loop back every few ms.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { createAjv } from './ajv.js';
import schema from './capability.schema.json' with { type: 'json' };
import type { CapabilityDocument, DatasetDoc } from './capability.js';
import { ConstellationError, type Violation } from './errors.js';
import { MOC_LIMITS } from '../coverage/limits.js';
import { MocSyntaxError, MocTooLargeError, parseMocAscii } from '../coverage/moc.js';
import { normalMocFraction } from '../coverage/normal-moc.js';

/** Caps per document; the array caps are the schema's maxItems, so the two cannot disagree. */
export const DOCUMENT_LIMITS = Object.freeze({
  services: schema.properties.services.maxItems,
  datasets: schema.properties.datasets.maxItems,
  compute: schema.properties.compute.maxItems,
  images: schema.properties.images.maxItems,
  columnsPerDataset: schema.$defs.dataset.properties.columns.maxItems,
  /** Columns of all datasets together (one replica_columns row each). */
  columns: 500_000,
  /** Characters of MOC text of all datasets together (each MOC also has its own caps, coverage/limits.ts). */
  mocChars: 2_097_152,
  /** Violations reported; validation stops once this many are found. */
  violations: 100,
});

/** The earliest `asOf` accepted (older is a wrong clock or a wrong field, not a real document). */
export const AS_OF_EARLIEST = Date.UTC(2000, 0, 1);
/** How far in the future `asOf` may be (clock skew between a site and the broker). */
export const AS_OF_MAX_SKEW_MS = 5 * 60_000;

/** Milliseconds of validation between two yields to the event loop (asynchronous entry point). */
const SLICE_MS = 15;

const ajv = createAjv();
const base = schema.$id.replace(/\.json$/, '');
const defs = schema.$defs;
// Each part compiled on its own (the shared $defs resolve its references); arrays of items are
// left to the loops below, which check every item with the item's own validator.
const part = (name: string, def: object): ValidateFunction => ajv.compile({ $id: `${base}-${name}.json`, $defs: defs, ...def });
const ARRAY = { type: 'array' };
const { $id: _id, $defs: _defs, ...top } = schema;
const validateEnvelope = part('envelope', { ...top, properties: { ...top.properties, services: ARRAY, datasets: ARRAY, compute: ARRAY, images: ARRAY } });
const validateService = part('service', defs.service);
const validateDataset = part('dataset', { ...defs.dataset, properties: { ...defs.dataset.properties, columns: ARRAY } });
const validateColumn = part('column', defs.column);
const validatePool = part('compute-pool', defs.computePool);
const validateImage = part('image', defs.image);

/** Violations found so far, up to the cap; `more` once one past the cap was found. */
class Found {
  readonly list: Violation[] = [];
  more = false;
  get full(): boolean {
    return this.list.length >= DOCUMENT_LIMITS.violations;
  }
  add(v: Violation): void {
    if (this.full) this.more = true;
    else this.list.push(v);
  }
}

/** Turn one ajv error into a violation whose path (under `prefix`) points at the offending value. */
function toViolation(err: ErrorObject, prefix = ''): Violation {
  let path = prefix + (err.instancePath || '');
  let message = err.message ?? 'is invalid';
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    path = `${path}/${escapePointer(extra)}`;
    message = `unknown property "${extra}"`;
  } else if (err.keyword === 'required') {
    const missing = (err.params as { missingProperty: string }).missingProperty;
    path = `${path}/${escapePointer(missing)}`;
    message = `required property "${missing}" is missing`;
  } else if (err.keyword === 'enum') {
    const allowed = (err.params as { allowedValues: unknown[] }).allowedValues;
    message = `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (err.keyword === 'const') {
    message = `must be ${JSON.stringify((err.params as { allowedValue: unknown }).allowedValue)}`;
  }
  return { path: path || '/', rule: err.keyword, message };
}

function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Check one value against `validate`, adding its violations under `prefix`; false when invalid. */
function check(validate: ValidateFunction, value: unknown, prefix: string, found: Found): boolean {
  if (validate(value)) return true;
  for (const err of validate.errors ?? []) {
    found.add(toViolation(err, prefix));
    if (found.more) break;
  }
  return false;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const lengthOf = (v: unknown): number => (Array.isArray(v) ? v.length : 0);

/** The caps, checked on array lengths alone so an oversized document costs nothing more. */
function capViolations(doc: Record<string, unknown>): Violation[] {
  const out: Violation[] = [];
  const cap = (path: string, n: number, max: number, what: string) => {
    if (n > max) out.push({ path, rule: 'maxItems', message: `has ${n} ${what}; at most ${max} are accepted per document` });
  };
  for (const key of ['services', 'datasets', 'compute', 'images'] as const) cap(`/${key}`, lengthOf(doc[key]), DOCUMENT_LIMITS[key], key === 'compute' ? 'compute pools' : key);
  if (out.length > 0 || !Array.isArray(doc.datasets)) return out;
  let columns = 0;
  let mocChars = 0;
  doc.datasets.forEach((d: unknown, i) => {
    if (!isObject(d)) return;
    const n = lengthOf(d.columns);
    if (n > DOCUMENT_LIMITS.columnsPerDataset) {
      out.push({ path: `/datasets/${i}/columns`, rule: 'maxItems', message: `has ${n} columns; at most ${DOCUMENT_LIMITS.columnsPerDataset} are accepted per dataset` });
    }
    columns += n;
    if (typeof d.coverage === 'string') mocChars += d.coverage.length;
  });
  if (columns > DOCUMENT_LIMITS.columns) {
    out.push({ path: '/datasets', rule: 'limit', message: `has ${columns} columns in all; at most ${DOCUMENT_LIMITS.columns} are accepted per document` });
  }
  if (mocChars > DOCUMENT_LIMITS.mocChars) {
    out.push({ path: '/datasets', rule: 'limit', message: `has ${mocChars} characters of coverage in all; at most ${DOCUMENT_LIMITS.mocChars} are accepted per document` });
  }
  return out.slice(0, DOCUMENT_LIMITS.violations);
}

// A NUL (PostgreSQL text refuses it) or a UTF-16 surrogate without its pair (no Unicode character:
// it cannot be stored as UTF-8 nor read back as JSON).
const UNSTORABLE = /\u0000|\p{Cs}/u;

/** Strings of `value` (at `path`, without its property `skip`) that cannot be stored: NUL characters and lone surrogates. */
function stringViolations(value: unknown, path: string, found: Found, skip?: string): void {
  // Nearly every document has none: look first without building a path per value, which cost
  // most of this walk (a JSON pointer for each of a document's thousands of strings).
  if (!holdsUnstorable(value, skip)) return;
  const stack: [unknown, string][] = isObject(value) && skip !== undefined
    ? Object.entries(value).flatMap(([k, x]): [unknown, string][] => (k === skip ? [] : [[x, `${path}/${escapePointer(k)}`]]))
    : [[value, path]];
  while (stack.length > 0 && !found.more) {
    const [v, p] = stack.pop()!;
    if (typeof v === 'string') {
      const bad = UNSTORABLE.exec(v);
      if (bad) {
        found.add(bad[0] === '\u0000'
          ? { path: p || '/', rule: 'no-nul', message: `contains a NUL character (U+0000) at index ${bad.index}` }
          : { path: p || '/', rule: 'unicode', message: `contains an unpaired UTF-16 surrogate at index ${bad.index}` });
      }
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${p}/${i}`]);
    } else if (isObject(v)) {
      for (const [k, x] of Object.entries(v)) stack.push([x, `${p}/${escapePointer(k)}`]);
    }
  }
}

/** Whether a string of `value` (without its property `skip`) cannot be stored, as stringViolations would find. */
function holdsUnstorable(value: unknown, skip?: string): boolean {
  const stack: unknown[] = isObject(value) && skip !== undefined ? Object.entries(value).flatMap(([k, x]) => (k === skip ? [] : [x])) : [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) return true;
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (isObject(v)) {
      for (const x of Object.values(v)) stack.push(x);
    }
  }
  return false;
}

/** `asOf` must be a real instant between 2000 and a few minutes from now (see the README). */
function asOfViolation(asOf: string, now: number): Violation | undefined {
  const t = Date.parse(asOf);
  if (!Number.isFinite(t)) return { path: '/asOf', rule: 'format', message: `"${asOf}" is not an instant (a leap second or out of range)` };
  if (t < AS_OF_EARLIEST) return { path: '/asOf', rule: 'not-before', message: `${asOf} is before ${new Date(AS_OF_EARLIEST).toISOString()}` };
  if (t > now + AS_OF_MAX_SKEW_MS) {
    return { path: '/asOf', rule: 'not-future', message: `${asOf} is more than ${AS_OF_MAX_SKEW_MS / 60_000} minutes after the broker's clock (${new Date(now).toISOString()})` };
  }
  return undefined;
}

/** Schema and storage checks of every part; yields between items. */
function* schemaPass(input: unknown, found: Found, now: number): Generator<void, void, void> {
  check(validateEnvelope, input, '', found);
  if (!isObject(input)) return;
  const doc = input;
  stringViolations(doc.site, '/site', found);
  if (typeof doc.asOf === 'string' && !found.list.some((v) => v.path === '/asOf')) {
    const asOf = asOfViolation(doc.asOf, now);
    if (asOf) found.add(asOf);
  }
  const parts = [
    ['services', validateService],
    ['datasets', validateDataset],
    ['compute', validatePool],
    ['images', validateImage],
  ] as const;
  for (const [key, validate] of parts) {
    const items = Array.isArray(doc[key]) ? doc[key] : [];
    for (let i = 0; i < items.length && !found.more; i++) {
      const path = `/${key}/${i}`;
      const item = items[i];
      // A dataset's columns are walked one by one below.
      if (check(validate, item, path, found)) stringViolations(item, path, found, key === 'datasets' ? 'columns' : undefined);
      const columns = key === 'datasets' && isObject(item) && Array.isArray(item.columns) ? item.columns : [];
      for (let j = 0; j < columns.length && !found.more; j++) {
        if (check(validateColumn, columns[j], `${path}/columns/${j}`, found)) stringViolations(columns[j], `${path}/columns/${j}`, found);
      }
      yield;
    }
  }
}

/** Reports a key seen twice; paths are built only for the duplicates. */
class Unique {
  private readonly seen = new Map<string, number>();
  constructor(
    private readonly what: string,
    private readonly pathOf: (i: number) => string,
  ) {}
  add(key: string, i: number, found: Found): void {
    const first = this.seen.get(key);
    if (first === undefined) this.seen.set(key, i);
    else found.add({ path: this.pathOf(i), rule: 'unique', message: `duplicate ${this.what} "${key}" (first at ${this.pathOf(first)})` });
  }
}

/** Rules across fields: unique ids, references to declared services and pools, position columns; yields between datasets. */
function* crossViolations(doc: CapabilityDocument, found: Found): Generator<void, void, void> {
  const services = new Set<string>();
  const serviceIds = new Unique('service id', (i) => `/services/${i}/id`);
  doc.services.forEach((s, i) => {
    serviceIds.add(s.id, i, found);
    services.add(s.id);
  });
  const pools = new Set<string>();
  const poolIds = new Unique('compute pool id', (i) => `/compute/${i}/id`);
  doc.compute.forEach((c, i) => {
    poolIds.add(c.id, i, found);
    pools.add(c.id);
    if (c.service !== undefined && !services.has(c.service)) {
      found.add({ path: `/compute/${i}/service`, rule: 'service-reference', message: `names service "${c.service}", which this document does not declare` });
    }
    if (c.freeCores !== undefined && c.freeCores > c.cores) {
      found.add({ path: `/compute/${i}/freeCores`, rule: 'capacity', message: `freeCores ${c.freeCores} exceeds cores ${c.cores}` });
    }
  });
  const imageRefs = new Unique('image ref', (i) => `/images/${i}/ref`);
  doc.images.forEach((m, i) => {
    imageRefs.add(m.ref, i, found);
    m.compute?.forEach((p, j) => {
      if (!pools.has(p)) found.add({ path: `/images/${i}/compute/${j}`, rule: 'compute-reference', message: `names compute pool "${p}", which this document does not declare` });
    });
  });
  yield;
  const datasetIds = new Unique('dataset id', (i) => `/datasets/${i}/id`);
  const tables = new Unique('table of one service', (i) => `/datasets/${i}/table`);
  for (let i = 0; i < doc.datasets.length && !found.more; i++) {
    const d = doc.datasets[i];
    datasetIds.add(d.id, i, found);
    tables.add(`${d.service}\u0000${d.table}`, i, found);
    if (!services.has(d.service)) {
      found.add({ path: `/datasets/${i}/service`, rule: 'service-reference', message: `names service "${d.service}", which this document does not declare` });
    }
    if (d.columns && d.columns.length > 0) {
      const names = new Unique(`column of ${d.id}`, (j) => `/datasets/${i}/columns/${j}/name`);
      d.columns.forEach((c, j) => names.add(c.name, j, found));
      if (d.position) {
        for (const axis of ['ra', 'dec'] as const) {
          if (!d.columns.some((c) => c.name === d.position![axis])) {
            found.add({ path: `/datasets/${i}/position/${axis}`, rule: 'column-reference', message: `names column "${d.position[axis]}", which the dataset's columns do not list` });
          }
        }
      }
    }
    yield;
  }
}

/**
 * Every check in order (caps, schema and storage, cross-field rules, MOCs), yielding between
 * items; returns the normalised copy (MOCs in normal form), or undefined with `found` filled.
 * A coverage text in `normalMocs` is kept as it is, not parsed (see {@link ValidationOptions}).
 */
function* validation(input: unknown, found: Found, now: number, options: ValidationOptions = {}): Generator<void, CapabilityDocument | undefined, void> {
  const { normalMocs, fractions } = options;
  if (isObject(input)) for (const v of capViolations(input)) found.add(v);
  if (found.list.length > 0) return undefined;
  yield* schemaPass(input, found, now);
  if (found.list.length > 0) return undefined;
  const doc = input as CapabilityDocument;
  yield* crossViolations(doc, found);
  // Each distinct MOC is parsed once, under the caps, and kept in normal form for the copy.
  const normal = new Map<string, string>();
  for (let i = 0; i < doc.datasets.length && !found.more; i++) {
    const text = doc.datasets[i].coverage;
    if (text === undefined || normal.has(text)) continue;
    // Already known to be a MOC in normal form within the caps: parsing it would give it back.
    if (normalMocs?.has(text)) {
      normal.set(text, text);
      continue;
    }
    // Printed in normal form already (as sites usually send it): no need to parse and print it.
    const fraction = normalMocFraction(text, MOC_LIMITS);
    if (fraction !== undefined) {
      normal.set(text, text);
      fractions?.set(text, fraction);
      // Read as long as a parse would be for a long text: the loop is still given back.
      yield;
      continue;
    }
    try {
      const moc = parseMocAscii(text, MOC_LIMITS);
      const normalText = moc.toAscii();
      normal.set(text, normalText);
      fractions?.set(normalText, moc.skyFraction());
    } catch (err) {
      if (!(err instanceof MocSyntaxError)) throw err;
      found.add({ path: `/datasets/${i}/coverage`, rule: err instanceof MocTooLargeError ? 'moc-limit' : 'moc', message: err.message });
    }
    yield;
  }
  if (found.list.length > 0) return undefined;
  // A deep copy item by item, so a large document is copied in slices too.
  const datasets: DatasetDoc[] = [];
  for (const d of doc.datasets) {
    const copy = structuredClone(d);
    if (copy.coverage !== undefined) copy.coverage = normal.get(copy.coverage)!;
    datasets.push(copy);
    if (datasets.length % 256 === 0) yield;
  }
  const { datasets: _, ...rest } = doc;
  return { ...structuredClone(rest), datasets };
}

function runSync<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Run `steps`, giving the event loop back whenever a slice of SLICE_MS has been used. */
async function runSliced<T>(steps: Generator<void, T, void>): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - start >= SLICE_MS) {
      await yieldToLoop();
      start = performance.now();
    }
  }
}

function rejected(found: Found): ConstellationError {
  const n = found.list.length;
  const count = found.more ? `more than ${n} violations (the first ${n} are listed)` : `${n} violation(s)`;
  const first = found.list[0];
  return new ConstellationError('INVALID_DOCUMENT', `capability document rejected: ${count}; first: ${first.path}: ${first.message}`, { violations: found.list });
}

/**
 * What a caller may tell validation. `normalMocs`: MOC texts already known to be in normal form
 * and within the MOC caps, because this broker's validation produced them (the coverage its
 * store holds for the site, only ever written from validated documents, or the output of a
 * first validation of the same document): a dataset coverage equal to one of them, character
 * for character, is not parsed again. Any other text is parsed under the caps as always.
 */
export interface ValidationOptions {
  normalMocs?: ReadonlySet<string>;
  /**
   * Filled with the sky fraction of each MOC parsed, by its normal form: the store, which keeps
   * each coverage's fraction, then need not parse the document's MOCs again. Texts in
   * `normalMocs` are not parsed and get no entry.
   */
  fractions?: Map<string, number>;
}

/** The violations of `input` (at most DOCUMENT_LIMITS.violations), or none; never throws on bad input. */
export function capabilityViolations(input: unknown, now = Date.now()): Violation[] {
  const found = new Found();
  runSync(validation(input, found, now));
  return found.list;
}

/**
 * Validate and normalise a capability document: returns a deep copy with every MOC in normal
 * form, or throws INVALID_DOCUMENT listing the violations (the first DOCUMENT_LIMITS.violations).
 * Runs to the end in one go: for trusted input (seeds) and small documents.
 */
export function validateCapabilityDocument(input: unknown, now = Date.now(), options: ValidationOptions = {}): CapabilityDocument {
  const found = new Found();
  const doc = runSync(validation(input, found, now, options));
  if (doc === undefined) throw rejected(found);
  return doc;
}

/** {@link validateCapabilityDocument} in slices of a few milliseconds, for documents received over the network. */
export async function validateCapabilityDocumentAsync(input: unknown, now = Date.now(), options: ValidationOptions = {}): Promise<CapabilityDocument> {
  const found = new Found();
  const doc = await runSliced(validation(input, found, now, options));
  if (doc === undefined) throw rejected(found);
  return doc;
}
