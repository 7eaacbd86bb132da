/**
 * ADQL 2.1 (IVOA Recommendation, 2023) for Constellation: lexer, parser, printer, rewriting
 * and translation to PostgreSQL.
 *
 *   parseAdql(text): Query                 the tree (ast.ts), positions on every node; throws AdqlSyntaxError
 *   printAdql(q): string                   canonical one-line ADQL; parseAdql(printAdql(q)) equals q up to positions
 *   tablesReferenced(q): TableReference[]  every table in FROM/JOIN of the query, its subqueries and WITH queries
 *   rewriteTables(q, mapping, options?)    canonical table and column names → one site's local names
 *   toPostgres(q, options?): string        PostgreSQL for simulated sites and the TAP facade
 *   toConstellationError(err)              AdqlSyntaxError/AdqlUnsupportedError → ConstellationError INVALID_ARGUMENT
 *
 * Grammar choices beyond the letter of ADQL 2.1, each accepted because real clients send it:
 * `/* *\/` comments (ADQL has only `--`), a trailing `;`, hexadecimal literals and the bitwise
 * operators `& | ^ ~` (in the 2.1 drafts, withdrawn from the final text), CASE (SQL-92),
 * CROSS JOIN, scalar subqueries as values, and IS [NOT] NULL on any value. Not accepted:
 * boolean literals, LIMIT, functions ADQL does not define unless written as user-defined
 * functions, and reserved words as unquoted names (the error says to double-quote them).
 *
 * Names: regular identifiers compare case-insensitively (folded to lower case), delimited
 * ones exactly; `identifierKey` and `qualifiedNameKey` give those comparison keys. Positions
 * are 1-based line and column in UTF-16 code units, plus a 0-based offset.
 *
 * Limits: nesting deeper than MAX_NESTING parse levels, and more than MAX_CHAIN JOINs or set
 * operations in a row, are syntax errors (the tree walkers recurse on those); AND/OR and
 * arithmetic chains of any length are fine.
 *
 * Broker flow:
 *   const q = parseAdqlOrThrow(text);
 *   const ids = tablesReferenced(q).map((t) => t.id);          // e.g. ['gaia_dr3.gaia_source', 'ps1_dr2.mean_object']
 *   const local = printAdql(rewriteTables(q, {
 *     'ps1_dr2.mean_object': { table: 'dbo.MeanObjectView', columns: { ramean: 'raMean' } },
 *   }));
 */
export type {
  Between,
  BinaryExpr,
  BinaryOp,
  CaseExpr,
  CastExpr,
  CastType,
  ColumnRef,
  CommonTableExpression,
  CompareOp,
  Comparison,
  DerivedTable,
  Exists,
  Expr,
  ExprItem,
  FromItem,
  FunctionCall,
  Identifier,
  InPredicate,
  IsNull,
  Join,
  LikePredicate,
  LogicalExpr,
  NotExpr,
  NullLiteral,
  NumberLiteral,
  OrderItem,
  QualifiedName,
  Query,
  QueryBody,
  Select,
  SelectItem,
  SetOperation,
  StarItem,
  StringLiteral,
  SubqueryExpr,
  TableRef,
  UnaryExpr,
} from './ast.js';
export { chainOperands, cloneAst, identifierKey, isCondition, qualifiedNameKey, sameIdentifier, stripPositions } from './ast.js';
export { AdqlSyntaxError, AdqlUnsupportedError, isAdqlError, toConstellationError, type Pos } from './errors.js';
export { tokenize } from './lexer.js';
export { AGGREGATE_FUNCTIONS, BUILTIN_FUNCTIONS, MAX_CHAIN, MAX_NESTING, parseAdql, parseAdqlExpression, parseQualifiedName } from './parser.js';
export { printAdql, printAdqlExpression, printIdentifier, printQualifiedName, quoteIdentifier, quoteString } from './printer.js';
export { forEachChildExpr, rewriteTables, tablesReferenced, type RewriteOptions, type TableMapping, type TableReference } from './rewrite.js';
export { toPostgres, type ToPostgresOptions } from './to-sql.js';
export { isRegularIdentifierSpelling, isReservedWord, RESERVED_WORDS, type NumberShape, type Token, type TokenKind } from './tokens.js';

import { toConstellationError } from './errors.js';
import { parseAdql } from './parser.js';
import type { Query } from './ast.js';

/** parseAdql that throws the project's ConstellationError (INVALID_ARGUMENT, rule 'adql-syntax') instead. */
export function parseAdqlOrThrow(text: string): Query {
  try {
    return parseAdql(text);
  } catch (err) {
    throw toConstellationError(err);
  }
}
