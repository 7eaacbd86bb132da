/** The sky region an ADQL query restricts itself to, read from its WHERE clause, for planning. */
import { chainOperands, type Expr, type Query, type QueryBody } from '../../adapters/ivoa/adql/index.js';
import type { PlanRegion } from '../planner/index.js';

/**
 * The cone of a top-level `1 = CONTAINS(POINT(...), CIRCLE(ra, dec, r))` conjunct (either
 * side, optional coordinate-system string), when its centre and radius are literal numbers.
 * Anything looser (OR, computed centres, polygons) gives undefined: planning then assumes the
 * whole sky, which can only overestimate the rows a site must read, never exclude a site
 * that holds them.
 */
export function coneOfQuery(q: Query): PlanRegion | undefined {
  const select = singleSelect(q.body);
  if (!select?.where) return undefined;
  const conjuncts = select.where.kind === 'logical' && select.where.op === 'AND' ? chainOperands(select.where) : [select.where];
  for (const c of conjuncts) {
    if (c.kind !== 'compare' || c.op !== '=') continue;
    const contains = isOne(c.left) ? c.right : isOne(c.right) ? c.left : undefined;
    if (contains?.kind !== 'function' || contains.name !== 'CONTAINS' || contains.args.length !== 2) continue;
    const [point, circle] = contains.args;
    if (point.kind !== 'function' || point.name !== 'POINT' || circle.kind !== 'function' || circle.name !== 'CIRCLE') continue;
    const numbers = circle.args.filter((a) => a.kind !== 'string').map(literal);
    if (numbers.length !== 3 || numbers.some((n) => n === undefined)) continue;
    const [ra, dec, radiusDeg] = numbers as number[];
    return { cone: { ra, dec, radiusDeg } };
  }
  return undefined;
}

function singleSelect(body: QueryBody): Extract<QueryBody, { kind: 'select' }> | undefined {
  if (body.kind === 'select') return body;
  return body.kind === 'query' && !body.with ? singleSelect(body.body) : undefined;
}

function isOne(e: Expr): boolean {
  return literal(e) === 1;
}

function literal(e: Expr): number | undefined {
  if (e.kind === 'number') {
    const n = Number(e.text);
    return Number.isFinite(n) ? n : undefined;
  }
  if (e.kind === 'unary' && (e.op === '-' || e.op === '+')) {
    const n = literal(e.operand);
    return n === undefined ? undefined : e.op === '-' ? -n : n;
  }
  return undefined;
}
