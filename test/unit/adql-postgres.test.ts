import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdqlUnsupportedError, parseAdql, toPostgres, type ToPostgresOptions } from '../../adapters/ivoa/adql/index.js';
import { backend, freshDatabase, type TestDatabase } from '../support/database.js';
import { seededRandom } from '../support/random.js';

const sql = (adql: string, options?: ToPostgresOptions): string => toPostgres(parseAdql(adql), options);

function unsupported(adql: string, options?: ToPostgresOptions): AdqlUnsupportedError {
  try {
    sql(adql, options);
  } catch (err) {
    expect(err).toBeInstanceOf(AdqlUnsupportedError);
    return err as AdqlUnsupportedError;
  }
  throw new Error(`expected ${adql} to be refused`);
}

describe('toPostgres text', () => {
  it('turns TOP into LIMIT after ORDER BY and OFFSET', () => {
    expect(sql('SELECT TOP 5 a FROM t ORDER BY a DESC OFFSET 2')).toBe('SELECT a FROM t ORDER BY a DESC OFFSET 2 LIMIT 5');
    expect(sql('SELECT DISTINCT TOP 1 a FROM t')).toBe('SELECT DISTINCT a FROM t LIMIT 1');
  });

  it('keeps TOP on its own SELECT inside set operations and subqueries', () => {
    expect(sql('SELECT TOP 1 a FROM t UNION ALL SELECT TOP 2 b FROM u ORDER BY 1')).toBe(
      '(SELECT a FROM t LIMIT 1) UNION ALL (SELECT b FROM u LIMIT 2) ORDER BY 1',
    );
    expect(sql('SELECT a FROM t WHERE a IN (SELECT TOP 3 b FROM u ORDER BY b)')).toBe('SELECT a FROM t WHERE a IN (SELECT b FROM u ORDER BY b LIMIT 3)');
  });

  it('translates 1=CONTAINS(...) and CONTAINS(...)=1 alike, and = 0 as the negation', () => {
    const a = sql("SELECT a FROM t WHERE 1=CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 20, 0.5))");
    const b = sql('SELECT a FROM t WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.5)) = 1');
    expect(a).toBe(b);
    expect(a).toMatch(/^SELECT a FROM t WHERE \(degrees\(atan2\(.*\)\) <= 0\.5\)$/);
    expect(sql('SELECT a FROM t WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.5)) = 0')).toBe(a.replace('WHERE (', 'WHERE NOT ('));
    expect(sql('SELECT a FROM t WHERE 0 <> CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.5))')).toBe(a);
  });

  it('calls a configured distance function instead of the inline formula', () => {
    const options = { distanceFunction: 'sphdist' };
    expect(sql('SELECT a FROM t WHERE CONTAINS(POINT(ra, dec), CIRCLE(10, 20, 0.5)) = 1', options)).toBe('SELECT a FROM t WHERE (sphdist(ra, dec, 10, 20) <= 0.5)');
    expect(sql("SELECT DISTANCE(POINT('ICRS', t.ra, t.dec), POINT('ICRS', 1, -2)) AS d FROM t", options)).toBe('SELECT sphdist(t.ra, t.dec, 1, -2) AS d FROM t');
    expect(sql('SELECT DISTANCE(ra, dec, 1, 2) FROM t', options)).toBe('SELECT sphdist(ra, dec, 1, 2) FROM t');
    expect(sql('SELECT a FROM t WHERE INTERSECTS(CIRCLE(ra, dec, r), POINT(1, 2)) = 1', options)).toBe('SELECT a FROM t WHERE (sphdist(1, 2, ra, dec) <= r)');
    expect(sql('SELECT CONTAINS(POINT(ra, dec), CIRCLE(POINT(1, 2), 3)) AS inside FROM t', options)).toBe(
      'SELECT CASE WHEN (sphdist(ra, dec, 1, 2) <= 3) THEN 1 ELSE 0 END AS inside FROM t',
    );
  });

  it('maps functions to their PostgreSQL equivalents', () => {
    expect(sql('SELECT LOG(x), LOG10(x), TRUNCATE(x), CEILING(x), RAND(7), PI() FROM t')).toBe('SELECT ln(x), log(x), trunc(x), ceiling(x), random(), pi() FROM t');
    expect(sql('SELECT MOD(a, 3), ROUND(x, 2), TRUNCATE(x, -1) FROM t')).toBe(
      'SELECT CAST(mod(CAST(a AS numeric), CAST(3 AS numeric)) AS double precision), CAST(round(CAST(x AS numeric), 2) AS double precision), CAST(trunc(CAST(x AS numeric), -1) AS double precision) FROM t',
    );
    expect(sql('SELECT COUNT(*), COUNT(DISTINCT a), LOWER(b), COALESCE(c, 0), CAST(d AS DOUBLE PRECISION) FROM t')).toBe(
      'SELECT count(*), count(DISTINCT a), lower(b), coalesce(c, 0), CAST(d AS DOUBLE PRECISION) FROM t',
    );
  });

  it('writes operators, literals and names the PostgreSQL way', () => {
    expect(sql('SELECT 0x1F & flags, a ^ b, ~a + 1, a | b & c FROM t WHERE a != 1')).toBe(
      'SELECT 31 & flags, a # b, (~a) + 1, a | (b & c) FROM t WHERE a <> 1',
    );
    expect(sql("SELECT limit, \"Mixed Case\", objectId, 'it''s' FROM window AS w")).toBe(
      "SELECT \"limit\", \"Mixed Case\", objectId, 'it''s' FROM \"window\" AS w",
    );
    expect(sql("SELECT 'a' || b + 1, (a || b) || c FROM t")).toBe("SELECT 'a' || (b + 1), a || b || c FROM t");
  });

  it('translates user-defined functions only when the caller maps them', () => {
    const e = unsupported("SELECT ivo_hasword(d, 'x') FROM t");
    expect(e.message).toBe('user-defined function ivo_hasword is unsupported in this translator (at line 1, column 8)');
    expect(unsupported('SELECT gavo.fuzz(a) FROM t').message).toContain('user-defined function gavo.fuzz');
    const udfs = { ivo_hasword: 'my_hasword', 'gavo.fuzz': (args: string[]) => `(${args[0]} * 2)` };
    expect(sql("SELECT IVO_HASWORD(d, 'x'), gavo.fuzz(a) FROM t", { udfs })).toBe("SELECT my_hasword(d, 'x'), (a * 2) FROM t");
  });

  it('refuses geometry it cannot express, naming the construct and its position', () => {
    expect(unsupported("SELECT IN_UNIT(ra, 'rad') FROM t").message).toBe('IN_UNIT is unsupported in this translator (at line 1, column 8)');
    expect(unsupported('SELECT POINT(ra, dec) FROM t').message).toContain('POINT is unsupported in this translator outside CONTAINS');
    expect(unsupported("SELECT REGION('Circle ICRS 1 2 3') FROM t").message).toContain('REGION is unsupported');
    expect(unsupported('SELECT AREA(CIRCLE(1, 2, 3)) FROM t').message).toContain('AREA is unsupported');
    expect(unsupported("SELECT CAST('1 2' AS POINT) FROM t").message).toBe('CAST to POINT is unsupported in this translator (at line 1, column 8)');
    const region = unsupported('SELECT a FROM t\nWHERE INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 1');
    expect(region.message).toContain('geometry-valued columns are unsupported in this translator');
    expect(region.pos).toMatchObject({ line: 2, column: 18 });
    expect(unsupported('SELECT a FROM t WHERE CONTAINS(POINT(ra, dec), POLYGON(0, 0, 10, 0, 1, 1, 0, 10)) = 1').message).toContain('POLYGON that is not convex');
    expect(unsupported('SELECT a FROM t WHERE CONTAINS(POINT(ra, dec), BOX(ra0, 0, 1, 1)) = 1').message).toContain('BOX with non-constant arguments');
    expect(unsupported('SELECT a FROM t WHERE CONTAINS(CIRCLE(1, 2, 3), POINT(ra, dec)) = 1').message).toContain('CONTAINS(CIRCLE, POINT) is unsupported');
  });
});

// ---- execution against a real PostgreSQL ------------------------------------------------
// The suite's database: a fresh database on the PostgreSQL at DATABASE_URL when it is set, the
// embedded PGlite (PostgreSQL compiled to WebAssembly) otherwise.

const RAD = Math.PI / 180;

/** Haversine distance in degrees, computed independently of the translator's formula. */
function haversine(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const h = Math.sin(((dec2 - dec1) * RAD) / 2) ** 2 + Math.cos(dec1 * RAD) * Math.cos(dec2 * RAD) * Math.sin(((ra2 - ra1) * RAD) / 2) ** 2;
  return (2 * Math.asin(Math.min(1, Math.sqrt(h)))) / RAD;
}

/** The point `dist` degrees from (ra, dec) along `bearing` degrees (east of north). */
function destination(ra: number, dec: number, bearing: number, dist: number): [number, number] {
  const d = dist * RAD;
  const b = bearing * RAD;
  const p1 = dec * RAD;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = ra * RAD + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [((l2 / RAD) % 360 + 360) % 360, p2 / RAD];
}

/** Cone centres and radii (degrees): an ordinary field, both sides of RA 0, both poles, a wide cone, a 5-arcsecond cone. */
const CONES: [number, number, number][] = [
  [62, -37, 0.5],
  [359.8, 0.1, 1],
  [0.2, -0.3, 0.7],
  [45, 89.6, 1],
  [123, -89.8, 0.5],
  [180, 10, 30],
  [10, 20, 5 / 3600],
];

interface Row {
  id: number;
  ra: number | null;
  dec: number | null;
}

function makePoints(): Row[] {
  const rand = seededRandom(20260101);
  const rows: Row[] = [];
  for (let i = 0; i < 1500; i++) rows.push({ id: rows.length + 1, ra: rand() * 360, dec: Math.asin(2 * rand() - 1) / RAD });
  for (const [ra, dec, r] of CONES) {
    for (let i = 0; i < 250; i++) {
      const [pra, pdec] = destination(ra, dec, rand() * 360, rand() * 2 * r);
      rows.push({ id: rows.length + 1, ra: pra, dec: pdec });
    }
  }
  rows.push({ id: rows.length + 1, ra: null, dec: 10 }, { id: rows.length + 2, ra: 10, dec: null });
  return rows;
}

describe(`toPostgres on a real PostgreSQL (${backend})`, () => {
  let database: TestDatabase;
  // One plain client (pg's own type parsing: bigint counts as text) for the whole file, one
  // session: the tables and the function below are temporary (pg_temp).
  let db: pg.Client;
  const points = makePoints();

  const ids = async (query: string, options?: ToPostgresOptions): Promise<number[]> => {
    const res = await db.query<{ id: number }>(sql(query, options));
    return res.rows.map((r) => r.id).sort((x, y) => x - y);
  };

  /** Points inside the cone by brute force; throws if one sits within 1e-9° of the edge (then the test data would be ambiguous). */
  const bruteForce = (ra: number, dec: number, r: number): number[] =>
    points
      .filter((p) => {
        if (p.ra === null || p.dec === null) return false;
        const d = haversine(p.ra, p.dec, ra, dec);
        if (Math.abs(d - r) < 1e-9) throw new Error(`point ${p.id} is on the edge of cone ${ra} ${dec} ${r}`);
        return d <= r;
      })
      .map((p) => p.id)
      .sort((x, y) => x - y);

  beforeAll(async () => {
    database = await freshDatabase({ recordStatements: false });
    db = new pg.Client({ connectionString: database.pool.options.connectionString });
    await db.connect();
    await db.query('CREATE TEMP TABLE pts (id integer PRIMARY KEY, ra double precision, dec double precision, mag double precision, name text, flags integer)');
    const values = points.map((p, i) => `(${p.id}, ${p.ra ?? 'NULL'}, ${p.dec ?? 'NULL'}, ${10 + (i % 10)}, 'src${i % 7}', ${i % 16})`);
    await db.query(`INSERT INTO pts (id, ra, dec, mag, name, flags) VALUES ${values.join(', ')}`);
    // A plain haversine, to check the distanceFunction hook against the inline formula.
    await db.query(`CREATE FUNCTION pg_temp.sphdist(ra1 double precision, dec1 double precision, ra2 double precision, dec2 double precision)
      RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
      SELECT degrees(2 * asin(least(1, sqrt(power(sin(radians(dec2 - dec1) / 2), 2)
        + cos(radians(dec1)) * cos(radians(dec2)) * power(sin(radians(ra2 - ra1) / 2), 2)))))
      $$`);
  });

  afterAll(async () => {
    await db?.end();
    await database?.close();
  });

  it.each(CONES)('cone (%f, %f, r=%f) returns exactly the brute-force set, in every spelling', async (ra, dec, r) => {
    const expected = bruteForce(ra, dec, r);
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(points.length - 2);
    const circle = `CIRCLE('ICRS', ${ra}, ${dec}, ${r})`;
    expect(await ids(`SELECT id FROM pts WHERE CONTAINS(POINT('ICRS', ra, dec), ${circle}) = 1`)).toEqual(expected);
    expect(await ids(`SELECT id FROM pts WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), ${circle})`)).toEqual(expected);
    expect(await ids(`SELECT id FROM pts WHERE INTERSECTS(${circle}, POINT(ra, dec)) = 1`)).toEqual(expected);
    expect(await ids(`SELECT id FROM pts WHERE DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', ${ra}, ${dec})) <= ${r}`)).toEqual(expected);
    expect(await ids(`SELECT id FROM pts WHERE DISTANCE(ra, dec, ${ra}, ${dec}) <= ${r}`)).toEqual(expected);
    expect(await ids(`SELECT id FROM pts WHERE CONTAINS(POINT(ra, dec), ${circle}) = 1`, { distanceFunction: 'pg_temp.sphdist' })).toEqual(expected);
    const outside = await ids(`SELECT id FROM pts WHERE CONTAINS(POINT(ra, dec), ${circle}) = 0`);
    expect(outside.length + expected.length).toBe(points.length - 2);
  });

  it('computes distances that agree with an independent haversine, NULL for missing coordinates', async () => {
    const res = await db.query<{ id: number; d: number | null }>(sql('SELECT id, DISTANCE(POINT(ra, dec), POINT(62, -37)) AS d FROM pts ORDER BY id'));
    for (const row of res.rows) {
      const p = points[row.id - 1];
      if (p.ra === null || p.dec === null) expect(row.d).toBeNull();
      else expect(row.d).toBeCloseTo(haversine(p.ra, p.dec, 62, -37), 9);
    }
    const near = await db.query(sql('SELECT DISTANCE(0, 0, 0, 1e-9) AS a, DISTANCE(0, 0, 180, 0) AS b, DISTANCE(10, 20, 10, 20) AS c FROM pts WHERE id = 1'));
    expect(near.rows[0].a).toBeCloseTo(1e-9, 15);
    expect(near.rows[0].b).toBeCloseTo(180, 9);
    expect(near.rows[0].c).toBe(0);
  });

  it('tests BOX and POLYGON containment at known points', async () => {
    await db.query('CREATE TEMP TABLE probe (id integer, ra double precision, dec double precision)');
    const probes: [number, [number, number], boolean, boolean][] = [];
    const add = (p: [number, number], inBox: boolean, inPolygon: boolean): void => {
      probes.push([probes.length + 1, p, inBox, inPolygon]);
    };
    // BOX(10, 20, 2, 2): arms of 1° along the great circles east and north of the centre.
    add([10, 20], true, true);
    add(destination(10, 20, 90, 0.99), true, true);
    add(destination(10, 20, 90, 1.01), false, true);
    add(destination(10, 20, 270, 0.99), true, true);
    add(destination(10, 20, 0, 0.99), true, true);
    add(destination(10, 20, 0, 1.01), false, true);
    add(destination(10, 20, 180, 1.01), false, true);
    add([12.5, 20], false, false);
    add([10, 22.5], false, false);
    add([190, -20], false, false);
    await db.query(`INSERT INTO probe VALUES ${probes.map(([id, [ra, dec]]) => `(${id}, ${ra}, ${dec})`).join(', ')}`);
    const probeIds = async (adql: string): Promise<number[]> => (await db.query<{ id: number }>(sql(adql))).rows.map((r) => r.id).sort((a, b) => a - b);
    const want = (k: 2 | 3): number[] => probes.filter((p) => p[k]).map((p) => p[0]);
    expect(await probeIds("SELECT id FROM probe WHERE CONTAINS(POINT('ICRS', ra, dec), BOX('ICRS', 10, 20, 2, 2)) = 1")).toEqual(want(2));
    expect(await probeIds('SELECT id FROM probe WHERE CONTAINS(POINT(ra, dec), BOX(POINT(10, 20), 2, 2)) = 1')).toEqual(want(2));
    // The square with corners at 8.5..11.5 × 18.5..21.5, both windings, both vertex forms.
    expect(await probeIds('SELECT id FROM probe WHERE CONTAINS(POINT(ra, dec), POLYGON(8.5, 18.5, 11.5, 18.5, 11.5, 21.5, 8.5, 21.5)) = 1')).toEqual(want(3));
    expect(await probeIds("SELECT id FROM probe WHERE 1 = CONTAINS(POINT(ra, dec), POLYGON('ICRS', POINT(8.5, 18.5), POINT(8.5, 21.5), POINT(11.5, 21.5), POINT(11.5, 18.5)))")).toEqual(want(3));
    expect(await probeIds('SELECT id FROM probe WHERE INTERSECTS(POLYGON(8.5, 18.5, 11.5, 18.5, 11.5, 21.5, 8.5, 21.5), POINT(ra, dec)) = 0')).toEqual(
      probes.filter((p) => !p[3]).map((p) => p[0]),
    );
  });

  it('runs the rest of the dialect with the results ADQL defines', async () => {
    const one = async (adql: string): Promise<unknown[]> => (await db.query({ text: sql(adql), rowMode: 'array' })).rows[0] as unknown[];
    const all = async (adql: string): Promise<unknown[][]> => (await db.query({ text: sql(adql), rowMode: 'array' })).rows as unknown[][];
    const maths = await one(
      'SELECT ABS(-2), DEGREES(PI()), EXP(0), LOG(EXP(2)), LOG10(1000), MOD(7.5, 2), MOD(-7, 3), POWER(2, 10), SQRT(16), ROUND(2.345, 2), TRUNCATE(2.789, 1), TRUNCATE(-2.7), ATAN2(1, 1), COS(0), RADIANS(180) FROM pts WHERE id = 1',
    );
    expect(maths.map(Number)).toEqual([2, 180, 1, 2, 3, 1.5, -1, 1024, 4, 2.35, 2.7, -2, Math.PI / 4, 1, Math.PI]);
    expect(await one('SELECT 0x0F & 6, 5 | 2, 5 ^ 1, ~0, 1 + 2 * 3, -2 * -3, 7 / 2 FROM pts WHERE id = 1')).toEqual([6, 7, 4, -1, 7, 6, 3]);
    expect(await one("SELECT LOWER('AbC') || '-' || UPPER('x'), COALESCE(NULL, 3), CAST(42 AS VARCHAR(5)), CAST('7' AS INTEGER) FROM pts WHERE id = 1")).toEqual(['abc-X', 3, '42', 7]);
    expect(await all('SELECT TOP 3 id FROM pts WHERE ra IS NOT NULL AND dec IS NOT NULL ORDER BY id DESC OFFSET 1')).toEqual([[points.length - 3], [points.length - 4], [points.length - 5]]);
    expect(await all('SELECT flags, COUNT(*) AS n FROM pts WHERE flags < 2 GROUP BY flags HAVING COUNT(*) > 0 ORDER BY flags')).toEqual(
      [0, 1].map((f) => [f, String(points.filter((_, i) => i % 16 === f).length)]),
    );
    expect(await all("SELECT DISTINCT name FROM pts WHERE name ILIKE 'SRC1%' OR name LIKE 'src2' ORDER BY name")).toEqual([['src1'], ['src2']]);
    expect(await all('SELECT id FROM pts WHERE id <= 3 UNION SELECT id FROM pts WHERE id BETWEEN 3 AND 4 EXCEPT SELECT id FROM pts WHERE id = 2 ORDER BY 1')).toEqual([[1], [3], [4]]);
    expect(await all('SELECT TOP 1 id FROM pts UNION ALL SELECT TOP 1 id FROM pts ORDER BY 1')).toEqual([[1], [1]]);
    expect(await all('WITH few AS (SELECT id, mag FROM pts WHERE id < 4) SELECT f.id, CASE WHEN f.mag > 10 THEN \'faint\' ELSE \'bright\' END FROM few AS f ORDER BY f.id')).toEqual([
      [1, 'bright'], [2, 'faint'], [3, 'faint'],
    ]);
    expect(await all('SELECT id FROM pts AS p WHERE id IN (SELECT id FROM pts WHERE id < 3) AND EXISTS (SELECT 1 FROM pts AS q WHERE q.id = p.id + 1) ORDER BY id')).toEqual([[1], [2]]);
    expect(await all('SELECT t.n FROM (SELECT COUNT(*) AS n FROM pts WHERE mag >= (SELECT MAX(mag) FROM pts)) AS t')).toEqual([[String(points.filter((_, i) => i % 10 === 9).length)]]);
    expect(await all('SELECT a.id, b.id FROM pts AS a JOIN pts AS b USING (id) CROSS JOIN pts AS c LEFT OUTER JOIN pts AS d ON d.id = a.id + 100000 WHERE c.id = 1 AND a.id = 2')).toEqual([[2, 2]]);
  });
});
