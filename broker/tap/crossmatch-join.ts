/**
 * A join across sites asked of /tap, recognised as a positional cross-match (issue 12): the
 * ADQL tree of `SELECT <columns> FROM a AS l JOIN b AS r ON <positional match> [WHERE <cones>]`
 * turned into a cross-match thread's input (mode ALL: a SQL join returns every pair) and what
 * to do with the thread's result rows to give exactly the rows the SQL join means. Whatever
 * cannot be mapped gives the reason instead, naming the part, so the refusal can say why.
 *
 * Accepted match conditions (either side of `=`, either table first):
 *   1 = CONTAINS(POINT('ICRS', l.ra, l.dec), CIRCLE('ICRS', r.ra, r.dec, <radius deg>))
 *   DISTANCE(POINT('ICRS', l.ra, l.dec), POINT('ICRS', r.ra, r.dec)) < (or <=) <radius deg>
 * and cones `1 = CONTAINS(POINT('ICRS', x.ra, x.dec), CIRCLE('ICRS', ra0, dec0, r0))` on either
 * side. One cone is the thread's region (a thread keeps the left rows inside its region, so the
 * table it restricts becomes the thread's left); every other cone is applied to the result rows
 * here, from the positions the thread is asked to return as hidden columns.
 */
import { identifierKey, printAdqlExpression, qualifiedNameKey, type ColumnRef, type Expr, type FunctionCall, type Query, type Select, type TableRef } from '../../adapters/ivoa/adql/index.js';
import type { CrossmatchInput } from '../threads/situation.js';
import { MAX_RADIUS_ARCSEC } from '../threads/situation.js';

/** Which input of the thread: its left or its right table. */
export type ThreadSide = 'left' | 'right';

/** One output column: a column of the thread's result row (by index), or the separation in degrees. */
export type OutputColumn = { name: string; from: 'column'; index: number } | { name: string; from: 'sep' };

/** A cone applied to the result rows: the position of one side (result row indexes) within it. */
export interface ConeFilter {
  raIndex: number;
  decIndex: number;
  cone: { ra: number; dec: number; radiusDeg: number };
}

/** A recognised positional join: the thread to start and how its rows become the query's rows. */
export interface CrossSiteJoin {
  /** The thread's input (mode ALL, the region a cone). */
  input: CrossmatchInput & { region: { cone: { ra: number; dec: number; radiusDeg: number } } };
  /** The query's columns in order. */
  outputs: OutputColumn[];
  /** Cones other than the region, applied here. */
  filters: ConeFilter[];
  /** Index of sep_arcsec in the thread's result rows. */
  sepIndex: number;
  /** DISTANCE(...) < radius: a pair exactly at the radius is not one. */
  strict: boolean;
  /** The query's TOP, if any. */
  top?: number;
}

/** The recognised join, or why the query is not one that can run as a cross-match thread. */
export type JoinRecognition = { ok: true; join: CrossSiteJoin } | { ok: false; why: string };

/** A table of the join: its dataset id, the names a column may be qualified by, its canonical columns. */
interface JoinTable {
  dataset: string;
  names: string[];
  columns: readonly string[];
}

/** A (sky) position in the query: the two columns of one table. */
interface Position {
  table: number;
}

class NotMapped extends Error {}

const fail = (why: string): never => {
  throw new NotMapped(why);
};

/**
 * Recognise `query` (reading the two datasets of `columnsOf`, canonical names in catalogue
 * order) as a positional join that a cross-match thread answers exactly.
 */
export function recognizeCrossSiteJoin(query: Query, columnsOf: ReadonlyMap<string, ReadonlySet<string>>): JoinRecognition {
  try {
    return { ok: true, join: recognize(query, columnsOf) };
  } catch (err) {
    if (err instanceof NotMapped) return { ok: false, why: err.message };
    throw err;
  }
}

function recognize(query: Query, columnsOf: ReadonlyMap<string, ReadonlySet<string>>): CrossSiteJoin {
  if (query.with && query.with.length > 0) fail('it has a WITH clause');
  if (query.orderBy && query.orderBy.length > 0) fail('it has ORDER BY (a cross-match thread returns its pairs in no particular order)');
  if (query.offset !== undefined) fail('it has OFFSET');
  if (query.body.kind !== 'select') fail(query.body.kind === 'setop' ? `it is a ${(query.body as { op: string }).op} of queries` : 'it is a parenthesised query');
  const select = query.body as Select;
  if (select.quantifier === 'DISTINCT') fail('it is SELECT DISTINCT');
  if (select.groupBy && select.groupBy.length > 0) fail('it has GROUP BY');
  if (select.having) fail('it has HAVING');

  // FROM: `a JOIN b ON ...`, `a CROSS JOIN b` or `a, b`, with the match condition in ON or WHERE.
  const conditions: Expr[] = [];
  let refs: TableRef[];
  if (select.from.length === 1 && select.from[0].kind === 'join') {
    const j = select.from[0];
    if (j.natural || j.using) fail('it is a NATURAL or USING join, not a positional one');
    if (j.joinType !== 'INNER' && j.joinType !== 'CROSS') fail(`it is a ${j.joinType} OUTER join; only an inner positional join runs as a cross-match`);
    if (j.left.kind !== 'table' || j.right.kind !== 'table') fail('it joins more than two tables, or a subquery');
    refs = [j.left as TableRef, j.right as TableRef];
    if (j.on) conditions.push(...conjuncts(j.on));
  } else if (select.from.length === 2 && select.from.every((f) => f.kind === 'table')) {
    refs = select.from as TableRef[];
  } else {
    fail('its FROM is not two tables joined');
  }
  if (select.where) conditions.push(...conjuncts(select.where));
  const tables: JoinTable[] = refs!.map((ref) => {
    const dataset = qualifiedNameKey(ref.name).replace(/"/g, '').toLowerCase();
    const last = identifierKey(ref.name[ref.name.length - 1]).toLowerCase();
    const names = ref.alias ? [identifierKey(ref.alias).toLowerCase()] : [dataset, last];
    return { dataset, names, columns: [...(columnsOf.get(dataset) ?? [])] };
  });
  if (tables[0].dataset === tables[1].dataset) fail(`it joins ${tables[0].dataset} with itself`);

  const tableOf = (c: ColumnRef): number => {
    const column = identifierKey(c.column).toLowerCase();
    if (c.table && c.table.length > 0) {
      const q = c.table.map((p) => identifierKey(p)).join('.').toLowerCase();
      const i = tables.findIndex((t) => t.names.includes(q));
      return i >= 0 ? i : fail(`${printAdqlExpression(c)} names no table of the join`);
    }
    const holders = tables.flatMap((t, i) => (t.columns.includes(column) ? [i] : []));
    return holders.length === 1 ? holders[0] : fail(`the column ${c.column.name} is ${holders.length === 0 ? 'in neither table' : 'in both tables; qualify it'}`);
  };

  /** POINT([sys,] x.ra, x.dec): the table whose position it is. */
  const positionOf = (e: Expr, what: string): Position => {
    if (e.kind !== 'function' || e.name !== 'POINT') return fail(`${what} ${printAdqlExpression(e)} is not a POINT`);
    const [ra, dec] = coordinates(e, what);
    if (ra.kind !== 'column' || dec.kind !== 'column') return fail(`${what} ${printAdqlExpression(e)} is not a POINT of a table's columns`);
    const t = tableOf(ra);
    if (tableOf(dec) !== t) fail(`${what} ${printAdqlExpression(e)} mixes the columns of two tables`);
    if (identifierKey(ra.column).toLowerCase() !== 'ra' || identifierKey(dec.column).toLowerCase() !== 'dec') {
      fail(`${what} ${printAdqlExpression(e)} is not the position of ${tables[t].dataset}: a cross-match uses each dataset's position columns, ra and dec`);
    }
    return { table: t };
  };

  let match: { tables: [number, number]; radiusDeg: number; strict: boolean; text: string } | undefined;
  const cones: { table: number; cone: { ra: number; dec: number; radiusDeg: number } }[] = [];
  const setMatch = (a: Position, b: Position, radiusDeg: number, strict: boolean, e: Expr) => {
    if (a.table === b.table) fail(`the condition ${printAdqlExpression(e)} compares positions of one table`);
    if (match) fail(`it has two positional match conditions (${match.text} and ${printAdqlExpression(e)})`);
    match = { tables: [a.table, b.table], radiusDeg, strict, text: printAdqlExpression(e) };
  };

  for (const c of conditions) {
    const text = printAdqlExpression(c);
    if (c.kind === 'compare' && c.op === '=' && (isOne(c.left) || isOne(c.right))) {
      const contains = isOne(c.left) ? c.right : c.left;
      if (contains.kind !== 'function' || contains.name !== 'CONTAINS') fail(`the condition ${text} is not 1 = CONTAINS(POINT(...), CIRCLE(...))`);
      const [point, circle] = (contains as FunctionCall).args;
      const p = positionOf(point, 'in CONTAINS, the point');
      const { centre, radius } = circleOf(circle, text);
      const radiusDeg = constant(radius) ?? fail(`in ${text}, the radius ${printAdqlExpression(radius)} is not a constant number of degrees`);
      if (centre.kind === 'point') {
        setMatch(p, positionOf(centre.point, 'in CONTAINS, the circle\'s centre'), radiusDeg, false, c);
      } else {
        const ra = constant(centre.ra);
        const dec = constant(centre.dec);
        if (ra === undefined || dec === undefined) fail(`in ${text}, the circle's centre is neither a table's position nor constant numbers`);
        if (!(radiusDeg > 0 && radiusDeg <= 180) || !(dec! >= -90 && dec! <= 90) || !Number.isFinite(ra!)) fail(`the cone ${text} is not on the sky (dec between -90 and 90, radius greater than 0 and at most 180 degrees)`);
        cones.push({ table: p.table, cone: { ra: ra!, dec: dec!, radiusDeg } });
      }
      continue;
    }
    if (c.kind === 'compare' && ['<', '<=', '>', '>='].includes(c.op)) {
      // DISTANCE(...) < r, or r > DISTANCE(...).
      const distanceLeft = ['<', '<='].includes(c.op);
      const distance = distanceLeft ? c.left : c.right;
      const bound = distanceLeft ? c.right : c.left;
      if (distance.kind === 'function' && distance.name === 'DISTANCE') {
        const [a, b] = distancePositions(distance, positionOf, text);
        const radiusDeg = constant(bound) ?? fail(`in ${text}, the radius ${printAdqlExpression(bound)} is not a constant number of degrees`);
        setMatch(a, b, radiusDeg, c.op === '<' || c.op === '>', c);
        continue;
      }
    }
    fail(`the condition ${text} is neither the positional match nor a cone on one table`);
  }
  if (!match) fail('it has no positional match condition: join ON 1 = CONTAINS(POINT(\'ICRS\', l.ra, l.dec), CIRCLE(\'ICRS\', r.ra, r.dec, <radius in degrees>)) or DISTANCE(POINT(...), POINT(...)) < <radius in degrees>');
  const m = match!;
  const radiusArcsec = Math.round(m.radiusDeg * 3600 * 1e9) / 1e9;
  if (!(radiusArcsec > 0) || radiusArcsec > MAX_RADIUS_ARCSEC) {
    fail(`its match radius is ${m.radiusDeg} degrees (${radiusArcsec} arcseconds); a cross-match radius must be greater than 0 and at most ${MAX_RADIUS_ARCSEC} arcseconds (${MAX_RADIUS_ARCSEC / 3600} degrees)`);
  }
  if (cones.length === 0) {
    fail('it has no cone: a cross-match runs over a region; add WHERE 1 = CONTAINS(POINT(\'ICRS\', l.ra, l.dec), CIRCLE(\'ICRS\', <ra>, <dec>, <radius>)) on either table');
  }

  // The smallest cone is the region; its table is the thread's left.
  const region = cones.reduce((a, b) => (b.cone.radiusDeg < a.cone.radiusDeg ? b : a));
  const sideOf = (t: number): ThreadSide => (t === region.table ? 'left' : 'right');
  const columns: Record<ThreadSide, string[]> = { left: [], right: [] };
  const slot = (t: number, column: string): { side: ThreadSide; at: number } => {
    const list = columns[sideOf(t)];
    if (!list.includes(column)) list.push(column);
    return { side: sideOf(t), at: list.indexOf(column) };
  };

  // The select list: columns of either table, DISTANCE of the matched positions.
  const picks: ({ name: string; side: ThreadSide; at: number } | { name: string; sep: true })[] = [];
  for (const item of select.columns) {
    if (item.kind === 'star') {
      const which = item.qualifier && item.qualifier.length > 0
        ? [tableOf({ kind: 'column', table: item.qualifier, column: { name: '*', delimited: false } })]
        : [0, 1];
      for (const t of which) {
        if (tables[t].columns.length === 0) fail(`the columns of ${tables[t].dataset} are not known here; list them`);
        for (const col of tables[t].columns) picks.push({ name: col, ...slot(t, col) });
      }
      continue;
    }
    const alias = item.alias ? item.alias.name : undefined;
    const e = item.expr;
    if (e.kind === 'column') {
      const column = identifierKey(e.column).toLowerCase();
      const t = tableOf(e);
      if (tables[t].columns.length > 0 && !tables[t].columns.includes(column)) fail(`${tables[t].dataset} has no column ${e.column.name}`);
      picks.push({ name: alias ?? column, ...slot(t, column) });
      continue;
    }
    if (e.kind === 'function' && e.name === 'DISTANCE') {
      const [a, b] = distancePositions(e, positionOf, printAdqlExpression(e));
      const same = (a.table === m.tables[0] && b.table === m.tables[1]) || (a.table === m.tables[1] && b.table === m.tables[0]);
      if (!same) fail(`the selected ${printAdqlExpression(e)} is not the distance between the matched positions`);
      picks.push({ name: alias ?? 'distance', sep: true });
      continue;
    }
    fail(`the selected ${printAdqlExpression(e)} is not a column of either table or the DISTANCE of the matched positions (a cross-match returns columns and their separation, nothing computed from them${hasAggregate(e) ? '; aggregates over a cross-site join are not run' : ''})`);
  }

  // Every other cone is checked here, on positions the thread returns as extra columns.
  const extra = cones.filter((c) => c !== region).map((c) => ({ cone: c.cone, ra: slot(c.table, 'ra'), dec: slot(c.table, 'dec') }));
  const index = (p: { side: ThreadSide; at: number }) => (p.side === 'left' ? p.at : columns.left.length + p.at);
  const leftTable = tables[region.table];
  const rightTable = tables[1 - region.table];
  return {
    input: {
      left: { dataset: leftTable.dataset, columns: columns.left },
      right: { dataset: rightTable.dataset, columns: columns.right },
      region: { cone: region.cone },
      radiusArcsec,
      mode: 'ALL',
    },
    outputs: picks.map((p) => ('sep' in p ? { name: p.name, from: 'sep' as const } : { name: p.name, from: 'column' as const, index: index(p) })),
    filters: extra.map((f) => ({ cone: f.cone, raIndex: index(f.ra), decIndex: index(f.dec) })),
    sepIndex: columns.left.length + columns.right.length,
    strict: m.strict,
    ...(select.top !== undefined ? { top: select.top } : {}),
  };
}

/** The operands of a top-level AND chain (an OR, or anything else, is one operand). */
function conjuncts(e: Expr): Expr[] {
  if (e.kind === 'logical' && e.op === 'AND') return [...conjuncts(e.left), ...conjuncts(e.right)];
  return [e];
}

/** A function's coordinate arguments, after the optional coordinate system, which must be ICRS (or empty). */
function coordinates(f: FunctionCall, what: string): Expr[] {
  const args = [...f.args];
  if (args[0]?.kind === 'string') {
    const system = args.shift() as { value: string };
    if (!['', 'icrs'].includes(system.value.trim().toLowerCase())) fail(`${what} ${printAdqlExpression(f)} is in ${system.value}; a cross-match is in ICRS`);
  }
  return args;
}

/** CIRCLE([sys,] ra, dec, r) or CIRCLE([sys,] POINT(...), r): its centre and radius. */
function circleOf(e: Expr, text: string): { centre: { kind: 'point'; point: Expr } | { kind: 'numbers'; ra: Expr; dec: Expr }; radius: Expr } {
  if (e.kind !== 'function' || e.name !== 'CIRCLE') return fail(`in ${text}, ${printAdqlExpression(e)} is not a CIRCLE`);
  const args = coordinates(e, 'the circle');
  if (args.length === 2) return { centre: { kind: 'point', point: args[0] }, radius: args[1] };
  if (args.length !== 3) return fail(`in ${text}, the CIRCLE has ${args.length} arguments`);
  const [ra, dec, radius] = args;
  if (ra.kind === 'column' || dec.kind === 'column') return { centre: { kind: 'point', point: { kind: 'function', name: 'POINT', args: [ra, dec] } }, radius };
  return { centre: { kind: 'numbers', ra, dec }, radius };
}

/** DISTANCE(POINT, POINT) or DISTANCE(ra1, dec1, ra2, dec2): the two positions. */
function distancePositions(f: FunctionCall, positionOf: (e: Expr, what: string) => Position, text: string): [Position, Position] {
  const args = f.args;
  if (args.length === 4) {
    return [positionOf({ kind: 'function', name: 'POINT', args: [args[0], args[1]] }, `in ${text}, the first position`), positionOf({ kind: 'function', name: 'POINT', args: [args[2], args[3]] }, `in ${text}, the second position`)];
  }
  return [positionOf(args[0], `in ${text}, the first point`), positionOf(args[1], `in ${text}, the second point`)];
}

/** A constant number: literals with + - * / and parentheses (2/3600.0 is a radius people write). */
function constant(e: Expr): number | undefined {
  if (e.kind === 'number') {
    const n = Number(e.text);
    return Number.isFinite(n) ? n : undefined;
  }
  if (e.kind === 'unary' && (e.op === '-' || e.op === '+')) {
    const n = constant(e.operand);
    return n === undefined ? undefined : e.op === '-' ? -n : n;
  }
  if (e.kind === 'binary' && ['+', '-', '*', '/'].includes(e.op)) {
    const a = constant(e.left);
    const b = constant(e.right);
    if (a === undefined || b === undefined) return undefined;
    const n = e.op === '+' ? a + b : e.op === '-' ? a - b : e.op === '*' ? a * b : a / b;
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function isOne(e: Expr): boolean {
  return constant(e) === 1;
}

function hasAggregate(e: Expr): boolean {
  return e.kind === 'function' && ['COUNT', 'SUM', 'AVG', 'MIN', 'MAX'].includes(e.name);
}
