/**
 * Two rewrites of a parsed ADQL query before the project's ADQL → PostgreSQL translation runs:
 *
 * - spelling: ADQL regular identifiers are case-insensitive, PostgreSQL folds unquoted names to
 *   lower case, and the centre's tables keep the survey's mixed-case names (objID, raMean):
 *   each regular identifier naming a known schema, table or column becomes a delimited one
 *   spelt as the centre spells it.
 * - a declination band: the translation turns CONTAINS(POINT, CIRCLE) and DISTANCE into plain
 *   trigonometry (no pgSphere in PGlite), which no index can serve, so a cone is a full scan
 *   and a positional join a nested loop over both tables. For each top-level AND term of a
 *   WHERE or ON that bounds a distance — CONTAINS(POINT(a, d1), CIRCLE(b, d2, r)) = 1, or
 *   DISTANCE(POINT(a, d1), POINT(b, d2)) < r (or <=) — the centre adds `d1 BETWEEN d2 - r AND
 *   d2 + r`. It is implied by the term (two points r apart differ by at most r in declination,
 *   across RA 0/360 and at the poles too), so the answer is unchanged, and the declination
 *   index serves it: a cone reads its band, and a join probes the index once per outer row.
 */
import type { Between, Expr, FunctionCall, LogicalExpr, Query } from '../../adapters/ivoa/adql/index.js';

/** Turns regular identifiers naming known objects into delimited ones with the centre's spelling (`spelling`: lower case → spelling). */
export function respell(node: unknown, spelling: ReadonlyMap<string, string>): void {
  if (Array.isArray(node)) {
    for (const n of node) respell(n, spelling);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  if (isIdentifier(node)) {
    if (!node.delimited) {
      const s = spelling.get(node.name.toLowerCase());
      if (s !== undefined) {
        node.name = s;
        node.delimited = true;
      }
    }
    return;
  }
  for (const v of Object.values(node)) respell(v, spelling);
}

function isIdentifier(node: object): node is { name: string; delimited: boolean } {
  return 'name' in node && 'delimited' in node && typeof node.name === 'string' && typeof node.delimited === 'boolean';
}

/** Adds the implied declination band to every distance-bounding term of every WHERE and ON in `query` (in place); returns how many. */
export function addDeclinationBands(query: Query): number {
  let added = 0;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const v of Object.values(node)) visit(v);
    if (!('kind' in node)) return;
    if (node.kind === 'select' && 'where' in node && isExpr(node.where)) {
      const [where, n] = withBands(node.where);
      node.where = where;
      added += n;
    } else if (node.kind === 'join' && 'on' in node && isExpr(node.on)) {
      const [on, n] = withBands(node.on);
      node.on = on;
      added += n;
    }
  };
  visit(query);
  return added;
}

function isExpr(v: unknown): v is Expr {
  return v !== null && typeof v === 'object' && 'kind' in v;
}

function withBands(condition: Expr): [Expr, number] {
  const bands = conjuncts(condition).map(bandOf).filter((b): b is Between => b !== undefined);
  let out = condition;
  for (const b of bands) out = and(out, b);
  return [out, bands.length];
}

function conjuncts(e: Expr): Expr[] {
  if (e.kind === 'logical' && e.op === 'AND') return [...conjuncts(e.left), ...conjuncts(e.right)];
  return [e];
}

function and(left: Expr, right: Expr): LogicalExpr {
  return { kind: 'logical', op: 'AND', left, right };
}

/** The declination band a term implies, when it bounds the distance between two points. */
function bandOf(term: Expr): Between | undefined {
  if (term.kind !== 'compare') return undefined;
  const { op, left, right } = term;
  // CONTAINS(POINT, CIRCLE) = 1, either way round.
  if (op === '=') {
    const call = isOne(right) ? left : isOne(left) ? right : undefined;
    if (call?.kind === 'function' && !call.udf && call.name === 'CONTAINS') return containsBand(call);
    return undefined;
  }
  // DISTANCE(...) < r, or r > DISTANCE(...).
  if ((op === '<' || op === '<=') && isDistance(left)) return distanceBand(left, right);
  if ((op === '>' || op === '>=') && isDistance(right)) return distanceBand(right, left);
  return undefined;
}

function isOne(e: Expr): boolean {
  return e.kind === 'number' && Number(e.text) === 1;
}

function isDistance(e: Expr): e is FunctionCall {
  return e.kind === 'function' && !e.udf && e.name === 'DISTANCE';
}

/** (ra, dec) of a POINT constructor (with or without the old coordinate-system string). */
function pointArgs(e: Expr): [Expr, Expr] | undefined {
  if (e.kind !== 'function' || e.udf || e.name !== 'POINT') return undefined;
  const args = e.args.length === 3 ? e.args.slice(1) : e.args;
  return args.length === 2 ? [args[0], args[1]] : undefined;
}

function containsBand(call: FunctionCall): Between | undefined {
  const point = call.args[0] === undefined ? undefined : pointArgs(call.args[0]);
  const circle = call.args[1];
  if (!point || circle?.kind !== 'function' || circle.udf || circle.name !== 'CIRCLE') return undefined;
  let args = circle.args;
  if (args.length === 4 || (args.length === 3 && args[0].kind === 'string')) args = args.slice(1);
  if (args.length === 3) return band(point[1], args[1], args[2]);
  const centre = args.length === 2 ? pointArgs(args[0]) : undefined;
  return centre ? band(point[1], centre[1], args[1]) : undefined;
}

function distanceBand(call: FunctionCall, radius: Expr): Between | undefined {
  if (call.args.length === 4) return band(call.args[1], call.args[3], radius);
  const p = call.args[0] === undefined ? undefined : pointArgs(call.args[0]);
  const q = call.args[1] === undefined ? undefined : pointArgs(call.args[1]);
  return p && q ? band(p[1], q[1], radius) : undefined;
}

/** `dec BETWEEN centre - r AND centre + r` (the printer brackets by precedence), sharing no node with the term it came from. */
function band(dec: Expr, centre: Expr, radius: Expr): Between {
  const copy = (e: Expr): Expr => structuredClone(e);
  return {
    kind: 'between',
    not: false,
    expr: copy(dec),
    low: { kind: 'binary', op: '-', left: copy(centre), right: copy(radius) },
    high: { kind: 'binary', op: '+', left: copy(centre), right: copy(radius) },
  };
}
