/** Token kinds and the reserved words of ADQL 2.1 (IVOA Recommendation 2023, sections 2.1.2–2.1.3). */
import type { Pos } from './errors.js';

/** What a token is; `keyword` is any reserved word (SQL92 or ADQL), matched case-insensitively. */
export type TokenKind = 'ident' | 'quoted' | 'keyword' | 'number' | 'string' | 'op' | 'eof';

/** The shape of a numeric literal, kept so the printer can write it back exactly. */
export type NumberShape = 'integer' | 'decimal' | 'approximate' | 'hex';

/** One lexical token with its place in the source. */
export interface Token {
  kind: TokenKind;
  /** The raw source slice ('' for eof). */
  text: string;
  /**
   * ident: the name as written; quoted: the name with "" unescaped; keyword: upper case;
   * number: the literal as written; string: the content with '' unescaped; op: the operator.
   */
  value: string;
  pos: Pos;
  /** Offset just past the token. */
  end: number;
  /** Only for numbers. */
  shape?: NumberShape;
}

/** SQL-92 reserved words as listed by ADQL 2.1 section 2.1.3 (END-EXEC lexes as END - EXEC). */
const SQL_RESERVED = `ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG
BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHAR_LENGTH
CHARACTER_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT CONNECTION CONSTRAINT
CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME
CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY DEALLOCATE DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED
DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END EXEC ESCAPE
EXCEPT EXCEPTION EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH FIRST FLOAT FOR FOREIGN FOUND FROM FULL
GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY IMMEDIATE IN INDICATOR INITIALLY INNER INPUT
INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT
LEVEL LIKE LOCAL LOWER MATCH MAX MIN MINUTE MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULL
NULLIF NUMERIC OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL POSITION
PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES RELATIVE
RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION SESSION_USER SET SIZE
SMALLINT SOME SPACE SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME
TIMESTAMP TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION
UNIQUE UNKNOWN UPDATE UPPER USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE WITH
WORK WRITE YEAR ZONE`;

/** ADQL's own reserved words (section 2.1.3.2) plus ILIKE, IN_UNIT, OFFSET, TOP, BIGINT. */
const ADQL_RESERVED = `ABS ACOS ASIN ATAN ATAN2 CEILING COS COT DEGREES EXP FLOOR LOG LOG10 MOD PI POWER
RADIANS RAND ROUND SIN SQRT TAN TRUNCATE AREA BOX CENTROID CIRCLE CONTAINS COORD1 COORD2 COORDSYS
DISTANCE INTERSECTS POINT POLYGON REGION BIGINT ILIKE IN_UNIT OFFSET TOP`;

/** Every reserved word, upper case: unquoted, none of these may name a table, column or alias. */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([...SQL_RESERVED.split(/\s+/), ...ADQL_RESERVED.split(/\s+/)]);

/** True when `word` (any case) is reserved in ADQL 2.1. */
export function isReservedWord(word: string): boolean {
  return RESERVED_WORDS.has(word.toUpperCase());
}

/** True when `name` is spelled as an ADQL regular identifier: a Latin letter, then letters, digits, '_'. */
export function isRegularIdentifierSpelling(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_]*$/.test(name);
}
