/** Validation of capability documents: JSON Schema (ajv, strict, all errors) plus the rules a schema cannot say. */
import type { ErrorObject } from 'ajv/dist/2020.js';
import { createAjv } from './ajv.js';
import schema from './capability.schema.json' with { type: 'json' };
import type { CapabilityDocument } from './capability.js';
import { ConstellationError, type Violation } from './errors.js';
import { parseMocAscii, MocSyntaxError } from '../coverage/moc.js';


const ajv = createAjv();
const validateSchema = ajv.compile<CapabilityDocument>(schema);

/** Turn one ajv error into a violation whose path points at the offending value. */
function toViolation(err: ErrorObject): Violation {
  let path = err.instancePath || '';
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

/** Rules across fields: unique ids, references to declared services and pools, position columns, MOC syntax. */
function semanticViolations(doc: CapabilityDocument): Violation[] {
  const out: Violation[] = [];
  const unique = (items: { key: string; path: string }[], what: string) => {
    const seen = new Map<string, string>();
    for (const { key, path } of items) {
      const first = seen.get(key);
      if (first !== undefined) out.push({ path, rule: 'unique', message: `duplicate ${what} "${key}" (first at ${first})` });
      else seen.set(key, path);
    }
  };
  unique(doc.services.map((s, i) => ({ key: s.id, path: `/services/${i}/id` })), 'service id');
  unique(doc.datasets.map((d, i) => ({ key: d.id, path: `/datasets/${i}/id` })), 'dataset id');
  unique(doc.datasets.map((d, i) => ({ key: `${d.service}\u0000${d.table}`, path: `/datasets/${i}/table` })), 'table of one service');
  unique(doc.compute.map((c, i) => ({ key: c.id, path: `/compute/${i}/id` })), 'compute pool id');
  unique(doc.images.map((m, i) => ({ key: m.ref, path: `/images/${i}/ref` })), 'image ref');

  const services = new Set(doc.services.map((s) => s.id));
  const pools = new Set(doc.compute.map((c) => c.id));
  doc.datasets.forEach((d, i) => {
    if (!services.has(d.service)) {
      out.push({ path: `/datasets/${i}/service`, rule: 'service-reference', message: `names service "${d.service}", which this document does not declare` });
    }
    if (d.position && d.columns && d.columns.length > 0) {
      const names = new Set(d.columns.map((c) => c.name));
      for (const axis of ['ra', 'dec'] as const) {
        if (!names.has(d.position[axis])) {
          out.push({ path: `/datasets/${i}/position/${axis}`, rule: 'column-reference', message: `names column "${d.position[axis]}", which the dataset's columns do not list` });
        }
      }
    }
    if (d.columns) unique(d.columns.map((c, j) => ({ key: c.name, path: `/datasets/${i}/columns/${j}/name` })), `column of ${d.id}`);
    if (d.coverage !== undefined) {
      try {
        parseMocAscii(d.coverage);
      } catch (err) {
        if (!(err instanceof MocSyntaxError)) throw err;
        out.push({ path: `/datasets/${i}/coverage`, rule: 'moc', message: (err as Error).message });
      }
    }
  });
  doc.compute.forEach((c, i) => {
    if (c.service !== undefined && !services.has(c.service)) {
      out.push({ path: `/compute/${i}/service`, rule: 'service-reference', message: `names service "${c.service}", which this document does not declare` });
    }
    if (c.freeCores !== undefined && c.freeCores > c.cores) {
      out.push({ path: `/compute/${i}/freeCores`, rule: 'capacity', message: `freeCores ${c.freeCores} exceeds cores ${c.cores}` });
    }
  });
  doc.images.forEach((m, i) => {
    m.compute?.forEach((p, j) => {
      if (!pools.has(p)) out.push({ path: `/images/${i}/compute/${j}`, rule: 'compute-reference', message: `names compute pool "${p}", which this document does not declare` });
    });
  });
  return out;
}

/** Every violation in `input`, or none; never throws on bad input. */
export function capabilityViolations(input: unknown): Violation[] {
  if (!validateSchema(input)) return (validateSchema.errors ?? []).map(toViolation);
  return semanticViolations(input);
}

/**
 * Validate and normalise a capability document: returns a deep copy with every MOC in
 * normal form and dataset ids lower case, or throws INVALID_DOCUMENT listing every violation.
 */
export function validateCapabilityDocument(input: unknown): CapabilityDocument {
  const violations = capabilityViolations(input);
  if (violations.length > 0) {
    throw new ConstellationError('INVALID_DOCUMENT', `capability document rejected: ${violations.length} violation(s); first: ${violations[0].path}: ${violations[0].message}`, { violations });
  }
  const doc = structuredClone(input) as CapabilityDocument;
  for (const d of doc.datasets) {
    if (d.coverage !== undefined) d.coverage = parseMocAscii(d.coverage).toAscii();
  }
  return doc;
}
