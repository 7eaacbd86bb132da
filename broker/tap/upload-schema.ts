/** The uploaded tables of one query as a local schema (TAP_UPLOAD), so a query of uploads alone runs in the broker. */
import { readVOTableToArray, type Cell, type FieldMeta } from '../../adapters/ivoa/votable/index.js';
import type { LocalColumn, LocalSchema, LocalTable } from './local-schema.js';
import type { Upload } from './route.js';

const SCALAR: Partial<Record<FieldMeta['datatype'], LocalColumn['datatype']>> = {
  boolean: 'boolean', short: 'short', int: 'int', long: 'long', float: 'float', double: 'double', unsignedByte: 'short',
};

/** TAP_UPLOAD over `uploads`: each VOTable's first table, scalar numbers and booleans typed, everything else as text. */
export function uploadSchema(uploads: readonly Upload[]): LocalSchema {
  return {
    name: 'TAP_UPLOAD',
    description: 'tables uploaded with this query',
    tables: () => uploads.map((u): LocalTable => {
      let parsed: Promise<{ columns: LocalColumn[]; rows: Cell[][] }> | undefined;
      const read = () => (parsed ??= readVOTableToArray([new TextEncoder().encode(u.votable)]).then((doc) => {
        const t = doc.tables[0];
        const columns = t.meta.fields.map((f): LocalColumn => ({ name: f.name.toLowerCase(), datatype: (!f.shape && SCALAR[f.datatype]) || 'char', description: f.description ?? '', ...(f.ucd ? { ucd: f.ucd } : {}), ...(f.unit ? { unit: f.unit } : {}), ...(f.xtype ? { xtype: f.xtype } : {}) }));
        const rows = t.rows.map((r) => r.map((c, i) => (columns[i].datatype === 'char' && c !== null ? (Array.isArray(c) ? c.join(' ') : String(c)) : c)));
        return { columns, rows };
      }));
      return {
        name: u.name.toLowerCase(),
        description: `uploaded table ${u.name}`,
        columns: u.columns.map((name) => ({ name, datatype: 'char' as const, description: '' })),
        // Parsed once (its bytes are bounded by the upload limit), then counted before it is loaded.
        source: { kind: 'rows', count: async () => (await read()).rows.length, rows: async () => (await read()).rows, typedColumns: async () => (await read()).columns },
      };
    }),
  };
}
