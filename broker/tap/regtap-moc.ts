/**
 * RegTAP spatial constraints without pgSphere: `1 = CONTAINS(MOC(6, CIRCLE(180, 0, 1)), coverage)`
 * (what pyvo's registry.Spatial sends), CONTAINS(coverage, …) and INTERSECTS(…, coverage) are
 * evaluated here, exactly, with the registry's own MOC code against every distinct coverage the
 * caller can see, and each call is replaced by `CASE WHEN coverage IN (<the MOCs that pass>)
 * THEN 1 ELSE 0 END` before the query is translated. NULL coverage stays NULL, as in SQL.
 */
import { cloneAst, type ColumnRef, type Expr, type FunctionCall, type Query } from '../../adapters/ivoa/adql/index.js';
import { MAX_ORDER, nestIndexBig, radecToVec, vecToCell } from '../../registry/coverage/healpix.js';
import { MOC_LIMITS } from '../../registry/coverage/limits.js';
import { SMoc, parseMocAscii } from '../../registry/coverage/moc.js';
import { invalidArgument } from '../../registry/model/errors.js';

/** A constant region of a spatial constraint. */
type Region = { kind: 'moc'; moc: SMoc } | { kind: 'point'; ra: number; dec: number } | { kind: 'circle'; ra: number; dec: number; r: number };

/** Whether the query has a spatial call this module rewrites (a MOC(...) argument or the `coverage` column). */
export function hasSpatialConstraint(query: Query): boolean {
  let found = false;
  walk(query, (f) => {
    found ||= spatialArgs(f) !== undefined;
    return undefined;
  });
  return found;
}

/** `query` with every CONTAINS/INTERSECTS over a MOC and `coverage` replaced by its value per coverage in `coverages`. */
export function rewriteSpatial(query: Query, coverages: readonly string[]): Query {
  const copy = cloneAst(query);
  const parsed = new Map<string, SMoc>();
  const mocOf = (text: string) => {
    let m = parsed.get(text);
    if (!m) parsed.set(text, (m = parseMocAscii(text)));
    return m;
  };
  walk(copy, (f) => {
    const args = spatialArgs(f);
    if (!args) return undefined;
    const [a, b] = args;
    if (a.kind === 'column' && b.kind === 'column') throw invalidArgument('QUERY', `${f.name} of coverage with coverage is not a spatial constraint; give a MOC, POINT or CIRCLE on one side`);
    const column = a.kind === 'column' ? a.ref : b.kind === 'column' ? b.ref : undefined;
    const region = a.kind === 'region' ? a.region : (b as { kind: 'region'; region: Region }).region;
    const test = (coverage: SMoc): boolean => {
      if (f.name === 'INTERSECTS') return intersects(region, coverage);
      // CONTAINS(x, y): x lies within y.
      return a.kind === 'region' ? within(region, coverage) : covers(coverage, region);
    };
    if (!column) {
      // Both sides constant (MOC vs MOC): the answer is a constant.
      const other = (b as { kind: 'region'; region: Region }).region;
      if (region.kind !== 'moc' || other.kind !== 'moc') throw invalidArgument('QUERY', `${f.name} of two constant regions is supported for MOCs only`);
      const value = f.name === 'INTERSECTS' ? region.moc.intersects(other.moc) : within(region, other.moc);
      return { kind: 'number', text: value ? '1' : '0' };
    }
    const passing = [...new Set(coverages)].filter((c) => test(mocOf(c)));
    const isNull: Expr = { kind: 'isNull', not: false, expr: column };
    const whens: { when: Expr; then: Expr }[] = [{ when: isNull, then: { kind: 'null' } }];
    if (passing.length > 0) whens.push({ when: { kind: 'in', not: false, expr: column, list: passing.map((value) => ({ kind: 'string', value })) }, then: { kind: 'number', text: '1' } });
    return { kind: 'case', whens, else: { kind: 'number', text: '0' } };
  });
  return copy;
}

type Side = { kind: 'column'; ref: ColumnRef } | { kind: 'region'; region: Region };

/** The two sides of a CONTAINS/INTERSECTS this module handles, or undefined for an ordinary (point/circle column) one. */
function spatialArgs(f: FunctionCall): [Side, Side] | undefined {
  if (f.udf || (f.name !== 'CONTAINS' && f.name !== 'INTERSECTS') || f.args.length !== 2) return undefined;
  const involved = f.args.some((a) => isCoverage(a) || isMocCall(a));
  if (!involved) return undefined;
  return f.args.map((a): Side => (isCoverage(a) ? { kind: 'column', ref: a } : { kind: 'region', region: regionOf(a, f.name) })) as [Side, Side];
}

function isCoverage(e: Expr): e is ColumnRef {
  return e.kind === 'column' && e.column.name.toLowerCase() === 'coverage';
}

// Not a type guard: a call that is not MOC() is still a function call.
function isMocCall(e: Expr): boolean {
  return e.kind === 'function' && e.udf === true && !e.qualifier && e.name.toLowerCase() === 'moc';
}

/** A constant region: MOC('ascii'), MOC(order, POINT|CIRCLE), or a bare POINT or CIRCLE; anything else is INVALID_ARGUMENT. */
function regionOf(e: Expr, where: string): Region {
  if (e.kind === 'function' && isMocCall(e)) {
    if (e.args.length === 1 && e.args[0].kind === 'string') {
      try {
        return { kind: 'moc', moc: parseMocAscii(e.args[0].value, MOC_LIMITS) };
      } catch (err) {
        throw invalidArgument('QUERY', `MOC('${e.args[0].value.slice(0, 40)}') in ${where} is not a MOC 2.0 ASCII string: ${(err as Error).message}`);
      }
    }
    if (e.args.length === 2) {
      const order = constant(e.args[0], 'the order of MOC()');
      if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER) throw invalidArgument('QUERY', `MOC(order, …): the order must be an integer from 0 to ${MAX_ORDER}, not ${order}`);
      const shape = regionOf(e.args[1], 'MOC()');
      if (shape.kind === 'moc') throw invalidArgument('QUERY', 'MOC(order, …) takes a POINT or a CIRCLE');
      try {
        if (shape.kind === 'point') {
          const { f, x, y } = vecToCell(order, radecToVec(shape.ra, shape.dec));
          return { kind: 'moc', moc: SMoc.fromCells(order, [nestIndexBig(order, f, x, y)]) };
        }
        return { kind: 'moc', moc: SMoc.fromCone(shape.ra, shape.dec, shape.r, order) };
      } catch (err) {
        throw invalidArgument('QUERY', `MOC(${order}, …) cannot be built: ${(err as Error).message}`);
      }
    }
    throw invalidArgument('QUERY', "MOC() takes an ASCII MOC string, or an order and a POINT or CIRCLE: MOC('6/1234') or MOC(6, CIRCLE(180, 0, 1))");
  }
  if (e.kind === 'function' && !e.udf && (e.name === 'POINT' || e.name === 'CIRCLE')) {
    // A leading coordinate-system string (ADQL 2.0) is ignored.
    const args = e.args.length > 0 && e.args[0].kind === 'string' ? e.args.slice(1) : e.args;
    const values = args.map((a) => constant(a, `the arguments of ${e.name}`));
    const [ra, dec, r] = values;
    if (e.name === 'POINT' && values.length === 2) return checked({ kind: 'point', ra, dec });
    if (e.name === 'CIRCLE' && values.length === 3) return checked({ kind: 'circle', ra, dec, r });
    throw invalidArgument('QUERY', `${e.name} in ${where} takes ${e.name === 'POINT' ? 'ra, dec' : 'ra, dec, radius'} as numbers`);
  }
  throw invalidArgument('QUERY', `${where} with coverage takes a constant MOC(...), POINT(...) or CIRCLE(...) (POLYGON and BOX are not supported against coverage)`);
}

function checked<R extends Region>(r: R): R {
  if (r.kind === 'moc') return r;
  if (!(r.dec >= -90 && r.dec <= 90) || !Number.isFinite(r.ra)) throw invalidArgument('QUERY', `a position needs a finite ra and a dec from -90 to 90, not (${r.ra}, ${r.dec})`);
  if (r.kind === 'circle' && !(r.r > 0 && r.r <= 180)) throw invalidArgument('QUERY', `a CIRCLE radius must be more than 0 and at most 180 degrees, not ${r.r}`);
  return r;
}

/** A numeric literal, possibly signed. */
function constant(e: Expr, what: string): number {
  if (e.kind === 'number' && !/^0x/i.test(e.text)) return Number(e.text);
  if (e.kind === 'unary' && e.op !== '~') {
    const v = constant(e.operand, what);
    return e.op === '-' ? -v : v;
  }
  throw invalidArgument('QUERY', `${what} must be numbers written out (constants)`);
}

/** The region lies within the coverage. */
function within(region: Region, coverage: SMoc): boolean {
  if (region.kind === 'point') return coverage.containsPoint(region.ra, region.dec);
  const moc = region.kind === 'moc' ? region.moc : coneMoc(region, Math.max(coverage.maxOrder, 6));
  return moc.intersection(coverage).sameCoverage(moc);
}

/** The coverage lies within the region. */
function covers(coverage: SMoc, region: Region): boolean {
  if (region.kind === 'point') return false;
  const moc = region.kind === 'moc' ? region.moc : coneMoc(region, Math.max(coverage.maxOrder, 6));
  return coverage.intersection(moc).sameCoverage(coverage) && !coverage.isEmpty();
}

/** A CIRCLE as a MOC at `order` (its inclusive cells), or INVALID_ARGUMENT when that order is too fine for it. */
function coneMoc(c: Region & { kind: 'circle' }, order: number): SMoc {
  try {
    return SMoc.fromCone(c.ra, c.dec, c.r, order);
  } catch (err) {
    throw invalidArgument('QUERY', `CIRCLE(${c.ra}, ${c.dec}, ${c.r}) against a coverage of order ${order}: ${(err as Error).message}; use MOC(order, CIRCLE(...)) with a coarser order`);
  }
}

function intersects(region: Region, coverage: SMoc): boolean {
  if (region.kind === 'point') return coverage.containsPoint(region.ra, region.dec);
  if (region.kind === 'circle') return coverage.intersectsCone(region.ra, region.dec, region.r);
  return region.moc.intersects(coverage);
}

/**
 * Visit every function call of the tree (a plain JSON object), innermost last; when `fn` returns
 * an expression, it replaces the call in its parent.
 */
function walk(node: unknown, fn: (f: FunctionCall) => Expr | undefined): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const replaced = visit(node[i], fn);
      if (replaced) node[i] = replaced;
      else walk(node[i], fn);
    }
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const key of Object.keys(node)) {
    if (key === 'pos') continue;
    const child = (node as Record<string, unknown>)[key];
    const replaced = visit(child, fn);
    if (replaced) (node as Record<string, unknown>)[key] = replaced;
    else walk(child, fn);
  }
}

function visit(child: unknown, fn: (f: FunctionCall) => Expr | undefined): Expr | undefined {
  if (child === null || typeof child !== 'object' || (child as { kind?: unknown }).kind !== 'function') return undefined;
  return fn(child as FunctionCall);
}
