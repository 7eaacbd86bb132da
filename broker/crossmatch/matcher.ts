/**
 * `crossmatch(left, right, options)`: the streaming positional matcher. It reads the right side
 * and then the left side batch by batch into columns; while both fit the memory budget they are
 * matched in memory, otherwise every row is spilled to declination-band files and the bands are
 * matched run by run (see spill.ts). Pairs come out as batches while matching proceeds.
 */
import { checkOptions, type CheckedOptions } from './options.js';
import { Pacer } from './pacer.js';
import { PairBuffer } from './pairs.js';
import { BYTES_PER_ROW, RowSet, checkBatch, forEachRow, idKindOf, type IdKind } from './rows.js';
import { radiusGeometry, type RadiusGeometry } from './sphere.js';
import { Spill } from './spill.js';
import { sweepZone } from './sweep.js';
import type { CrossmatchOptions, PairBatch, SkySource } from './types.js';
import { buildZones, zoneHeightDeg } from './zones.js';

/** State of one run while its inputs are read. */
interface Ingest {
  o: CheckedOptions;
  g: RadiusGeometry;
  pacer: Pacer;
  budgetRows: number;
  kinds: { left: IdKind; right: IdKind };
  rows: { left: RowSet | null; right: RowSet | null };
  spill: Spill | null;
}

/**
 * Matches `left` against `right` within `options.radiusArcsec`, yielding batches of pairs named by
 * row ordinals (see PairBatch). Throws INVALID_ARGUMENT for a bad option or row before any pair,
 * and `signal.reason` when aborted. Spill files are removed when the generator finishes, fails,
 * is aborted or is closed early by its consumer.
 */
export async function* crossmatch(left: SkySource, right: SkySource, options: CrossmatchOptions): AsyncGenerator<PairBatch, void, undefined> {
  const o = checkOptions(options);
  const state: Ingest = {
    o,
    g: radiusGeometry(o.radiusArcsec),
    pacer: new Pacer(o.signal),
    budgetRows: Math.max(1024, Math.floor(o.budgetBytes / BYTES_PER_ROW)),
    kinds: { left: 'none', right: 'none' },
    rows: { left: null, right: null },
    spill: null,
  };
  try {
    state.pacer.check();
    await ingest(state, 'right', right);
    await ingest(state, 'left', left);
    const out = new PairBuffer();
    if (state.spill === null) {
      const l = state.rows.left ?? new RowSet(state.kinds.left, 16);
      const r = state.rows.right ?? new RowSet(state.kinds.right, 16);
      state.rows.left = null;
      state.rows.right = null;
      yield* matchPartition(state, l, r, out);
    } else {
      await state.spill.flush();
      for (const run of state.spill.runs(state.budgetRows)) {
        state.pacer.check();
        const { left: l, right: r } = await state.spill.load(run);
        yield* matchPartition(state, l, r, out);
      }
    }
    if (out.length > 0) yield out.take();
  } finally {
    if (state.spill) await state.spill.remove();
  }
}

/** Reads one side: into memory while the budget allows, into the spill afterwards. */
async function ingest(s: Ingest, side: 'left' | 'right', source: SkySource): Promise<void> {
  let ordinal = 0;
  let first = true;
  for await (const batch of source) {
    s.pacer.check();
    if (first) {
      s.kinds[side] = idKindOf(batch.id);
      first = false;
    }
    const kind = s.kinds[side];
    checkBatch(side, batch, kind, ordinal);
    if (s.spill === null) {
      const rows = (s.rows[side] ??= new RowSet(kind, batch.ra.length));
      ordinal += rows.appendBatch(side, batch, ordinal);
      if ((s.rows.left?.length ?? 0) + (s.rows.right?.length ?? 0) > s.budgetRows) await startSpill(s);
    } else {
      const spill = s.spill;
      let full = false;
      ordinal += forEachRow(side, batch, ordinal, (ra, dec, ord, ib, inum) => {
        if (spill.add(side, ra, dec, ord, ib, inum)) full = true;
      });
      if (full) await spill.flush();
    }
    if (s.pacer.due()) await s.pacer.pause();
  }
}

/** Moves the rows held so far into a new spill. */
async function startSpill(s: Ingest): Promise<void> {
  const spill = await Spill.open(s.o.spillDir, s.g, s.kinds, s.o.budgetBytes);
  s.spill = spill;
  s.o.onSpill?.(spill.dir);
  for (const side of ['right', 'left'] as const) {
    const rows = s.rows[side];
    s.rows[side] = null;
    if (rows) spill.addAll(side, rows);
    await spill.flush();
  }
}

/** Matches one partition held in memory, yielding full batches as they fill. */
async function* matchPartition(s: Ingest, left: RowSet, right: RowSet, out: PairBuffer): AsyncGenerator<PairBatch, void, undefined> {
  if (left.length === 0 || right.length === 0) return;
  const h = zoneHeightDeg(s.g);
  const input = {
    left: buildZones(left, s.g, h, false),
    right: buildZones(right, s.g, h, true),
    rightRows: right,
    g: s.g,
    h,
    mode: s.o.mode,
  };
  if (s.pacer.due()) await s.pacer.pause();
  for (let k = 0; k < input.left.nz; k++) {
    sweepZone(input, k, out);
    if (out.length >= s.o.batchPairs) yield out.take();
    if (s.pacer.due()) await s.pacer.pause();
  }
}
