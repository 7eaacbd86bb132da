import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseAdql,
  printAdql,
  rewriteTables,
  stripPositions,
  tablesReferenced,
  tokenize,
  type CastType,
  type Expr,
  type FromItem,
  type FunctionCall,
  type Identifier,
  type Query,
  type QueryBody,
  type Select,
  type SelectItem,
  type SetOperation,
} from '../../adapters/ivoa/adql/index.js';

// Generators build trees in the parser's canonical shape (e.g. a set operation's right operand
// is never an unparenthesised UNION), so parse(print(tree)) must give the tree back exactly.

const regularName = fc.constantFrom('ra', 'dec', 'source_id', 'objID', 'raMean', 'x1', 'a_b', 'Mag', 't', 'g');
const delimitedName = fc.oneof(
  fc.constantFrom('size', 'Select', 'a"b', 'with space', '--x', "it's", 'ümlaut', '/*', 'RAMEAN'),
  fc.string({ minLength: 1, maxLength: 6 }),
);
const ident: fc.Arbitrary<Identifier> = fc.oneof(
  { weight: 4, arbitrary: regularName.map((name) => ({ name, delimited: false })) },
  { weight: 1, arbitrary: delimitedName.map((name) => ({ name, delimited: true })) },
);
const qualifier = (max: number): fc.Arbitrary<Identifier[]> => fc.array(ident, { minLength: 1, maxLength: max });
const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

const numberLit: fc.Arbitrary<Expr> = fc.constantFrom('0', '1', '42', '3.14', '.5', '7.', '1e10', '2.5E-3', '0x1F').map((text) => ({ kind: 'number', text }));
const stringLit: fc.Arbitrary<Expr> = fc.string({ maxLength: 6 }).map((value) => ({ kind: 'string', value }));
const columnRef: fc.Arbitrary<Expr> = fc.record({ table: maybe(qualifier(3)), column: ident }).map(({ table, column }) =>
  table ? { kind: 'column', table, column } : { kind: 'column', column },
);
const leaf: fc.Arbitrary<Expr> = fc.oneof(
  { weight: 3, arbitrary: columnRef },
  { weight: 2, arbitrary: numberLit },
  { weight: 1, arbitrary: stringLit },
  { weight: 1, arbitrary: fc.constant<Expr>({ kind: 'null' }) },
);
const castType: fc.Arbitrary<CastType> = fc.constantFrom<CastType>(
  { name: 'INTEGER' }, { name: 'DOUBLE PRECISION' }, { name: 'VARCHAR', length: 10 }, { name: 'CHAR' }, { name: 'TIMESTAMP' }, { name: 'POINT' },
);

const memo = new Map<string, fc.Arbitrary<unknown>>();
function memoised<T>(key: string, build: () => fc.Arbitrary<T>): fc.Arbitrary<T> {
  let a = memo.get(key) as fc.Arbitrary<T> | undefined;
  if (!a) {
    a = build();
    memo.set(key, a);
  }
  return a;
}

function functionCall(d: number): fc.Arbitrary<Expr> {
  const v = value(d - 1);
  const call = (name: string, args: fc.Arbitrary<Expr[]>): fc.Arbitrary<Expr> => args.map((a): FunctionCall => ({ kind: 'function', name, args: a }));
  return fc.oneof(
    call('ABS', fc.tuple(v)),
    call('MOD', fc.tuple(v, v)),
    call('PI', fc.constant([])),
    call('ROUND', fc.array(v, { minLength: 1, maxLength: 2 })),
    call('COALESCE', fc.array(v, { minLength: 1, maxLength: 3 })),
    call('POINT', fc.array(v, { minLength: 2, maxLength: 3 })),
    call('DISTANCE', fc.oneof(fc.array(v, { minLength: 2, maxLength: 2 }), fc.array(v, { minLength: 4, maxLength: 4 }))),
    call('CONTAINS', fc.tuple(v, v)),
    call('LOWER', fc.tuple(v)),
    fc.constant<Expr>({ kind: 'function', name: 'COUNT', args: [], star: true }),
    fc.record({ q: maybe(fc.constantFrom<'DISTINCT' | 'ALL'>('DISTINCT', 'ALL')), a: v, name: fc.constantFrom('AVG', 'MAX', 'COUNT') }).map(
      ({ q, a, name }): Expr => (q ? { kind: 'function', name, args: [a], quantifier: q } : { kind: 'function', name, args: [a] }),
    ),
    fc.record({ name: fc.constantFrom('ivo_hasword', 'gaia_healpix_index', 'my_fn'), q: maybe(fc.constant<Identifier[]>([{ name: 'gavo', delimited: false }])), args: fc.array(v, { maxLength: 3 }) }).map(
      ({ name, q, args }): Expr => (q ? { kind: 'function', name, udf: true, qualifier: q, args } : { kind: 'function', name, udf: true, args }),
    ),
  );
}

function value(d: number): fc.Arbitrary<Expr> {
  if (d <= 0) return leaf;
  return memoised(`value${d}`, () => {
    const v = value(d - 1);
    const options: { weight: number; arbitrary: fc.Arbitrary<Expr> }[] = [
      { weight: 4, arbitrary: leaf },
      { weight: 2, arbitrary: fc.record({ op: fc.constantFrom<'-' | '+' | '~'>('-', '+', '~'), operand: v }).map((r): Expr => ({ kind: 'unary', ...r })) },
      {
        weight: 4,
        arbitrary: fc
          .record({ op: fc.constantFrom<'+' | '-' | '*' | '/' | '||' | '&' | '|' | '^'>('+', '-', '*', '/', '||', '&', '|', '^'), left: v, right: v })
          .map((r): Expr => ({ kind: 'binary', ...r })),
      },
      { weight: 2, arbitrary: functionCall(d) },
      { weight: 1, arbitrary: fc.record({ expr: v, type: castType }).map((r): Expr => ({ kind: 'cast', ...r })) },
      {
        weight: 1,
        arbitrary: fc
          .record({
            operand: maybe(v),
            whens: fc.array(fc.record({ when: v, then: v }), { minLength: 1, maxLength: 2 }),
            else: maybe(v),
          })
          .chain(({ operand, whens, else: otherwise }) => {
            const searched = fc.array(fc.record({ when: condition(d - 1), then: v }), { minLength: 1, maxLength: 2 });
            return (operand ? fc.constant(whens) : searched).map((ws): Expr => {
              const node: Expr = { kind: 'case', whens: ws };
              if (operand) node.operand = operand;
              if (otherwise) node.else = otherwise;
              return node;
            });
          }),
      },
    ];
    if (d >= 2) options.push({ weight: 1, arbitrary: query(d - 2).map((q): Expr => ({ kind: 'subquery', query: q })) });
    return fc.oneof(...options);
  });
}

function condition(d: number): fc.Arbitrary<Expr> {
  return memoised(`cond${d}`, () => {
    const v = value(Math.max(d - 1, 0));
    const compare = fc
      .record({ op: fc.constantFrom<'=' | '<>' | '!=' | '<' | '>' | '<=' | '>='>('=', '<>', '!=', '<', '>', '<=', '>='), left: v, right: v })
      .map((r): Expr => ({ kind: 'compare', ...r }));
    if (d <= 0) return compare;
    const c = condition(d - 1);
    const listItem = v.filter((e) => e.kind !== 'subquery');
    const options: fc.Arbitrary<Expr>[] = [
      compare,
      fc.record({ not: fc.boolean(), expr: v, low: v, high: v }).map((r): Expr => ({ kind: 'between', ...r })),
      fc.record({ not: fc.boolean(), expr: v, list: fc.array(listItem, { minLength: 1, maxLength: 3 }) }).map((r): Expr => ({ kind: 'in', ...r })),
      fc.record({ not: fc.boolean(), op: fc.constantFrom<'LIKE' | 'ILIKE'>('LIKE', 'ILIKE'), expr: v, pattern: v }).map((r): Expr => ({ kind: 'like', ...r })),
      fc.record({ not: fc.boolean(), expr: v }).map((r): Expr => ({ kind: 'isNull', ...r })),
      c.map((operand): Expr => ({ kind: 'not', operand })),
      fc.record({ op: fc.constantFrom<'AND' | 'OR'>('AND', 'OR'), left: c, right: c }).map((r): Expr => ({ kind: 'logical', ...r })),
    ];
    if (d >= 2) {
      options.push(query(d - 2).map((q): Expr => ({ kind: 'exists', query: q })));
      options.push(fc.record({ not: fc.boolean(), expr: v, query: query(d - 2) }).map((r): Expr => ({ kind: 'in', ...r })));
    }
    return fc.oneof(...options);
  });
}

function fromItem(d: number): fc.Arbitrary<FromItem> {
  return memoised(`from${d}`, () => {
    const table = fc.record({ name: qualifier(3), alias: maybe(ident) }).map((r): FromItem => (r.alias ? { kind: 'table', ...r } : { kind: 'table', name: r.name }));
    if (d <= 0) return table;
    const sub = fromItem(d - 1);
    const join = fc
      .record({
        joinType: fc.constantFrom<'INNER' | 'LEFT' | 'RIGHT' | 'FULL' | 'CROSS'>('INNER', 'LEFT', 'RIGHT', 'FULL', 'CROSS'),
        natural: fc.boolean(),
        left: sub,
        right: sub,
        spec: fc.oneof(condition(d - 1).map((on) => ({ on })), fc.array(ident, { minLength: 1, maxLength: 2 }).map((using) => ({ using }))),
      })
      .map(({ joinType, natural, left, right, spec }): FromItem => {
        if (joinType === 'CROSS') return { kind: 'join', joinType, natural: false, left, right };
        if (natural) return { kind: 'join', joinType, natural, left, right };
        return { kind: 'join', joinType, natural, left, right, ...spec };
      });
    const derived = fc.record({ query: query(d - 1), alias: ident }).map((r): FromItem => ({ kind: 'derived', ...r }));
    return fc.oneof({ weight: 3, arbitrary: table }, { weight: 2, arbitrary: join }, { weight: 1, arbitrary: derived });
  });
}

function select(d: number): fc.Arbitrary<Select> {
  return memoised(`select${d}`, () => {
    const v = value(d);
    const item: fc.Arbitrary<SelectItem> = fc.oneof(
      { weight: 1, arbitrary: maybe(qualifier(3)).map((q): SelectItem => (q ? { kind: 'star', qualifier: q } : { kind: 'star' })) },
      { weight: 4, arbitrary: fc.record({ expr: v, alias: maybe(ident) }).map((r): SelectItem => (r.alias ? { kind: 'item', ...r } : { kind: 'item', expr: r.expr })) },
    );
    return fc
      .record({
        quantifier: maybe(fc.constantFrom<'ALL' | 'DISTINCT'>('ALL', 'DISTINCT')),
        top: maybe(fc.nat(1000)),
        columns: fc.array(item, { minLength: 1, maxLength: 3 }),
        from: fc.array(fromItem(d), { minLength: 1, maxLength: 2 }),
        where: maybe(condition(d)),
        groupBy: maybe(fc.array(v, { minLength: 1, maxLength: 2 })),
        having: maybe(condition(d)),
      })
      .map((r): Select => {
        const s: Select = { kind: 'select', columns: r.columns, from: r.from };
        if (r.quantifier) s.quantifier = r.quantifier;
        if (r.top !== undefined) s.top = r.top;
        if (r.where) s.where = r.where;
        if (r.groupBy) s.groupBy = r.groupBy;
        if (r.having) s.having = r.having;
        return s;
      });
  });
}

type SetOp = SetOperation['op'];

function setOperation(d: number, ops: SetOp[]): fc.Arbitrary<QueryBody> {
  return memoised(`setop${d}${ops.join()}`, () =>
    fc.record({ op: fc.constantFrom(...ops), all: fc.boolean() }).chain(({ op, all }) => {
      const left = op === 'INTERSECT' ? operand(d - 1, ['INTERSECT']) : operand(d - 1, ['UNION', 'EXCEPT', 'INTERSECT']);
      const right = op === 'INTERSECT' ? operand(d - 1, []) : operand(d - 1, ['INTERSECT']);
      return fc.record({ left, right }).map(({ left: l, right: r }): QueryBody => ({ kind: 'setop', op, all, left: l, right: r }));
    }),
  );
}

function operand(d: number, ops: SetOp[]): fc.Arbitrary<QueryBody> {
  const options: { weight: number; arbitrary: fc.Arbitrary<QueryBody> }[] = [{ weight: 4, arbitrary: select(Math.max(d, 0)) }];
  if (d >= 1 && ops.length > 0) options.push({ weight: 1, arbitrary: setOperation(d, ops) });
  if (d >= 1) options.push({ weight: 1, arbitrary: query(d - 1) });
  return fc.oneof(...options);
}

function query(d: number): fc.Arbitrary<Query> {
  return memoised(`query${d}`, () => {
    const body: fc.Arbitrary<QueryBody> = d >= 1 ? operand(d, ['UNION', 'EXCEPT', 'INTERSECT']) : select(0);
    return fc
      .record({
        with: d >= 1 ? maybe(fc.array(fc.record({ name: ident, query: query(d - 1) }), { minLength: 1, maxLength: 2 })) : fc.constant(undefined),
        body,
        orderBy: maybe(fc.array(fc.record({ expr: value(Math.max(d - 1, 0)), direction: maybe(fc.constantFrom<'ASC' | 'DESC'>('ASC', 'DESC')) }), { minLength: 1, maxLength: 2 })),
        offset: maybe(fc.nat(100)),
      })
      .map((r): Query => {
        const q: Query = { kind: 'query', body: r.body };
        if (r.with) q.with = r.with;
        if (r.orderBy) q.orderBy = r.orderBy.map((o) => (o.direction ? o : { expr: o.expr }));
        if (r.offset !== undefined) q.offset = r.offset;
        return q;
      });
  });
}

const queries = query(2);

/** The printed query with random whitespace and comments between tokens. */
function respaced(text: string, seps: string[]): string {
  const toks = tokenize(text).filter((t) => t.kind !== 'eof');
  return toks.map((t, i) => t.text + (i < toks.length - 1 ? seps[i % seps.length] : '')).join('');
}

describe('ADQL properties', () => {
  it('parse(print(tree)) gives the tree back, and printing is stable', () => {
    fc.assert(
      fc.property(queries, (q) => {
        const text = printAdql(q);
        const parsed = parseAdql(text);
        expect(stripPositions(parsed)).toEqual(q);
        expect(printAdql(parsed)).toBe(text);
      }),
      { numRuns: 400 },
    );
  });

  it('whitespace and comments between tokens do not change the tree', () => {
    const sep = fc.constantFrom(' ', '\n', '\t ', ' -- note\n', ' /* c */ ', '\r\n');
    fc.assert(
      fc.property(queries, fc.array(sep, { minLength: 1, maxLength: 5 }), (q, seps) => {
        const text = printAdql(q);
        expect(stripPositions(parseAdql(respaced(text, seps)))).toEqual(stripPositions(parseAdql(text)));
      }),
      { numRuns: 200 },
    );
  });

  it('rewriting with no mapping changes nothing, and tables survive printing', () => {
    fc.assert(
      fc.property(queries, (q) => {
        expect(stripPositions(rewriteTables(q, {}))).toEqual(q);
        const ids = (x: Query): string[] => tablesReferenced(x).map((t) => t.id);
        expect(ids(parseAdql(printAdql(q)))).toEqual(ids(q));
      }),
      { numRuns: 200 },
    );
  });
});
