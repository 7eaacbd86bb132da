/**
 * ADQL text of each cross-match step, in the site's own table and column names (pure).
 *
 * Every join returns all pairs within the radius with `sep_arcsec` (DISTANCE × 3600); BEST is
 * applied in the broker, since ADQL has no portable "nearest per row". Tile constraints are the
 * AdqlArea lists of tiles.ts: a CIRCLE around the tile (a superset: the broker then keeps only
 * left rows whose own cell is the tile, see leftInTile) or ivo_healpix_index (exact). Right
 * areas are always supersets; extra right rows cannot make a wrong pair, since every pair is
 * checked against the radius and owned by the tile of its left row.
 */
import { printIdentifier } from '../../adapters/ivoa/adql/printer.js';
import type { AdqlArea } from './tiles.js';

/** A table as one site names it, and the columns to return from it. */
export interface AdqlTable {
  /** Local table name, "schema.table" or "table". */
  table: string;
  /** Local position column names (degrees, ICRS). */
  ra: string;
  dec: string;
  /** Columns to return: the local name and the name it gets in the result. */
  columns: readonly { name: string; as: string }[];
}

/** Inputs of a join: both tables, the radius, and the areas each side is restricted to. */
export interface JoinInput {
  left: AdqlTable;
  right: AdqlTable;
  radiusArcsec: number;
  leftIn: readonly AdqlArea[];
  rightIn: readonly AdqlArea[];
}

/**
 * One join at a site holding both tables:
 * SELECT … FROM L AS l JOIN R AS r ON 1=CONTAINS(POINT(l), CIRCLE(r, radius)) WHERE <l in tile> AND <r in widened tile>.
 */
export function sameSiteJoinAdql(input: JoinInput): string {
  return joinText(tableName(input.left.table), tableName(input.right.table), input);
}

/**
 * The join against uploaded rows: the uploaded side is `TAP_UPLOAD.<name>` (its columns named as
 * in `AdqlTable`, as the broker wrote them into the upload), the other is the site's table.
 */
export function uploadJoinAdql(input: JoinInput & { uploaded: 'left' | 'right'; uploadName: string }): string {
  const upload = `TAP_UPLOAD.${ident(input.uploadName)}`;
  return input.uploaded === 'left'
    ? joinText(upload, tableName(input.right.table), input)
    : joinText(tableName(input.left.table), upload, input);
}

/** A plain read of one side over its areas (BROKER, and the side an UPLOAD ships). */
export function regionReadAdql(table: AdqlTable, within: readonly AdqlArea[]): string {
  const cols = [...new Set([table.ra, table.dec, ...table.columns.map((c) => c.name)])].map((c) => `t.${ident(c)}`);
  const where = within.map((a) => areaCondition(a, 't', table));
  return `SELECT ${cols.join(', ')} FROM ${tableName(table.table)} AS t${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`;
}

function joinText(leftFrom: string, rightFrom: string, input: JoinInput): string {
  const { left, right } = input;
  const lp = point('l', left);
  const rp = point('r', right);
  const select = [
    ...left.columns.map((c) => `l.${ident(c.name)} AS ${ident(c.as)}`),
    ...right.columns.map((c) => `r.${ident(c.name)} AS ${ident(c.as)}`),
    `DISTANCE(${lp}, ${rp}) * 3600 AS sep_arcsec`,
  ];
  const on = `1=CONTAINS(${lp}, CIRCLE('ICRS', r.${ident(right.ra)}, r.${ident(right.dec)}, ${num(input.radiusArcsec / 3600)}))`;
  const where = [...input.leftIn.map((a) => areaCondition(a, 'l', left)), ...input.rightIn.map((a) => areaCondition(a, 'r', right))];
  return `SELECT ${select.join(', ')} FROM ${leftFrom} AS l JOIN ${rightFrom} AS r ON ${on}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`;
}

/** The ADQL condition that a row of `alias` lies in an area. */
export function areaCondition(area: AdqlArea, alias: string, table: Pick<AdqlTable, 'ra' | 'dec'>): string {
  if (area.kind === 'healpix') return `ivo_healpix_index(${area.order}, ${alias}.${ident(table.ra)}, ${alias}.${ident(table.dec)}) = ${area.cell}`;
  const c = area.circle;
  return `1=CONTAINS(${point(alias, table)}, CIRCLE('ICRS', ${num(c.ra)}, ${num(c.dec)}, ${num(c.radiusDeg)}))`;
}

function point(alias: string, t: Pick<AdqlTable, 'ra' | 'dec'>): string {
  return `POINT('ICRS', ${alias}.${ident(t.ra)}, ${alias}.${ident(t.dec)})`;
}

function ident(name: string): string {
  return printIdentifier({ name, delimited: false });
}

function tableName(name: string): string {
  return name.split('.').map(ident).join('.');
}

/** A double as an ADQL literal: round-trip digits, exponent written with E. */
function num(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  return String(x).toUpperCase();
}
