/**
 * What changed between a thread and its re-run (issue 11, point 6): per step and overall, the
 * row counts and the order-independent checksums (checksum.ts) recorded when each result was
 * read or written. Steps are paired by ordinal when both runs have the same kind of step over
 * the same tile at that ordinal (a re-run from the same runbook always does; a re-planned one
 * may not, and then only the overall result is compared).
 */
import type { ThreadRow, ThreadStepRow } from '../../registry/store/queries/threads.js';

/** Rows and checksum of one result in both runs. */
export interface Comparison {
  rowsBefore: number | null;
  rowsAfter: number | null;
  checksumBefore: string | null;
  checksumAfter: string | null;
  same: boolean;
}

/** One step compared. */
export interface StepComparison extends Comparison {
  ordinal: number;
  kind: string;
  tile: { order: number | null; cell: number };
  siteBefore: string | null;
  siteAfter: string | null;
}

/** A re-run against the thread it re-runs. */
export interface ThreadDifferences {
  /** The thread re-run. */
  original: string;
  /** Whether both have finished (before that nothing is compared, and same is false). */
  compared: boolean;
  /** Whether the steps could be paired (same runbook shape). */
  stepsComparable: boolean;
  same: boolean;
  overall: Comparison;
  /** Every paired step (none when the steps could not be paired). */
  steps: StepComparison[];
}

/** Compare a re-run (`after`) with the thread it re-runs (`before`). */
export function differencesOf(before: ThreadRow, beforeSteps: readonly ThreadStepRow[], after: ThreadRow, afterSteps: readonly ThreadStepRow[]): ThreadDifferences {
  const compared = before.state === 'COMPLETED' && after.state === 'COMPLETED';
  const overall = compare(num(before.resultRows), num(after.resultRows), before.resultChecksum, after.resultChecksum, compared);
  const stepsComparable = beforeSteps.length === afterSteps.length
    && beforeSteps.every((b, i) => b.kind === afterSteps[i].kind && b.tileOrder === afterSteps[i].tileOrder && Number(b.tileCell) === Number(afterSteps[i].tileCell));
  const steps: StepComparison[] = stepsComparable
    ? beforeSteps.map((b, i) => {
      const a = afterSteps[i];
      return {
        ordinal: b.ordinal,
        kind: b.kind,
        tile: { order: b.tileOrder, cell: Number(b.tileCell) },
        siteBefore: b.siteId,
        siteAfter: a.siteId,
        ...compare(num(b.rowsOut), num(a.rowsOut), b.checksum, a.checksum, compared),
      };
    })
    : [];
  return { original: before.id, compared, stepsComparable, same: compared && overall.same && steps.every((s) => s.same), overall, steps };
}

function compare(rowsBefore: number | null, rowsAfter: number | null, checksumBefore: string | null, checksumAfter: string | null, compared: boolean): Comparison {
  const same = compared && rowsBefore === rowsAfter && checksumBefore !== null && checksumBefore === checksumAfter;
  return { rowsBefore, rowsAfter, checksumBefore, checksumAfter, same };
}

// bigint columns may arrive as text.
function num(v: number | string | null): number | null {
  return v === null ? null : Number(v);
}
