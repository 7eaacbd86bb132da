/**
 * What the broker needs from a parsed query: which tables it reads (`tablesReferenced`) and the
 * same query with canonical table and column names replaced by one site's local names
 * (`rewriteTables`). Both work on the tree, so string literals, aliases and everything else are
 * untouched; name resolution follows SQL scoping (FROM sources, outer queries, CTEs, derived tables).
 */
import {
  chainOperands,
  cloneAst,
  identifierKey,
  qualifiedNameKey,
  sameIdentifier,
  type ColumnRef,
  type Expr,
  type FromItem,
  type Identifier,
  type Join,
  type QualifiedName,
  type Query,
  type QueryBody,
  type Select,
} from './ast.js';
import { AdqlUnsupportedError, type Pos } from './errors.js';
import { parseQualifiedName } from './parser.js';
import { isRegularIdentifierSpelling, isReservedWord } from './tokens.js';

/** One table read by a query, as found in a FROM clause. */
export interface TableReference {
  /** The name as written (parts in source order). */
  name: QualifiedName;
  /** Normalised key, e.g. `gaia_dr3.gaia_source`: the canonical dataset id when the user wrote one. */
  id: string;
  /** The correlation name, normalised like `id` parts (regular lower-cased, delimited exact). */
  alias?: string;
  pos?: Pos;
}

/** Call `visit` on every query nested in `e` (scalar subqueries, IN and EXISTS). */
function forEachSubquery(e: Expr, visit: (q: Query) => void): void {
  switch (e.kind) {
    case 'subquery':
    case 'exists':
      visit(e.query);
      return;
    case 'in':
      forEachSubquery(e.expr, visit);
      if (e.query) visit(e.query);
      e.list?.forEach((v) => forEachSubquery(v, visit));
      return;
    default:
      forEachChildExpr(e, (c) => forEachSubquery(c, visit));
  }
}

/**
 * Call `fn` on each sub-expression of `e` (not on nested queries); for a run of binary or
 * logical operators, on all the run's operands at once, so walkers stay shallow on long chains.
 */
export function forEachChildExpr(e: Expr, fn: (child: Expr) => void): void {
  switch (e.kind) {
    case 'unary':
      fn(e.operand);
      return;
    case 'not':
      fn(e.operand);
      return;
    case 'binary':
    case 'logical':
      chainOperands(e).forEach(fn);
      return;
    case 'compare':
      fn(e.left);
      fn(e.right);
      return;
    case 'function':
      e.args.forEach(fn);
      return;
    case 'cast':
      fn(e.expr);
      return;
    case 'case':
      if (e.operand) fn(e.operand);
      e.whens.forEach((w) => {
        fn(w.when);
        fn(w.then);
      });
      if (e.else) fn(e.else);
      return;
    case 'between':
      fn(e.expr);
      fn(e.low);
      fn(e.high);
      return;
    case 'in':
      fn(e.expr);
      e.list?.forEach(fn);
      return;
    case 'like':
      fn(e.expr);
      fn(e.pattern);
      return;
    case 'isNull':
      fn(e.expr);
      return;
    default:
      return;
  }
}

/** Every table in FROM and JOIN clauses of the query and all its subqueries and WITH queries; WITH names are not tables. */
export function tablesReferenced(q: Query): TableReference[] {
  const out: TableReference[] = [];
  const visitQuery = (query: Query, ctes: ReadonlySet<string>): void => {
    let env = ctes;
    if (query.with) {
      const names = new Set(ctes);
      for (const cte of query.with) {
        visitQuery(cte.query, names);
        names.add(identifierKey(cte.name));
      }
      env = names;
    }
    visitBody(query.body, env);
    query.orderBy?.forEach((o) => forEachSubquery(o.expr, (sub) => visitQuery(sub, env)));
  };
  const visitBody = (b: QueryBody, ctes: ReadonlySet<string>): void => {
    if (b.kind === 'query') return visitQuery(b, ctes);
    if (b.kind === 'setop') {
      visitBody(b.left, ctes);
      visitBody(b.right, ctes);
      return;
    }
    const exprs: Expr[] = [];
    const visitFrom = (f: FromItem): void => {
      if (f.kind === 'table') {
        if (f.name.length === 1 && ctes.has(identifierKey(f.name[0]))) return;
        const ref: TableReference = { name: f.name, id: qualifiedNameKey(f.name) };
        if (f.alias) ref.alias = identifierKey(f.alias);
        if (f.pos) ref.pos = f.pos;
        out.push(ref);
      } else if (f.kind === 'derived') {
        visitQuery(f.query, ctes);
      } else {
        visitFrom(f.left);
        visitFrom(f.right);
        if (f.on) exprs.push(f.on);
      }
    };
    b.from.forEach(visitFrom);
    for (const c of b.columns) if (c.kind === 'item') exprs.push(c.expr);
    if (b.where) exprs.push(b.where);
    if (b.groupBy) exprs.push(...b.groupBy);
    if (b.having) exprs.push(b.having);
    for (const e of exprs) forEachSubquery(e, (sub) => visitQuery(sub, ctes));
  };
  visitQuery(q, new Set());
  return out;
}

/** Where one canonical table lives at a site. */
export interface TableMapping {
  /**
   * The local table name: a dotted string of exact names (`dbo.MeanObjectView`), an ADQL name
   * with explicit quoting when it contains `"` (`"gaiadr3"."gaia_source"`), or parsed parts.
   */
  table: string | QualifiedName;
  /** Canonical column name → local column name (exact, or ADQL-quoted when it contains `"`). */
  columns?: Readonly<Record<string, string>> | ReadonlyMap<string, string>;
  /** Every canonical column of the table, when known: lets unqualified names be resolved. */
  columnList?: readonly string[];
}

/** Options of `rewriteTables`. */
export interface RewriteOptions {
  /**
   * Write local names that contain upper-case letters in double quotes (exact match), the
   * PostgreSQL/ADQL reading. Default true; false suits servers that ignore case (SQL Server).
   */
  quoteMixedCase?: boolean;
  /**
   * When a bare column in a select list gets a differently spelt local name, add
   * `AS <name as the user wrote it>` so result columns keep the names asked for. Default true.
   */
  keepOutputNames?: boolean;
  /** Canonical column lists of tables that are not renamed, keyed by table id, for resolving unqualified names. */
  tableColumns?: Readonly<Record<string, readonly string[]>> | ReadonlyMap<string, readonly string[]>;
}

type Renames = Map<string, Identifier>;

/** Something in a FROM list a column can come from. */
interface Source {
  label: string;
  alias?: Identifier;
  tableName?: QualifiedName;
  renames: Renames;
  /** All column keys, when known. */
  known?: Set<string>;
  /** The new table name, when the table was renamed and has no alias (qualifiers follow it). */
  newName?: QualifiedName;
}

interface Scope {
  sources: Source[];
  parent?: Scope;
}

/** Output columns of a query: key as the caller saw it, identifier now; plus what stars expand to. */
interface Outputs {
  items: { orig: string; now: Identifier }[];
  renames: Renames;
  known?: Set<string>;
}

interface ResolvedMapping {
  local: QualifiedName;
  renames: Renames;
  known?: Set<string>;
}

function entriesOf<V>(m: Readonly<Record<string, V>> | ReadonlyMap<string, V> | undefined): [string, V][] {
  if (!m) return [];
  return m instanceof Map ? [...m.entries()] : Object.entries(m as Record<string, V>);
}

/** Key of a canonical name given as text: lower case, or exact when written in double quotes. */
function canonicalKey(text: string): string {
  const t = text.trim();
  if (!t.startsWith('"')) return t.toLowerCase();
  try {
    return identifierKey(parseQualifiedName(t, 1)[0]);
  } catch (err) {
    return bad(`invalid column name ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
}

function bad(message: string): never {
  throw new AdqlUnsupportedError(message, undefined, 'adql-rewrite');
}

/** Key of a table id given by the caller, e.g. `gaia_dr3.gaia_source`. */
function tableKey(id: string): string {
  try {
    return qualifiedNameKey(parseQualifiedName(id, 3));
  } catch (err) {
    return bad(`invalid table id ${JSON.stringify(id)}: ${(err as Error).message}`);
  }
}

/** A local name part as an identifier: delimited unless it reads back unchanged as a regular identifier. */
function localPart(part: string, quoteMixedCase: boolean): Identifier {
  if (part === '') bad('empty name part in a local table or column name');
  const delimited = !isRegularIdentifierSpelling(part) || isReservedWord(part) || (quoteMixedCase && part !== part.toLowerCase());
  return { name: part, delimited };
}

function localName(spec: string | QualifiedName, quoteMixedCase: boolean, maxParts: number): QualifiedName {
  if (Array.isArray(spec)) return spec.map((p) => ({ name: p.name, delimited: p.delimited }));
  const text = spec as string;
  if (text.includes('"')) {
    try {
      return parseQualifiedName(text, maxParts).map((p) => ({ name: p.name, delimited: p.delimited }));
    } catch (err) {
      return bad(`invalid local name ${JSON.stringify(text)}: ${(err as Error).message}`);
    }
  }
  const parts = text.split('.');
  if (parts.length > maxParts) bad(`local name ${JSON.stringify(text)} has more than ${maxParts} parts`);
  return parts.map((p) => localPart(p, quoteMixedCase));
}

function sameNewName(a: Identifier | undefined, b: Identifier | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.name === b.name && a.delimited === b.delimited;
}

function cloneId(id: Identifier): Identifier {
  return { name: id.name, delimited: id.delimited };
}

class Rewriter {
  constructor(
    private readonly mapping: Map<string, ResolvedMapping>,
    private readonly tableColumns: Map<string, Set<string>>,
    private readonly keepOutputNames: boolean,
  ) {}

  query(q: Query, parent: Scope | undefined, ctes: Map<string, Outputs>): Outputs {
    let env = ctes;
    if (q.with) {
      env = new Map(ctes);
      for (const cte of q.with) env.set(identifierKey(cte.name), this.query(cte.query, parent, env));
    }
    const { outputs, scope } = this.body(q.body, parent, env);
    for (const item of q.orderBy ?? []) {
      const e = item.expr;
      if (e.kind === 'column' && !e.table) {
        const out = outputs.items.find((o) => o.orig === identifierKey(e.column));
        if (out) {
          if (identifierKey(out.now) !== identifierKey(e.column)) e.column = cloneId(out.now);
          continue;
        }
      }
      if (scope) this.expr(e, scope, env);
    }
    return outputs;
  }

  private body(b: QueryBody, parent: Scope | undefined, env: Map<string, Outputs>): { outputs: Outputs; scope?: Scope } {
    if (b.kind === 'select') return this.select(b, parent, env);
    if (b.kind === 'query') return { outputs: this.query(b, parent, env) };
    const left = this.body(b.left, parent, env);
    this.body(b.right, parent, env);
    return { outputs: left.outputs };
  }

  private select(s: Select, parent: Scope | undefined, env: Map<string, Outputs>): { outputs: Outputs; scope: Scope } {
    const scope: Scope = { sources: [], parent };
    const joins: { join: Join; left: Source[]; right: Source[] }[] = [];
    for (const f of s.from) this.fromItem(f, scope, env, joins);
    for (const { join, left, right } of joins) {
      if (join.on) this.expr(join.on, scope, env);
      if (join.using) join.using = join.using.map((u) => this.usingColumn(u, left, right));
    }
    const outputs: Outputs = { items: [], renames: new Map(), known: new Set() };
    for (const c of s.columns) {
      if (c.kind === 'star') {
        const sources = c.qualifier ? scope.sources.filter((src) => this.matches(src, c.qualifier as QualifiedName)) : scope.sources;
        if (c.qualifier) {
          const src = sources[0];
          if (src?.newName && !src.alias) c.qualifier = src.newName.slice(-c.qualifier.length).map(cloneId);
        }
        for (const src of sources) {
          for (const [k, v] of src.renames) outputs.renames.set(k, v);
          if (src.known && outputs.known) for (const k of src.known) outputs.known.add(k);
          else outputs.known = undefined;
        }
        continue;
      }
      const bare = c.expr.kind === 'column' ? c.expr.column : undefined;
      this.expr(c.expr, scope, env);
      if (c.alias) {
        outputs.items.push({ orig: identifierKey(c.alias), now: c.alias });
      } else if (bare && c.expr.kind === 'column') {
        const now = c.expr.column;
        // Spelling, not just the folded key: result labels are compared exactly downstream (VOTable).
        if (this.keepOutputNames && now.name !== bare.name) c.alias = cloneId(bare);
        outputs.items.push({ orig: identifierKey(bare), now: c.alias ?? now });
      }
    }
    for (const o of outputs.items) {
      outputs.known?.add(o.orig);
      if (identifierKey(o.now) !== o.orig) outputs.renames.set(o.orig, o.now);
      else outputs.renames.delete(o.orig);
    }
    if (s.where) this.expr(s.where, scope, env);
    s.groupBy?.forEach((g) => this.expr(g, scope, env));
    if (s.having) this.expr(s.having, scope, env);
    return { outputs, scope };
  }

  private fromItem(f: FromItem, scope: Scope, env: Map<string, Outputs>, joins: { join: Join; left: Source[]; right: Source[] }[]): void {
    if (f.kind === 'join') {
      const before = scope.sources.length;
      this.fromItem(f.left, scope, env, joins);
      const mid = scope.sources.length;
      this.fromItem(f.right, scope, env, joins);
      joins.push({ join: f, left: scope.sources.slice(before, mid), right: scope.sources.slice(mid) });
      return;
    }
    if (f.kind === 'derived') {
      const out = this.query(f.query, scope.parent, env);
      scope.sources.push({ label: identifierKey(f.alias), alias: f.alias, renames: out.renames, known: out.known });
      return;
    }
    const id = qualifiedNameKey(f.name);
    const cte = f.name.length === 1 ? env.get(identifierKey(f.name[0])) : undefined;
    if (cte) {
      scope.sources.push({ label: id, alias: f.alias, tableName: f.name, renames: cte.renames, known: cte.known });
      return;
    }
    const m = this.mapping.get(id);
    if (!m) {
      scope.sources.push({ label: id, alias: f.alias, tableName: f.name, renames: new Map(), known: this.tableColumns.get(id) });
      return;
    }
    const original = f.name;
    f.name = m.local.map(cloneId);
    scope.sources.push({
      label: id,
      alias: f.alias,
      tableName: original,
      renames: m.renames,
      known: m.known,
      newName: f.alias ? undefined : m.local,
    });
  }

  /** USING (c) names one column of both sides: both sides must agree on its new name. */
  private usingColumn(u: Identifier, left: Source[], right: Source[]): Identifier {
    const key = identifierKey(u);
    const news = [...left, ...right]
      .filter((src) => src.renames.has(key) || src.known?.has(key))
      .map((src) => src.renames.get(key));
    if (news.length === 0 || news.every((n) => n === undefined)) return u;
    if (!news.every((n) => sameNewName(n, news[0]))) {
      bad(`USING (${u.name}) cannot be rewritten: the column has different local names in the joined tables; write the join with ON`);
    }
    return cloneId(news[0] as Identifier);
  }

  private matches(src: Source, qualifier: QualifiedName): boolean {
    if (src.alias) return qualifier.length === 1 && sameIdentifier(src.alias, qualifier[0]);
    const name = src.tableName;
    if (!name || qualifier.length > name.length) return false;
    const offset = name.length - qualifier.length;
    return qualifier.every((part, i) => sameIdentifier(part, name[offset + i]));
  }

  private expr(e: Expr, scope: Scope, env: Map<string, Outputs>): void {
    switch (e.kind) {
      case 'column':
        this.column(e, scope);
        return;
      case 'subquery':
      case 'exists':
        this.query(e.query, scope, env);
        return;
      case 'in':
        this.expr(e.expr, scope, env);
        if (e.query) this.query(e.query, scope, env);
        e.list?.forEach((v) => this.expr(v, scope, env));
        return;
      default:
        forEachChildExpr(e, (c) => this.expr(c, scope, env));
    }
  }

  private column(ref: ColumnRef, scope: Scope): void {
    const key = identifierKey(ref.column);
    if (ref.table) {
      const qualifier = ref.table;
      for (let s: Scope | undefined = scope; s; s = s.parent) {
        const src = s.sources.find((x) => this.matches(x, qualifier));
        if (!src) continue;
        const renamed = src.renames.get(key);
        if (renamed) ref.column = cloneId(renamed);
        if (src.newName) ref.table = src.newName.slice(-qualifier.length).map(cloneId);
        return;
      }
      return;
    }
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const has = s.sources.filter((src) => src.renames.has(key) || src.known?.has(key));
      if (has.length > 0) {
        const news = has.map((src) => src.renames.get(key));
        if (news.every((n) => n === undefined)) return;
        if (!news.every((n) => sameNewName(n, news[0]))) {
          throw new AdqlUnsupportedError(
            `column '${ref.column.name}' is ambiguous: it belongs to ${has.map((h) => h.label).join(' and ')}; qualify it with a table name or alias`,
            ref.pos,
            'adql-rewrite',
          );
        }
        ref.column = cloneId(news[0] as Identifier);
        return;
      }
      // A table whose columns are unknown may hold this name and would shadow outer scopes.
      if (s.sources.some((src) => !src.known)) return;
    }
  }
}

/**
 * A copy of `q` reading each mapped table (key: canonical id such as `gaia_dr3.gaia_source`)
 * from its local name, with its columns renamed wherever they resolve to that table: qualified
 * by its alias or name, or unqualified when exactly one table in scope is known to hold the
 * name (known from `columnList`, the `columns` keys or `options.tableColumns`). Qualifiers
 * written with a renamed table's name follow it. `SELECT *` and NATURAL joins are not expanded.
 * Throws AdqlUnsupportedError (rule 'adql-rewrite') for an unqualified name that resolves to
 * several tables with different local names, and for a USING column renamed differently per side.
 */
export function rewriteTables(
  q: Query,
  mapping: Readonly<Record<string, TableMapping>> | ReadonlyMap<string, TableMapping>,
  options: RewriteOptions = {},
): Query {
  const quoteMixedCase = options.quoteMixedCase ?? true;
  const resolved = new Map<string, ResolvedMapping>();
  for (const [id, m] of entriesOf(mapping)) {
    const key = tableKey(id);
    const renames: Renames = new Map();
    for (const [canonical, local] of entriesOf(m.columns)) {
      const part = localName(local, quoteMixedCase, 1)[0];
      renames.set(canonicalKey(canonical), part);
    }
    const known = m.columnList ? new Set(m.columnList.map(canonicalKey)) : undefined;
    if (known) for (const k of renames.keys()) known.add(k);
    resolved.set(key, { local: localName(m.table, quoteMixedCase, 3), renames, known });
  }
  const tableColumns = new Map<string, Set<string>>();
  for (const [id, cols] of entriesOf(options.tableColumns)) {
    tableColumns.set(tableKey(id), new Set(cols.map(canonicalKey)));
  }
  const copy = cloneAst(q);
  new Rewriter(resolved, tableColumns, options.keepOutputNames ?? true).query(copy, undefined, new Map());
  return copy;
}
