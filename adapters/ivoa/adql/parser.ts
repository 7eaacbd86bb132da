/**
 * Recursive-descent ADQL 2.1 parser producing the tree in ast.ts. Values and search conditions
 * share one precedence-climbing expression parser, then each use is checked, because ADQL has
 * no boolean values: `WHERE CONTAINS(...)` without `= 1` and `SELECT a = b` are errors.
 *
 * Precedence, loosest first: OR, AND, NOT, predicates (comparisons, BETWEEN, IN, LIKE, ILIKE,
 * IS NULL; not chainable), `|`, `^`, `&`, `||`, `+ -`, `* /`, prefix `- + ~`.
 */
import {
  isCondition,
  type BinaryOp,
  type CaseExpr,
  type CastType,
  type CommonTableExpression,
  type CompareOp,
  type Expr,
  type FromItem,
  type FunctionCall,
  type Identifier,
  type Join,
  type OrderItem,
  type QualifiedName,
  type Query,
  type QueryBody,
  type Select,
  type SelectItem,
} from './ast.js';
import { AdqlSyntaxError, type Pos } from './errors.js';
import { tokenize } from './lexer.js';
import type { Token } from './tokens.js';

/** Arity of each built-in function: [min, max]; DISTANCE also refuses 3. */
export const BUILTIN_FUNCTIONS: ReadonlyMap<string, readonly [number, number]> = new Map<string, readonly [number, number]>([
  ['ABS', [1, 1]], ['CEILING', [1, 1]], ['DEGREES', [1, 1]], ['EXP', [1, 1]], ['FLOOR', [1, 1]],
  ['LOG', [1, 1]], ['LOG10', [1, 1]], ['MOD', [2, 2]], ['PI', [0, 0]], ['POWER', [2, 2]],
  ['RADIANS', [1, 1]], ['RAND', [0, 1]], ['ROUND', [1, 2]], ['SQRT', [1, 1]], ['TRUNCATE', [1, 2]],
  ['ACOS', [1, 1]], ['ASIN', [1, 1]], ['ATAN', [1, 1]], ['ATAN2', [2, 2]], ['COS', [1, 1]],
  ['COT', [1, 1]], ['SIN', [1, 1]], ['TAN', [1, 1]],
  ['AREA', [1, 1]], ['BOX', [3, 5]], ['CENTROID', [1, 1]], ['CIRCLE', [2, 4]], ['CONTAINS', [2, 2]],
  ['COORD1', [1, 1]], ['COORD2', [1, 1]], ['COORDSYS', [1, 1]], ['DISTANCE', [2, 4]],
  ['INTERSECTS', [2, 2]], ['POINT', [2, 3]], ['POLYGON', [3, Infinity]], ['REGION', [1, 1]],
  ['LOWER', [1, 1]], ['UPPER', [1, 1]], ['COALESCE', [1, Infinity]], ['IN_UNIT', [2, 2]],
  ['COUNT', [1, 1]], ['AVG', [1, 1]], ['MIN', [1, 1]], ['MAX', [1, 1]], ['SUM', [1, 1]],
]);

/** Set functions: they take DISTINCT/ALL, and COUNT also takes `*`. */
export const AGGREGATE_FUNCTIONS: ReadonlySet<string> = new Set(['COUNT', 'AVG', 'MIN', 'MAX', 'SUM']);

/** Keywords that shape a query; where a name is expected they get "expected ..." rather than a quoting hint. */
const STRUCTURAL = new Set(
  `SELECT FROM WHERE GROUP BY HAVING ORDER UNION EXCEPT INTERSECT JOIN INNER LEFT RIGHT FULL OUTER CROSS
  NATURAL ON USING AS AND OR NOT IN IS LIKE ILIKE BETWEEN EXISTS CASE WHEN THEN ELSE END WITH DISTINCT ALL
  TOP OFFSET ASC DESC NULL`.split(/\s+/),
);

/** Keywords an implicit alias may be a misspelling of. */
const CLAUSE_WORDS = ['FROM', 'WHERE', 'GROUP', 'HAVING', 'ORDER', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'FULL', 'CROSS',
  'NATURAL', 'UNION', 'EXCEPT', 'INTERSECT', 'OFFSET', 'USING', 'SELECT', 'WITH'];

const COMPARE_OPS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);
const BINARY_PREC: Record<string, number> = { '|': 5, '^': 6, '&': 7, '||': 8, '+': 9, '-': 9, '*': 10, '/': 10 };
const PREC_OR = 1;
const PREC_AND = 2;
const PREC_NOT = 3;
const PREC_PREDICATE = 4;
const PREC_VALUE = 5;
const PREC_UNARY = 11;
/** Deeper nesting (parentheses, subqueries) is refused: no real query needs it, and the tree walkers recurse on it. */
export const MAX_NESTING = 400;
/** Longest run of JOINs or of set operations accepted in one place (the walkers recurse along them). */
export const MAX_CHAIN = 1000;

/** Optimal-string-alignment distance, small words only: enough to spot FORM for FROM. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The clause keyword `word` is probably a misspelling of, if any. */
function closestClauseWord(word: string): string | undefined {
  const w = word.toUpperCase();
  return CLAUSE_WORDS.find((k) => {
    const limit = k.length <= 5 ? 1 : 2;
    return w !== k && Math.abs(w.length - k.length) <= limit && editDistance(w, k) <= limit;
  });
}

/** Of two failed parse attempts, the error that got further into the text explains it best. */
function furthest(first: unknown, second: unknown): unknown {
  const offset = (e: unknown): number => (e instanceof AdqlSyntaxError ? e.offset : -1);
  return offset(second) >= offset(first) ? second : first;
}

class Parser {
  private i = 0;
  private depth = 0;
  /** Indexes of tokens used as an alias without AS: a misspelt keyword often ends up there. */
  private readonly implicitAliases = new Set<number>();

  constructor(private readonly toks: Token[]) {}

  // ---- token helpers -------------------------------------------------------------------

  private peek(k = 0): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  private isKw(word: string, k = 0): boolean {
    const t = this.peek(k);
    return t.kind === 'keyword' && t.value === word;
  }

  private isOp(op: string, k = 0): boolean {
    const t = this.peek(k);
    return t.kind === 'op' && t.value === op;
  }

  private acceptKw(word: string): Token | undefined {
    return this.isKw(word) ? this.next() : undefined;
  }

  private acceptOp(op: string): Token | undefined {
    return this.isOp(op) ? this.next() : undefined;
  }

  private expectKw(word: string, context: string): Token {
    if (this.isKw(word)) return this.next();
    return this.fail(`expected ${word} ${context}`);
  }

  private expectOp(op: string, context: string): Token {
    if (this.isOp(op)) return this.next();
    return this.fail(`expected '${op}' ${context}`);
  }

  private expectClose(open: Token, context: string): Token {
    if (this.isOp(')')) return this.next();
    return this.fail(`expected ')' ${context} (to close the '(' at line ${open.pos.line}, column ${open.pos.column})`);
  }

  private isQueryStart(k = 0): boolean {
    return this.isKw('SELECT', k) || this.isKw('WITH', k);
  }

  /**
   * Throw "expected ..." at the current token. When the previous token was taken as an implicit
   * alias and looks like a misspelt keyword (WHER, FORM), the error points at it instead, since
   * that is what the user has to fix.
   */
  private fail(detail: string, tok: Token = this.peek()): never {
    const idx = this.toks.indexOf(tok);
    if (idx > 0 && this.implicitAliases.has(idx - 1)) {
      const alias = this.toks[idx - 1];
      if (alias.value.toUpperCase() === 'LIMIT' && tok.kind === 'number') {
        throw new AdqlSyntaxError('ADQL has no LIMIT clause; write SELECT TOP n instead', alias.pos, alias.text);
      }
      const suggestion = closestClauseWord(alias.value);
      if (suggestion) {
        const hint = detail.startsWith('expected end') ? ` (did you mean ${suggestion}?)` : '';
        throw new AdqlSyntaxError(detail, alias.pos, alias.text, hint);
      }
    }
    throw new AdqlSyntaxError(detail, tok.pos, tok.kind === 'eof' ? null : tok.text);
  }

  /** Error for a reserved word where a name was expected. */
  private failReserved(tok: Token, role: string): never {
    throw new AdqlSyntaxError(
      `${role} cannot be the reserved word '${tok.text}'; write "${tok.text}" (in double quotes) to use it as a name`,
      tok.pos,
      tok.text,
    );
  }

  private tokenAt(pos: Pos | undefined): Token {
    if (!pos) return this.peek();
    let lo = 0;
    let hi = this.toks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.toks[mid].pos.offset < pos.offset) lo = mid + 1;
      else hi = mid;
    }
    return this.toks[lo];
  }

  /** Error located at the first token of an already parsed expression. */
  private failAt(e: Expr, detail: string): never {
    const t = this.tokenAt(e.pos);
    throw new AdqlSyntaxError(detail, t.pos, t.kind === 'eof' ? null : t.text);
  }

  // ---- queries ---------------------------------------------------------------------------

  parseStatement(): Query {
    if (this.peek().kind === 'eof') this.fail('expected SELECT');
    const q = this.parseQuery();
    this.acceptOp(';');
    if (this.peek().kind !== 'eof') {
      this.fail(q.orderBy && q.offset === undefined ? 'expected OFFSET or end of query' : 'expected end of query');
    }
    return q;
  }

  parseStandaloneExpression(): Expr {
    const e = this.parseExpr(0, 'an expression');
    if (this.peek().kind !== 'eof') this.fail('expected end of expression');
    return e;
  }

  parseStandaloneName(maxParts: number): QualifiedName {
    const name = this.parseQualifiedName('a name', maxParts);
    if (this.peek().kind !== 'eof') this.fail('expected end of name');
    return name;
  }

  parseQuery(): Query {
    return this.nested(() => this.parseQueryAt());
  }

  private parseQueryAt(): Query {
    const start = this.peek().pos;
    let ctes: CommonTableExpression[] | undefined;
    if (this.acceptKw('WITH')) {
      ctes = [];
      do {
        const name = this.parseIdentifier('a name for the WITH query');
        this.expectKw('AS', `after the WITH query name`);
        const open = this.expectOp('(', `after AS in WITH`);
        if (!this.isQueryStart() && !this.isOp('(')) this.fail('expected SELECT in WITH query');
        const query = this.parseQuery();
        this.expectClose(open, 'after the WITH query');
        ctes.push({ name, query });
      } while (this.acceptOp(','));
    }
    const body = this.parseSetExpression();
    const q: Query = { kind: 'query', body, pos: start };
    if (ctes) q.with = ctes;
    if (this.acceptKw('ORDER')) {
      this.expectKw('BY', 'after ORDER');
      q.orderBy = this.parseOrderList();
    }
    if (this.acceptKw('OFFSET')) q.offset = this.parseCount('OFFSET');
    return q;
  }

  private parseCount(after: string): number {
    const t = this.peek();
    if (t.kind !== 'number' || t.shape !== 'integer') this.fail(`expected a row count (an unsigned integer) after ${after}`);
    this.next();
    const n = Number(t.value);
    if (!Number.isSafeInteger(n)) throw new AdqlSyntaxError(`row count after ${after} is too large`, t.pos, t.text);
    return n;
  }

  private parseOrderList(): OrderItem[] {
    const items: OrderItem[] = [];
    do {
      const expr = this.parseValue(items.length === 0 ? 'an ORDER BY term after ORDER BY' : "an ORDER BY term after ','");
      const item: OrderItem = { expr };
      if (this.acceptKw('ASC')) item.direction = 'ASC';
      else if (this.acceptKw('DESC')) item.direction = 'DESC';
      items.push(item);
    } while (this.acceptOp(','));
    return items;
  }

  private checkChain(count: number, what: string): void {
    if (count > MAX_CHAIN) {
      const t = this.peek();
      throw new AdqlSyntaxError(`too many ${what} in a row (more than ${MAX_CHAIN})`, t.pos, t.kind === 'eof' ? null : t.text);
    }
  }

  private parseSetExpression(): QueryBody {
    let left = this.parseSetTerm();
    for (let count = 1; ; count++) {
      const t = this.peek();
      if (!(this.isKw('UNION') || this.isKw('EXCEPT'))) return left;
      this.checkChain(count, 'set operations');
      this.next();
      const all = this.acceptKw('ALL') !== undefined;
      const right = this.parseSetTerm();
      left = { kind: 'setop', op: t.value as 'UNION' | 'EXCEPT', all, left, right, pos: t.pos };
    }
  }

  private parseSetTerm(): QueryBody {
    let left = this.parseSetPrimary();
    for (let count = 1; ; count++) {
      const t = this.peek();
      if (!this.isKw('INTERSECT')) return left;
      this.checkChain(count, 'set operations');
      this.next();
      const all = this.acceptKw('ALL') !== undefined;
      const right = this.parseSetPrimary();
      left = { kind: 'setop', op: 'INTERSECT', all, left, right, pos: t.pos };
    }
  }

  private parseSetPrimary(): QueryBody {
    if (this.isKw('SELECT')) return this.parseSelect();
    if (this.isOp('(')) {
      const open = this.next();
      if (!this.isQueryStart() && !this.isOp('(')) this.fail(`expected SELECT after '('`);
      const q = this.parseQuery();
      this.expectClose(open, 'after the parenthesised query');
      return q;
    }
    const prev = this.toks[this.i - 1];
    if (prev && prev.kind === 'keyword' && ['UNION', 'EXCEPT', 'INTERSECT', 'ALL'].includes(prev.value)) {
      return this.fail(`expected SELECT after ${prev.value}`);
    }
    return this.fail('expected SELECT');
  }

  private parseSelect(): Select {
    const selectTok = this.next();
    const sel: Select = { kind: 'select', columns: [], from: [], pos: selectTok.pos };
    let after = 'SELECT';
    const q = this.acceptKw('DISTINCT') ?? this.acceptKw('ALL');
    if (q) {
      sel.quantifier = q.value as 'DISTINCT' | 'ALL';
      after = q.value;
    }
    if (this.acceptKw('TOP')) {
      sel.top = this.parseCount('TOP');
      after = `TOP ${sel.top}`;
      if (this.isKw('DISTINCT') || this.isKw('ALL')) this.fail(`${this.peek().value} must come before TOP`);
    }
    do {
      sel.columns.push(this.parseSelectItem(sel.columns.length === 0 ? `a select list after ${after}` : "a select list item after ','"));
    } while (this.acceptOp(','));
    this.expectKw('FROM', 'after select list');
    do {
      sel.from.push(this.parseTableReference());
    } while (this.acceptOp(','));
    if (this.acceptKw('WHERE')) sel.where = this.parseCondition('a condition after WHERE');
    if (this.acceptKw('GROUP')) {
      this.expectKw('BY', 'after GROUP');
      sel.groupBy = [];
      do {
        sel.groupBy.push(this.parseValue(sel.groupBy.length === 0 ? 'a grouping term after GROUP BY' : "a grouping term after ','"));
      } while (this.acceptOp(','));
    }
    if (this.acceptKw('HAVING')) sel.having = this.parseCondition('a condition after HAVING');
    return sel;
  }

  private isNameToken(k = 0): boolean {
    const t = this.peek(k);
    return t.kind === 'ident' || t.kind === 'quoted';
  }

  private parseSelectItem(what: string): SelectItem {
    const t = this.peek();
    if (this.isOp('*')) {
      this.next();
      return { kind: 'star', pos: t.pos };
    }
    // Lookahead for `name(.name)*.*` so that t.* is not taken for a column reference.
    let k = 0;
    while (this.isNameToken(k) && this.isOp('.', k + 1)) {
      if (this.isOp('*', k + 2)) {
        const qualifier: QualifiedName = [];
        for (let p = 0; p <= k; p += 2) {
          qualifier.push(this.identifierFrom(this.next()));
          this.next();
        }
        this.next();
        if (qualifier.length > 3) throw new AdqlSyntaxError('a table name has at most 3 parts (catalog.schema.table)', t.pos, t.text);
        return { kind: 'star', qualifier, pos: t.pos };
      }
      k += 2;
    }
    const expr = this.parseValue(what);
    if (this.acceptKw('AS')) return { kind: 'item', expr, alias: this.parseIdentifier('an alias after AS') };
    if (this.isNameToken()) {
      this.implicitAliases.add(this.i);
      return { kind: 'item', expr, alias: this.identifierFrom(this.next()) };
    }
    return { kind: 'item', expr };
  }

  // ---- FROM ------------------------------------------------------------------------------

  private parseTableReference(): FromItem {
    return this.nested(() => this.parseTableReferenceAt());
  }

  private parseTableReferenceAt(): FromItem {
    let left = this.parseTablePrimary();
    for (let count = 1; ; count++) {
      const t = this.peek();
      if (this.isKw('JOIN') || this.isKw('CROSS') || this.isKw('NATURAL') || this.isKw('INNER') || this.isKw('LEFT') || this.isKw('RIGHT') || this.isKw('FULL')) {
        this.checkChain(count, 'JOINs');
      }
      if (this.acceptKw('CROSS')) {
        this.expectKw('JOIN', 'after CROSS');
        const right = this.parseTablePrimary();
        if (this.isKw('ON') || this.isKw('USING')) this.fail('a CROSS JOIN takes no ON or USING; expected');
        left = { kind: 'join', joinType: 'CROSS', natural: false, left, right, pos: t.pos };
        continue;
      }
      const natural = this.acceptKw('NATURAL') !== undefined;
      let joinType: Join['joinType'] = 'INNER';
      let written = natural ? 'NATURAL' : '';
      if (this.acceptKw('INNER')) written += `${written ? ' ' : ''}INNER`;
      else if (this.isKw('LEFT') || this.isKw('RIGHT') || this.isKw('FULL')) {
        joinType = this.next().value as 'LEFT' | 'RIGHT' | 'FULL';
        written += `${written ? ' ' : ''}${joinType}`;
        if (this.acceptKw('OUTER')) written += ' OUTER';
      }
      if (written) this.expectKw('JOIN', `after ${written}`);
      else if (!this.acceptKw('JOIN')) return left;
      const right = this.parseTablePrimary();
      const join: Join = { kind: 'join', joinType, natural, left, right, pos: t.pos };
      if (natural) {
        if (this.isKw('ON') || this.isKw('USING')) this.fail('a NATURAL JOIN takes no ON or USING condition');
      } else if (this.acceptKw('ON')) {
        join.on = this.parseCondition('a join condition after ON');
      } else if (this.acceptKw('USING')) {
        const open = this.expectOp('(', 'after USING');
        join.using = [];
        do {
          join.using.push(this.parseIdentifier(join.using.length === 0 ? 'a column name after USING (' : "a column name after ','"));
        } while (this.acceptOp(','));
        this.expectClose(open, 'after the USING column list');
      } else {
        this.fail('expected ON or USING after the joined table');
      }
      left = join;
    }
  }

  private parseTablePrimary(): FromItem {
    const t = this.peek();
    if (this.isOp('(')) {
      if (this.isQueryStart(1)) return this.parseDerivedTable();
      if (this.isOp('(', 1)) {
        // `((SELECT ...) UNION ...) AS x` or `((a JOIN b ...) JOIN c ...)`: try the query first.
        const save = this.i;
        try {
          return this.parseDerivedTable();
        } catch (first) {
          this.i = save;
          try {
            return this.parseParenthesisedJoin();
          } catch (second) {
            throw furthest(first, second);
          }
        }
      }
      return this.parseParenthesisedJoin();
    }
    const name = this.parseQualifiedName('a table name', 3);
    const ref: FromItem = { kind: 'table', name, pos: t.pos };
    if (this.acceptKw('AS')) ref.alias = this.parseIdentifier('an alias after AS');
    else if (this.isNameToken()) {
      this.implicitAliases.add(this.i);
      ref.alias = this.identifierFrom(this.next());
    }
    return ref;
  }

  private parseParenthesisedJoin(): FromItem {
    const open = this.next();
    const inner = this.parseTableReference();
    this.expectClose(open, 'after the joined tables');
    return inner;
  }

  private parseDerivedTable(): FromItem {
    const open = this.next();
    const query = this.parseQuery();
    this.expectClose(open, 'after the subquery');
    const hadAs = this.acceptKw('AS') !== undefined;
    if (!hadAs && !this.isNameToken()) {
      if (this.peek().kind === 'keyword' && !STRUCTURAL.has(this.peek().value)) this.failReserved(this.peek(), 'an alias');
      this.fail('expected an alias for the subquery in FROM, as in (SELECT ...) AS t,');
    }
    const alias = this.parseIdentifier('an alias after AS');
    return { kind: 'derived', query, alias, pos: open.pos };
  }

  // ---- names -----------------------------------------------------------------------------

  private identifierFrom(t: Token): Identifier {
    return { name: t.value, delimited: t.kind === 'quoted', pos: t.pos };
  }

  parseIdentifier(role: string): Identifier {
    const t = this.peek();
    if (t.kind === 'ident' || t.kind === 'quoted') return this.identifierFrom(this.next());
    if (t.kind === 'keyword' && !STRUCTURAL.has(t.value)) this.failReserved(t, role.replace(/ after .*$/, ''));
    return this.fail(`expected ${role}`);
  }

  parseQualifiedName(role: string, maxParts: number): QualifiedName {
    const parts = [this.parseIdentifier(role)];
    while (this.isOp('.')) {
      this.next();
      parts.push(this.parseIdentifier("a name after '.'"));
      if (parts.length > maxParts) {
        const p = parts[parts.length - 1].pos ?? this.peek().pos;
        const shape = maxParts === 3 ? 'a table name has at most 3 parts (catalog.schema.table)' : `a name has at most ${maxParts} parts`;
        throw new AdqlSyntaxError(shape, p, this.toks[this.i - 1].text);
      }
    }
    return parts;
  }

  // ---- expressions -----------------------------------------------------------------------

  /** A value expression (not a condition). */
  parseValue(what: string): Expr {
    const e = this.parseExpr(0, what);
    if (isCondition(e)) this.failAt(e, 'a condition cannot be used as a value here (ADQL has no boolean type)');
    return e;
  }

  /** A search condition (not a bare value). */
  parseCondition(what: string): Expr {
    const e = this.parseExpr(0, what);
    this.requireCondition(e, what);
    return e;
  }

  private requireCondition(e: Expr, what: string): void {
    if (isCondition(e)) return;
    if (e.kind === 'function' && (e.name === 'CONTAINS' || e.name === 'INTERSECTS') && !e.udf) {
      this.failAt(e, `${e.name} returns 0 or 1 and must be compared, as in ${e.name}(...) = 1; expected ${what}`);
    }
    this.failAt(e, `expected ${what.startsWith('a condition') ? what : `a condition ${what}`} (a comparison, BETWEEN, IN, LIKE, IS NULL or EXISTS)`);
  }

  private requireValue(e: Expr): void {
    if (isCondition(e)) this.failAt(e, 'a condition cannot be used as a value here (ADQL has no boolean type)');
  }

  /** Run `parse` one nesting level deeper, refusing input nested beyond MAX_NESTING. */
  private nested<T>(parse: () => T): T {
    if (this.depth >= MAX_NESTING) {
      const t = this.peek();
      throw new AdqlSyntaxError(`the query nests too deeply (parentheses and subqueries more than ${MAX_NESTING} parse levels deep)`, t.pos, t.kind === 'eof' ? null : t.text);
    }
    this.depth++;
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private parseExpr(minPrec: number, what: string): Expr {
    return this.nested(() => this.parseExprAt(minPrec, what));
  }

  private parseExprAt(minPrec: number, what: string): Expr {
    let left = this.parsePrefix(minPrec, what);
    for (;;) {
      const t = this.peek();
      const prec = this.infixPrecedence();
      if (prec === 0 || prec < minPrec) return left;
      if (prec === PREC_PREDICATE) {
        if (isCondition(left)) this.fail('expected AND or OR between conditions');
        left = this.parsePredicate(left);
        continue;
      }
      this.next();
      if (prec === PREC_OR || prec === PREC_AND) {
        const op = t.value as 'AND' | 'OR';
        this.requireCondition(left, `on the left of ${op}`);
        const right = this.parseExpr(prec + 1, `a condition after ${op}`);
        this.requireCondition(right, `after ${op}`);
        left = { kind: 'logical', op, left, right, pos: left.pos };
        continue;
      }
      this.requireValue(left);
      const right = this.parseExpr(prec + 1, `an expression after '${t.value}'`);
      this.requireValue(right);
      left = { kind: 'binary', op: t.value as BinaryOp, left, right, pos: left.pos };
    }
  }

  private infixPrecedence(): number {
    const t = this.peek();
    if (t.kind === 'keyword') {
      switch (t.value) {
        case 'OR':
          return PREC_OR;
        case 'AND':
          return PREC_AND;
        case 'BETWEEN':
        case 'IN':
        case 'LIKE':
        case 'ILIKE':
        case 'IS':
          return PREC_PREDICATE;
        case 'NOT': {
          const n = this.peek(1);
          return n.kind === 'keyword' && ['BETWEEN', 'IN', 'LIKE', 'ILIKE'].includes(n.value) ? PREC_PREDICATE : 0;
        }
        default:
          return 0;
      }
    }
    if (t.kind === 'op') {
      if (COMPARE_OPS.has(t.value)) return PREC_PREDICATE;
      return BINARY_PREC[t.value] ?? 0;
    }
    return 0;
  }

  private parsePredicate(left: Expr): Expr {
    const t = this.next();
    const pos = left.pos;
    if (t.kind === 'op') {
      const right = this.parseOperand(`an expression after '${t.value}'`);
      return { kind: 'compare', op: t.value as CompareOp, left, right, pos };
    }
    if (t.value === 'IS') {
      const not = this.acceptKw('NOT') !== undefined;
      this.expectKw('NULL', not ? 'after IS NOT' : 'after IS');
      return { kind: 'isNull', not, expr: left, pos };
    }
    let word = t.value;
    let not = false;
    if (word === 'NOT') {
      not = true;
      word = this.next().value;
    }
    const kw = not ? `NOT ${word}` : word;
    switch (word) {
      case 'BETWEEN': {
        const low = this.parseOperand(`an expression after ${kw}`);
        this.expectKw('AND', `in ${kw} ... AND ...`);
        const high = this.parseOperand('an expression after AND');
        return { kind: 'between', not, expr: left, low, high, pos };
      }
      case 'LIKE':
      case 'ILIKE': {
        const pattern = this.parseOperand(`a pattern after ${kw}`);
        return { kind: 'like', not, op: word, expr: left, pattern, pos };
      }
      default: {
        const open = this.expectOp('(', `after ${kw}`);
        if (this.isQueryStart() || this.isOp('(')) {
          // `IN ((SELECT ...))` is a subquery, `IN ((1 + 2), 3)` a list: try the query first.
          const isSelect = this.isQueryStart();
          const save = this.i;
          try {
            const query = this.parseQuery();
            this.expectClose(open, `after the ${kw} subquery`);
            return { kind: 'in', not, expr: left, query, pos };
          } catch (err) {
            if (isSelect) throw err;
            this.i = save;
          }
        }
        const list: Expr[] = [];
        do {
          list.push(this.parseValue(list.length === 0 ? `a value or subquery after ${kw} (` : "a value after ','"));
        } while (this.acceptOp(','));
        this.expectClose(open, `after the ${kw} list`);
        return { kind: 'in', not, expr: left, list, pos };
      }
    }
  }

  private parseOperand(what: string): Expr {
    const e = this.parseExpr(PREC_VALUE, what);
    this.requireValue(e);
    return e;
  }

  private parsePrefix(minPrec: number, what: string): Expr {
    const t = this.peek();
    if (t.kind === 'keyword' && t.value === 'NOT') {
      if (minPrec > PREC_NOT) this.fail(`expected ${what}`);
      this.next();
      const operand = this.parseExpr(PREC_NOT, 'a condition after NOT');
      this.requireCondition(operand, 'after NOT');
      return { kind: 'not', operand, pos: t.pos };
    }
    if (t.kind === 'op' && (t.value === '-' || t.value === '+' || t.value === '~')) {
      this.next();
      const operand = this.parseExpr(PREC_UNARY, `an expression after '${t.value}'`);
      this.requireValue(operand);
      return { kind: 'unary', op: t.value, operand, pos: t.pos };
    }
    if (t.kind === 'keyword' && t.value === 'EXISTS') {
      this.next();
      const open = this.expectOp('(', 'after EXISTS');
      if (!this.isQueryStart() && !this.isOp('(')) this.fail('expected SELECT in EXISTS subquery');
      const query = this.parseQuery();
      this.expectClose(open, 'after the EXISTS subquery');
      return { kind: 'exists', query, pos: t.pos };
    }
    return this.parsePrimary(what);
  }

  private parsePrimary(what: string): Expr {
    const t = this.peek();
    switch (t.kind) {
      case 'number':
        this.next();
        return { kind: 'number', text: t.value, pos: t.pos };
      case 'string':
        this.next();
        return { kind: 'string', value: t.value, pos: t.pos };
      case 'op':
        if (t.value === '(') {
          if (this.isQueryStart(1)) return this.parseScalarSubquery();
          if (this.isOp('(', 1)) {
            // `((SELECT ...) UNION ...)` is a subquery, `((a + b) * c)` is not: try the query first.
            const save = this.i;
            try {
              return this.parseScalarSubquery();
            } catch (first) {
              this.i = save;
              try {
                return this.parseParenthesised();
              } catch (second) {
                throw furthest(first, second);
              }
            }
          }
          return this.parseParenthesised();
        }
        return this.fail(`expected ${what}`);
      case 'ident':
      case 'quoted':
        return this.parseNameExpression();
      case 'keyword':
        return this.parseKeywordExpression(t, what);
      default:
        return this.fail(`expected ${what}`);
    }
  }

  private parseParenthesised(): Expr {
    const open = this.next();
    const inner = this.parseExpr(0, "an expression after '('");
    this.expectClose(open, 'after the expression');
    return inner;
  }

  private parseScalarSubquery(): Expr {
    const open = this.next();
    const query = this.parseQuery();
    this.expectClose(open, 'after the subquery');
    return { kind: 'subquery', query, pos: open.pos };
  }

  private parseNameExpression(): Expr {
    const first = this.peek();
    const parts: Identifier[] = [this.identifierFrom(this.next())];
    while (this.isOp('.') && !this.isOp('*', 1)) {
      this.next();
      parts.push(this.parseIdentifier("a name after '.'"));
    }
    if (this.isOp('(')) {
      const bad = parts.find((p) => p.delimited);
      if (bad) throw new AdqlSyntaxError('a function name must be a regular identifier, not a quoted name', bad.pos ?? first.pos, `"${bad.name}"`);
      const open = this.next();
      const args = this.parseArguments(open, parts.map((p) => p.name).join('.'));
      const call: FunctionCall = { kind: 'function', name: parts[parts.length - 1].name, udf: true, args, pos: first.pos };
      if (parts.length > 1) call.qualifier = parts.slice(0, -1);
      return call;
    }
    if (parts.length > 4) {
      const p = parts[4];
      throw new AdqlSyntaxError('a column reference has at most 4 parts (catalog.schema.table.column)', p.pos ?? first.pos, p.name);
    }
    const column = parts[parts.length - 1];
    return parts.length === 1 ? { kind: 'column', column, pos: first.pos } : { kind: 'column', table: parts.slice(0, -1), column, pos: first.pos };
  }

  private parseArguments(open: Token, fname: string): Expr[] {
    const args: Expr[] = [];
    if (this.isOp(')')) {
      this.next();
      return args;
    }
    do {
      args.push(this.parseValue(args.length === 0 ? `an argument of ${fname}` : `an argument of ${fname} after ','`));
    } while (this.acceptOp(','));
    this.expectClose(open, `after the arguments of ${fname}`);
    return args;
  }

  private parseKeywordExpression(t: Token, what: string): Expr {
    switch (t.value) {
      case 'NULL':
        this.next();
        return { kind: 'null', pos: t.pos };
      case 'TRUE':
      case 'FALSE':
        throw new AdqlSyntaxError(`ADQL 2.1 has no boolean literals; compare with 1 or 0 instead of ${t.value}`, t.pos, t.text);
      case 'CASE':
        return this.parseCase();
      case 'CAST':
        return this.parseCast();
      default:
        break;
    }
    const arity = BUILTIN_FUNCTIONS.get(t.value);
    if (arity && this.isOp('(', 1)) return this.parseBuiltin(arity);
    if (STRUCTURAL.has(t.value)) return this.fail(`expected ${what}`);
    if (!arity && this.isOp('(', 1)) {
      throw new AdqlSyntaxError(`${t.value} is not an ADQL 2.1 function (it is a reserved word); quote it as "${t.text}" if it is a user-defined function`, t.pos, t.text);
    }
    return this.failReserved(t, 'a column name');
  }

  private parseBuiltin(arity: readonly [number, number]): Expr {
    const nameTok = this.next();
    const name = nameTok.value;
    const open = this.next();
    const call: FunctionCall = { kind: 'function', name, args: [], pos: nameTok.pos };
    if (AGGREGATE_FUNCTIONS.has(name)) {
      if (name === 'COUNT' && this.isOp('*')) {
        this.next();
        call.star = true;
        this.expectClose(open, 'after COUNT(*');
        return call;
      }
      const q = this.acceptKw('DISTINCT') ?? this.acceptKw('ALL');
      if (q) call.quantifier = q.value as 'DISTINCT' | 'ALL';
    }
    call.args = this.parseArguments(open, name);
    const n = call.args.length;
    const [min, max] = arity;
    if (n < min || n > max || (name === 'DISTANCE' && n === 3)) {
      const expected = name === 'DISTANCE' ? '2 or 4' : min === max ? String(min) : max === Infinity ? `at least ${min}` : min + 1 === max ? `${min} or ${max}` : `${min} to ${max}`;
      throw new AdqlSyntaxError(`${name} takes ${expected} argument${expected === '1' ? '' : 's'}, not ${n},`, nameTok.pos, nameTok.text);
    }
    if (name === 'REGION' && call.args[0].kind !== 'string') this.failAt(call.args[0], 'REGION takes a string literal');
    return call;
  }

  private parseCase(): CaseExpr {
    const caseTok = this.next();
    const node: CaseExpr = { kind: 'case', whens: [], pos: caseTok.pos };
    if (!this.isKw('WHEN')) node.operand = this.parseValue('an expression or WHEN after CASE');
    while (this.acceptKw('WHEN')) {
      const when = node.operand ? this.parseValue('a value after WHEN') : this.parseCondition('a condition after WHEN');
      this.expectKw('THEN', 'after the WHEN expression');
      const then = this.parseValue('a value after THEN');
      node.whens.push({ when, then });
    }
    if (node.whens.length === 0) this.fail('expected WHEN in CASE');
    if (this.acceptKw('ELSE')) node.else = this.parseValue('a value after ELSE');
    this.expectKw('END', 'to close CASE');
    return node;
  }

  private parseCast(): Expr {
    const castTok = this.next();
    const open = this.expectOp('(', 'after CAST');
    const expr = this.parseValue('an expression to CAST');
    this.expectKw('AS', 'in CAST(... AS type)');
    const type = this.parseCastType();
    this.expectClose(open, 'after the CAST type');
    return { kind: 'cast', expr, type, pos: castTok.pos };
  }

  private parseCastType(): CastType {
    const t = this.peek();
    const fail = (): never => this.fail('expected a CAST type (SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR, VARCHAR, TIMESTAMP, POINT, CIRCLE or POLYGON)');
    if (t.kind !== 'keyword') return fail();
    this.next();
    switch (t.value) {
      case 'SMALLINT':
      case 'INTEGER':
      case 'BIGINT':
      case 'REAL':
      case 'TIMESTAMP':
      case 'POINT':
      case 'CIRCLE':
      case 'POLYGON':
        return { name: t.value };
      case 'INT':
        return { name: 'INTEGER' };
      case 'DOUBLE':
        this.expectKw('PRECISION', 'after DOUBLE');
        return { name: 'DOUBLE PRECISION' };
      case 'CHAR':
      case 'CHARACTER':
      case 'VARCHAR': {
        const type: CastType = { name: t.value === 'VARCHAR' ? 'VARCHAR' : 'CHAR' };
        const open = this.acceptOp('(');
        if (open) {
          type.length = this.parseCount(`${type.name} (`);
          this.expectClose(open, 'after the length');
        }
        return type;
      }
      default:
        this.i--;
        return fail();
    }
  }
}

/** Parse one ADQL query (an optional trailing ';' is allowed); throws AdqlSyntaxError. */
export function parseAdql(text: string): Query {
  return new Parser(tokenize(text)).parseStatement();
}

/** Parse a standalone value or condition, e.g. `ra BETWEEN 10 AND 20`; throws AdqlSyntaxError. */
export function parseAdqlExpression(text: string): Expr {
  return new Parser(tokenize(text)).parseStandaloneExpression();
}

/** Parse a dotted name such as `dbo."MeanObjectView"` (1 to `maxParts` parts); throws AdqlSyntaxError. */
export function parseQualifiedName(text: string, maxParts = 4): QualifiedName {
  return new Parser(tokenize(text)).parseStandaloneName(maxParts);
}
