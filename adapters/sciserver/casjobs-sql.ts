/**
 * ADQL → T-SQL for SciServer CasJobs (SQL Server contexts such as DR17). The query arrives
 * with the site's local names already; this changes the dialect only, and refuses (INVALID_ARGUMENT,
 * naming the construct and where it starts) whatever SQL Server would run with another meaning
 * or cannot run at all: ADQL geometry above all.
 *
 * Meaning kept on purpose where SQL Server differs from ADQL:
 *  - CasJobs databases compare text case-insensitively; string-literal comparisons and LIKE get
 *    COLLATE Latin1_General_BIN2 so 'galaxy' does not match 'GALAXY', and `[` in LIKE patterns
 *    (a character class in T-SQL) is escaped.
 *  - POWER, DEGREES and RADIANS return their argument's type in T-SQL (POWER(2, 0.5) = 1), and
 *    AVG of integers is an integer, so their argument is cast to FLOAT first.
 *  - RAND() is evaluated once per query in T-SQL; RAND(CHECKSUM(NEWID())) is once per row.
 *  - `||` on a non-string would add numbers with T-SQL's `+`, so such operands are cast to text.
 *  - Literals with non-ASCII characters are N'...', which the database code page cannot mangle.
 * CAST to an integer type truncates in SQL Server; SQL leaves that choice to the implementation.
 */
import type { CastType, Expr, FunctionCall, Identifier, Join, OrderItem, Query, QueryBody, Select, SelectItem, SetOperation } from '../ivoa/adql/ast.js';
import { AdqlUnsupportedError, parseAdqlOrThrow, toConstellationError, type Pos } from '../ivoa/adql/index.js';
import { AdqlPrinter, quoteString } from '../ivoa/adql/printer.js';
import { ConstellationError } from '../../registry/model/errors.js';

/** Options of `toCasJobsSql`. */
export interface CasJobsSqlOptions {
  /** Row limit of the request: becomes TOP, or the smaller of it and the query's own TOP. */
  maxrec?: number;
  /** The table an async job writes into, e.g. `MyDB.constellation_x` (SELECT ... INTO). */
  into?: string;
}

/** T-SQL for one query. */
export interface CasJobsSql {
  sql: string;
  /** Set when `into` was given and the query is ordered: the column numbering rows in ORDER BY order. */
  orderColumn?: string;
}

/** The column an ordered async job numbers its rows in, since a MyDB table keeps no row order. */
export const CASJOBS_ORDER_COLUMN = 'constellation_row';

const RULE = 'casjobs-unsupported';
// The exact, case-sensitive comparison ADQL (and PostgreSQL's C collation) make.
const BINARY_COLLATION = 'Latin1_General_BIN2';
const WRAPPER_ALIAS = '[constellation_q]';

const GEOMETRY = new Set(['AREA', 'BOX', 'CENTROID', 'CIRCLE', 'CONTAINS', 'COORD1', 'COORD2', 'COORDSYS', 'DISTANCE', 'INTERSECTS', 'POINT', 'POLYGON', 'REGION']);

/** ADQL built-ins whose T-SQL function has the same name, arguments and result type. */
const SAME_FUNCTIONS = new Set(['ABS', 'CEILING', 'FLOOR', 'EXP', 'LOG', 'LOG10', 'SQRT', 'ACOS', 'ASIN', 'ATAN', 'COS', 'COT', 'SIN', 'TAN',
  'LOWER', 'UPPER', 'COALESCE', 'COUNT', 'MIN', 'MAX', 'SUM']);

/** SQL Server reserved keywords (Transact-SQL reference, "Reserved keywords"): unusable as bare names. */
const TSQL_RESERVED = new Set(
  `ADD ALL ALTER AND ANY AS ASC AUTHORIZATION BACKUP BEGIN BETWEEN BREAK BROWSE BULK BY CASCADE CASE CHECK CHECKPOINT
  CLOSE CLUSTERED COALESCE COLLATE COLUMN COMMIT COMPUTE CONSTRAINT CONTAINS CONTAINSTABLE CONTINUE CONVERT CREATE
  CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATABASE DBCC DEALLOCATE DECLARE
  DEFAULT DELETE DENY DESC DISK DISTINCT DISTRIBUTED DOUBLE DROP DUMP ELSE END ERRLVL ESCAPE EXCEPT EXEC EXECUTE
  EXISTS EXIT EXTERNAL FETCH FILE FILLFACTOR FOR FOREIGN FREETEXT FREETEXTTABLE FROM FULL FUNCTION GOTO GRANT GROUP
  HAVING HOLDLOCK IDENTITY IDENTITY_INSERT IDENTITYCOL IF IN INDEX INNER INSERT INTERSECT INTO IS JOIN KEY KILL LEFT
  LIKE LINENO LOAD MERGE NATIONAL NOCHECK NONCLUSTERED NOT NULL NULLIF OF OFF OFFSETS ON OPEN OPENDATASOURCE
  OPENQUERY OPENROWSET OPENXML OPTION OR ORDER OUTER OVER PERCENT PIVOT PLAN PRECISION PRIMARY PRINT PROC PROCEDURE
  PUBLIC RAISERROR READ READTEXT RECONFIGURE REFERENCES REPLICATION RESTORE RESTRICT RETURN REVERT REVOKE RIGHT
  ROLLBACK ROWCOUNT ROWGUIDCOL RULE SAVE SCHEMA SECURITYAUDIT SELECT SEMANTICKEYPHRASETABLE
  SEMANTICSIMILARITYDETAILSTABLE SEMANTICSIMILARITYTABLE SESSION_USER SET SETUSER SHUTDOWN SOME STATISTICS
  SYSTEM_USER TABLE TABLESAMPLE TEXTSIZE THEN TO TOP TRAN TRANSACTION TRIGGER TRUNCATE TRY_CONVERT TSEQUAL UNION
  UNIQUE UNPIVOT UPDATE UPDATETEXT USE USER VALUES VARYING VIEW WAITFOR WHEN WHERE WHILE WITH WITHIN WRITETEXT`.split(/\s+/),
);

// NCHAR and NVARCHAR(n) hold at most 4000 characters.
const MAX_NCHAR = 4000;

function refuse(message: string, pos: Pos | undefined): never {
  throw new AdqlUnsupportedError(message, pos, RULE);
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined ? a : Math.min(a, b);
}

/** A T-SQL string literal; N'...' when it holds characters outside ASCII. */
function tsqlString(value: string): string {
  return /[^\x00-\x7f]/.test(value) ? `N${quoteString(value)}` : quoteString(value);
}

/** True when `e` is surely text, so `+` on it concatenates. */
function isText(e: Expr): boolean {
  switch (e.kind) {
    case 'string':
      return true;
    case 'binary':
      return e.op === '||';
    case 'function':
      return !e.udf && (e.name === 'LOWER' || e.name === 'UPPER');
    case 'cast':
      return e.type.name === 'CHAR' || e.type.name === 'VARCHAR';
    default:
      return false;
  }
}

class TsqlPrinter extends AdqlPrinter {
  /** The SELECT that takes INTO, the target, and the OVER clause numbering its rows. */
  private into?: { select: Select; target: string; over?: string };

  /** The whole statement. */
  statement(q: Query, options: CasJobsSqlOptions): CasJobsSql {
    const { maxrec, into } = options;
    if (maxrec !== undefined && !(Number.isSafeInteger(maxrec) && maxrec >= 0)) {
      throw new ConstellationError('INVALID_ARGUMENT', `maxrec must be a non-negative integer, not ${maxrec}`);
    }
    const order = q.orderBy && q.orderBy.length > 0 ? q.orderBy : undefined;
    const body = q.body;
    let orderColumn: string | undefined;
    if (into !== undefined && body.kind === 'select') {
      this.into = { select: body, target: into };
      if (order) {
        if (body.quantifier === 'DISTINCT') {
          refuse('ORDER BY with SELECT DISTINCT in an async CasJobs job: its MyDB table keeps no row order; run the query in sync mode', body.pos);
        }
        this.into.over = this.orderList(order.map((o) => ({ ...o, expr: this.resolveOrderTerm(o.expr, body) })));
        orderColumn = CASJOBS_ORDER_COLUMN;
      }
    } else if (into !== undefined && order) {
      refuse('ORDER BY on a set operation in an async CasJobs job: its MyDB table keeps no row order; run the query in sync mode', q.pos);
    }

    const parts: string[] = [];
    if (q.with && q.with.length > 0) {
      parts.push(`WITH ${q.with.map((c) => `${this.identifier(c.name)} AS (${this.query(c.query)})`).join(', ')}`);
    }
    if (body.kind === 'select') {
      parts.push(this.ordered(q, body, minDefined(body.top, maxrec)));
    } else if (into !== undefined || (maxrec !== undefined && !order)) {
      // Only an outer SELECT can limit a set operation without ORDER BY, or write it INTO a table.
      const top = maxrec !== undefined ? `TOP ${maxrec} ` : '';
      parts.push(`SELECT ${top}*${into !== undefined ? ` INTO ${into}` : ''} FROM (${this.body(body)}) AS ${WRAPPER_ALIAS}`);
    } else {
      parts.push(this.ordered(q, body, maxrec));
    }
    return { sql: parts.join(' '), ...(orderColumn ? { orderColumn } : {}) };
  }

  /** A nested query (subquery, derived table, CTE, parenthesised operand). */
  override query(q: Query): string {
    if (q.with && q.with.length > 0) refuse('WITH inside a subquery: T-SQL takes WITH only at the start of the statement', q.pos);
    const order = q.orderBy && q.orderBy.length > 0;
    const top = q.body.kind === 'select' ? q.body.top : undefined;
    // T-SQL refuses ORDER BY in a subquery unless it selects rows (TOP or OFFSET).
    if (order && top === undefined && q.offset === undefined) {
      refuse('ORDER BY in a subquery without TOP or OFFSET: T-SQL orders only the outermost query', q.pos);
    }
    return this.ordered(q, q.body, undefined);
  }

  /**
   * Body, ORDER BY and OFFSET/FETCH. `limit` replaces a SELECT's TOP, or limits an ordered set
   * operation; T-SQL allows no TOP beside OFFSET, so with OFFSET the row count moves into FETCH NEXT.
   */
  private ordered(q: Query, body: QueryBody, limit: number | undefined): string {
    const order = q.orderBy && q.orderBy.length > 0 ? q.orderBy : undefined;
    if (q.offset !== undefined && !order) refuse('OFFSET without ORDER BY: T-SQL skips rows only in a stated order', q.pos);
    let out: string;
    let fetch: number | undefined;
    if (body.kind === 'select') {
      const top = limit ?? body.top;
      if (q.offset !== undefined) fetch = top;
      out = this.selectText(body, q.offset !== undefined ? undefined : top);
    } else {
      fetch = limit;
      out = this.body(body);
    }
    if (order) {
      out += ` ORDER BY ${this.orderList(order)}`;
      if (q.offset !== undefined || fetch !== undefined) out += ` OFFSET ${q.offset ?? 0} ROWS`;
      if (fetch !== undefined) out += ` FETCH NEXT ${fetch} ROWS ONLY`;
    }
    return out;
  }

  private orderList(order: OrderItem[]): string {
    return order.map((o) => `${this.expr(o.expr, 0)}${o.direction ? ` ${o.direction}` : ''}`).join(', ');
  }

  /** An ORDER BY term as an expression OVER() can take: select-list positions and aliases replaced. */
  private resolveOrderTerm(e: Expr, s: Select): Expr {
    const item = (c: SelectItem | undefined, what: string): Expr => {
      if (c === undefined || c.kind === 'star') {
        refuse(`ORDER BY ${what} in an async CasJobs job must name a select-list expression, not *`, e.pos);
      }
      return c.expr;
    };
    if (e.kind === 'number' && /^\d+$/.test(e.text)) return item(s.columns[Number(e.text) - 1], e.text);
    if (e.kind === 'column' && e.table === undefined) {
      const key = e.column.name.toLowerCase();
      const aliased = s.columns.find((c) => c.kind === 'item' && c.alias?.name.toLowerCase() === key);
      if (aliased) return item(aliased, e.column.name);
    }
    return e;
  }

  override select(s: Select): string {
    return this.selectText(s, s.top);
  }

  private selectText(s: Select, top: number | undefined): string {
    const into = this.into?.select === s ? this.into : undefined;
    let out = 'SELECT ';
    if (s.quantifier) out += `${s.quantifier} `;
    if (top !== undefined) out += `TOP ${top} `;
    const items = s.columns.map((c, i) => {
      const text = this.selectItem(c);
      // SELECT INTO needs a name for every column; a nameless one is named for its place in the list.
      return into && c.kind === 'item' && !c.alias && c.expr.kind !== 'column' ? `${text} AS [col${i + 1}]` : text;
    });
    if (into?.over !== undefined) items.push(`ROW_NUMBER() OVER (ORDER BY ${into.over}) AS [${CASJOBS_ORDER_COLUMN}]`);
    out += items.join(', ');
    if (into) out += ` INTO ${into.target}`;
    out += ` FROM ${s.from.map((f) => this.fromItem(f)).join(', ')}`;
    if (s.where) out += ` WHERE ${this.expr(s.where, 0)}`;
    if (s.groupBy && s.groupBy.length > 0) out += ` GROUP BY ${s.groupBy.map((g) => this.expr(g, 0)).join(', ')}`;
    if (s.having) out += ` HAVING ${this.expr(s.having, 0)}`;
    return out;
  }

  override body(b: QueryBody): string {
    if (b.kind === 'query' && ((b.orderBy && b.orderBy.length > 0) || b.offset !== undefined)) {
      refuse('ORDER BY or OFFSET inside a parenthesised set operand: T-SQL cannot order one branch; use a derived table', b.pos);
    }
    return super.body(b);
  }

  override setOperation(s: SetOperation): string {
    if (s.all && s.op !== 'UNION') refuse(`${s.op} ALL: SQL Server has only ${s.op} (without ALL)`, s.pos);
    return super.setOperation(s);
  }

  override join(j: Join): string {
    if (j.natural) refuse('NATURAL JOIN: T-SQL has none; write the join condition with ON', j.pos);
    if (j.using) refuse('JOIN ... USING: T-SQL has no USING; write the join condition with ON', j.pos);
    return super.join(j);
  }

  override identifier(id: Identifier): string {
    if (!id.delimited && /^[A-Za-z_][A-Za-z0-9_]*$/.test(id.name) && !TSQL_RESERVED.has(id.name.toUpperCase())) return id.name;
    return `[${id.name.replace(/]/g, ']]')}]`;
  }

  override number(text: string): string {
    // 0x2F is binary data in T-SQL, not a number.
    return /^0x/i.test(text) ? BigInt(text).toString() : text;
  }

  override exprText(e: Expr): string {
    switch (e.kind) {
      case 'string':
        return tsqlString(e.value);
      case 'binary':
        return e.op === '||' ? this.concatenation(e) : this.arithmetic(e);
      case 'unary':
        return `${e.op}${this.operand(e.operand)}`;
      case 'cast':
        return `CAST(${this.expr(e.expr, 0)} AS ${this.tsqlType(e.type, e.pos)})`;
      case 'between':
        return `${this.expr(e.expr, 5)} ${e.not ? 'NOT ' : ''}BETWEEN ${this.compared(e.low)} AND ${this.compared(e.high)}`;
      case 'in':
        if (e.list) return `${this.expr(e.expr, 5)} ${e.not ? 'NOT ' : ''}IN (${e.list.map((v) => this.compared(v, 0)).join(', ')})`;
        return super.exprText(e);
      case 'case':
        if (e.operand) {
          // A simple CASE compares with =, so its literal WHEN values bring the exact collation too.
          let out = `CASE ${this.expr(e.operand, 0)}`;
          for (const w of e.whens) out += ` WHEN ${this.compared(w.when, 0)} THEN ${this.expr(w.then, 0)}`;
          if (e.else) out += ` ELSE ${this.expr(e.else, 0)}`;
          return `${out} END`;
        }
        return super.exprText(e);
      case 'like':
        if (e.op === 'ILIKE') return `LOWER(${this.expr(e.expr, 0)}) ${e.not ? 'NOT ' : ''}LIKE LOWER(${this.likePattern(e.pattern)})`;
        return `${this.expr(e.expr, 5)} ${e.not ? 'NOT ' : ''}LIKE ${this.likePattern(e.pattern)} COLLATE ${BINARY_COLLATION}`;
      default:
        return super.exprText(e);
    }
  }

  override comparison(op: string, left: Expr, right: Expr): string {
    return `${this.compared(left)} ${op === '!=' ? '<>' : op} ${this.compared(right)}`;
  }

  override functionCall(f: FunctionCall): string {
    if (f.udf) return this.userFunction(f);
    if (GEOMETRY.has(f.name)) {
      refuse(
        `${f.name}: CasJobs has no ADQL geometry; for a cone search use SDSS's dbo.fGetNearbyObjEq(ra, dec, radius_arcmin) in a native CasJobs query, or send the query to a site with ADQL geometry`,
        f.pos,
      );
    }
    const arg = (i: number) => this.expr(f.args[i], 0);
    const asFloat = (i: number) => `CAST(${arg(i)} AS FLOAT)`;
    switch (f.name) {
      case 'MOD':
        return `(${this.operand(f.args[0])} % ${this.operand(f.args[1])})`;
      case 'ROUND':
        return `ROUND(${arg(0)}, ${f.args.length > 1 ? arg(1) : '0'})`;
      case 'TRUNCATE':
        return `ROUND(${arg(0)}, ${f.args.length > 1 ? arg(1) : '0'}, 1)`;
      case 'POWER':
        return `POWER(${asFloat(0)}, ${arg(1)})`;
      case 'DEGREES':
      case 'RADIANS':
        return `${f.name}(${asFloat(0)})`;
      case 'AVG':
        return `AVG(${f.quantifier ? `${f.quantifier} ` : ''}${asFloat(0)})`;
      case 'ATAN2':
        return `ATN2(${arg(0)}, ${arg(1)})`;
      case 'PI':
        return 'PI()';
      case 'RAND':
        if (f.args.length > 0) refuse('RAND with a seed: T-SQL would give every row the same number', f.pos);
        return 'RAND(CHECKSUM(NEWID()))';
      default:
        if (!SAME_FUNCTIONS.has(f.name)) refuse(`${f.name} has no T-SQL equivalent in CasJobs`, f.pos);
        return super.functionCall(f);
    }
  }

  /** A site function: SIGN, or a schema-qualified one such as dbo.fPhotoFlags, passed through as written. */
  private userFunction(f: FunctionCall): string {
    const args = f.args.map((a) => this.expr(a, 0)).join(', ');
    if (!f.qualifier) {
      if (f.name.toUpperCase() === 'SIGN' && f.args.length === 1) return `SIGN(${args})`;
      refuse(`function ${f.name} is not ADQL, and CasJobs runs its own functions only schema-qualified (dbo.${f.name})`, f.pos);
    }
    return `${this.qualifiedName(f.qualifier)}.${this.identifier({ name: f.name, delimited: false })}(${args})`;
  }

  private tsqlType(t: CastType, pos: Pos | undefined): string {
    switch (t.name) {
      case 'INTEGER':
        return 'INT';
      case 'DOUBLE PRECISION':
        return 'FLOAT';
      case 'TIMESTAMP':
        // TIMESTAMP is a row version number in T-SQL.
        return 'DATETIME2';
      case 'CHAR':
      case 'VARCHAR': {
        if (t.length !== undefined && t.length > MAX_NCHAR) refuse(`${t.name}(${t.length}): SQL Server holds at most ${MAX_NCHAR} characters there`, pos);
        // Without a length T-SQL would cut at 30 characters; ADQL means CHAR(1) and an unbounded VARCHAR.
        if (t.name === 'CHAR') return `NCHAR(${t.length ?? 1})`;
        return `NVARCHAR(${t.length ?? 'MAX'})`;
      }
      case 'POINT':
      case 'CIRCLE':
      case 'POLYGON':
        return refuse(`CAST to ${t.name}: CasJobs has no ADQL geometry`, pos);
      default:
        return t.name;
    }
  }

  /** `||` as `+`, with operands not surely text cast to it (numbers would otherwise be added). */
  private concatenation(e: Expr & { kind: 'binary' }): string {
    const operands: Expr[] = [];
    let cur: Expr = e;
    while (cur.kind === 'binary' && cur.op === '||') {
      operands.push(cur.right);
      cur = cur.left;
    }
    operands.push(cur);
    return operands
      .reverse()
      .map((o) => (isText(o) ? this.operand(o) : `CAST(${this.expr(o, 0)} AS NVARCHAR(MAX))`))
      .join(' + ');
  }

  /**
   * Arithmetic and bitwise operators. T-SQL ranks & ^ | with + and -, so every nested operator is
   * bracketed; only a left-deep run of one operator stays bare (walked without recursion).
   */
  private arithmetic(e: Expr & { kind: 'binary' }): string {
    const rights: Expr[] = [];
    let cur: Expr = e;
    while (cur.kind === 'binary' && cur.op === e.op) {
      rights.push(cur.right);
      cur = cur.left;
    }
    let out = this.operand(cur);
    for (let i = rights.length - 1; i >= 0; i--) out += ` ${e.op} ${this.operand(rights[i])}`;
    return out;
  }

  private operand(e: Expr): string {
    const text = this.expr(e, 0);
    return e.kind === 'binary' || e.kind === 'unary' ? `(${text})` : text;
  }

  /** One side of a comparison; a string literal brings the exact collation with it. */
  private compared(e: Expr, minPrec = 5): string {
    return e.kind === 'string' ? `${tsqlString(e.value)} COLLATE ${BINARY_COLLATION}` : this.expr(e, minPrec);
  }

  /** A LIKE pattern with `[` (a character class in T-SQL, a plain character in ADQL) escaped. */
  private likePattern(p: Expr): string {
    if (p.kind === 'string') return tsqlString(p.value.replace(/\[/g, '[[]'));
    return `REPLACE(${this.expr(p, 0)}, '[', '[[]')`;
  }
}

/** T-SQL for a parsed ADQL query; throws ConstellationError INVALID_ARGUMENT for what CasJobs cannot run as meant. */
export function toCasJobsSql(q: Query, options: CasJobsSqlOptions = {}): CasJobsSql {
  try {
    return new TsqlPrinter().statement(q, options);
  } catch (err) {
    throw toConstellationError(err);
  }
}

/** Parses ADQL and translates it for CasJobs (INVALID_ARGUMENT for bad or untranslatable queries). */
export function adqlToCasJobsSql(adql: string, options: CasJobsSqlOptions = {}): CasJobsSql {
  return toCasJobsSql(parseAdqlOrThrow(adql), options);
}
