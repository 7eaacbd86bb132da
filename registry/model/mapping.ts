/** Applying a federation's local → canonical name mapping to a site's document. */
import type { CapabilityDocument } from './capability.js';

/** Local table name → canonical dataset id and canonical column names. */
/** Per local table: its canonical id, title, column names and (when the site does not say it) its sky coverage as MOC ASCII. */
export type DatasetMapping = Readonly<Record<string, { id: string; title?: string; columns?: Readonly<Record<string, string>>; coverage?: string }>>;

/**
 * A copy of `doc` whose datasets named in `mapping` (by local table, case-insensitively) carry
 * the canonical id, title and column names; local names are kept as the site spells them.
 */
export function applyMapping(doc: CapabilityDocument, mapping: DatasetMapping): CapabilityDocument {
  const byTable = new Map(Object.entries(mapping).map(([table, m]) => [table.toLowerCase(), m]));
  if (byTable.size === 0) return doc;
  return {
    ...doc,
    datasets: doc.datasets.map((d) => {
      const m = byTable.get(d.table.toLowerCase());
      if (!m) return d;
      const columnMap = new Map(Object.entries(m.columns ?? {}).map(([local, canonical]) => [local.toLowerCase(), canonical]));
      return {
        ...d,
        id: m.id,
        title: d.title ?? m.title,
        // The site's own coverage wins; the operator's fills the gap a TAP harvest leaves.
        ...(d.coverage === undefined && m.coverage !== undefined ? { coverage: m.coverage } : {}),
        columns: d.columns?.map((c) => {
          const canonical = columnMap.get(c.name.toLowerCase());
          return canonical === undefined ? c : { ...c, canonical };
        }),
      };
    }),
  };
}

/**
 * The canonical id a table gets when no mapping names it: its last two dot-separated parts
 * (schema.table), lower case, with characters outside ADQL regular identifiers replaced by
 * "_"; undefined when the name has no schema part.
 */
export function defaultDatasetId(localTable: string): string | undefined {
  const parts = localTable.split('.').map((p) => p.replace(/^"|"$/g, '').toLowerCase().replace(/[^a-z0-9_]/g, '_'));
  if (parts.length < 2) return undefined;
  const [schema, table] = parts.slice(-2).map((p) => (/^[a-z]/.test(p) ? p : `t_${p}`));
  const id = `${schema.slice(0, 63)}.${table.slice(0, 63)}`;
  return /^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$/.test(id) ? id : undefined;
}
