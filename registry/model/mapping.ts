/** Applying a federation's local → canonical name mapping to a site's document. */
import type { CapabilityDocument } from './capability.js';

/** Local table name → canonical dataset id and canonical column names. */
export type DatasetMapping = Readonly<Record<string, { id: string; title?: string; columns?: Readonly<Record<string, string>> }>>;

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
        columns: d.columns?.map((c) => {
          const canonical = columnMap.get(c.name.toLowerCase());
          return canonical === undefined ? c : { ...c, canonical };
        }),
      };
    }),
  };
}
