/**
 * What a thread runs, fixed when it starts: the chosen strategy's runbook (sites, each side's
 * table in that site's names, tiles, output names), its steps, and the site query each step
 * sends. Everything a broker needs to resume a thread another broker started is in the runbook,
 * so nothing is planned twice.
 */
import type { QueryCandidate } from '../../registry/model/job-plan.js';
import type { RunbookTable, ThreadRunbook } from '../../registry/model/thread.js';
import { parseMocAscii } from '../../registry/coverage/moc.js';
import type { NewThreadStep, ThreadStepRow } from '../../registry/store/queries/threads.js';
import { regionReadAdql, sameSiteJoinAdql, uploadJoinAdql, type AdqlTable } from './adql.js';
import type { BuiltSituation } from './situation.js';
import { tileReads, type Tile } from './tiles.js';
import type { CrossmatchRegion, StrategyCandidate } from './types.js';

/** The runbook of the chosen candidate. */
export function runbookOf(built: BuiltSituation, chosen: StrategyCandidate): ThreadRunbook {
  const { situation } = built;
  const left = chosen.sites.left === null ? undefined : built.tables.left.get(chosen.sites.left);
  const right = chosen.sites.right === null ? undefined : built.tables.right.get(chosen.sites.right);
  if (!left || !right || !chosen.tiling) throw new Error(`the chosen ${chosen.strategy} candidate names no sites or tiling`);
  return {
    strategy: chosen.strategy,
    mode: situation.mode,
    radiusArcsec: situation.radiusArcsec,
    region: { cone: situation.region.cone, moc: built.mocText },
    left,
    right,
    uploadSide: chosen.upload?.side ?? null,
    tiles: chosen.tiling.order === null ? { order: null, cells: [0] } : { order: chosen.tiling.order, cells: chosen.tiling.cells },
    output: built.output,
    alternates: { left: alternatesOf(built, 'left', left.site), right: alternatesOf(built, 'right', right.site) },
  };
}

/**
 * The other sites a side can be read at, in site order: allowed, answering ADQL, and with limits
 * no tighter than the chosen site's (the tiling was cut to the chosen site's limits).
 */
function alternatesOf(built: BuiltSituation, side: 'left' | 'right', chosen: string): RunbookTable[] {
  const { situation } = built;
  const holdings = situation[side];
  const first = holdings.find((h) => h.site === chosen);
  if (!first) return [];
  const allowed = situation.sites ? new Set(situation.sites) : null;
  const noTighter = (limit: number | null, than: number | null) => limit === null || (than !== null && limit >= than);
  const out: RunbookTable[] = [];
  for (const h of [...holdings].sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0))) {
    if (h.site === chosen || (allowed && !allowed.has(h.site)) || !h.tap.adql) continue;
    if (!noTighter(h.tap.maxRec, first.tap.maxRec) || !noTighter(h.tap.rowCap, first.tap.rowCap)) continue;
    const table = built.tables[side].get(h.site);
    if (table) out.push(table);
  }
  return out;
}

/** The table of `side` as the site that ran a step names it (the chosen site, or an alternate it failed over to). */
export function tableAt(book: ThreadRunbook, side: 'left' | 'right', siteId: string | null): RunbookTable {
  const chosen = side === 'left' ? book.left : book.right;
  return book.alternates[side].find((t) => t.site === siteId) ?? chosen;
}

/** The tiles of a runbook, in order. */
export function tilesOf(book: ThreadRunbook): Tile[] {
  return book.tiles.cells.map((cell) => ({ order: book.tiles.order, cell }));
}

/** The region of a runbook, its MOC parsed again. */
export function regionOfBook(book: ThreadRunbook): CrossmatchRegion {
  return { cone: book.region.cone, moc: parseMocAscii(book.region.moc) };
}

/** Steps per tile: SAME_SITE one join; UPLOAD a read then an upload join; BROKER a read of each side. BROKER ends with the match. */
export function stepsOf(book: ThreadRunbook): NewThreadStep[] {
  const steps: NewThreadStep[] = [];
  const add = (kind: NewThreadStep['kind'], tile: Tile, siteId: string | null) => steps.push({ ordinal: steps.length, kind, tileOrder: tile.order, tileCell: tile.cell, siteId });
  for (const tile of tilesOf(book)) {
    if (book.strategy === 'SAME_SITE') add('site-join', tile, book.left.site);
    else if (book.strategy === 'UPLOAD') {
      const from = book.uploadSide === 'left' ? book.left : book.right;
      const to = book.uploadSide === 'left' ? book.right : book.left;
      add('site-read', tile, from.site);
      add('upload-join', tile, to.site);
    } else {
      add('site-read', tile, book.left.site);
      add('site-read', tile, book.right.site);
    }
  }
  if (book.strategy === 'BROKER') steps.push({ ordinal: steps.length, kind: 'match', tileOrder: book.tiles.order, tileCell: 0, siteId: null });
  return steps;
}

/** The side a read step reads: BROKER reads left then right per tile; UPLOAD reads the uploaded side. */
export function readSide(book: ThreadRunbook, step: Pick<ThreadStepRow, 'ordinal'>): 'left' | 'right' {
  if (book.strategy === 'UPLOAD') return book.uploadSide ?? 'left';
  return step.ordinal % 2 === 0 ? 'left' : 'right';
}

/** Result names of the hidden position columns and the chosen columns in a join's output. */
export const JOIN_NAMES = {
  lRa: 'l_ra', lDec: 'l_dec', rRa: 'r_ra', rDec: 'r_dec',
  left: (i: number) => `l${i}`,
  right: (i: number) => `r${i}`,
} as const;

/** Column names in an upload: position, then the chosen columns. */
export const UPLOAD_NAMES = { ra: 'u_ra', dec: 'u_dec', column: (i: number) => `u${i}` } as const;

/** The upload table's name (TAP_UPLOAD.xmatch). */
export const UPLOAD_TABLE = 'xmatch';

function joinTable(t: RunbookTable, side: 'left' | 'right'): AdqlTable {
  const pre = side === 'left' ? { ra: JOIN_NAMES.lRa, dec: JOIN_NAMES.lDec, col: JOIN_NAMES.left } : { ra: JOIN_NAMES.rRa, dec: JOIN_NAMES.rDec, col: JOIN_NAMES.right };
  return {
    table: t.table,
    ra: t.ra,
    dec: t.dec,
    columns: [{ name: t.ra, as: pre.ra }, { name: t.dec, as: pre.dec }, ...t.columns.map((name, i) => ({ name, as: pre.col(i) }))],
  };
}

function uploadedTable(t: RunbookTable, side: 'left' | 'right'): AdqlTable {
  const joined = joinTable(t, side);
  return {
    table: `TAP_UPLOAD.${UPLOAD_TABLE}`,
    ra: UPLOAD_NAMES.ra,
    dec: UPLOAD_NAMES.dec,
    columns: joined.columns.map((c, i) => ({ name: i === 0 ? UPLOAD_NAMES.ra : i === 1 ? UPLOAD_NAMES.dec : UPLOAD_NAMES.column(i - 2), as: c.as })),
  };
}

/** The query a SAME_SITE join step sends. */
export function joinQuery(book: ThreadRunbook, tile: Tile): QueryCandidate {
  const reads = tileReads(tile, regionOfBook(book), book.radiusArcsec, { healpixUdf: book.left.healpixUdf });
  const adql = sameSiteJoinAdql({ left: joinTable(book.left, 'left'), right: joinTable(book.right, 'right'), radiusArcsec: book.radiusArcsec, leftIn: reads.left, rightIn: reads.right });
  return { kind: 'QUERY', siteId: book.left.site, siteQuery: { adql, service: book.left.service, mode: 'sync' } };
}

/**
 * The queries a read step may send, in the order to try them: the left side over the tile, the
 * right side over the tile widened by the radius, at the chosen site and then at each alternate
 * (each in its own names), so the job service fails over to them.
 */
export function readQueries(book: ThreadRunbook, tile: Tile, side: 'left' | 'right'): QueryCandidate[] {
  const chosen = side === 'left' ? book.left : book.right;
  return [chosen, ...book.alternates[side]].map((t) => {
    const reads = tileReads(tile, regionOfBook(book), book.radiusArcsec, { healpixUdf: t.healpixUdf });
    const adql = regionReadAdql({ table: t.table, ra: t.ra, dec: t.dec, columns: t.columns.map((name) => ({ name, as: name })) }, side === 'left' ? reads.left : reads.right);
    return { kind: 'QUERY', siteId: t.site, siteQuery: { adql, service: t.service, mode: 'sync' } };
  });
}

/**
 * The query an upload join sends, with the uploaded rows (VOTable text whose columns are
 * UPLOAD_NAMES). Uploaded left rows are already the tile's own; uploaded right rows were read
 * over the widened tile, so the site's left rows are restricted to the tile (a superset the
 * broker filters afterwards).
 */
export function uploadJoinQuery(book: ThreadRunbook, tile: Tile, votable: string): QueryCandidate {
  const side = book.uploadSide ?? 'left';
  const target = side === 'left' ? book.right : book.left;
  const reads = tileReads(tile, regionOfBook(book), book.radiusArcsec, { healpixUdf: target.healpixUdf });
  const left = side === 'left' ? uploadedTable(book.left, 'left') : joinTable(book.left, 'left');
  const right = side === 'right' ? uploadedTable(book.right, 'right') : joinTable(book.right, 'right');
  const adql = uploadJoinAdql({
    left, right, radiusArcsec: book.radiusArcsec, uploaded: side, uploadName: UPLOAD_TABLE,
    leftIn: side === 'left' ? [] : reads.left,
    rightIn: side === 'right' ? [] : reads.right,
  });
  return { kind: 'QUERY', siteId: target.site, siteQuery: { adql, service: target.service, mode: 'sync', upload: { name: UPLOAD_TABLE, votable } } };
}
