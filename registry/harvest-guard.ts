/** The harvest guard: a harvest that would take away most of what a site advertised is held for an operator to confirm. */

/** Default for federation.yaml's `harvest.maxRemovedShare`. */
export const DEFAULT_MAX_REMOVED_SHARE = 0.5;

/**
 * Why a harvest that turns `before` into `after` (local table names) must be held, or
 * undefined when it may be applied: it removes more than `maxRemovedShare` of the tables
 * (a share of `before`), or it leaves none where there were some. Names compare without case,
 * as the mappings do.
 */
export function heldReason(siteId: string, before: readonly string[], after: readonly string[], maxRemovedShare: number): string | undefined {
  const known = new Set(before.map((t) => t.toLowerCase()));
  if (known.size === 0) return undefined;
  const kept = new Set(after.map((t) => t.toLowerCase()));
  let removed = 0;
  for (const t of known) if (!kept.has(t)) removed++;
  const share = removed / known.size;
  const empty = after.length === 0;
  if (!empty && share <= maxRemovedShare) return undefined;
  const n = (x: number) => x.toLocaleString('en-US');
  // Rounded down, so a share short of all never reads 100%.
  const pct = (x: number) => `${Math.floor(x * 100)}%`;
  const why = empty ? 'the harvest found no datasets' : `more than harvest.maxRemovedShare (${pct(maxRemovedShare)})`;
  return `would remove ${n(removed)} of ${n(known.size)} datasets (${pct(share)}): ${why}; held: confirm with ` +
    `harvest(siteId: "${siteId}", confirm: true) or \`constellation harvest ${siteId} --confirm\``;
}
