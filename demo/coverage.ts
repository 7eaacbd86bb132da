/**
 * The demo catalogues' sky coverage as MOC ASCII, which the demo's federation.yaml states for
 * each centre's table: a TAP harvest says nothing of coverage, and without it the planner
 * spreads the rows over the whole sky and underestimates every read a hundredfold.
 */
import { nestIndex, vecToCell } from '../registry/coverage/healpix.js';
import { SMoc } from '../registry/coverage/moc.js';
import { MAIN_PATCH, POLE_PATCH, WRAP_PATCH } from './catalogues.js';
import { unitVector, type SkyBox } from './sky.js';

/** Order of the coverage cells (about 0.46°): fine enough that the MOC is close to the patches. */
const ORDER = 7;
/** Grid step in degrees, well under a cell's width, so every cell a patch reaches is sampled. */
const STEP = 0.02;

/** The cells of `ORDER` reached by the three patches, as MOC ASCII. */
export function demoCoverageMoc(): string {
  const cells = new Set<number>();
  for (const box of [MAIN_PATCH, WRAP_PATCH, POLE_PATCH]) addBox(cells, box);
  return SMoc.fromCells(ORDER, cells).toAscii();
}

function addBox(cells: Set<number>, box: SkyBox): void {
  const width = (box.raMax - box.raMin + 360) % 360 || 360;
  for (let dec = box.decMin; dec <= box.decMax + 1e-9; dec += STEP) {
    const d = Math.min(dec, box.decMax);
    // Steps along RA shrink with cos(dec) in angle; keep them at STEP on the sky.
    const raStep = Math.min(width, STEP / Math.max(Math.cos((d * Math.PI) / 180), 1e-3));
    for (let off = 0; off <= width + 1e-9; off += raStep) {
      const { f, x, y } = vecToCell(ORDER, unitVector((box.raMin + Math.min(off, width)) % 360, d));
      cells.add(nestIndex(ORDER, f, x, y));
    }
  }
}
