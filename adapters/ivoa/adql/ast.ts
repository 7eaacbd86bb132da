/**
 * The ADQL syntax tree. Plain JSON-compatible objects: `structuredClone` copies them and deep
 * equality compares them. Every node may carry `pos` (where it starts in the source); the
 * parser sets it, hand-built trees may leave it out, and `stripPositions` removes it.
 */
import type { Pos } from './errors.js';
import { isRegularIdentifierSpelling, isReservedWord } from './tokens.js';

/** A name: regular identifiers are case-insensitive, delimited ("...") ones are exact. */
export interface Identifier {
  /** The name without quotes, with "" unescaped. */
  name: string;
  /** True when written in double quotes. */
  delimited: boolean;
  pos?: Pos;
}

/** A dotted name, outermost part first: [catalog, schema, table] or [.., table, column]. */
export type QualifiedName = Identifier[];

/** A whole query: `[WITH ...] body [ORDER BY ...] [OFFSET n]`. */
export interface Query {
  kind: 'query';
  with?: CommonTableExpression[];
  body: QueryBody;
  orderBy?: OrderItem[];
  offset?: number;
  pos?: Pos;
}

/** What a query is made of: one SELECT, a set operation, or a parenthesised query. */
export type QueryBody = Select | SetOperation | Query;

/** `left UNION|EXCEPT|INTERSECT [ALL] right`; INTERSECT binds tighter than UNION and EXCEPT. */
export interface SetOperation {
  kind: 'setop';
  op: 'UNION' | 'EXCEPT' | 'INTERSECT';
  all: boolean;
  left: QueryBody;
  right: QueryBody;
  pos?: Pos;
}

/** `name AS (query)` in a WITH clause. */
export interface CommonTableExpression {
  name: Identifier;
  query: Query;
}

/** One SELECT ... FROM ... [WHERE] [GROUP BY] [HAVING]. */
export interface Select {
  kind: 'select';
  quantifier?: 'ALL' | 'DISTINCT';
  top?: number;
  columns: SelectItem[];
  from: FromItem[];
  where?: Expr;
  groupBy?: Expr[];
  having?: Expr;
  pos?: Pos;
}

/** `*` or `t.*` in a select list. */
export interface StarItem {
  kind: 'star';
  qualifier?: QualifiedName;
  pos?: Pos;
}

/** `expression [AS alias]` in a select list. */
export interface ExprItem {
  kind: 'item';
  expr: Expr;
  alias?: Identifier;
}

/** One entry of a select list. */
export type SelectItem = StarItem | ExprItem;

/** One ORDER BY term; `direction` is kept as written (absent means the default, ascending). */
export interface OrderItem {
  expr: Expr;
  direction?: 'ASC' | 'DESC';
}

/** Anything in a FROM list. */
export type FromItem = TableRef | DerivedTable | Join;

/** A named table, optionally with a correlation name. */
export interface TableRef {
  kind: 'table';
  name: QualifiedName;
  alias?: Identifier;
  pos?: Pos;
}

/** `(query) AS alias` in FROM. */
export interface DerivedTable {
  kind: 'derived';
  query: Query;
  alias: Identifier;
  pos?: Pos;
}

/** `left [NATURAL] [type] JOIN right [ON cond | USING (cols)]`; a bare JOIN is INNER. */
export interface Join {
  kind: 'join';
  joinType: 'INNER' | 'LEFT' | 'RIGHT' | 'FULL' | 'CROSS';
  natural: boolean;
  left: FromItem;
  right: FromItem;
  on?: Expr;
  using?: Identifier[];
  pos?: Pos;
}

/** Numeric literal kept as written (so 1.50E3 and 0x2F print back unchanged). */
export interface NumberLiteral {
  kind: 'number';
  text: string;
  pos?: Pos;
}

/** String literal; `value` is the content with '' already unescaped. */
export interface StringLiteral {
  kind: 'string';
  value: string;
  pos?: Pos;
}

/** The NULL literal. */
export interface NullLiteral {
  kind: 'null';
  pos?: Pos;
}

/** `[qualifier.]column`, qualifier up to catalog.schema.table. */
export interface ColumnRef {
  kind: 'column';
  table?: QualifiedName;
  column: Identifier;
  pos?: Pos;
}

/** Prefix `-`, `+` or bitwise `~`. */
export interface UnaryExpr {
  kind: 'unary';
  op: '-' | '+' | '~';
  operand: Expr;
  pos?: Pos;
}

/** Arithmetic, concatenation and bitwise operators. */
export type BinaryOp = '+' | '-' | '*' | '/' | '||' | '&' | '|' | '^';

/** `left op right` for value operators. */
export interface BinaryExpr {
  kind: 'binary';
  op: BinaryOp;
  left: Expr;
  right: Expr;
  pos?: Pos;
}

/**
 * A function call. Built-in ADQL functions have `name` in upper case and no `udf`; user-defined
 * ones keep `name` as written and may have a schema `qualifier`. COUNT(*) sets `star`.
 */
export interface FunctionCall {
  kind: 'function';
  name: string;
  udf?: boolean;
  qualifier?: QualifiedName;
  args: Expr[];
  quantifier?: 'DISTINCT' | 'ALL';
  star?: boolean;
  pos?: Pos;
}

/** CAST target: one of the ADQL 2.1 types, with a length for CHAR/VARCHAR. */
export interface CastType {
  name: 'SMALLINT' | 'INTEGER' | 'BIGINT' | 'REAL' | 'DOUBLE PRECISION' | 'CHAR' | 'VARCHAR' | 'TIMESTAMP' | 'POINT' | 'CIRCLE' | 'POLYGON';
  length?: number;
}

/** `CAST(expr AS type)`. */
export interface CastExpr {
  kind: 'cast';
  expr: Expr;
  type: CastType;
  pos?: Pos;
}

/** Simple (`CASE x WHEN v THEN ...`) or searched (`CASE WHEN cond THEN ...`) CASE. */
export interface CaseExpr {
  kind: 'case';
  operand?: Expr;
  whens: { when: Expr; then: Expr }[];
  else?: Expr;
  pos?: Pos;
}

/** `(SELECT ...)` used as a value. */
export interface SubqueryExpr {
  kind: 'subquery';
  query: Query;
  pos?: Pos;
}

/** Comparison operators as written (`!=` and `<>` are both kept). */
export type CompareOp = '=' | '<>' | '!=' | '<' | '>' | '<=' | '>=';

/** `left op right`. */
export interface Comparison {
  kind: 'compare';
  op: CompareOp;
  left: Expr;
  right: Expr;
  pos?: Pos;
}

/** `expr [NOT] BETWEEN low AND high`. */
export interface Between {
  kind: 'between';
  not: boolean;
  expr: Expr;
  low: Expr;
  high: Expr;
  pos?: Pos;
}

/** `expr [NOT] IN (list)` or `expr [NOT] IN (subquery)`: exactly one of list/query is set. */
export interface InPredicate {
  kind: 'in';
  not: boolean;
  expr: Expr;
  list?: Expr[];
  query?: Query;
  pos?: Pos;
}

/** `expr [NOT] LIKE|ILIKE pattern`. */
export interface LikePredicate {
  kind: 'like';
  not: boolean;
  op: 'LIKE' | 'ILIKE';
  expr: Expr;
  pattern: Expr;
  pos?: Pos;
}

/** `expr IS [NOT] NULL`. */
export interface IsNull {
  kind: 'isNull';
  not: boolean;
  expr: Expr;
  pos?: Pos;
}

/** `EXISTS (subquery)`. */
export interface Exists {
  kind: 'exists';
  query: Query;
  pos?: Pos;
}

/** `NOT condition`. */
export interface NotExpr {
  kind: 'not';
  operand: Expr;
  pos?: Pos;
}

/** `left AND|OR right`. */
export interface LogicalExpr {
  kind: 'logical';
  op: 'AND' | 'OR';
  left: Expr;
  right: Expr;
  pos?: Pos;
}

/** Any expression: values and conditions share one type; the parser keeps them apart. */
export type Expr =
  | NumberLiteral
  | StringLiteral
  | NullLiteral
  | ColumnRef
  | UnaryExpr
  | BinaryExpr
  | FunctionCall
  | CastExpr
  | CaseExpr
  | SubqueryExpr
  | Comparison
  | Between
  | InPredicate
  | LikePredicate
  | IsNull
  | Exists
  | NotExpr
  | LogicalExpr;

const CONDITION_KINDS = new Set(['compare', 'between', 'in', 'like', 'isNull', 'exists', 'not', 'logical']);

/** True when `e` is a search condition (true/false), not a value: ADQL has no boolean values. */
export function isCondition(e: Expr): boolean {
  return CONDITION_KINDS.has(e.kind);
}

/** The comparison key of a name: regular identifiers fold to lower case, delimited stay exact. */
export function identifierKey(id: Identifier): string {
  return id.delimited ? id.name : id.name.toLowerCase();
}

/** True when two identifiers name the same thing under ADQL case rules. */
export function sameIdentifier(a: Identifier, b: Identifier): boolean {
  return identifierKey(a) === identifierKey(b);
}

/**
 * A stable text key for a qualified name, e.g. `gaia_dr3.gaia_source`: parts normalised by
 * `identifierKey`, and a part that is not a lower-case, non-reserved regular identifier after
 * normalisation is written in double quotes, so different names never share a key.
 */
export function qualifiedNameKey(name: QualifiedName): string {
  return name
    .map((id) => {
      const key = identifierKey(id);
      return isRegularIdentifierSpelling(key) && key === key.toLowerCase() && !isReservedWord(key) ? key : `"${key.replace(/"/g, '""')}"`;
    })
    .join('.');
}

/**
 * The operands of a left-deep chain of binary (or of logical) nodes, leftmost first. Walkers use
 * it so that `a = 1 OR a = 2 OR ...` with thousands of terms does not recurse once per term.
 */
export function chainOperands(e: BinaryExpr | LogicalExpr): Expr[] {
  const rights: Expr[] = [];
  let cur: Expr = e;
  while (cur.kind === e.kind) {
    const node = cur as BinaryExpr | LogicalExpr;
    rights.push(node.right);
    cur = node.left;
  }
  return [cur, ...rights.reverse()];
}

/** Deep copy of plain tree data with an explicit work stack (structuredClone recurses and overflows on long chains). */
function copyTree<T>(node: T, keepPositions: boolean): T {
  const root: Record<string, unknown> = {};
  const work: { from: unknown; into: Record<string | number, unknown>; key: string | number }[] = [{ from: node, into: root, key: 'value' }];
  while (work.length > 0) {
    const { from, into, key } = work.pop() as (typeof work)[number];
    let out: unknown = from;
    if (Array.isArray(from)) {
      const arr: unknown[] = new Array(from.length);
      from.forEach((v, i) => work.push({ from: v, into: arr as unknown as Record<number, unknown>, key: i }));
      out = arr;
    } else if (from !== null && typeof from === 'object') {
      const obj: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(from as Record<string, unknown>)) {
        if ((k === 'pos' && !keepPositions) || v === undefined) continue;
        obj[k] = undefined;
        work.push({ from: v, into: obj, key: k });
      }
      out = obj;
    }
    into[key] = out;
  }
  return root.value as T;
}

/** A deep copy of any AST value (positions kept); safe on very deep trees. */
export function cloneAst<T>(node: T): T {
  return copyTree(node, true);
}

/** A copy of any AST value with every `pos` property (and undefined property) removed, for comparisons. */
export function stripPositions<T>(node: T): T {
  return copyTree(node, false);
}
