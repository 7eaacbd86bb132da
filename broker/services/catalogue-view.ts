/**
 * The in-memory catalogue for discovery: every canonical dataset with what `datasets(filter)`
 * filters on (text, UCD atoms, sites, visibility), ordered as SQL orders it. It follows the
 * planner's snapshot (PlannerView): the rows it needs beyond the snapshot are read per changed
 * site inside the snapshot's own REPEATABLE READ transaction (`read`), and taken in `follow`,
 * so it is always at the snapshot's registry version, like the coverage index.
 */
import type { Queryable } from '../../registry/store/db.js';
import type { PublishedSite } from '../../registry/store/published-site.js';
import { datasetRows, type ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import type { DatasetRow } from '../../registry/store/queries/rows.js';
import type { PlannerSnapshot, SnapshotFollower } from '../planner/index.js';
import { existingSites, replicaDetailsBySites, siteOrder, type CatalogueColumn, type ReplicaDetail, type SiteOrder } from '../../registry/store/queries/replica-details.js';
import { compareC, foldAscii, foldsToAscii, plainAscii } from './catalogue-text.js';

type ReplicaFacts = ReplicaDetail;

/**
 * What the view holds of one dataset at one registry version, to answer its nested fields
 * (replicas, canonical columns) as SQL would; immutable, so a request may keep it.
 */
export interface HeldDataset {
  /** Its replicas in the database's order of site ids (SQL's ORDER BY site_id). */
  readonly replicas: readonly ReplicaDetail[];
  /** False when SQL's canonical columns cannot be reproduced exactly (a locale-dependent lower(), a name twice in a replica). */
  readonly columnsExact: boolean;
}

/** One canonical dataset as discovery sees it. */
interface Entry extends HeldDataset {
  row: DatasetRow;
  /** Its replicas by site id. */
  holders: Map<string, ReplicaFacts>;
  /** The id, title, description and every replica's local table and title, ASCII-folded, joined by NUL (never in a pattern). */
  haystack: string;
  /** Every column UCD atom of every replica, ASCII-folded. */
  atoms: Set<string>;
  anyPublic: boolean;
  groups: Set<string>;
  /** Whether its text or UCDs hold a character some locales fold to ASCII (then SQL decides). */
  ambiguousText: boolean;
  ambiguousUcd: boolean;
}

/** A discovery search, as catalogue.ts `searchDatasets` takes it (ids as a set). */
export interface CatalogueSearch {
  text?: string;
  ucd?: string;
  site?: string;
  ids?: ReadonlySet<string>;
  visibility: ReplicaVisibility;
  limit: number;
  offset: number;
}

/** A region tested dataset by dataset as the page is walked, instead of a set of ids matched beforehand. */
export interface RegionTest {
  /** Whether dataset `id` has a replica the reader may see in the region. */
  test(id: string): boolean;
  /** How many datasets may fail the test before search gives up (the caller then matches the region as a whole). */
  budget: number;
}

interface Pending {
  changed: readonly string[] | undefined;
  /** The database's order of sites, or undefined when no site joined or left (the held order stands). */
  order: SiteOrder | undefined;
  replicas: ReplicaFacts[];
  /** Dataset ids whose rows were read, and the rows found (absent = removed). */
  rowIds: ReadonlySet<string> | undefined;
  rows: DatasetRow[];
}

/** Answers `datasets(filter, limit, offset)` from memory, exactly as the SQL search would at the same registry version. */
export class CatalogueView implements SnapshotFollower {
  private readonly entries = new Map<string, Entry>();
  /** Dataset ids in "C" collation order (the SQL ORDER BY). */
  private sorted: string[] = [];
  private readonly bySite = new Map<string, ReplicaFacts[]>();
  /** Replicas of datasets whose row is not known yet (kept until it is). */
  private readonly holders = new Map<string, Map<string, ReplicaFacts>>();
  private ambiguousText = 0;
  private ambiguousUcd = 0;
  private pending: Pending | undefined;
  /** Set when a change went by unread: the next read reads everything. */
  private stale = false;
  private version_ = -1;
  /** Each site's place in the database's order of site ids (replaced whole at each read). */
  private siteRank = new Map<string, number>();
  private asciiLower = false;
  /** Column lists by their JSON text: replicas advertising the same columns share one list. */
  private columnLists = new Map<string, readonly CatalogueColumn[]>();

  /** The registry version this view reflects (-1 before the planner's first load). */
  get version(): number {
    return this.version_;
  }

  /** Number of canonical datasets held. */
  get size(): number {
    return this.entries.size;
  }

  /** Read the facts of the sites `changed` (all when undefined) and of the datasets they held or hold, inside the snapshot's transaction. */
  async read(tx: Queryable, given: readonly string[] | undefined): Promise<void> {
    const changed = this.stale ? undefined : given;
    // A full read starts the shared column lists afresh, so lists nobody uses any more go.
    if (changed === undefined) this.columnLists = new Map();
    const replicas = await replicaDetailsBySites(tx, changed, this.columnLists);
    const order = changed !== undefined && (await this.sameSites(tx, changed)) ? undefined : await siteOrder(tx);
    let rowIds: Set<string> | undefined;
    if (changed !== undefined) {
      rowIds = new Set(replicas.map((r) => r.datasetId));
      for (const site of changed) for (const r of this.bySite.get(site) ?? []) rowIds.add(r.datasetId);
    }
    const rows = rowIds === undefined ? await datasetRows(tx, undefined) : rowIds.size === 0 ? [] : await datasetRows(tx, [...rowIds]);
    this.pending = { changed, order, replicas, rowIds, rows };
  }

  /**
   * What `read` would find for the site of a publish this view is one registry version behind
   * (PlannerView.published): its replicas from the document, its datasets' rows from what the
   * publish wrote or deleted and otherwise as held, a new site placed after the site before it.
   * Undefined when that cannot be told without reading (a full read pending, a dataset row not
   * held, the site before not held).
   */
  fromPublished(site: PublishedSite): (() => void) | undefined {
    if (this.stale || this.version_ < 0) return undefined;
    const siteId = site.row.id;
    let order: SiteOrder | undefined;
    if (!this.siteRank.has(siteId)) {
      // The held ranks are in order (the map is made from the ordered ids).
      const ids = [...this.siteRank.keys()];
      const at = site.before === null ? 0 : ids.indexOf(site.before) + 1;
      if (at === 0 && site.before !== null) return undefined;
      ids.splice(at, 0, siteId);
      order = { ids, asciiLower: this.asciiLower };
    }
    const held = new Map((this.bySite.get(siteId) ?? []).map((r) => [r.datasetId, r]));
    const replicas: ReplicaFacts[] = [];
    for (const [datasetId, r] of site.state.replicas) {
      const had = held.get(datasetId)?.columns;
      // An unchanged column list keeps the held object: the replica then keeps its facts (sameFacts).
      const columns = had !== undefined && sameColumns(had, r.columns) ? had : this.columnList(r.columns);
      const ucds = [...new Set(columns.flatMap((c) => (c.ucd === null ? [] : [c.ucd])))];
      replicas.push({ siteId, datasetId, table: r.row.table, title: r.row.title, public: r.row.public, groups: [...r.row.groups], ucds, columns });
    }
    const rowIds = new Set([...site.state.replicas.keys(), ...held.keys()]);
    const written = new Map(site.datasets.written.map((row) => [row.id, row]));
    const deleted = new Set(site.datasets.deleted);
    const rows: DatasetRow[] = [];
    for (const id of rowIds) {
      if (deleted.has(id)) continue;
      // Not written by this publish: as the previous version left it, which this view holds.
      const row = written.get(id) ?? this.entries.get(id)?.row;
      if (row === undefined) return undefined;
      rows.push({ id: row.id, title: row.title, description: row.description });
    }
    return () => {
      this.pending = { changed: [siteId], order, replicas, rowIds, rows };
    };
  }

  /** One shared frozen list of these columns (as `read` shares equal JSON texts). */
  private columnList(columns: readonly CatalogueColumn[]): readonly CatalogueColumn[] {
    const key = JSON.stringify(columns);
    let list = this.columnLists.get(key);
    if (list === undefined) {
      list = Object.freeze(columns.map((c): CatalogueColumn => Object.freeze({
        name: c.name, canonical: c.canonical, datatype: c.datatype, arraysize: c.arraysize, xtype: c.xtype, unit: c.unit, ucd: c.ucd,
        description: c.description, indexed: c.indexed,
      })));
      this.columnLists.set(key, list);
    }
    return list;
  }

  /** Whether the sites `changed` are sites now exactly when they were before: then the order of every site stands. */
  private async sameSites(tx: Queryable, changed: readonly string[]): Promise<boolean> {
    if (changed.length === 0) return true;
    const now = await existingSites(tx, changed);
    return changed.every((id) => now.has(id) === this.siteRank.has(id));
  }

  /** Take what `read` found, at `snapshot`'s version; synchronous, so a search never sees half a change. */
  follow(snapshot: PlannerSnapshot, changed: ReadonlySet<string> | undefined): void {
    const p = this.pending;
    this.pending = undefined;
    if (p !== undefined) {
      this.apply(p);
      this.version_ = snapshot.version;
    } else if (changed !== undefined && changed.size === 0 && !this.stale) {
      // Only sites' own rows moved (nothing of the catalogue's); a stale catalogue stays unanswered
      // until a read takes everything again.
      this.version_ = snapshot.version;
    } else {
      // Sites changed that were never read (not expected): answer nothing from memory until a full read.
      this.version_ = -1;
      this.stale = true;
    }
  }

  private apply(p: Pending): void {
    const touched = new Set<string>();
    if (p.order !== undefined) {
      this.siteRank = new Map(p.order.ids.map((id, i) => [id, i]));
      this.asciiLower = p.order.asciiLower;
    }
    if (p.changed === undefined) {
      this.stale = false;
      this.entries.clear();
      this.bySite.clear();
      this.holders.clear();
      this.sorted = [];
      this.ambiguousText = 0;
      this.ambiguousUcd = 0;
    }
    // A changed site's replica read again with the same facts keeps its object, and its dataset's
    // entry stands unless something else of it moved: a harvest that changes one replica in a
    // hundred rebuilds one entry, not a hundred.
    const kept = new Map<string, ReplicaFacts>();
    for (const site of p.changed ?? []) {
      for (const r of this.bySite.get(site) ?? []) kept.set(`${site}\u0000${r.datasetId}`, r);
      this.bySite.delete(site);
    }
    for (const fresh of p.replicas) {
      const key = `${fresh.siteId}\u0000${fresh.datasetId}`;
      const had = kept.get(key);
      kept.delete(key);
      const r = had !== undefined && sameFacts(had, fresh) ? had : fresh;
      let list = this.bySite.get(r.siteId);
      if (list === undefined) this.bySite.set(r.siteId, (list = []));
      list.push(r);
      if (r === had) continue;
      let held = this.holders.get(r.datasetId);
      if (held === undefined) this.holders.set(r.datasetId, (held = new Map()));
      held.set(r.siteId, r);
      touched.add(r.datasetId);
    }
    // Replicas of the changed sites not read again are gone.
    for (const r of kept.values()) {
      this.holders.get(r.datasetId)?.delete(r.siteId);
      touched.add(r.datasetId);
    }
    const rows = new Map(p.rows.map((row) => [row.id, row]));
    for (const id of p.rowIds ?? rows.keys()) {
      const row = rows.get(id);
      const held = this.entries.get(id)?.row;
      if (row === undefined || held === undefined || row.title !== held.title || row.description !== held.description) touched.add(id);
    }
    const arrived: string[] = [];
    const left = new Set<string>();
    for (const id of touched) {
      // Rows not read this time are unchanged: only the changed sites' datasets can have moved.
      const row = rows.get(id) ?? (p.rowIds === undefined || p.rowIds.has(id) ? undefined : this.entries.get(id)?.row);
      const was = this.entries.has(id);
      this.replace(id, row);
      const is = this.entries.has(id);
      if (is && !was) arrived.push(id);
      else if (was && !is) left.add(id);
    }
    this.reorder(arrived, left);
  }

  /**
   * The id order after datasets arrived and left: each arrival's place found by binary search,
   * then the held order copied once in slices between them. (A splice per new dataset moved the
   * whole list each time; a merge compared every held id: 2 ms a publish either way at 20,000.)
   */
  private reorder(arrived: string[], left: ReadonlySet<string>): void {
    if (arrived.length === 0 && left.size === 0) return;
    const held = left.size === 0 ? this.sorted : this.sorted.filter((id) => !left.has(id));
    if (arrived.length === 0) {
      this.sorted = held;
      return;
    }
    arrived.sort(compareC);
    const out: string[] = [];
    let from = 0;
    for (const id of arrived) {
      const at = lowerBound(held, id, from);
      for (let i = from; i < at; i++) out.push(held[i]);
      out.push(id);
      from = at;
    }
    for (let i = from; i < held.length; i++) out.push(held[i]);
    this.sorted = out;
  }

  /** Rebuild one dataset's entry from its row (undefined = gone) and its current holders; the id order is apply's. */
  private replace(id: string, row: DatasetRow | undefined): void {
    const old = this.entries.get(id);
    if (old !== undefined) {
      if (old.ambiguousText) this.ambiguousText--;
      if (old.ambiguousUcd) this.ambiguousUcd--;
    }
    const held = this.holders.get(id) ?? new Map<string, ReplicaFacts>();
    if (held.size === 0) this.holders.delete(id);
    if (row === undefined) {
      this.entries.delete(id);
      return;
    }
    const texts = [foldAscii(row.id), foldAscii(row.title ?? ''), foldAscii(row.description ?? '')];
    const atoms = new Set<string>();
    const groups = new Set<string>();
    let anyPublic = false;
    let ambiguousUcd = false;
    for (const r of held.values()) {
      const found = searchFactsOf(r);
      texts.push(found.texts);
      for (const atom of found.atoms) atoms.add(atom);
      if (found.ambiguousUcd) ambiguousUcd = true;
      if (r.public) anyPublic = true;
      for (const g of r.groups) groups.add(g);
    }
    const haystack = texts.join('\u0000');
    const rank = (site: string) => this.siteRank.get(site) ?? -1;
    const replicas = Object.freeze([...held.values()].sort((a, b) => rank(a.siteId) - rank(b.siteId)));
    const columnsExact = this.asciiLower && replicas.every((r) => exactColumns(r.columns));
    const entry: Entry = { row, holders: held, haystack, atoms, anyPublic, groups, ambiguousText: foldsToAscii(haystack), ambiguousUcd, replicas, columnsExact };
    if (entry.ambiguousText) this.ambiguousText++;
    if (entry.ambiguousUcd) this.ambiguousUcd++;
    this.entries.set(id, entry);
  }

  /** What the view holds of dataset `id` at its current version (undefined: not held, or the view is not loaded). */
  held(id: string): HeldDataset | undefined {
    return this.version_ < 0 ? undefined : this.entries.get(id);
  }

  /**
   * The page of datasets `search` matches, ordered by id in "C" order, or undefined when this
   * view cannot answer exactly as SQL would (not loaded yet; a text or UCD whose matching
   * depends on the database's locale or LIKE wildcards): the caller then asks SQL.
   */
  search(search: CatalogueSearch, region?: RegionTest): DatasetRow[] | undefined {
    if (this.version_ < 0) return undefined;
    const text = search.text ? foldAscii(search.text) : undefined;
    const ucd = search.ucd ? foldAscii(search.ucd) : undefined;
    if (text !== undefined && (!plainAscii(text) || (this.ambiguousText > 0 && /[ik]/.test(text)))) return undefined;
    // The SQL matches `atom LIKE ucd || '.%'`, so % _ and \ in a UCD are patterns there.
    if (ucd !== undefined && (!plainAscii(ucd) || /[%_\\]/.test(ucd) || (this.ambiguousUcd > 0 && /[ik]/.test(ucd)))) return undefined;
    const visibility = search.visibility;
    const under = ucd === undefined ? undefined : `${ucd}.`;
    const matches = (e: Entry): boolean => {
      if (search.site !== undefined && search.site !== '' && !e.holders.has(search.site)) return false;
      if (visibility !== 'all' && !e.anyPublic && !visibility.some((g) => e.groups.has(g))) return false;
      if (text !== undefined && !e.haystack.includes(text)) return false;
      if (under !== undefined) {
        if (e.atoms.has(ucd!)) return true;
        for (const atom of e.atoms) if (atom.startsWith(under)) return true;
        return false;
      }
      return true;
    };
    const out: DatasetRow[] = [];
    let skip = search.offset;
    let tested = 0;
    const take = (id: string): boolean => {
      const e = this.entries.get(id);
      if (e === undefined || !matches(e)) return false;
      if (region !== undefined && !region.test(id)) return ++tested > region.budget;
      if (skip > 0) skip--;
      else out.push({ ...e.row });
      return out.length >= search.limit;
    };
    if (search.limit <= 0) return out;
    const ids = search.ids;
    if (ids !== undefined && ids.size * 16 < this.sorted.length) {
      for (const id of [...ids].sort(compareC)) if (take(id)) break;
    } else {
      for (const id of this.sorted) if ((ids === undefined || ids.has(id)) && take(id)) break;
    }
    return region !== undefined && tested > region.budget ? undefined : out;
  }
}

/** Whether two reads of one replica found the same discovery facts (column lists are shared between equal texts). */
function sameFacts(a: ReplicaFacts, b: ReplicaFacts): boolean {
  return a.table === b.table && a.title === b.title && a.public === b.public && a.columns === b.columns
    && a.groups.length === b.groups.length && a.groups.every((g, i) => g === b.groups[i]);
}

/** Whether two column lists hold equal columns in the same order. */
function sameColumns(a: readonly CatalogueColumn[], b: readonly CatalogueColumn[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.name !== y.name || x.canonical !== y.canonical || x.datatype !== y.datatype || x.arraysize !== y.arraysize || x.xtype !== y.xtype
      || x.unit !== y.unit || x.ucd !== y.ucd || x.description !== y.description || x.indexed !== y.indexed) return false;
  }
  return true;
}

/** What a dataset's search text and UCD atoms take from one replica, ASCII-folded. */
interface ReplicaSearchFacts {
  /** Its local table and title, folded, joined by NUL. */
  readonly texts: string;
  readonly atoms: readonly string[];
  /** Whether a UCD of it holds a character a Unicode locale folds to ASCII. */
  readonly ambiguousUcd: boolean;
}

/**
 * Worked out once per replica object: its facts never change (a changed replica is a new object),
 * while its dataset's entry is rebuilt whenever another site's replica of it changes (a first load
 * rebuilt each dataset once per holder, folding every holder's texts each time).
 */
const searchFacts = new WeakMap<ReplicaFacts, ReplicaSearchFacts>();

function searchFactsOf(r: ReplicaFacts): ReplicaSearchFacts {
  let found = searchFacts.get(r);
  if (found === undefined) {
    const atoms = new Set<string>();
    let ambiguousUcd = false;
    for (const ucd of r.ucds) {
      if (foldsToAscii(ucd)) ambiguousUcd = true;
      for (const atom of foldAscii(ucd).split(';')) atoms.add(atom);
    }
    found = { texts: `${foldAscii(r.table)}\u0000${foldAscii(r.title ?? '')}`, atoms: [...atoms], ambiguousUcd };
    searchFacts.set(r, found);
  }
  return found;
}

/** exactColumns per column list (lists are shared between equal texts, and frozen). */
const exactLists = new WeakMap<readonly CatalogueColumn[], boolean>();

/** Whether SQL's COALESCE(canonical, lower(name)) of these columns is reproducible: ASCII names, no canonical name twice (SQL would pick either). */
function exactColumns(columns: readonly CatalogueColumn[]): boolean {
  let exact = exactLists.get(columns);
  if (exact === undefined) exactLists.set(columns, (exact = exactNames(columns)));
  return exact;
}

function exactNames(columns: readonly CatalogueColumn[]): boolean {
  const names = new Set<string>();
  for (const c of columns) {
    if (c.canonical === null && !plainAscii(c.name)) return false;
    const name = c.canonical ?? foldAscii(c.name);
    if (names.has(name)) return false;
    names.add(name);
  }
  return true;
}

/** Whether a reader with `visibility` may see replica `r` (as catalogue.ts's visibleReplica). */
export function visibleTo(r: ReplicaDetail, visibility: ReplicaVisibility): boolean {
  return visibility === 'all' || r.public || r.groups.some((g) => visibility.includes(g));
}

/**
 * A dataset's canonical columns as catalogue.ts `canonicalColumnsByDatasets` gives them: one per
 * canonical name, described by the first visible replica (in site order) that has it, in that
 * replica's column order, later replicas' own columns after.
 */
export function canonicalColumns(held: HeldDataset, visibility: ReplicaVisibility): readonly CatalogueColumn[] {
  // Every anonymous reader and every administrator see the same: theirs are kept with the
  // dataset's (frozen) replica list, which a change of the dataset replaces.
  const shared = visibility === 'all' ? 'all' : visibility.length === 0 ? 'public' : undefined;
  if (shared === undefined) return columnsFor(held, visibility);
  let kept = sharedColumns.get(held.replicas);
  if (kept === undefined) sharedColumns.set(held.replicas, (kept = {}));
  return (kept[shared] ??= Object.freeze(columnsFor(held, visibility)));
}

/** Canonical columns computed once per dataset version for the two visibilities most readers have. */
const sharedColumns = new WeakMap<readonly ReplicaDetail[], { all?: readonly CatalogueColumn[]; public?: readonly CatalogueColumn[] }>();

function columnsFor(held: HeldDataset, visibility: ReplicaVisibility): CatalogueColumn[] {
  const seen = new Set<string>();
  const out: CatalogueColumn[] = [];
  for (const r of held.replicas) {
    if (!visibleTo(r, visibility)) continue;
    for (const c of r.columns) {
      const name = c.canonical ?? foldAscii(c.name);
      if (seen.has(name)) continue;
      seen.add(name);
      out.push(name === c.name ? c : { ...c, name });
    }
  }
  return out;
}

/** The first position at or after `from` in `sorted` (C order) whose id is not before `id`. */
function lowerBound(sorted: readonly string[], id: string, from: number): number {
  let lo = from;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareC(sorted[mid], id) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
