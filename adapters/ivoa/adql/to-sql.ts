/**
 * ADQL → PostgreSQL, for simulated TAP sites and the TAP facade. TOP becomes LIMIT; the
 * geometry predicates become plain trigonometry on two numeric columns (no pgSphere or
 * q3c needed): point-in-circle, circle-circle, and point-in-convex BOX/POLYGON with constant
 * vertices. Distances use the Vincenty form of the great-circle distance (atan2 of two
 * sums), which needs no clamping: it never leaves the domain of a PostgreSQL function,
 * stays accurate near 0° and 180°, and passes NULL through. Anything else with
 * geometry values raises AdqlUnsupportedError naming the construct and where it starts.
 */
import type { Expr, FunctionCall, Identifier, Query, QueryBody, Select } from './ast.js';
import { AdqlUnsupportedError } from './errors.js';
import { AdqlPrinter, quoteIdentifier } from './printer.js';

/** How to translate; every field is optional. */
export interface ToPostgresOptions {
  /**
   * Name of an SQL function f(ra1, dec1, ra2, dec2) returning the angular distance in degrees;
   * used instead of the inline expression for DISTANCE and circle tests.
   */
  distanceFunction?: string;
  /**
   * User-defined functions the target database has, keyed by ADQL name in lower case
   * (`ivo_hashlist_has`, or `schema.fn` when called qualified): an SQL function name, or a
   * function building the SQL text from the translated arguments.
   */
  udfs?: Readonly<Record<string, string | ((args: string[]) => string)>>;
}

/**
 * PostgreSQL key words that cannot be a column or table name unquoted (reserved, and reserved
 * but usable as function or type), from the PostgreSQL 16 documentation, appendix C.
 */
const PG_RESERVED = new Set(
  `all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create
  current_catalog current_date current_role current_time current_timestamp current_user default deferrable
  desc distinct do else end except false fetch for foreign from grant group having in initially intersect
  into lateral leading limit localtime localtimestamp not null offset on only or order placing primary
  references returning select session_user some symmetric system_user table then to trailing true union
  unique user using variadic when where window with authorization binary collation concurrently cross
  current_schema freeze full ilike inner is isnull join left like natural notnull outer overlaps right
  similar tablesample verbose`.split(/\s+/),
);

/** ADQL built-ins with a same-meaning PostgreSQL function of another (or the same) name. */
const SIMPLE_FUNCTIONS: Record<string, string> = {
  ABS: 'abs', CEILING: 'ceiling', DEGREES: 'degrees', EXP: 'exp', FLOOR: 'floor', LOG: 'ln', LOG10: 'log',
  PI: 'pi', POWER: 'power', RADIANS: 'radians', SQRT: 'sqrt', ACOS: 'acos', ASIN: 'asin', ATAN: 'atan',
  ATAN2: 'atan2', COS: 'cos', COT: 'cot', SIN: 'sin', TAN: 'tan', LOWER: 'lower', UPPER: 'upper',
  COALESCE: 'coalesce', COUNT: 'count', AVG: 'avg', MIN: 'min', MAX: 'max', SUM: 'sum',
};

type Vec = [number, number, number];

/** A geometry argument reduced to what the predicates need. */
type Shape =
  | { kind: 'point'; ra: string; dec: string }
  | { kind: 'circle'; ra: string; dec: string; r: string }
  /** Intersection of hemispheres n·x >= 0 (a convex BOX or POLYGON with constant vertices). */
  | { kind: 'convex'; normals: Vec[]; what: string };

function unitVector(raDeg: number, decDeg: number): Vec {
  const a = (raDeg * Math.PI) / 180;
  const d = (decDeg * Math.PI) / 180;
  return [Math.cos(d) * Math.cos(a), Math.cos(d) * Math.sin(a), Math.sin(d)];
}

function cross(u: Vec, v: Vec): Vec {
  return [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
}

function dot(u: Vec, v: Vec): number {
  return u[0] * v[0] + u[1] * v[1] + u[2] * v[2];
}

function sqlNumber(x: number): string {
  const s = String(x);
  return x < 0 ? `(${s})` : s;
}

/** Value of an expression built only from numeric literals, signs, + - * / and PI(); else undefined. */
function constantValue(e: Expr): number | undefined {
  switch (e.kind) {
    case 'number':
      return /^0x/i.test(e.text) ? Number.parseInt(e.text.slice(2), 16) : Number(e.text);
    case 'unary': {
      const v = constantValue(e.operand);
      if (v === undefined || e.op === '~') return undefined;
      return e.op === '-' ? -v : v;
    }
    case 'binary': {
      const l = constantValue(e.left);
      const r = constantValue(e.right);
      if (l === undefined || r === undefined) return undefined;
      switch (e.op) {
        case '+':
          return l + r;
        case '-':
          return l - r;
        case '*':
          return l * r;
        case '/':
          return l / r;
        default:
          return undefined;
      }
    }
    case 'function':
      return !e.udf && e.name === 'PI' ? Math.PI : undefined;
    default:
      return undefined;
  }
}

function isGeometryCall(e: Expr, names: readonly string[]): e is FunctionCall {
  return e.kind === 'function' && !e.udf && names.includes(e.name);
}

class PostgresPrinter extends AdqlPrinter {
  constructor(private readonly options: ToPostgresOptions) {
    super();
  }

  override query(q: Query): string {
    let out = super.query(q);
    if (q.body.kind === 'select' && q.body.top !== undefined) out += ` LIMIT ${q.body.top}`;
    return out;
  }

  override select(s: Select): string {
    return this.selectClauses(s, '');
  }

  override setOperand(b: QueryBody): string {
    // TOP inside a set operation limits that SELECT alone, which PostgreSQL writes in parentheses.
    if (b.kind === 'select' && b.top !== undefined) return `(${this.select(b)} LIMIT ${b.top})`;
    return super.setOperand(b);
  }

  override identifier(id: Identifier): string {
    if (id.delimited) return quoteIdentifier(id.name);
    const lower = id.name.toLowerCase();
    return PG_RESERVED.has(lower) ? quoteIdentifier(lower) : id.name;
  }

  override number(text: string): string {
    return /^0x/i.test(text) ? BigInt(text).toString() : text;
  }

  override binaryOp(op: string): string {
    return op === '^' ? '#' : op;
  }

  override exprText(e: Expr): string {
    // PostgreSQL ranks | & # || alike and its prefix ~ loosely, so nested operators are bracketed;
    // only a left-deep run of one operator stays bare (walked without recursion).
    const wrap = (child: Expr): string => {
      const text = this.expr(child, 0);
      return child.kind === 'unary' || child.kind === 'binary' ? `(${text})` : text;
    };
    if (e.kind === 'binary') {
      const rights: Expr[] = [];
      let cur: Expr = e;
      while (cur.kind === 'binary' && cur.op === e.op) {
        rights.push(cur.right);
        cur = cur.left;
      }
      const op = this.binaryOp(e.op);
      let out = wrap(cur);
      for (let i = rights.length - 1; i >= 0; i--) out += ` ${op} ${wrap(rights[i])}`;
      return out;
    }
    if (e.kind === 'unary') return `${e.op}${wrap(e.operand)}`;
    if (e.kind === 'cast' && (e.type.name === 'POINT' || e.type.name === 'CIRCLE' || e.type.name === 'POLYGON')) {
      throw new AdqlUnsupportedError(`CAST to ${e.type.name} is unsupported in this translator`, e.pos);
    }
    return super.exprText(e);
  }

  override comparison(op: string, left: Expr, right: Expr): string {
    const zeroOrOne = (x: Expr): number | undefined => {
      const v = constantValue(x);
      return v === 0 || v === 1 ? v : undefined;
    };
    const geo = ['CONTAINS', 'INTERSECTS'];
    let call: FunctionCall | undefined;
    let value: number | undefined;
    if (isGeometryCall(left, geo) && zeroOrOne(right) !== undefined) [call, value] = [left, zeroOrOne(right)];
    else if (isGeometryCall(right, geo) && zeroOrOne(left) !== undefined) [call, value] = [right, zeroOrOne(left)];
    if (call && (op === '=' || op === '<>' || op === '!=')) {
      const predicate = this.geometryPredicate(call);
      return (value === 1) === (op === '=') ? predicate : `NOT ${predicate}`;
    }
    return super.comparison(op === '!=' ? '<>' : op, left, right);
  }

  override functionCall(f: FunctionCall): string {
    const args = (): string[] => f.args.map((a) => this.expr(a, 0));
    if (f.udf) {
      const key = [...(f.qualifier ?? []).map((p) => p.name), f.name].join('.').toLowerCase();
      const udf = this.options.udfs?.[key];
      if (udf === undefined) {
        throw new AdqlUnsupportedError(`user-defined function ${key} is unsupported in this translator`, f.pos);
      }
      return typeof udf === 'function' ? udf(args()) : `${udf}(${args().join(', ')})`;
    }
    switch (f.name) {
      case 'CONTAINS':
      case 'INTERSECTS':
        return `CASE WHEN ${this.geometryPredicate(f)} THEN 1 ELSE 0 END`;
      case 'DISTANCE': {
        if (f.args.length === 4) {
          const [a1, d1, a2, d2] = args();
          return this.distance(a1, d1, a2, d2);
        }
        const p = this.shape(f.args[0], f);
        const q = this.shape(f.args[1], f);
        if (p.kind !== 'point' || q.kind !== 'point') throw new AdqlUnsupportedError('DISTANCE takes two POINTs', f.pos);
        return this.distance(p.ra, p.dec, q.ra, q.dec);
      }
      case 'COORD1':
      case 'COORD2': {
        const p = this.shape(f.args[0], f);
        if (p.kind !== 'point') throw new AdqlUnsupportedError(`${f.name} takes a POINT`, f.pos);
        return f.name === 'COORD1' ? p.ra : p.dec;
      }
      case 'MOD': {
        const [x, y] = args();
        // PostgreSQL has mod() for exact types only; ADQL's MOD is on doubles, sign of the dividend.
        return `CAST(mod(CAST(${x} AS numeric), CAST(${y} AS numeric)) AS double precision)`;
      }
      case 'ROUND':
      case 'TRUNCATE': {
        const fn = f.name === 'ROUND' ? 'round' : 'trunc';
        const a = args();
        // round/trunc with a digit count exist only for numeric in PostgreSQL.
        return a.length === 1 ? `${fn}(${a[0]})` : `CAST(${fn}(CAST(${a[0]} AS numeric), ${a[1]}) AS double precision)`;
      }
      case 'RAND':
        // ADQL leaves the seed argument's meaning undefined; it is ignored.
        return 'random()';
      case 'POINT':
      case 'CIRCLE':
      case 'BOX':
      case 'POLYGON':
      case 'REGION':
      case 'CENTROID':
      case 'AREA':
      case 'COORDSYS':
        throw new AdqlUnsupportedError(
          `${f.name} is unsupported in this translator outside CONTAINS, INTERSECTS, DISTANCE, COORD1 and COORD2`,
          f.pos,
        );
      case 'IN_UNIT':
        throw new AdqlUnsupportedError('IN_UNIT is unsupported in this translator', f.pos);
      default: {
        const name = SIMPLE_FUNCTIONS[f.name];
        if (!name) throw new AdqlUnsupportedError(`${f.name} is unsupported in this translator`, f.pos);
        if (f.star) return `${name}(*)`;
        return `${name}(${f.quantifier ? `${f.quantifier} ` : ''}${args().join(', ')})`;
      }
    }
  }

  /** Great-circle distance in degrees between (a1, d1) and (a2, d2), all in degrees. */
  private distance(a1: string, d1: string, a2: string, d2: string): string {
    if (this.options.distanceFunction) return `${this.options.distanceFunction}(${a1}, ${d1}, ${a2}, ${d2})`;
    const p1 = `radians(${d1})`;
    const p2 = `radians(${d2})`;
    const dl = `radians((${a2}) - (${a1}))`;
    const y = `sqrt(power(cos(${p2}) * sin(${dl}), 2) + power(cos(${p1}) * sin(${p2}) - sin(${p1}) * cos(${p2}) * cos(${dl}), 2))`;
    const x = `sin(${p1}) * sin(${p2}) + cos(${p1}) * cos(${p2}) * cos(${dl})`;
    return `degrees(atan2(${y}, ${x}))`;
  }

  /** A parenthesised SQL condition equivalent to CONTAINS(a, b) = 1 or INTERSECTS(a, b) = 1. */
  private geometryPredicate(f: FunctionCall): string {
    const a = this.shape(f.args[0], f);
    const b = this.shape(f.args[1], f);
    const inCircle = (p: Shape & { kind: 'point' }, c: Shape & { kind: 'circle' }): string =>
      `(${this.distance(p.ra, p.dec, c.ra, c.dec)} <= ${c.r})`;
    const inConvex = (p: Shape & { kind: 'point' }, c: Shape & { kind: 'convex' }): string => {
      const x = `cos(radians(${p.dec})) * cos(radians(${p.ra}))`;
      const y = `cos(radians(${p.dec})) * sin(radians(${p.ra}))`;
      const z = `sin(radians(${p.dec}))`;
      return `(${c.normals.map((n) => `${sqlNumber(n[0])} * ${x} + ${sqlNumber(n[1])} * ${y} + ${sqlNumber(n[2])} * ${z} >= 0`).join(' AND ')})`;
    };
    if (f.name === 'CONTAINS') {
      if (a.kind === 'point' && b.kind === 'circle') return inCircle(a, b);
      if (a.kind === 'point' && b.kind === 'convex') return inConvex(a, b);
      if (a.kind === 'circle' && b.kind === 'circle') {
        return `(${this.distance(a.ra, a.dec, b.ra, b.dec)} + (${a.r}) <= ${b.r})`;
      }
    } else {
      if (a.kind === 'point' && b.kind === 'circle') return inCircle(a, b);
      if (b.kind === 'point' && a.kind === 'circle') return inCircle(b, a);
      if (a.kind === 'point' && b.kind === 'convex') return inConvex(a, b);
      if (b.kind === 'point' && a.kind === 'convex') return inConvex(b, a);
      if (a.kind === 'circle' && b.kind === 'circle') {
        return `(${this.distance(a.ra, a.dec, b.ra, b.dec)} <= (${a.r}) + (${b.r}))`;
      }
    }
    const describe = (s: Shape): string => (s.kind === 'convex' ? s.what : s.kind.toUpperCase());
    throw new AdqlUnsupportedError(`${f.name}(${describe(a)}, ${describe(b)}) is unsupported in this translator`, f.pos);
  }

  /** Reduce a geometry argument; the deprecated coordinate-system string is ignored. */
  private shape(e: Expr, context: FunctionCall): Shape {
    if (e.kind !== 'function' || e.udf) {
      throw new AdqlUnsupportedError(
        `${context.name} needs POINT, CIRCLE, BOX or POLYGON constructors here; geometry-valued columns are unsupported in this translator`,
        e.pos ?? context.pos,
      );
    }
    const startsWithCoosys = e.args.length > 0 && e.args[0].kind === 'string';
    let args = e.args;
    switch (e.name) {
      case 'POINT': {
        if (args.length === 3) args = args.slice(1);
        return { kind: 'point', ra: this.expr(args[0], 0), dec: this.expr(args[1], 0) };
      }
      case 'CIRCLE': {
        if (args.length === 4 || (args.length === 3 && startsWithCoosys)) args = args.slice(1);
        if (args.length === 3) return { kind: 'circle', ra: this.expr(args[0], 0), dec: this.expr(args[1], 0), r: this.expr(args[2], 0) };
        const center = this.shape(args[0], e);
        if (center.kind !== 'point') throw new AdqlUnsupportedError('the centre of a CIRCLE must be a POINT', e.pos);
        return { kind: 'circle', ra: center.ra, dec: center.dec, r: this.expr(args[1], 0) };
      }
      case 'CENTROID': {
        const inner = this.shape(args[0], e);
        if (inner.kind === 'convex') throw new AdqlUnsupportedError(`CENTROID of ${inner.what} is unsupported in this translator`, e.pos);
        return { kind: 'point', ra: inner.ra, dec: inner.dec };
      }
      case 'BOX': {
        if (args.length === 5 || (args.length === 4 && startsWithCoosys)) args = args.slice(1);
        const center = args.length === 4 ? [args[0], args[1]].map(constantValue) : this.constantPoint(args[0]);
        const [w, h] = args.slice(-2).map(constantValue);
        if (center.some((v) => v === undefined) || w === undefined || h === undefined) {
          throw new AdqlUnsupportedError('BOX with non-constant arguments is unsupported in this translator', e.pos);
        }
        return { kind: 'convex', normals: boxNormals(center[0] as number, center[1] as number, w, h), what: 'BOX' };
      }
      case 'POLYGON': {
        if (startsWithCoosys) args = args.slice(1);
        const numbers = args.map(constantValue);
        let vertices: [number, number][];
        if (numbers.every((v) => v !== undefined) && numbers.length >= 6 && numbers.length % 2 === 0) {
          vertices = [];
          for (let i = 0; i < numbers.length; i += 2) vertices.push([numbers[i] as number, numbers[i + 1] as number]);
        } else {
          const points = args.map((a) => this.constantPoint(a));
          if (points.length < 3 || points.some((p) => p.some((v) => v === undefined))) {
            throw new AdqlUnsupportedError('POLYGON with non-constant vertices is unsupported in this translator', e.pos);
          }
          vertices = points as [number, number][];
        }
        const normals = convexNormals(vertices);
        if (!normals) throw new AdqlUnsupportedError('POLYGON that is not convex is unsupported in this translator', e.pos);
        return { kind: 'convex', normals, what: 'POLYGON' };
      }
      default:
        throw new AdqlUnsupportedError(`${e.name} as a geometry argument of ${context.name} is unsupported in this translator`, e.pos);
    }
  }

  private constantPoint(e: Expr): (number | undefined)[] {
    if (e.kind !== 'function' || e.udf || e.name !== 'POINT') return [undefined, undefined];
    const args = e.args.length === 3 ? e.args.slice(1) : e.args;
    return args.map(constantValue);
  }
}

/**
 * Hemisphere normals of an ADQL/STC box: sides are great circles crossing the arms of a cross
 * (along the RA and Dec directions at the centre, half width/height long) at right angles.
 */
function boxNormals(ra: number, dec: number, width: number, height: number): Vec[] {
  const c = unitVector(ra, dec);
  const a = (ra * Math.PI) / 180;
  const d = (dec * Math.PI) / 180;
  const east: Vec = [-Math.sin(a), Math.cos(a), 0];
  const north: Vec = [-Math.sin(d) * Math.cos(a), -Math.sin(d) * Math.sin(a), Math.cos(d)];
  const normals: Vec[] = [];
  for (const [dir, half] of [[east, width / 2], [north, height / 2]] as const) {
    const s = Math.sin((half * Math.PI) / 180);
    const k = Math.cos((half * Math.PI) / 180);
    for (const sign of [1, -1]) {
      // Outward tangent at the arm's end; inside the box means on the centre's side of it.
      const t: Vec = [-c[0] * s + sign * dir[0] * k, -c[1] * s + sign * dir[1] * k, -c[2] * s + sign * dir[2] * k];
      normals.push([-t[0], -t[1], -t[2]]);
    }
  }
  return normals;
}

/** Inward normals of a convex spherical polygon (either winding); undefined when not convex. */
function convexNormals(vertices: [number, number][]): Vec[] | undefined {
  const v = vertices.map(([ra, dec]) => unitVector(ra, dec));
  const n = v.length;
  const normals = v.map((vi, i) => cross(vi, v[(i + 1) % n]));
  let sign = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j === i || j === (i + 1) % n) continue;
      const s = Math.sign(dot(normals[i], v[j]));
      if (s === 0) return undefined;
      if (sign === 0) sign = s;
      else if (s !== sign) return undefined;
    }
  }
  return normals.map((m) => [m[0] * sign, m[1] * sign, m[2] * sign] as Vec);
}

/** PostgreSQL text for a parsed ADQL query; throws AdqlUnsupportedError for constructs it cannot express. */
export function toPostgres(q: Query, options: ToPostgresOptions = {}): string {
  return new PostgresPrinter(options).query(q);
}
