import { describe, expect, it } from 'vitest';
import {
  AdqlUnsupportedError,
  parseAdql,
  printAdql,
  rewriteTables,
  stripPositions,
  tablesReferenced,
  type RewriteOptions,
  type TableMapping,
} from '../../adapters/ivoa/adql/index.js';

const GAIA: TableMapping = { table: 'gaiadr3.gaia_source', columnList: ['source_id', 'ra', 'dec', 'phot_g_mean_mag', 'parallax'] };
const PS1: TableMapping = {
  table: 'dbo.MeanObjectView',
  columns: { ramean: 'raMean', decmean: 'decMean', objid: 'objID', ra: 'RAMean' },
  columnList: ['objid', 'ramean', 'decmean', 'ra', 'ngmag'],
};
const MAPPING = { 'gaia_dr3.gaia_source': GAIA, 'ps1_dr2.mean_object': PS1 };

function rewrite(text: string, options?: RewriteOptions, mapping: Record<string, TableMapping> = MAPPING): string {
  const out = printAdql(rewriteTables(parseAdql(text), mapping, options));
  // The result must itself be valid ADQL that prints the same.
  expect(printAdql(parseAdql(out))).toBe(out);
  return out;
}

const ids = (text: string): { id: string; alias?: string }[] => tablesReferenced(parseAdql(text)).map(({ id, alias }) => (alias ? { id, alias } : { id }));

describe('tablesReferenced', () => {
  it('lists FROM and JOIN tables with normalised ids and aliases', () => {
    expect(ids('SELECT g.source_id, p.ramean FROM GAIA_DR3.Gaia_Source AS G JOIN ps1_dr2.mean_object p ON g.source_id = p.objid')).toEqual([
      { id: 'gaia_dr3.gaia_source', alias: 'g' },
      { id: 'ps1_dr2.mean_object', alias: 'p' },
    ]);
  });

  it('keeps delimited names exact and quoted in the id', () => {
    expect(ids('SELECT * FROM "gaia_dr3"."gaia_source", "PS1"."Mean Object", cat.s."T"')).toEqual([
      { id: 'gaia_dr3.gaia_source' },
      { id: '"PS1"."Mean Object"' },
      { id: 'cat.s."T"' },
    ]);
  });

  it('finds tables in subqueries, derived tables, set operations and WITH queries, but not WITH names', () => {
    const text = `WITH near AS (SELECT source_id FROM gaia_dr3.gaia_source WHERE parallax > 100)
      SELECT n.source_id, (SELECT COUNT(*) FROM ps1_dr2.stack_object) AS k FROM near AS n
      JOIN (SELECT objid FROM ps1_dr2.mean_object) AS m ON m.objid = n.source_id
      WHERE EXISTS (SELECT 1 FROM gaia_dr3.vari_summary AS v WHERE v.source_id = n.source_id)
        AND n.source_id IN (SELECT source_id FROM gaia_dr3.nss_two_body_orbit)
      UNION SELECT source_id, 0 FROM gaia_dr2.gaia_source ORDER BY 1`;
    expect(ids(text).map((t) => t.id).sort()).toEqual(
      ['gaia_dr2.gaia_source', 'gaia_dr3.gaia_source', 'gaia_dr3.nss_two_body_orbit', 'gaia_dr3.vari_summary', 'ps1_dr2.mean_object', 'ps1_dr2.stack_object'].sort(),
    );
  });

  it('lists a self-join twice, once per alias, with positions', () => {
    const refs = tablesReferenced(parseAdql('SELECT a.objid FROM ps1_dr2.mean_object AS a JOIN ps1_dr2.mean_object AS b ON a.objid = b.objid'));
    expect(refs.map((r) => [r.id, r.alias, r.pos?.column])).toEqual([
      ['ps1_dr2.mean_object', 'a', 21],
      ['ps1_dr2.mean_object', 'b', 51],
    ]);
  });
});

describe('rewriteTables', () => {
  it('rewrites the broker cross-match query to one site’s names, keeping aliases and output names', () => {
    expect(
      rewrite(
        "SELECT g.source_id, p.ramean FROM gaia_dr3.gaia_source AS g JOIN ps1_dr2.mean_object p ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', p.ramean, p.decmean, 1.0 / 3600))",
      ),
    ).toBe(
      "SELECT g.source_id, p.\"raMean\" AS ramean FROM gaiadr3.gaia_source AS g JOIN dbo.\"MeanObjectView\" AS p ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', p.\"raMean\", p.\"decMean\", 1.0 / 3600))",
    );
  });

  it('leaves string literals alone even when they spell a table or column name', () => {
    expect(rewrite("SELECT 'ps1_dr2.mean_object' AS src, ramean FROM ps1_dr2.mean_object WHERE note = 'ramean ps1_dr2.mean_object'")).toBe(
      "SELECT 'ps1_dr2.mean_object' AS src, \"raMean\" AS ramean FROM dbo.\"MeanObjectView\" WHERE note = 'ramean ps1_dr2.mean_object'",
    );
  });

  it('can write mixed-case local names bare for case-insensitive servers', () => {
    expect(rewrite('SELECT p.ramean, p.ra FROM ps1_dr2.mean_object AS p', { quoteMixedCase: false })).toBe(
      'SELECT p.raMean AS ramean, p.RAMean AS ra FROM dbo.MeanObjectView AS p',
    );
  });

  it('honours explicit quoting in local names and quotes names that are not regular identifiers', () => {
    const mapping = {
      'gaia_dr3.gaia_source': { table: '"gaiadr3"."gaia_source"', columns: { ra: 'ra deg', dec: '"DEC"', parallax: 'size' } },
    };
    expect(rewrite('SELECT ra, dec, parallax FROM gaia_dr3.gaia_source', {}, mapping)).toBe(
      'SELECT "ra deg" AS ra, "DEC" AS dec, "size" AS parallax FROM "gaiadr3"."gaia_source"',
    );
  });

  it('matches canonical names case-insensitively but delimited names exactly', () => {
    expect(rewrite('SELECT RAMEAN FROM PS1_DR2.Mean_Object')).toBe('SELECT "raMean" AS RAMEAN FROM dbo."MeanObjectView"');
    expect(rewrite('SELECT ramean FROM "ps1_dr2"."mean_object"')).toBe('SELECT "raMean" AS ramean FROM dbo."MeanObjectView"');
    // "PS1_DR2" is not ps1_dr2: a different (unmapped) table, left as written.
    expect(rewrite('SELECT ramean FROM "PS1_DR2".mean_object')).toBe('SELECT ramean FROM "PS1_DR2".mean_object');
    // A delimited column that differs in case is another column.
    expect(rewrite('SELECT "RAMEAN", "ramean" FROM ps1_dr2.mean_object')).toBe('SELECT "RAMEAN", "raMean" AS "ramean" FROM dbo."MeanObjectView"');
  });

  it('follows qualifiers written with the table name when the table has no alias', () => {
    expect(rewrite('SELECT ps1_dr2.mean_object.ramean, mean_object.decmean, mean_object.* FROM ps1_dr2.mean_object')).toBe(
      'SELECT dbo."MeanObjectView"."raMean" AS ramean, "MeanObjectView"."decMean" AS decmean, "MeanObjectView".* FROM dbo."MeanObjectView"',
    );
  });

  it('renames a column that two tables share by the table each reference resolves to', () => {
    expect(rewrite('SELECT g.ra, p.ra FROM gaia_dr3.gaia_source AS g, ps1_dr2.mean_object AS p WHERE g.ra - p.ra < 0.001')).toBe(
      'SELECT g.ra, p."RAMean" AS ra FROM gaiadr3.gaia_source AS g, dbo."MeanObjectView" AS p WHERE g.ra - p."RAMean" < 0.001',
    );
  });

  it('resolves unqualified columns to the one table known to hold them', () => {
    expect(rewrite('SELECT source_id, ramean, phot_g_mean_mag FROM gaia_dr3.gaia_source JOIN ps1_dr2.mean_object ON source_id = objid')).toBe(
      'SELECT source_id, "raMean" AS ramean, phot_g_mean_mag FROM gaiadr3.gaia_source JOIN dbo."MeanObjectView" ON source_id = "objID"',
    );
  });

  it('refuses an unqualified column that two tables hold under different local names', () => {
    const q = parseAdql('SELECT ra FROM gaia_dr3.gaia_source AS g JOIN ps1_dr2.mean_object AS p ON g.source_id = p.objid');
    expect(() => rewriteTables(q, MAPPING)).toThrow(AdqlUnsupportedError);
    expect(() => rewriteTables(q, MAPPING)).toThrow(/column 'ra' is ambiguous: it belongs to gaia_dr3.gaia_source and ps1_dr2.mean_object; qualify it/);
  });

  it('renames an unqualified column in a single-table query even without a column list', () => {
    const mapping = { 'ps1_dr2.mean_object': { table: 'dbo.MeanObjectView', columns: { ramean: 'raMean' } } };
    expect(rewrite('SELECT ramean, other FROM ps1_dr2.mean_object', {}, mapping)).toBe('SELECT "raMean" AS ramean, other FROM dbo."MeanObjectView"');
  });

  it('handles a self-join under two aliases', () => {
    expect(rewrite('SELECT a.objid, b.objid AS other FROM ps1_dr2.mean_object AS a JOIN ps1_dr2.mean_object AS b ON a.objid < b.objid AND a.ramean = b.ramean')).toBe(
      'SELECT a."objID" AS objid, b."objID" AS other FROM dbo."MeanObjectView" AS a JOIN dbo."MeanObjectView" AS b ON a."objID" < b."objID" AND a."raMean" = b."raMean"',
    );
  });

  it('resolves names in correlated subqueries to the right scope', () => {
    // Inside, objid belongs to the outer ps1 table; source_id to the inner gaia table.
    expect(rewrite('SELECT ramean FROM ps1_dr2.mean_object WHERE EXISTS (SELECT 1 FROM gaia_dr3.gaia_source AS g WHERE g.source_id = objid AND ra > 0)')).toBe(
      'SELECT "raMean" AS ramean FROM dbo."MeanObjectView" WHERE EXISTS (SELECT 1 FROM gaiadr3.gaia_source AS g WHERE g.source_id = "objID" AND ra > 0)',
    );
  });

  it('does not rename through an inner table whose columns are unknown', () => {
    expect(rewrite('SELECT objid FROM ps1_dr2.mean_object WHERE objid IN (SELECT objid FROM mydb.targets)')).toBe(
      'SELECT "objID" AS objid FROM dbo."MeanObjectView" WHERE "objID" IN (SELECT objid FROM mydb.targets)',
    );
    expect(
      rewrite('SELECT objid FROM ps1_dr2.mean_object WHERE objid IN (SELECT id FROM mydb.targets WHERE ramean > 0)', {
        tableColumns: { 'mydb.targets': ['id', 'note'] },
      }),
    ).toBe('SELECT "objID" AS objid FROM dbo."MeanObjectView" WHERE "objID" IN (SELECT id FROM mydb.targets WHERE "raMean" > 0)');
  });

  it('carries renames out of derived tables that select *', () => {
    expect(rewrite('SELECT t.ramean FROM (SELECT * FROM ps1_dr2.mean_object WHERE ngmag > 2) AS t WHERE t.decmean > 0')).toBe(
      'SELECT t."raMean" AS ramean FROM (SELECT * FROM dbo."MeanObjectView" WHERE ngmag > 2) AS t WHERE t."decMean" > 0',
    );
  });

  it('keeps derived-table column names stable, or follows them when output names are not kept', () => {
    const text = 'SELECT t.ramean FROM (SELECT ramean FROM ps1_dr2.mean_object) AS t ORDER BY t.ramean';
    expect(rewrite(text)).toBe('SELECT t.ramean FROM (SELECT "raMean" AS ramean FROM dbo."MeanObjectView") AS t ORDER BY t.ramean');
    expect(rewrite(text, { keepOutputNames: false })).toBe('SELECT t."raMean" FROM (SELECT "raMean" FROM dbo."MeanObjectView") AS t ORDER BY t."raMean"');
  });

  it('rewrites inside WITH queries and never takes a WITH name for a table', () => {
    const text = `WITH mean_object AS (SELECT objid, ramean FROM ps1_dr2.mean_object WHERE ngmag < 20)
      SELECT m.objid, m.ramean FROM mean_object AS m`;
    expect(rewrite(text)).toBe(
      'WITH mean_object AS (SELECT "objID" AS objid, "raMean" AS ramean FROM dbo."MeanObjectView" WHERE ngmag < 20) SELECT m.objid, m.ramean FROM mean_object AS m',
    );
    expect(ids(text)).toEqual([{ id: 'ps1_dr2.mean_object' }]);
  });

  it('drops comments and keeps everything else', () => {
    expect(rewrite('SELECT -- the position\n ramean /* deg */ FROM ps1_dr2.mean_object -- PS1\n WHERE ramean BETWEEN 10 AND 20')).toBe(
      'SELECT "raMean" AS ramean FROM dbo."MeanObjectView" WHERE "raMean" BETWEEN 10 AND 20',
    );
  });

  it('leaves ORDER BY aliases alone and rewrites GROUP BY columns', () => {
    expect(rewrite('SELECT ramean AS r, COUNT(*) AS n FROM ps1_dr2.mean_object GROUP BY ramean ORDER BY r, n DESC')).toBe(
      'SELECT "raMean" AS r, COUNT(*) AS n FROM dbo."MeanObjectView" GROUP BY "raMean" ORDER BY r, n DESC',
    );
    expect(rewrite('SELECT ramean FROM ps1_dr2.mean_object ORDER BY decmean')).toBe(
      'SELECT "raMean" AS ramean FROM dbo."MeanObjectView" ORDER BY "decMean"',
    );
  });

  it('rewrites both sides of a set operation', () => {
    expect(rewrite('SELECT source_id FROM gaia_dr3.gaia_source UNION SELECT objid FROM ps1_dr2.mean_object ORDER BY source_id')).toBe(
      'SELECT source_id FROM gaiadr3.gaia_source UNION SELECT "objID" AS objid FROM dbo."MeanObjectView" ORDER BY source_id',
    );
  });

  it('renames USING columns when both sides agree, and refuses when they do not', () => {
    const mapping = {
      'a.t': { table: 'x.T1', columns: { id: 'ID' } },
      'b.u': { table: 'y.T2', columns: { id: 'ID' } },
      'c.v': { table: 'z.T3', columns: { id: 'Ident' } },
    };
    expect(rewrite('SELECT id FROM a.t JOIN b.u USING (id)', {}, mapping)).toBe('SELECT "ID" AS id FROM x."T1" JOIN y."T2" USING ("ID")');
    expect(() => rewriteTables(parseAdql('SELECT 1 FROM a.t JOIN c.v USING (id)'), mapping)).toThrow(/USING \(id\) cannot be rewritten/);
  });

  it('accepts a Map of mappings and Map column renames, and does not touch the input tree', () => {
    const q = parseAdql('SELECT p.ramean FROM ps1_dr2.mean_object AS p');
    const before = stripPositions(q);
    const mapping = new Map([['ps1_dr2.mean_object', { table: ['dbo', 'MeanObjectView'].map((name) => ({ name, delimited: false })), columns: new Map([['ramean', 'RA']]) }]]);
    expect(printAdql(rewriteTables(q, mapping))).toBe('SELECT p."RA" AS ramean FROM dbo.MeanObjectView AS p');
    expect(stripPositions(q)).toEqual(before);
  });

  it('reports bad mapping input as a rewrite error', () => {
    const q = parseAdql('SELECT 1 FROM a.t');
    expect(() => rewriteTables(q, { 'a.t': { table: 'x..y' } })).toThrow(/empty name part/);
    expect(() => rewriteTables(q, { 'a.t': { table: '"x' } })).toThrow(/invalid local name/);
  });
});
