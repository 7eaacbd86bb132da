import { describe, expect, it } from 'vitest';
import { adqlToCasJobsSql, CASJOBS_ORDER_COLUMN, type CasJobsSqlOptions } from '../../adapters/sciserver/casjobs-sql.js';
import { ConstellationError } from '../../registry/model/errors.js';

const sql = (adql: string, options?: CasJobsSqlOptions) => adqlToCasJobsSql(adql, options).sql;

/** The ConstellationError a translation throws. */
function refusal(adql: string, options?: CasJobsSqlOptions): ConstellationError {
  try {
    adqlToCasJobsSql(adql, options);
  } catch (err) {
    if (err instanceof ConstellationError) return err;
    throw err;
  }
  throw new Error(`not refused: ${adql}`);
}

describe('ADQL → T-SQL for CasJobs: what stays and what changes', () => {
  it('keeps plain SELECTs, TOP, joins and predicates as they are', () => {
    expect(sql('SELECT TOP 10 p.objID, p.ra, p.dec FROM dbo.PhotoObjAll AS p JOIN dbo.SpecObjAll AS s ON s.bestObjID = p.objID WHERE p.ra BETWEEN 10 AND 20 AND s.z > 0.1'))
      .toBe('SELECT TOP 10 p.objID, p.ra, p.dec FROM dbo.PhotoObjAll AS p JOIN dbo.SpecObjAll AS s ON s.bestObjID = p.objID WHERE p.ra BETWEEN 10 AND 20 AND s.z > 0.1');
    expect(sql('SELECT DISTINCT TOP 3 type FROM PhotoObjAll LEFT OUTER JOIN Field ON 1 = 1 WHERE flags IS NOT NULL AND type IN (3, 6) AND NOT EXISTS (SELECT 1 FROM Field)'))
      .toBe('SELECT DISTINCT TOP 3 type FROM PhotoObjAll LEFT OUTER JOIN Field ON 1 = 1 WHERE flags IS NOT NULL AND type IN (3, 6) AND NOT EXISTS (SELECT 1 FROM Field)');
    expect(sql('SELECT type, COUNT(*) AS n FROM PhotoObjAll GROUP BY type HAVING COUNT(*) > 1 ORDER BY n DESC'))
      .toBe('SELECT type, COUNT(*) AS n FROM PhotoObjAll GROUP BY type HAVING COUNT(*) > 1 ORDER BY n DESC');
    expect(sql('SELECT a FROM t WHERE a != 1')).toBe('SELECT a FROM t WHERE a <> 1');
  });

  it('writes delimited names, and regular names T-SQL reserves, in brackets', () => {
    expect(sql('SELECT "Select", "my col", "a]b", "dec" FROM "My Schema"."Odd Table"'))
      .toBe('SELECT [Select], [my col], [a]]b], [dec] FROM [My Schema].[Odd Table]');
    expect(sql('SELECT file, percent, plan, dec FROM t')).toBe('SELECT [file], [percent], [plan], dec FROM t');
  });

  it('leaves string literals untouched', () => {
    expect(sql(`SELECT 'a || "b" MOD(1, 2) [x] -- y', 'O''Brien' FROM t`)).toBe(`SELECT 'a || "b" MOD(1, 2) [x] -- y', 'O''Brien' FROM t`);
    // Outside ASCII a literal is N'...', which no database code page can mangle.
    expect(sql(`SELECT 'Messier 49 – Virgo' FROM t`)).toBe(`SELECT N'Messier 49 – Virgo' FROM t`);
  });

  it('compares against string literals exactly, as ADQL does, in a case-insensitive database', () => {
    expect(sql(`SELECT class FROM SpecObj WHERE class = 'GALAXY' OR 'QSO' <> class OR class BETWEEN 'A' AND 'C' OR class IN ('STAR', 'QSO')`)).toBe(
      `SELECT class FROM SpecObj WHERE class = 'GALAXY' COLLATE Latin1_General_BIN2 OR 'QSO' COLLATE Latin1_General_BIN2 <> class` +
        ` OR class BETWEEN 'A' COLLATE Latin1_General_BIN2 AND 'C' COLLATE Latin1_General_BIN2` +
        ` OR class IN ('STAR' COLLATE Latin1_General_BIN2, 'QSO' COLLATE Latin1_General_BIN2)`,
    );
    expect(sql(`SELECT CASE class WHEN 'QSO' THEN 1 ELSE 0 END FROM SpecObj`)).toBe(`SELECT CASE class WHEN 'QSO' COLLATE Latin1_General_BIN2 THEN 1 ELSE 0 END FROM SpecObj`);
  });

  it('keeps LIKE case-sensitive with a literal [, and makes ILIKE compare lower case', () => {
    expect(sql(`SELECT a FROM t WHERE name LIKE 'NGC [1]%' AND name NOT LIKE other`)).toBe(
      `SELECT a FROM t WHERE name LIKE 'NGC [[]1]%' COLLATE Latin1_General_BIN2 AND name NOT LIKE REPLACE(other, '[', '[[]') COLLATE Latin1_General_BIN2`,
    );
    expect(sql(`SELECT a FROM t WHERE name ILIKE 'm%' OR name NOT ILIKE '%[x]'`)).toBe(
      `SELECT a FROM t WHERE LOWER(name) LIKE LOWER('m%') OR LOWER(name) NOT LIKE LOWER('%[[]x]')`,
    );
  });

  it('concatenates with +, casting what is not surely text so numbers are not added', () => {
    expect(sql(`SELECT 'a' || 'b', name || '-' || objID, LOWER(a) || CAST(b AS VARCHAR(10)) FROM t`)).toBe(
      `SELECT 'a' + 'b', CAST(name AS NVARCHAR(MAX)) + '-' + CAST(objID AS NVARCHAR(MAX)), LOWER(a) + CAST(b AS NVARCHAR(10)) FROM t`,
    );
  });

  it('translates the ADQL math functions to T-SQL with the same results', () => {
    expect(sql('SELECT MOD(a, b + 1), TRUNCATE(x, 2), TRUNCATE(x), ROUND(x), ROUND(x, 3), POWER(2, 0.5), SQRT(x), EXP(x), LOG(x), LOG10(x) FROM t')).toBe(
      'SELECT (a % (b + 1)), ROUND(x, 2, 1), ROUND(x, 0, 1), ROUND(x, 0), ROUND(x, 3), POWER(CAST(2 AS FLOAT), 0.5), SQRT(x), EXP(x), LOG(x), LOG10(x) FROM t',
    );
    expect(sql('SELECT PI(), RAND(), DEGREES(1), RADIANS(180), CEILING(x), FLOOR(x), ABS(x), SIGN(x) FROM t')).toBe(
      'SELECT PI(), RAND(CHECKSUM(NEWID())), DEGREES(CAST(1 AS FLOAT)), RADIANS(CAST(180 AS FLOAT)), CEILING(x), FLOOR(x), ABS(x), SIGN(x) FROM t',
    );
    expect(sql('SELECT SIN(x), COS(x), TAN(x), COT(x), ASIN(x), ACOS(x), ATAN(x), ATAN2(y, x) FROM t')).toBe(
      'SELECT SIN(x), COS(x), TAN(x), COT(x), ASIN(x), ACOS(x), ATAN(x), ATN2(y, x) FROM t',
    );
    expect(sql('SELECT AVG(n), AVG(DISTINCT n), SUM(n), MIN(n), MAX(n), COUNT(DISTINCT n), COALESCE(a, b, 0), UPPER(s) FROM t')).toBe(
      'SELECT AVG(CAST(n AS FLOAT)), AVG(DISTINCT CAST(n AS FLOAT)), SUM(n), MIN(n), MAX(n), COUNT(DISTINCT n), COALESCE(a, b, 0), UPPER(s) FROM t',
    );
  });

  it('casts to the T-SQL types of the same meaning', () => {
    expect(sql('SELECT CAST(a AS SMALLINT), CAST(a AS INTEGER), CAST(a AS BIGINT), CAST(a AS REAL), CAST(a AS DOUBLE PRECISION) FROM t')).toBe(
      'SELECT CAST(a AS SMALLINT), CAST(a AS INT), CAST(a AS BIGINT), CAST(a AS REAL), CAST(a AS FLOAT) FROM t',
    );
    expect(sql('SELECT CAST(a AS CHAR), CAST(a AS CHAR(8)), CAST(a AS VARCHAR), CAST(a AS VARCHAR(64)), CAST(d AS TIMESTAMP) FROM t')).toBe(
      'SELECT CAST(a AS NCHAR(1)), CAST(a AS NCHAR(8)), CAST(a AS NVARCHAR(MAX)), CAST(a AS NVARCHAR(64)), CAST(d AS DATETIME2) FROM t',
    );
  });

  it('brackets nested operators, since T-SQL ranks & ^ | with + and -', () => {
    expect(sql('SELECT a & 4 + 1, (a & b) | c, a - (b - c), -(-a), ~a FROM t WHERE flags & 0x10 = 0')).toBe(
      'SELECT a & (4 + 1), (a & b) | c, a - (b - c), -(-a), ~a FROM t WHERE flags & 16 = 0',
    );
  });

  it('passes schema-qualified site functions through', () => {
    expect(sql(`SELECT objID FROM PhotoObj WHERE (flags & dbo.fPhotoFlags('SATURATED')) = 0`)).toBe(
      `SELECT objID FROM PhotoObj WHERE flags & dbo.fPhotoFlags('SATURATED') = 0`,
    );
  });

  it('keeps WITH, set operations, and ORDER BY where TOP or OFFSET makes it legal in a subquery', () => {
    expect(sql('WITH c AS (SELECT a FROM t) SELECT a FROM c UNION ALL SELECT a FROM u EXCEPT SELECT a FROM v INTERSECT SELECT a FROM w')).toBe(
      'WITH c AS (SELECT a FROM t) SELECT a FROM c UNION ALL SELECT a FROM u EXCEPT SELECT a FROM v INTERSECT SELECT a FROM w',
    );
    expect(sql('SELECT * FROM (SELECT TOP 5 a FROM t ORDER BY a) AS x WHERE a IN (SELECT b FROM u ORDER BY b OFFSET 2)')).toBe(
      'SELECT * FROM (SELECT TOP 5 a FROM t ORDER BY a) AS x WHERE a IN (SELECT b FROM u ORDER BY b OFFSET 2 ROWS)',
    );
  });
});

describe('ADQL → T-SQL for CasJobs: row limits', () => {
  it('makes maxrec a TOP, or lowers the query’s own TOP to it', () => {
    expect(sql('SELECT objID FROM PhotoObjAll', { maxrec: 100 })).toBe('SELECT TOP 100 objID FROM PhotoObjAll');
    expect(sql('SELECT TOP 500 objID FROM PhotoObjAll', { maxrec: 100 })).toBe('SELECT TOP 100 objID FROM PhotoObjAll');
    expect(sql('SELECT TOP 5 objID FROM PhotoObjAll', { maxrec: 100 })).toBe('SELECT TOP 5 objID FROM PhotoObjAll');
    expect(sql('SELECT TOP 0 objID FROM PhotoObjAll')).toBe('SELECT TOP 0 objID FROM PhotoObjAll');
  });

  it('turns OFFSET into OFFSET ... ROWS, with TOP as FETCH NEXT', () => {
    expect(sql('SELECT a FROM t ORDER BY a OFFSET 10')).toBe('SELECT a FROM t ORDER BY a OFFSET 10 ROWS');
    expect(sql('SELECT TOP 5 a FROM t ORDER BY a OFFSET 10')).toBe('SELECT a FROM t ORDER BY a OFFSET 10 ROWS FETCH NEXT 5 ROWS ONLY');
    expect(sql('SELECT TOP 5 a FROM t ORDER BY a OFFSET 10', { maxrec: 3 })).toBe('SELECT a FROM t ORDER BY a OFFSET 10 ROWS FETCH NEXT 3 ROWS ONLY');
  });

  it('limits a set operation from outside, or with FETCH when it is ordered', () => {
    expect(sql('SELECT a FROM t UNION SELECT a FROM u', { maxrec: 3 })).toBe('SELECT TOP 3 * FROM (SELECT a FROM t UNION SELECT a FROM u) AS [constellation_q]');
    expect(sql('SELECT a FROM t UNION SELECT a FROM u ORDER BY a', { maxrec: 3 })).toBe('SELECT a FROM t UNION SELECT a FROM u ORDER BY a OFFSET 0 ROWS FETCH NEXT 3 ROWS ONLY');
    expect(sql('SELECT TOP 2 a FROM t UNION SELECT a FROM u ORDER BY a')).toBe('SELECT TOP 2 a FROM t UNION SELECT a FROM u ORDER BY a');
  });

  it('refuses a maxrec that is not a row count', () => {
    expect(refusal('SELECT a FROM t', { maxrec: -1 }).kind).toBe('INVALID_ARGUMENT');
    expect(refusal('SELECT a FROM t', { maxrec: 1.5 }).kind).toBe('INVALID_ARGUMENT');
  });
});

describe('ADQL → T-SQL for CasJobs: async jobs writing into MyDB', () => {
  it('writes SELECT ... INTO, naming nameless columns', () => {
    expect(adqlToCasJobsSql('SELECT ra + 1, dec, COUNT(*) AS n FROM t GROUP BY ra, dec', { into: 'MyDB.r' })).toEqual({
      sql: 'SELECT ra + 1 AS [col1], dec, COUNT(*) AS n INTO MyDB.r FROM t GROUP BY ra, dec',
    });
    expect(sql('WITH c AS (SELECT a FROM t) SELECT TOP 4 * FROM c', { into: 'MyDB.r', maxrec: 2 })).toBe('WITH c AS (SELECT a FROM t) SELECT TOP 2 * INTO MyDB.r FROM c');
    expect(sql('SELECT a FROM t UNION SELECT a FROM u', { into: 'MyDB.r' })).toBe('SELECT * INTO MyDB.r FROM (SELECT a FROM t UNION SELECT a FROM u) AS [constellation_q]');
  });

  it('numbers the rows of an ordered query so the MyDB table can be read back in order', () => {
    expect(adqlToCasJobsSql('SELECT TOP 5 ra, dec AS d FROM t ORDER BY d DESC, 1', { into: 'MyDB.r' })).toEqual({
      sql: `SELECT TOP 5 ra, dec AS d, ROW_NUMBER() OVER (ORDER BY dec DESC, ra) AS [${CASJOBS_ORDER_COLUMN}] INTO MyDB.r FROM t ORDER BY d DESC, 1`,
      orderColumn: CASJOBS_ORDER_COLUMN,
    });
    expect(sql('SELECT * FROM t ORDER BY a OFFSET 2', { into: 'MyDB.r', maxrec: 3 })).toBe(
      `SELECT *, ROW_NUMBER() OVER (ORDER BY a) AS [${CASJOBS_ORDER_COLUMN}] INTO MyDB.r FROM t ORDER BY a OFFSET 2 ROWS FETCH NEXT 3 ROWS ONLY`,
    );
  });

  it('refuses an order it could not keep', () => {
    expect(refusal('SELECT DISTINCT a FROM t ORDER BY a', { into: 'MyDB.r' }).message).toMatch(/ORDER BY with SELECT DISTINCT in an async CasJobs job.*sync mode \(at line 1, column 1\)/);
    expect(refusal('SELECT a FROM t UNION SELECT a FROM u ORDER BY a', { into: 'MyDB.r' }).message).toMatch(/ORDER BY on a set operation in an async CasJobs job/);
    expect(refusal('SELECT * FROM t ORDER BY 1', { into: 'MyDB.r' }).message).toMatch(/ORDER BY 1 in an async CasJobs job must name a select-list expression/);
  });
});

describe('ADQL → T-SQL for CasJobs: refusals', () => {
  it('refuses ADQL geometry, naming the function, where it is, and what to use instead', () => {
    const err = refusal("SELECT objID\nFROM PhotoObj\nWHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 195, 2.5, 0.1)) = 1");
    expect(err.kind).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe(
      "CONTAINS: CasJobs has no ADQL geometry; for a cone search use SDSS's dbo.fGetNearbyObjEq(ra, dec, radius_arcmin) in a native CasJobs query, or send the query to a site with ADQL geometry (at line 3, column 7)",
    );
    expect(err.violations).toEqual([{ path: 'line 3, column 7', rule: 'casjobs-unsupported', message: err.message }]);
    const cases: [string, string, string][] = [
      ['SELECT POINT(ra, dec) FROM t', 'POINT', 'line 1, column 8'],
      ['SELECT a FROM t WHERE 1 = INTERSECTS(CIRCLE(ra, dec, 1), BOX(0, 0, 1, 1))', 'INTERSECTS', 'line 1, column 27'],
      ['SELECT DISTANCE(ra, dec, 10, 20) AS d FROM t', 'DISTANCE', 'line 1, column 8'],
      ['SELECT a FROM t WHERE  AREA(POLYGON(0, 0, 1, 0, 1, 1)) > 1', 'AREA', 'line 1, column 24'],
      ["SELECT COORD1(p), COORDSYS(p), CENTROID(REGION('x')) FROM t", 'COORD1', 'line 1, column 8'],
    ];
    for (const [adql, name, path] of cases) {
      const e = refusal(adql);
      expect(e.message, adql).toMatch(new RegExp(`^${name}: CasJobs has no ADQL geometry`));
      expect(e.violations[0].path, adql).toBe(path);
    }
    expect(refusal('SELECT CAST(a AS POINT) FROM t').message).toBe('CAST to POINT: CasJobs has no ADQL geometry (at line 1, column 8)');
  });

  it('refuses what SQL Server cannot run or would run with another meaning', () => {
    const cases: [string, RegExp][] = [
      ['SELECT * FROM t NATURAL JOIN u', /^NATURAL JOIN: T-SQL has none; write the join condition with ON \(at line 1, column 17\)$/],
      ['SELECT * FROM t JOIN u USING (a)', /^JOIN \.\.\. USING: T-SQL has no USING.*\(at line 1, column 17\)$/],
      ['SELECT a FROM t EXCEPT ALL SELECT a FROM u', /^EXCEPT ALL: SQL Server has only EXCEPT \(without ALL\) \(at line 1, column 17\)$/],
      ['SELECT a FROM t INTERSECT ALL SELECT a FROM u', /^INTERSECT ALL/],
      ['SELECT a FROM t OFFSET 5', /^OFFSET without ORDER BY/],
      ['SELECT * FROM (SELECT a FROM t ORDER BY a) AS x', /^ORDER BY in a subquery without TOP or OFFSET.*\(at line 1, column 16\)$/],
      ['(SELECT TOP 1 a FROM t ORDER BY a) UNION SELECT a FROM u', /^ORDER BY or OFFSET inside a parenthesised set operand/],
      ['SELECT * FROM (WITH c AS (SELECT a FROM t) SELECT a FROM c) AS x', /^WITH inside a subquery: T-SQL takes WITH only at the start of the statement \(at line 1, column 16\)$/],
      ['SELECT RAND(7) FROM t', /^RAND with a seed: T-SQL would give every row the same number \(at line 1, column 8\)$/],
      ["SELECT IN_UNIT(a, 'deg') FROM t", /^IN_UNIT has no T-SQL equivalent in CasJobs/],
      ["SELECT ivo_hasword(a, 'x') FROM t", /^function ivo_hasword is not ADQL, and CasJobs runs its own functions only schema-qualified/],
      ['SELECT CAST(a AS VARCHAR(5000)) FROM t', /^VARCHAR\(5000\): SQL Server holds at most 4000 characters/],
    ];
    for (const [adql, message] of cases) {
      const e = refusal(adql);
      expect(e.kind, adql).toBe('INVALID_ARGUMENT');
      expect(e.message, adql).toMatch(message);
      expect(e.violations[0].rule, adql).toBe('casjobs-unsupported');
    }
  });

  it('reports ADQL that does not parse as a syntax error', () => {
    const e = refusal('SELECT FROM t');
    expect(e.kind).toBe('INVALID_ARGUMENT');
    expect(e.violations[0].rule).toBe('adql-syntax');
  });
});
