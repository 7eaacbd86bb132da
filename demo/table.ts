/** A catalogue table as a demo centre holds it: column metadata plus one typed array per column. */

/** The column types a centre table holds (VOTable datatypes). */
export type CentreDatatype = 'long' | 'double';

/** One column: its metadata as VOSI publishes it, and its values. */
export type CentreColumn =
  | { name: string; datatype: 'long'; unit?: string; ucd?: string; description?: string; values: BigInt64Array }
  | { name: string; datatype: 'double'; unit?: string; ucd?: string; description?: string; values: Float64Array };

/** A table a centre serves: `schema.table` as the centre spells it, and its columns (all of one length). */
export interface CentreTable {
  name: string;
  description?: string;
  columns: CentreColumn[];
}

/** Rows in `table` (the length of its columns). */
export function rowCount(table: CentreTable): number {
  return table.columns[0]?.values.length ?? 0;
}
