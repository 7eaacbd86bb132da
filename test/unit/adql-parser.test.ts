import { describe, expect, it } from 'vitest';
import {
  parseAdql,
  parseAdqlExpression,
  printAdql,
  printAdqlExpression,
  stripPositions,
  type Expr,
  type Query,
  type Select,
} from '../../adapters/ivoa/adql/index.js';

/** Real-world shaped queries: Gaia archive, Rubin DP0.2, MAST Pan-STARRS, ObsCore, TAP_SCHEMA, RegTAP. */
const CORPUS: string[] = [
  // ESA Gaia archive
  'SELECT TOP 100 * FROM gaiadr3.gaia_source ORDER BY source_id',
  "SELECT source_id, ra, dec, phot_g_mean_mag FROM gaiadr3.gaia_source WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 266.41683, -29.00781, 0.08333333))",
  'SELECT COUNT(*) FROM gaiadr3.gaia_source WHERE parallax_over_error > 10 AND phot_g_mean_mag < 12',
  `SELECT phot_g_mean_mag + 5 * LOG10(parallax) - 10 AS mg, bp_rp FROM gaiadr3.gaia_source
   WHERE parallax_over_error > 5 AND phot_bp_mean_flux_over_error > 10 AND phot_rp_mean_flux_over_error > 10
     AND visibility_periods_used > 8 AND astrometric_excess_noise < 1 AND parallax > 10`,
  'SELECT FLOOR(phot_g_mean_mag) AS gbin, COUNT(*) AS n FROM gaiadr3.gaia_source WHERE random_index BETWEEN 0 AND 1000000 GROUP BY gbin ORDER BY gbin',
  `SELECT g.source_id, g.ra, g.dec, tm.original_ext_source_id
   FROM gaiadr3.gaia_source AS g
   JOIN gaiadr3.tmass_psc_xsc_best_neighbour AS xm USING (source_id)
   JOIN gaiadr1.tmass_original_valid AS tm ON tm.tmass_oid = xm.original_psc_source_id
   WHERE g.phot_g_mean_mag < 10`,
  `SELECT source_id, DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 56.75, 24.1167)) AS dist FROM gaiadr3.gaia_source
   WHERE DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 56.75, 24.1167)) < 2 ORDER BY dist`,
  'SELECT gaia_healpix_index(4, source_id) AS hpx4, COUNT(*) AS n FROM gaiadr3.gaia_source GROUP BY gaia_healpix_index(4, source_id)',
  'SELECT * FROM gaiadr3.vari_summary WHERE source_id IN (SELECT source_id FROM gaiadr3.gaia_source WHERE phot_g_mean_mag < 10)',
  `SELECT TOP 20 gs.source_id, ap.teff_gspphot, ap.logg_gspphot FROM gaiadr3.gaia_source AS gs
   INNER JOIN gaiadr3.astrophysical_parameters AS ap ON gs.source_id = ap.source_id
   WHERE ap.teff_gspphot > 7000 ORDER BY ap.teff_gspphot DESC`,
  'SELECT source_id, SQRT(POWER(pmra, 2) + POWER(pmdec, 2)) AS pm FROM gaiadr3.gaia_source WHERE pmra IS NOT NULL AND SQRT(pmra * pmra + pmdec * pmdec) > 1000',
  "SELECT source_id FROM gaiadr3.gaia_source WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), POLYGON('ICRS', 10.0, -10.5, 20.0, 20.5, 30.0, 30.5))",
  'SELECT source_id FROM gaiadr3.gaia_source WHERE CONTAINS(POINT(ra, dec), BOX(25.4, -20.0, 10.0, 10.0)) = 1',
  "SELECT u.id, g.source_id FROM tap_upload.mytable AS u, gaiadr3.gaia_source AS g WHERE 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', u.ra, u.dec, 1.0 / 3600))",
  'SELECT DISTINCT phot_variable_flag FROM gaiadr2.gaia_source',
  'SELECT source_id, COUNT(*) FROM gaiadr3.vari_cepheid GROUP BY source_id HAVING COUNT(*) > 1',
  // Rubin DP0.2
  "SELECT coord_ra, coord_dec FROM dp02_dc2_catalogs.Object WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62, -37, 0.05)) = 1",
  `SELECT objectId, coord_ra, coord_dec, scisql_nanojanskyToAbMag(g_cModelFlux) AS gmag FROM dp02_dc2_catalogs.Object
   WHERE CONTAINS(POINT('ICRS', coord_ra, coord_dec), CIRCLE('ICRS', 62.0, -37.0, 0.1)) = 1 AND detect_isPrimary = 1`,
  'SELECT COUNT(*) FROM dp02_dc2_catalogs.Object WHERE refExtendedness = 0 AND detect_isPrimary = 1',
  `SELECT fs.forcedSourceId, fs.objectId, fs.ccdVisitId, fs.psfFlux, cv.expMidptMJD, cv.band
   FROM dp02_dc2_catalogs.ForcedSource AS fs JOIN dp02_dc2_catalogs.CcdVisit AS cv ON cv.ccdVisitId = fs.ccdVisitId
   WHERE fs.objectId = 1651589610221862935`,
  `SELECT mt.id_truth_type, mt.match_objectId, ts.ra, ts.dec, ts.truth_type
   FROM dp02_dc2_catalogs.MatchesTruth AS mt JOIN dp02_dc2_catalogs.TruthSummary AS ts ON mt.id_truth_type = ts.id_truth_type
   WHERE ts.truth_type = 2 AND CONTAINS(POINT('ICRS', ts.ra, ts.dec), CIRCLE('ICRS', 62.0, -37.0, 0.10)) = 1`,
  'SELECT band, COUNT(*) AS nvisits FROM dp02_dc2_catalogs.CcdVisit GROUP BY band ORDER BY band',
  'SELECT TOP 10 diaObjectId, ra, decl, nDiaSources FROM dp02_dc2_catalogs.DiaObject WHERE nDiaSources > 100 ORDER BY nDiaSources DESC',
  // MAST Pan-STARRS DR2
  `SELECT TOP 10 objID, "raMean", "decMean", nDetections FROM dbo.MeanObjectView
   WHERE CONTAINS(POINT('ICRS', "raMean", "decMean"), CIRCLE('ICRS', 187.706, 12.391, 0.0167)) = 1 AND nDetections > 1 ORDER BY objID`,
  `SELECT o.objID, o."raMean", m.gMeanPSFMag, m.rMeanPSFMag FROM dbo.ObjectThin AS o
   JOIN dbo.MeanObject AS m ON o.objID = m.objID AND o.uniquePspsOBid = m.uniquePspsOBid WHERE m.gMeanPSFMag - m.rMeanPSFMag > 1.5`,
  'SELECT objID, CASE WHEN gMeanPSFMag > 0 THEN gMeanPSFMag ELSE NULL END AS g FROM dbo.MeanObjectView WHERE "qualityFlag" & 4 = 4',
  'SELECT objID FROM dbo.MeanObjectView WHERE (objInfoFlag & 0x10000) = 0 AND nDetections >= 3',
  // ObsCore, TAP_SCHEMA, RegTAP
  `SELECT obs_id, s_ra, s_dec, t_min, t_max, em_min, em_max FROM ivoa.obscore
   WHERE dataproduct_type = 'image' AND calib_level >= 2 AND INTERSECTS(CIRCLE('ICRS', 83.633, 22.0145, 0.1), s_region) = 1`,
  "SELECT table_name, description FROM tap_schema.tables WHERE schema_name ILIKE 'gaia%' AND table_name NOT LIKE '%lite%'",
  "SELECT ivoid FROM rr.resource WHERE 1 = ivo_hasword(res_description, 'quasar') AND ivo_nocasematch(res_type, 'vs:catalogservice') = 1",
  'SELECT * FROM tap_schema.tables NATURAL JOIN tap_schema.columns',
  // WITH, set operations, subqueries
  `WITH bright AS (SELECT source_id, ra, dec FROM gaiadr3.gaia_source WHERE phot_g_mean_mag < 8)
   SELECT b.source_id, v.best_class_name FROM bright AS b JOIN gaiadr3.vari_classifier_result AS v ON v.source_id = b.source_id`,
  'WITH a AS (SELECT source_id FROM gaiadr3.gaia_source WHERE parallax > 100), b AS (SELECT source_id FROM a WHERE source_id > 0) SELECT COUNT(*) FROM b',
  "SELECT source_id, 'dr2' AS release FROM gaiadr2.gaia_source WHERE source_id = 1 UNION SELECT source_id, 'dr3' FROM gaiadr3.gaia_source WHERE source_id = 1",
  'SELECT ra FROM a UNION ALL SELECT ra FROM b ORDER BY 1 OFFSET 10',
  'SELECT source_id FROM gaiadr3.gaia_source EXCEPT SELECT source_id FROM gaiadr3.vari_summary INTERSECT SELECT source_id FROM gaiadr3.nss_two_body_orbit',
  '(SELECT TOP 5 ra FROM a ORDER BY ra) UNION (SELECT TOP 5 ra FROM b ORDER BY ra DESC)',
  'SELECT g.source_id FROM gaiadr3.gaia_source AS g WHERE EXISTS (SELECT 1 FROM gaiadr3.vari_summary AS v WHERE v.source_id = g.source_id)',
  'SELECT source_id FROM gaiadr3.gaia_source WHERE phot_g_mean_mag < (SELECT AVG(phot_g_mean_mag) FROM gaiadr3.gaia_source WHERE random_index < 1000)',
  `SELECT t.bin, t.n FROM (SELECT FLOOR(bp_rp * 10) AS bin, COUNT(*) AS n FROM gaiadr3.gaia_source WHERE random_index < 100000
   GROUP BY FLOOR(bp_rp * 10)) AS t WHERE t.n > 10 ORDER BY t.bin`,
  `SELECT g.source_id FROM gaiadr3.gaia_source AS g LEFT OUTER JOIN gaiadr3.astrophysical_parameters AS ap ON g.source_id = ap.source_id
   WHERE ap.source_id IS NULL AND g.random_index < 100`,
  'SELECT * FROM t WHERE a IN (SELECT b FROM u WHERE c IN (SELECT d FROM v WHERE e > (SELECT MAX(f) FROM w)))',
  'SELECT * FROM a JOIN (b JOIN c ON b.id = c.id) ON a.id = b.id RIGHT JOIN d USING (id) FULL OUTER JOIN e USING (id, k) CROSS JOIN f',
  'SELECT t.*, u.x FROM t, u',
  'SELECT cat.sch.tab.col, sch.tab.col, tab.col FROM cat.sch.tab',
  // Names, literals, functions
  'SELECT "size", "DATE", "Group""Name" FROM "My Schema"."Odd Table" AS "t"',
  "SELECT LOWER(name) || '-' || UPPER(band) AS tag FROM survey.fields WHERE COALESCE(flag, 0) = 0",
  "SELECT CAST(source_id AS VARCHAR(30)) AS sid, CAST(phot_g_mean_mag AS REAL) AS g, CAST('2021-01-14T11:25:00' AS TIMESTAMP) AS t, CAST(ra AS DOUBLE PRECISION) FROM gaiadr3.gaia_source",
  `SELECT ABS(b), CEILING(l), DEGREES(ATAN2(y, x)), EXP(1), MOD(source_id, 10), PI(), RADIANS(ra), RAND(), ROUND(ra, 3), TRUNCATE(dec, 2),
   SIN(x), COS(x), TAN(x), ASIN(x), ACOS(x), ATAN(x), COT(x), LOG(x), LOG10(x), SQRT(x) FROM t`,
  "SELECT COORD1(POINT('ICRS', ra, dec)), COORD2(CENTROID(CIRCLE('ICRS', ra, dec, 1))), COORDSYS(s_region), AREA(s_region), REGION('Circle ICRS 1 2 3') FROM ivoa.obscore",
  "SELECT IN_UNIT(ra, 'rad') FROM gaiadr3.gaia_source",
  'SELECT ~flags & 0xFF, flags | 1, flags ^ 3, -a, +b, 1.5E-3, .5, 7. FROM t',
  "SELECT CASE band WHEN 'g' THEN 1 WHEN 'r' THEN 2 ELSE 0 END AS code FROM t",
  'SELECT ALL ra AS x, dec FROM t ORDER BY 2 ASC, x DESC',
  "SELECT 'it''s', 'gaia_dr3.gaia_source', NULL FROM t WHERE name NOT ILIKE '%x%' AND a NOT BETWEEN 1 AND 2 AND b NOT IN (1, 2, 3)",
  'SELECT COUNT(DISTINCT band), SUM(ALL flux), MIN(a), MAX(b) FROM t',
  "SELECT a FROM t -- trailing comment\nWHERE /* block */ b = 1;",
];

function roundTrip(text: string): { ast: Query; printed: string } {
  const ast = parseAdql(text);
  const printed = printAdql(ast);
  const again = parseAdql(printed);
  expect(stripPositions(again)).toEqual(stripPositions(ast));
  expect(printAdql(again)).toBe(printed);
  return { ast, printed };
}

const firstSelect = (q: Query): Select => {
  let b = q.body;
  while (b.kind !== 'select') b = b.kind === 'setop' ? b.left : b.body;
  return b;
};
const where = (text: string): Expr => firstSelect(parseAdql(`SELECT a FROM t WHERE ${text}`)).where as Expr;
const value = (text: string): Expr => stripPositions(parseAdqlExpression(text));

describe('ADQL parse + print round trip', () => {
  it('has a corpus of at least 40 queries', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(40);
  });

  it.each(CORPUS.map((q, i) => [i, q] as const))('query %i parses, prints and parses back to the same tree', (_i, text) => {
    roundTrip(text);
  });

  it('prints canonical text', () => {
    expect(roundTrip("select top 5 g.ra ra2 from gaiadr3.gaia_source g where g.ra>1 order by ra2").printed).toBe(
      'SELECT TOP 5 g.ra AS ra2 FROM gaiadr3.gaia_source AS g WHERE g.ra > 1 ORDER BY ra2',
    );
    expect(roundTrip('SELECT a FROM t INNER JOIN u ON t.x=u.x LEFT JOIN v USING(y)').printed).toBe(
      'SELECT a FROM t JOIN u ON t.x = u.x LEFT OUTER JOIN v USING (y)',
    );
    expect(roundTrip("SELECT \"Odd\"\"Name\", 'x''y' FROM t").printed).toBe("SELECT \"Odd\"\"Name\", 'x''y' FROM t");
  });

  it('drops comments and keeps what they sat between', () => {
    expect(roundTrip('SELECT a, -- first\n b /* second */ FROM t -- end').printed).toBe('SELECT a, b FROM t');
  });
});

describe('ADQL parser structure', () => {
  it('keeps positions on identifiers, tables and expressions', () => {
    const q = parseAdql('SELECT g.ra\nFROM gaiadr3.gaia_source AS g');
    const s = firstSelect(q);
    expect(s.from[0]).toMatchObject({ kind: 'table', pos: { line: 2, column: 6, offset: 17 } });
    const t = s.from[0] as { name: { name: string; pos: unknown }[]; alias: { pos: unknown } };
    expect(t.name[1]).toMatchObject({ name: 'gaia_source', pos: { line: 2, column: 14 } });
    expect(t.alias.pos).toMatchObject({ line: 2, column: 29 });
    expect(s.columns[0]).toMatchObject({ kind: 'item', expr: { kind: 'column', pos: { line: 1, column: 8 } } });
  });

  it('gives arithmetic the usual precedence and left associativity', () => {
    expect(printAdqlExpression(parseAdqlExpression('1 + 2 * 3 - 4 / 5'))).toBe('1 + 2 * 3 - 4 / 5');
    expect(value('1 - 2 - 3')).toEqual(value('(1 - 2) - 3'));
    expect(value('1 - (2 - 3)')).toMatchObject({ op: '-', right: { op: '-' } });
    expect(printAdqlExpression(parseAdqlExpression('1 - (2 - 3)'))).toBe('1 - (2 - 3)');
    expect(value('-a * b')).toMatchObject({ kind: 'binary', op: '*', left: { kind: 'unary', op: '-' } });
    expect(value('-(a * b)')).toMatchObject({ kind: 'unary', operand: { kind: 'binary', op: '*' } });
    expect(value("'a' || b + 1")).toMatchObject({ op: '||', right: { op: '+' } });
    expect(value('a | b & c ^ d')).toMatchObject({ op: '|', right: { op: '^', left: { op: '&' } } });
    expect(value('~a & b')).toMatchObject({ op: '&', left: { kind: 'unary', op: '~' } });
    expect(printAdqlExpression(parseAdqlExpression('- -a'))).toBe('- -a');
  });

  it('gives NOT, AND, OR their SQL precedence', () => {
    expect(stripPositions(where('a = 1 OR b = 2 AND c = 3'))).toMatchObject({ op: 'OR', right: { op: 'AND' } });
    expect(stripPositions(where('NOT a = 1 AND b = 2'))).toMatchObject({ op: 'AND', left: { kind: 'not', operand: { kind: 'compare' } } });
    expect(stripPositions(where('NOT (a = 1 AND b = 2)'))).toMatchObject({ kind: 'not', operand: { op: 'AND' } });
    expect(stripPositions(where('a BETWEEN 1 + 1 AND 3 AND b = 2'))).toMatchObject({ op: 'AND', left: { kind: 'between', low: { op: '+' } } });
    expect(stripPositions(where('(a = 1 OR b = 2) AND c = 3'))).toMatchObject({ op: 'AND', left: { op: 'OR' } });
  });

  it('reads each predicate form', () => {
    expect(value('x NOT IN (1, 2)')).toEqual({ kind: 'in', not: true, expr: { kind: 'column', column: { name: 'x', delimited: false } }, list: [{ kind: 'number', text: '1' }, { kind: 'number', text: '2' }] });
    expect(value('x IN (SELECT y FROM t)')).toMatchObject({ kind: 'in', not: false, query: { kind: 'query' } });
    expect(value('x IN ((SELECT y FROM t))')).toMatchObject({ kind: 'in', query: { body: { kind: 'query' } } });
    expect(value('x IN ((1 + 2), 3)')).toMatchObject({ kind: 'in', list: [{ op: '+' }, { text: '3' }] });
    expect(value("x NOT LIKE 'a%'")).toMatchObject({ kind: 'like', not: true, op: 'LIKE' });
    expect(value("x ILIKE 'a%'")).toMatchObject({ kind: 'like', not: false, op: 'ILIKE' });
    expect(value('x IS NOT NULL')).toMatchObject({ kind: 'isNull', not: true });
    expect(value('x + 1 IS NULL')).toMatchObject({ kind: 'isNull', expr: { op: '+' } });
    expect(value('NOT EXISTS (SELECT 1 FROM t)')).toMatchObject({ kind: 'not', operand: { kind: 'exists' } });
    expect(value('x != 1')).toMatchObject({ kind: 'compare', op: '!=' });
    expect(value('(SELECT MAX(a) FROM t) >= x')).toMatchObject({ kind: 'compare', left: { kind: 'subquery' } });
    expect(value('((SELECT a FROM t) UNION (SELECT b FROM u)) = 1')).toMatchObject({ left: { kind: 'subquery', query: { body: { kind: 'setop' } } } });
  });

  it('reads both CASE forms, CAST targets and aggregates', () => {
    expect(value("CASE x WHEN 1 THEN 'a' END")).toMatchObject({ kind: 'case', operand: { kind: 'column' }, whens: [{ when: { text: '1' } }] });
    expect(value('CASE WHEN x > 1 THEN 1 ELSE 0 END')).toMatchObject({ kind: 'case', whens: [{ when: { kind: 'compare' } }], else: { text: '0' } });
    expect(value('CAST(x AS INT)')).toMatchObject({ kind: 'cast', type: { name: 'INTEGER' } });
    expect(value('CAST(x AS CHARACTER(4))')).toMatchObject({ type: { name: 'CHAR', length: 4 } });
    expect(value('CAST(x AS smallint)')).toMatchObject({ type: { name: 'SMALLINT' } });
    expect(value('CAST(x AS bigint)')).toMatchObject({ type: { name: 'BIGINT' } });
    expect(value("CAST('1 2' AS POINT)")).toMatchObject({ type: { name: 'POINT' } });
    expect(value('count(*)')).toEqual({ kind: 'function', name: 'COUNT', args: [], star: true });
    expect(value('Count(Distinct a)')).toMatchObject({ name: 'COUNT', quantifier: 'DISTINCT', args: [{ kind: 'column' }] });
  });

  it('keeps user-defined function names as written, with a schema prefix', () => {
    expect(value('ivo_healpix_index(10, ra, dec)')).toMatchObject({ kind: 'function', name: 'ivo_healpix_index', udf: true });
    expect(value('gavo.Fuzzy(a, b)')).toMatchObject({ name: 'Fuzzy', udf: true, qualifier: [{ name: 'gavo' }] });
    expect(value('DISTANCE(1, 2, 3, 4)')).toMatchObject({ name: 'DISTANCE', args: [{}, {}, {}, {}] });
    expect(value('rand(1)')).toMatchObject({ name: 'RAND' });
  });

  it('reads qualified names, stars and delimited names exactly', () => {
    const s = firstSelect(parseAdql('SELECT a.b.c.d, "X".y, t.*, s.t.* FROM "Cat".s.t'));
    expect(stripPositions(s.columns)).toEqual([
      { kind: 'item', expr: { kind: 'column', table: [{ name: 'a', delimited: false }, { name: 'b', delimited: false }, { name: 'c', delimited: false }], column: { name: 'd', delimited: false } } },
      { kind: 'item', expr: { kind: 'column', table: [{ name: 'X', delimited: true }], column: { name: 'y', delimited: false } } },
      { kind: 'star', qualifier: [{ name: 't', delimited: false }] },
      { kind: 'star', qualifier: [{ name: 's', delimited: false }, { name: 't', delimited: false }] },
    ]);
    expect(stripPositions(s.from)).toEqual([
      { kind: 'table', name: [{ name: 'Cat', delimited: true }, { name: 's', delimited: false }, { name: 't', delimited: false }] },
    ]);
  });

  it('builds joins left-associatively and keeps NATURAL, USING and ON', () => {
    const s = firstSelect(parseAdql('SELECT * FROM a NATURAL LEFT JOIN b JOIN c USING (k) CROSS JOIN d'));
    expect(stripPositions(s.from[0])).toMatchObject({
      kind: 'join',
      joinType: 'CROSS',
      left: { kind: 'join', joinType: 'INNER', using: [{ name: 'k' }], left: { kind: 'join', joinType: 'LEFT', natural: true } },
    });
  });

  it('binds INTERSECT tighter than UNION and EXCEPT, and attaches ORDER BY/OFFSET to the whole query', () => {
    const q = parseAdql('SELECT a FROM t UNION SELECT a FROM u INTERSECT SELECT a FROM v EXCEPT ALL SELECT a FROM w ORDER BY a OFFSET 3');
    expect(stripPositions(q)).toMatchObject({
      body: { kind: 'setop', op: 'EXCEPT', all: true, left: { op: 'UNION', right: { op: 'INTERSECT' } } },
      orderBy: [{ expr: { kind: 'column' } }],
      offset: 3,
    });
  });

  it('reads WITH, derived tables and parenthesised queries', () => {
    const q = parseAdql('WITH x AS (SELECT a FROM t), "Y" AS (SELECT a FROM x) SELECT * FROM (SELECT a FROM "Y") AS z, ((SELECT 1 FROM t) UNION (SELECT 2 FROM u)) AS w');
    expect(q.with?.map((c) => c.name)).toMatchObject([{ name: 'x', delimited: false }, { name: 'Y', delimited: true }]);
    const s = firstSelect(q);
    expect(s.from.map((f) => f.kind)).toEqual(['derived', 'derived']);
    expect(stripPositions(s.from[1])).toMatchObject({ query: { body: { kind: 'setop', left: { kind: 'query' } } }, alias: { name: 'w' } });
  });

  it('accepts one trailing semicolon and keyword case freely', () => {
    expect(printAdql(parseAdql('select Distinct Top 3 a From t Where a Is Not Null order by a desc;'))).toBe(
      'SELECT DISTINCT TOP 3 a FROM t WHERE a IS NOT NULL ORDER BY a DESC',
    );
  });
});
