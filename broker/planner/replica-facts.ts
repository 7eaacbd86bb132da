/**
 * What a plan reads of every replica of a requested dataset, kept together per dataset in the
 * order of the dataset's replica list: whether the replica is public, its coverage kind, and its
 * coverage's bounding cap. A plan tests some four hundred replicas at 10,000 sites, and read from
 * their sites' stores each test was a few cache misses spread over a million replicas; here they
 * are one sweep over contiguous memory. Only the replicas the cap lets through (a few dozen) are
 * then read from their site. The copy costs 17 bytes a replica; the sites' stores saved 24 by
 * keeping their caps as float32 (packed-cap.ts) and summing cell counts rather than storing them.
 */
import type { PlannerSite } from './site.js';

/** Low two bits of a replica's flags: its coverage kind (UNKNOWN, EMPTY, WHOLE or PART of packed.ts). */
export const KIND_BITS = 3;
/** Flag bit: the replica is public, so every caller may read it. */
export const PUBLIC = 4;

/** Per replica j of a dataset's list: flags[j], and cap j of caps (4 float32, as packed-cap.ts). */
export interface ReplicaFacts {
  readonly flags: Uint8Array;
  readonly caps: Float32Array;
}

/** The facts and the replica numbers (DatasetReplicas.local) of one list, made together. */
export interface ListColumns {
  readonly facts: ReplicaFacts;
  readonly local: Int32Array;
}

/**
 * Columns for n replicas in one allocation: caps (16 bytes each), replica numbers (4), flags (1),
 * each aligned. One buffer a list, as before the facts: a refresh remakes a list per dataset its
 * sites touch, and every buffer allocated brings the next full collection nearer.
 */
function allocate(n: number): { caps: Float32Array; local: Int32Array; flags: Uint8Array } {
  const buffer = new ArrayBuffer(21 * n);
  return { caps: new Float32Array(buffer, 0, 4 * n), local: new Int32Array(buffer, 16 * n, n), flags: new Uint8Array(buffer, 20 * n, n) };
}

/** Copy replica `i`'s facts from its site's stores into position j of `out`. */
function read(out: ReplicaFacts, j: number, site: PlannerSite, i: number): void {
  const columns = site.columns;
  const coverage = columns.coverage;
  out.flags[j] = coverage.kind(i) | (columns.access[i].public ? PUBLIC : 0);
  for (let k = 0; k < 4; k++) out.caps[4 * j + k] = coverage.caps[4 * i + k];
}

/**
 * The columns of the replicas (sites[j], replica local[j]). Where `from[j]` ≥ 0 the replica is
 * replica from[j] of `previous`'s list, unchanged, and its facts are copied from there, a run of
 * consecutive ones at a time (a refresh reads only the arriving sites' replicas); otherwise they
 * are read from the site.
 */
export function listColumns(sites: readonly PlannerSite[], local: ArrayLike<number>, previous?: ReplicaFacts, from?: ArrayLike<number>): ListColumns {
  const n = sites.length;
  const out = allocate(n);
  for (let j = 0; j < n; j++) out.local[j] = local[j];
  for (let j = 0; j < n; ) {
    const f = from === undefined ? -1 : from[j];
    if (previous === undefined || from === undefined || f < 0) {
      read(out, j, sites[j], local[j]);
      j++;
      continue;
    }
    let end = j + 1;
    while (end < n && from[end] === f + (end - j)) end++;
    out.flags.set(previous.flags.subarray(f, f + end - j), j);
    out.caps.set(previous.caps.subarray(4 * f, 4 * (f + end - j)), 4 * j);
    j = end;
  }
  return { facts: { flags: out.flags, caps: out.caps }, local: out.local };
}
