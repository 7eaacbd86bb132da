/**
 * Canonical ADQL text from the tree: one line, upper-case keywords, names as written (delimited
 * ones re-quoted), parentheses only where precedence needs them, comments gone. Parsing the
 * output gives back the same tree (positions aside); the PostgreSQL translator extends this class.
 */
import type {
  BinaryExpr,
  CastType,
  Expr,
  FromItem,
  FunctionCall,
  Identifier,
  Join,
  LogicalExpr,
  QualifiedName,
  Query,
  QueryBody,
  Select,
  SelectItem,
  SetOperation,
} from './ast.js';
import { isRegularIdentifierSpelling, isReservedWord } from './tokens.js';

/** Binding strength of each node, matching the parser's precedence levels (12: atomic). */
export function precedenceOf(e: Expr): number {
  switch (e.kind) {
    case 'logical':
      return e.op === 'OR' ? 1 : 2;
    case 'not':
      return 3;
    case 'compare':
    case 'between':
    case 'in':
    case 'like':
    case 'isNull':
      return 4;
    case 'binary':
      return { '|': 5, '^': 6, '&': 7, '||': 8, '+': 9, '-': 9, '*': 10, '/': 10 }[e.op];
    case 'unary':
      return 11;
    default:
      return 12;
  }
}

/** Quote a name for ADQL: "..." with embedded quotes doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quote a string literal: '...' with embedded quotes doubled. */
export function quoteString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** The ADQL spelling of one identifier; a "regular" one that could not be read back is quoted. */
export function printIdentifier(id: Identifier): string {
  if (!id.delimited && isRegularIdentifierSpelling(id.name) && !isReservedWord(id.name)) return id.name;
  return quoteIdentifier(id.name);
}

/** The ADQL spelling of a dotted name. */
export function printQualifiedName(name: QualifiedName): string {
  return name.map(printIdentifier).join('.');
}

/** Walks the tree and writes text; subclasses change leaves (names, functions) and clause shapes. */
export class AdqlPrinter {
  /** Text of a whole query. */
  query(q: Query): string {
    const parts: string[] = [];
    if (q.with && q.with.length > 0) {
      parts.push(`WITH ${q.with.map((c) => `${this.identifier(c.name)} AS (${this.query(c.query)})`).join(', ')}`);
    }
    parts.push(this.body(q.body));
    if (q.orderBy && q.orderBy.length > 0) {
      parts.push(`ORDER BY ${q.orderBy.map((o) => `${this.expr(o.expr, 0)}${o.direction ? ` ${o.direction}` : ''}`).join(', ')}`);
    }
    if (q.offset !== undefined) parts.push(`OFFSET ${q.offset}`);
    return parts.join(' ');
  }

  /** Text of a query body in a set-operation or top-level position. */
  body(b: QueryBody): string {
    switch (b.kind) {
      case 'select':
        return this.select(b);
      case 'setop':
        return this.setOperation(b);
      case 'query':
        return `(${this.query(b)})`;
    }
  }

  /** `left OP [ALL] right`, with parentheses where INTERSECT's tighter binding needs them. */
  setOperation(s: SetOperation): string {
    const leftNeedsParens = s.left.kind === 'setop' && s.op === 'INTERSECT' && s.left.op !== 'INTERSECT';
    const rightNeedsParens = s.right.kind === 'setop' && !(s.op !== 'INTERSECT' && s.right.op === 'INTERSECT');
    const left = leftNeedsParens ? `(${this.body(s.left)})` : this.setOperand(s.left);
    const right = rightNeedsParens ? `(${this.body(s.right)})` : this.setOperand(s.right);
    return `${left} ${s.op}${s.all ? ' ALL' : ''} ${right}`;
  }

  /** One operand of a set operation that needs no extra parentheses. */
  setOperand(b: QueryBody): string {
    return this.body(b);
  }

  /** `SELECT ... FROM ... [WHERE] [GROUP BY] [HAVING]` with TOP in ADQL's place. */
  select(s: Select): string {
    return this.selectClauses(s, s.top !== undefined ? `TOP ${s.top} ` : '');
  }

  /** The clauses of a SELECT; `limitPrefix` goes between the quantifier and the select list. */
  selectClauses(s: Select, limitPrefix: string): string {
    let out = 'SELECT ';
    if (s.quantifier) out += `${s.quantifier} `;
    out += limitPrefix;
    out += s.columns.map((c) => this.selectItem(c)).join(', ');
    out += ` FROM ${s.from.map((f) => this.fromItem(f)).join(', ')}`;
    if (s.where) out += ` WHERE ${this.expr(s.where, 0)}`;
    if (s.groupBy && s.groupBy.length > 0) out += ` GROUP BY ${s.groupBy.map((g) => this.expr(g, 0)).join(', ')}`;
    if (s.having) out += ` HAVING ${this.expr(s.having, 0)}`;
    return out;
  }

  /** One select-list entry. */
  selectItem(c: SelectItem): string {
    if (c.kind === 'star') return c.qualifier ? `${this.qualifiedName(c.qualifier)}.*` : '*';
    const e = this.expr(c.expr, 0);
    return c.alias ? `${e} AS ${this.identifier(c.alias)}` : e;
  }

  /** One FROM entry. */
  fromItem(f: FromItem): string {
    switch (f.kind) {
      case 'table':
        return `${this.tableName(f.name)}${f.alias ? ` AS ${this.identifier(f.alias)}` : ''}`;
      case 'derived':
        return `(${this.query(f.query)}) AS ${this.identifier(f.alias)}`;
      case 'join':
        return this.join(f);
    }
  }

  /** `left [NATURAL] type JOIN right [ON ... | USING (...)]`; a join on the right is parenthesised. */
  join(j: Join): string {
    const kind = { INNER: 'JOIN', LEFT: 'LEFT OUTER JOIN', RIGHT: 'RIGHT OUTER JOIN', FULL: 'FULL OUTER JOIN', CROSS: 'CROSS JOIN' }[j.joinType];
    const right = j.right.kind === 'join' ? `(${this.fromItem(j.right)})` : this.fromItem(j.right);
    let out = `${this.fromItem(j.left)} ${j.natural ? 'NATURAL ' : ''}${kind} ${right}`;
    if (j.on) out += ` ON ${this.expr(j.on, 0)}`;
    if (j.using) out += ` USING (${j.using.map((u) => this.identifier(u)).join(', ')})`;
    return out;
  }

  /** A table name in FROM. */
  tableName(name: QualifiedName): string {
    return this.qualifiedName(name);
  }

  /** A dotted name. */
  qualifiedName(name: QualifiedName): string {
    return name.map((p) => this.identifier(p)).join('.');
  }

  /** One name. */
  identifier(id: Identifier): string {
    return printIdentifier(id);
  }

  /** `e`, parenthesised when it binds looser than `minPrec`. */
  expr(e: Expr, minPrec: number): string {
    const text = this.exprText(e);
    return precedenceOf(e) < minPrec ? `(${text})` : text;
  }

  /** Text of an expression without outer parentheses. */
  exprText(e: Expr): string {
    switch (e.kind) {
      case 'number':
        return this.number(e.text);
      case 'string':
        return quoteString(e.value);
      case 'null':
        return 'NULL';
      case 'column':
        return e.table ? `${this.qualifiedName(e.table)}.${this.identifier(e.column)}` : this.identifier(e.column);
      case 'unary': {
        const operand = this.expr(e.operand, 11);
        // "--" would start a comment.
        return operand.startsWith('-') || (e.op === '+' && operand.startsWith('+')) ? `${e.op} ${operand}` : `${e.op}${operand}`;
      }
      case 'binary':
        return this.chain(e);
      case 'function':
        return this.functionCall(e);
      case 'cast':
        return `CAST(${this.expr(e.expr, 0)} AS ${this.castType(e.type)})`;
      case 'case': {
        let out = 'CASE';
        if (e.operand) out += ` ${this.expr(e.operand, 0)}`;
        for (const w of e.whens) out += ` WHEN ${this.expr(w.when, 0)} THEN ${this.expr(w.then, 0)}`;
        if (e.else) out += ` ELSE ${this.expr(e.else, 0)}`;
        return `${out} END`;
      }
      case 'subquery':
        return `(${this.query(e.query)})`;
      case 'compare':
        return this.comparison(e.op, e.left, e.right);
      case 'between':
        return `${this.expr(e.expr, 5)} ${e.not ? 'NOT ' : ''}BETWEEN ${this.expr(e.low, 5)} AND ${this.expr(e.high, 5)}`;
      case 'in': {
        const inside = e.query ? this.query(e.query) : (e.list ?? []).map((v) => this.expr(v, 0)).join(', ');
        return `${this.expr(e.expr, 5)} ${e.not ? 'NOT ' : ''}IN (${inside})`;
      }
      case 'like':
        return `${this.expr(e.expr, 5)} ${e.not ? 'NOT ' : ''}${e.op} ${this.expr(e.pattern, 5)}`;
      case 'isNull':
        return `${this.expr(e.expr, 5)} IS ${e.not ? 'NOT ' : ''}NULL`;
      case 'exists':
        return `EXISTS (${this.query(e.query)})`;
      case 'not':
        return `NOT ${this.expr(e.operand, 3)}`;
      case 'logical':
        return this.chain(e);
    }
  }

  /** A left-associative run of operators of one precedence, walked without recursing per operator. */
  chain(e: BinaryExpr | LogicalExpr): string {
    const p = precedenceOf(e);
    const rights: { op: string; right: Expr }[] = [];
    let cur: Expr = e;
    while ((cur.kind === 'binary' || cur.kind === 'logical') && precedenceOf(cur) === p) {
      rights.push({ op: cur.kind === 'binary' ? this.binaryOp(cur.op) : cur.op, right: cur.right });
      cur = cur.left;
    }
    let out = this.expr(cur, p);
    for (let i = rights.length - 1; i >= 0; i--) out += ` ${rights[i].op} ${this.expr(rights[i].right, p + 1)}`;
    return out;
  }

  /** A numeric literal. */
  number(text: string): string {
    return text;
  }

  /** A binary operator's spelling. */
  binaryOp(op: string): string {
    return op;
  }

  /** `left op right` for comparisons. */
  comparison(op: string, left: Expr, right: Expr): string {
    return `${this.expr(left, 5)} ${op} ${this.expr(right, 5)}`;
  }

  /** A function call; built-ins upper case, UDFs as written. */
  functionCall(f: FunctionCall): string {
    const name = f.udf ? `${f.qualifier ? `${this.qualifiedName(f.qualifier)}.` : ''}${f.name}` : f.name;
    if (f.star) return `${name}(*)`;
    const args = f.args.map((a) => this.expr(a, 0)).join(', ');
    return `${name}(${f.quantifier ? `${f.quantifier} ` : ''}${args})`;
  }

  /** A CAST target type. */
  castType(t: CastType): string {
    return t.length !== undefined ? `${t.name}(${t.length})` : t.name;
  }
}

const adqlPrinter = new AdqlPrinter();

/** Canonical one-line ADQL for a query; `parseAdql(printAdql(q))` equals `q` up to positions. */
export function printAdql(q: Query): string {
  return adqlPrinter.query(q);
}

/** Canonical ADQL for one expression. */
export function printAdqlExpression(e: Expr): string {
  return adqlPrinter.expr(e, 0);
}
