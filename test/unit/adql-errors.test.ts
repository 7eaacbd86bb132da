import { describe, expect, it } from 'vitest';
import { ConstellationError } from '../../registry/model/errors.js';
import {
  AdqlSyntaxError,
  AdqlUnsupportedError,
  MAX_CHAIN,
  parseAdql,
  parseAdqlOrThrow,
  printAdql,
  rewriteTables,
  stripPositions,
  tablesReferenced,
  toConstellationError,
  toPostgres,
} from '../../adapters/ivoa/adql/index.js';

function syntaxError(text: string): AdqlSyntaxError {
  try {
    parseAdql(text);
  } catch (err) {
    expect(err).toBeInstanceOf(AdqlSyntaxError);
    return err as AdqlSyntaxError;
  }
  throw new Error(`expected a syntax error for ${JSON.stringify(text)}`);
}

/** [query, line, column, offending token ('' = end of input), text the message must contain]. */
const CASES: [string, number, number, string, string][] = [
  ['SELECT * FORM t', 1, 10, 'FORM', 'expected FROM after select list'],
  ['SELECT size FROM t', 1, 8, 'size', `write "size" (in double quotes)`],
  ['SELECT a FROM t LIMIT 10', 1, 17, 'LIMIT', 'ADQL has no LIMIT clause; write SELECT TOP n instead'],
  ['SELECT a FROM t WHERE CONTAINS(POINT(1, 2), CIRCLE(1, 2, 3))', 1, 23, 'CONTAINS', 'as in CONTAINS(...) = 1'],
  ["SELECT a\nFROM t\nWHERE a = 'abc", 3, 11, "'abc", 'unterminated string literal'],
  ['SELECT a FROM t WHERE a = 1 AND', 1, 32, '', 'expected a condition after AND'],
  ['SELECT a FROM t WHERE (a = 1', 1, 29, '', "expected ')' after the expression (to close the '(' at line 1, column 23)"],
  ['SELECT POINT(1, 2, 3, 4) FROM t', 1, 8, 'POINT', 'POINT takes 2 or 3 arguments, not 4'],
  ['SELECT DISTANCE(1, 2, 3) FROM t', 1, 8, 'DISTANCE', 'DISTANCE takes 2 or 4 arguments, not 3'],
  ['SELECT a FROM t ORDER a', 1, 23, 'a', 'expected BY after ORDER'],
  ['SELECT TOP x a FROM t', 1, 12, 'x', 'expected a row count (an unsigned integer) after TOP'],
  ['SELECT a FROM (SELECT a FROM t)', 1, 32, '', 'expected an alias for the subquery in FROM'],
  ['SELECT a FROM t JOIN u', 1, 23, '', 'expected ON or USING after the joined table'],
  ['SELECT a = b FROM t', 1, 8, 'a', 'a condition cannot be used as a value here (ADQL has no boolean type)'],
  ['SELECT a FROM t WHERE a = b = c', 1, 29, '=', 'expected AND or OR between conditions'],
  ['SELECT a FROM t WHERE x = TRUE', 1, 27, 'TRUE', 'ADQL 2.1 has no boolean literals'],
  ['SELECT SUBSTRING(a, 1, 2) FROM t', 1, 8, 'SUBSTRING', 'SUBSTRING is not an ADQL 2.1 function'],
  ['SELECT a FROM t AS user', 1, 20, 'user', `an alias cannot be the reserved word 'user'`],
  ['SELECT TOP 5 DISTINCT a FROM t', 1, 14, 'DISTINCT', 'DISTINCT must come before TOP'],
  ['SELECT a FROM t UNION', 1, 22, '', 'expected SELECT after UNION'],
  ['SELECT a.b.c.d.e FROM t', 1, 16, 'e', 'at most 4 parts'],
  ['SELECT CAST(a AS FLOAT) FROM t', 1, 18, 'FLOAT', 'expected a CAST type'],
  ['SELECT a,\n       b\n  FROM t\n WHERE b >', 4, 11, '', "expected an expression after '>'"],
  ['SELECT (a + b FROM t', 1, 15, 'FROM', "expected ')'"],
  ['SELECT a FROM t WHERE a IN ()', 1, 29, ')', 'expected a value or subquery after IN ('],
  ['SELECT a FROM t NATURAL JOIN u ON t.a = u.a', 1, 32, 'ON', 'a NATURAL JOIN takes no ON or USING condition'],
  ['WITH x AS SELECT a FROM t SELECT * FROM x', 1, 11, 'SELECT', "expected '(' after AS in WITH"],
  ['SELECT COUNT(*) FROM t GROUP a', 1, 30, 'a', 'expected BY after GROUP'],
  ['SELECT a FROM cat.sch.tab.extra', 1, 27, 'extra', 'a table name has at most 3 parts'],
  ['SELECT a, FROM t', 1, 11, 'FROM', "expected a select list item after ','"],
  ['', 1, 1, '', 'expected SELECT'],
  ['UPDATE t SET a = 1', 1, 1, 'UPDATE', 'expected SELECT'],
  ['SELECT a FROM t WHERE a BETWEEN 1 OR 2', 1, 35, 'OR', 'expected AND in BETWEEN ... AND ...'],
  ['SELECT a FROM t WHERE NOT a', 1, 27, 'a', 'expected a condition after NOT'],
  ['SELECT a FROM t WHERE a IS 1', 1, 28, '1', 'expected NULL after IS'],
  ['SELECT "f"(a) FROM t', 1, 8, '"f"', 'a function name must be a regular identifier'],
  ['SELECT REGION(a) FROM t', 1, 15, 'a', 'REGION takes a string literal'],
  ['SELECT CASE WHEN a THEN 1 END FROM t', 1, 18, 'a', 'expected a condition after WHEN'],
  ['SELECT a FROM t ORDER BY a OFFSET -1', 1, 35, '-', 'expected a row count (an unsigned integer) after OFFSET'],
  ['SELECT a FROM t t2 t3', 1, 20, 't3', 'expected end of query'],
  ['SELECT a FROM t WHERE a @ 1', 1, 25, '@', 'unexpected character "@"'],
  ['SELECT _a FROM t', 1, 8, '_a', 'identifiers must begin with a letter'],
  ['SELECT 1a FROM t', 1, 8, '1a', 'malformed number'],
  ['SELECT a FROM t /* never closed', 1, 17, '/*', 'unterminated comment'],
  ['SELECT a FROM t\nWHERE b = "unclosed', 2, 11, '"unclosed', 'unterminated delimited identifier'],
];

describe('ADQL syntax errors', () => {
  it('has at least 20 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(CASES)('%j fails at line %i, column %i', (text, line, column, token, fragment) => {
    const err = syntaxError(text);
    expect({ line: err.line, column: err.column, token: err.token }).toEqual({ line, column, token });
    expect(err.message).toContain(fragment);
    expect(err.message).toContain(`at line ${line}, column ${column}`);
    const lines = text.split('\n');
    const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + column - 1;
    expect(err.offset).toBe(offset);
  });

  it('says what was expected, where, and what was found', () => {
    expect(syntaxError('SELECT ra, dec, pmra WHER x > 1').message).toBe(
      "expected FROM after select list at line 1, column 22, found 'WHER'",
    );
    expect(syntaxError('SELECT a FROM t WHER a = 1').message).toBe(
      "expected end of query at line 1, column 17, found 'WHER' (did you mean WHERE?)",
    );
    expect(syntaxError('SELECT').message).toBe('expected a select list after SELECT at line 1, column 7, found end of input');
    expect(syntaxError('SELECT size FROM t').message).toBe(
      `a column name cannot be the reserved word 'size'; write "size" (in double quotes) to use it as a name at line 1, column 8, found 'size'`,
    );
  });

  it('is an Error with the syntax details as fields', () => {
    const err = syntaxError('SELECT a FROM t WHERE');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('AdqlSyntaxError');
    expect(err.detail).toBe('expected a condition after WHERE');
  });

  it('wraps into ConstellationError INVALID_ARGUMENT with a located violation', () => {
    const err = syntaxError('SELECT a\nFROM t\nWHERE a =');
    const wrapped = toConstellationError(err);
    expect(wrapped).toBeInstanceOf(ConstellationError);
    expect(wrapped.kind).toBe('INVALID_ARGUMENT');
    expect(wrapped.statusCode).toBe(400);
    expect(wrapped.cause).toBe(err);
    expect(wrapped.violations).toEqual([{ path: 'line 3, column 10', rule: 'adql-syntax', message: err.message }]);
    expect(() => parseAdqlOrThrow('SELECT FROM')).toThrow(ConstellationError);
  });

  it('wraps translator refusals with rule adql-unsupported, and leaves other errors INTERNAL', () => {
    let caught: unknown;
    try {
      toPostgres(parseAdql("SELECT IN_UNIT(ra, 'rad') FROM t"));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(AdqlUnsupportedError);
    const wrapped = toConstellationError(caught);
    expect(wrapped.kind).toBe('INVALID_ARGUMENT');
    expect(wrapped.violations).toEqual([{ path: 'line 1, column 8', rule: 'adql-unsupported', message: (caught as Error).message }]);
    expect(toConstellationError(new TypeError('boom')).kind).toBe('INTERNAL');
  });
});

describe('ADQL size limits', () => {
  it('handles very long operator chains in every walker', () => {
    const text = `SELECT a FROM t WHERE ${Array.from({ length: 20000 }, (_, i) => `a = ${i}`).join(' OR ')}`;
    const q = parseAdql(text);
    const printed = printAdql(q);
    expect(printed.length).toBeGreaterThan(200000);
    expect(printAdql(rewriteTables(q, { t: { table: 'u', columns: { a: 'A' } } }))).toContain('"A" = 19999');
    expect(toPostgres(q)).toContain('a = 19999');
    expect(tablesReferenced(q)).toHaveLength(1);
    // (A deep toEqual would itself recurse 20000 levels; compare the canonical text instead.)
    expect(printAdql(stripPositions(parseAdql(printed)))).toBe(printed);
  });

  it('refuses absurd nesting with a syntax error, not a stack overflow', () => {
    expect(parseAdql(`SELECT ${'('.repeat(150)}a${')'.repeat(150)} FROM t`)).toBeDefined();
    const err = syntaxError(`SELECT ${'('.repeat(5000)}a${')'.repeat(5000)} FROM t`);
    expect(err.detail).toContain(`the query nests too deeply`);
    let nested = 'SELECT a FROM t';
    for (let i = 0; i < 300; i++) nested = `SELECT a FROM t WHERE a IN (${nested})`;
    expect(syntaxError(nested).detail).toContain('nests too deeply');
  });

  it(`refuses more than ${MAX_CHAIN} JOINs or set operations in a row`, () => {
    expect(parseAdql(Array.from({ length: MAX_CHAIN + 1 }, () => 'SELECT a FROM t').join(' UNION ALL '))).toBeDefined();
    expect(syntaxError(Array.from({ length: MAX_CHAIN + 2 }, () => 'SELECT a FROM t').join(' UNION ')).detail).toBe(`too many set operations in a row (more than ${MAX_CHAIN})`);
    expect(syntaxError(`SELECT a FROM t0 ${Array.from({ length: MAX_CHAIN + 1 }, () => 'CROSS JOIN t').join(' ')}`).detail).toBe(`too many JOINs in a row (more than ${MAX_CHAIN})`);
  });
});
