/**
 * A cross-match request checked and turned into what the strategy planner looks at: the sites
 * holding a replica of each side the caller may read, each with its rows in the region, row
 * width, TAP facts and the site's own table and column names. Every bad input is refused here,
 * before anything is recorded or sent (INVALID_ARGUMENT naming the field).
 */
import { checkCone, parseMocArgument } from '../../registry/coverage/arguments.js';
import { SMoc } from '../../registry/coverage/moc.js';
import { invalidArgument } from '../../registry/model/errors.js';
import type { RunbookTable } from '../../registry/model/thread.js';
import type { Queryable } from '../../registry/store/db.js';
import { columnsByReplicas } from '../../registry/store/queries/catalogue.js';
import type { ColumnRow } from '../../registry/store/queries/rows.js';
import { QUERY_SERVICE_TYPES, type Caller, type PlannerReplica, type PlannerSnapshot } from '../planner/index.js';
import { rowsInRegion } from './estimates.js';
import { DEFAULT_MAX_TILE_ORDER } from './tiles.js';
import type { CrossmatchRegion, CrossmatchSituation, Holding, MatchMode, Side, Strategy } from './types.js';

/** One side of a crossmatch request: a canonical dataset id and the canonical columns to return. */
export interface SideInput {
  dataset: string;
  columns?: readonly string[] | null;
}

/** crossmatch's input as GraphQL gives it. */
export interface CrossmatchInput {
  left: SideInput;
  right: SideInput;
  region?: { cone?: { ra: number; dec: number; radiusDeg: number } | null; moc?: string | null } | null;
  radiusArcsec: number;
  mode?: MatchMode | null;
  strategy?: Strategy | null;
  sites?: readonly string[] | null;
  idempotencyKey?: string | null;
}

/** The planner's situation and, per side and site, the table as that site names it. */
export interface BuiltSituation {
  situation: CrossmatchSituation;
  tables: { left: ReadonlyMap<string, RunbookTable>; right: ReadonlyMap<string, RunbookTable> };
  /** Result column names: the chosen columns of each side, a clash prefixed by the dataset's short name. */
  output: { left: string[]; right: string[] };
  /** The region's MOC as MOC ASCII (kept in the runbook). */
  mocText: string;
}

/** Largest match radius, arcseconds. */
export const MAX_RADIUS_ARCSEC = 60;

/** Order of the MOC a cone region is turned into (tiles are at most this fine). */
const CONE_MOC_ORDER = DEFAULT_MAX_TILE_ORDER;

/** Build the planner's situation for `caller` from the snapshot and the catalogue's columns. */
export async function buildSituation(snapshot: PlannerSnapshot, db: Queryable, input: CrossmatchInput, caller: Caller): Promise<BuiltSituation> {
  const radius = input.radiusArcsec;
  if (typeof radius !== 'number' || !Number.isFinite(radius) || !(radius > 0) || radius > MAX_RADIUS_ARCSEC) {
    throw invalidArgument('input.radiusArcsec', `must be a number greater than 0 and at most ${MAX_RADIUS_ARCSEC} arcseconds, got ${String(radius)}`, 'range');
  }
  const region = regionOf(input.region);
  const groups = new Set(caller.groups);
  const left = await sideOf(snapshot, db, 'left', input.left, region.moc, groups);
  const right = await sideOf(snapshot, db, 'right', input.right, region.moc, groups);
  const situation: CrossmatchSituation = {
    left: left.holdings,
    right: right.holdings,
    region,
    radiusArcsec: radius,
    mode: input.mode ?? 'BEST',
    strategy: input.strategy ?? null,
    sites: input.sites && input.sites.length > 0 ? [...input.sites] : null,
    callerSite: caller.site ?? null,
  };
  return { situation, tables: { left: left.tables, right: right.tables }, output: outputNames(input.left.dataset, left.columns, input.right.dataset, right.columns), mocText: region.moc.toAscii() };
}

/** The region: a cone (its MOC an inclusive superset) or a MOC; exactly one is required. */
function regionOf(region: CrossmatchInput['region']): CrossmatchRegion {
  const cone = region?.cone ?? null;
  const moc = region?.moc ?? null;
  if (cone === null && moc === null) throw invalidArgument('input.region', 'a region is required: give a cone or a MOC', 'required');
  if (cone !== null && moc !== null) throw invalidArgument('input.region', 'give either cone or moc, not both', 'oneOf');
  if (cone !== null) {
    checkCone(cone, 'input.region.cone');
    const ra = ((cone.ra % 360) + 360) % 360;
    return { cone: { ra, dec: cone.dec, radiusDeg: cone.radiusDeg }, moc: SMoc.fromCone(ra, cone.dec, cone.radiusDeg, CONE_MOC_ORDER) };
  }
  const parsed = parseMocArgument(moc ?? '', 'input.region.moc');
  if (parsed.isEmpty()) throw invalidArgument('input.region.moc', 'the MOC covers no sky', 'range');
  return { cone: null, moc: parsed.maxOrder > CONE_MOC_ORDER ? parsed.degrade(CONE_MOC_ORDER) : parsed };
}

interface SideFacts {
  holdings: Holding[];
  tables: Map<string, RunbookTable>;
  /** The canonical columns asked for, in order. */
  columns: string[];
}

async function sideOf(snapshot: PlannerSnapshot, db: Queryable, side: Side, input: SideInput, region: SMoc, groups: ReadonlySet<string>): Promise<SideFacts> {
  const path = `input.${side}`;
  const dataset = typeof input?.dataset === 'string' ? input.dataset.trim().toLowerCase() : '';
  const replicas = snapshot.replicasOf(dataset);
  if (replicas.length === 0) throw invalidArgument(`${path}.dataset`, `"${input?.dataset}" is not a dataset of the federation`, 'exists');
  const readable = replicas.filter((r) => isReadable(r, groups) && snapshot.site(r.row.siteId)?.site.status !== 'DOWN');
  const columns = (input.columns ?? []).map((c) => c.trim().toLowerCase());
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup !== undefined) throw invalidArgument(`${path}.columns`, `names column ${dup} twice`, 'unique');
  const positioned = readable.filter((r) => r.row.position !== null);
  if (readable.length > 0 && positioned.length === 0) {
    throw invalidArgument(`${path}.dataset`, `${dataset} has no position columns (ra, dec) at any site you may read, so it cannot be cross-matched`, 'position');
  }
  const byReplica = groupBy(await columnsByReplicas(db, positioned.map((r) => r.row.id)), (c) => c.replicaId);
  // A column is unknown when no readable replica has it; a replica lacking one another has is left out.
  const known = new Set<string>();
  for (const cols of byReplica.values()) for (const c of cols) known.add(canonicalOf(c));
  for (const [i, c] of columns.entries()) {
    if (positioned.length > 0 && !known.has(c)) throw invalidArgument(`${path}.columns[${i}]`, `${dataset} has no column ${c}`, 'exists');
  }
  const holdings: Holding[] = [];
  const tables = new Map<string, RunbookTable>();
  for (const r of positioned) {
    const site = snapshot.site(r.row.siteId);
    const service = site?.services.get(r.row.serviceId);
    const position = r.row.position;
    if (!site || !service || !position) continue;
    const local = new Map((byReplica.get(r.row.id) ?? []).map((c) => [canonicalOf(c), c] as const));
    const chosen = columns.flatMap((c) => local.get(c) ?? []);
    // A replica lacking a column another replica has is left out.
    if (chosen.length < columns.length) continue;
    const adql = QUERY_SERVICE_TYPES.has(service.type) && (service.languages.length === 0 || service.languages.some((l) => /^adql/i.test(l)));
    holdings.push({
      site: site.site.id,
      rows: rowsInRegion(r.row.rows ?? 0, r.moc, region),
      rowBytes: 16 + chosen.reduce((n, c) => n + bytesOf(c), 0),
      tap: { service: service.id, adql, maxRec: service.maxRec, upload: service.upload, uploadLimitBytes: service.uploadLimitBytes, rowCap: null, healpixUdf: false },
    });
    tables.set(site.site.id, { dataset, site: site.site.id, service: service.id, table: r.row.table, ra: position.ra, dec: position.dec, columns: chosen.map((c) => c.name), healpixUdf: false });
  }
  return { holdings, tables, columns };
}

/** Result names: each side's columns as asked; a name both sides (or sep_arcsec) use gets the dataset's short prefix. */
export function outputNames(leftDataset: string, left: readonly string[], rightDataset: string, right: readonly string[]): { left: string[]; right: string[] } {
  const [lp, rp] = prefixes(leftDataset, rightDataset);
  const clash = (name: string, other: readonly string[]) => other.includes(name) || name === 'sep_arcsec';
  return {
    left: left.map((c) => (clash(c, right) ? `${lp}_${c}` : c)),
    right: right.map((c) => (clash(c, left) ? `${rp}_${c}` : c)),
  };
}

/** Short names of two datasets: their schema parts ("gaia_dr3"), or the whole ids when those are equal. */
function prefixes(a: string, b: string): [string, string] {
  const short = (id: string) => id.split('.')[0];
  const whole = (id: string) => id.replace(/[^a-z0-9_]/gi, '_');
  if (short(a) !== short(b)) return [short(a), short(b)];
  return a === b ? ['left', 'right'] : [whole(a), whole(b)];
}

function canonicalOf(c: ColumnRow): string {
  return c.canonical ?? c.name.toLowerCase();
}

/** Bytes one value of a column takes as it travels (VOTable BINARY2, strings taken as 16). */
function bytesOf(c: ColumnRow): number {
  switch (c.datatype) {
    case 'double': case 'long': return 8;
    case 'int': case 'float': return 4;
    case 'short': return 2;
    case 'boolean': case 'unsignedByte': return 1;
    default: return 16;
  }
}

function isReadable(replica: PlannerReplica, groups: ReadonlySet<string>): boolean {
  return replica.row.access.public || replica.row.access.groups.some((g) => groups.has(g));
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const list = out.get(key(item));
    if (list) list.push(item);
    else out.set(key(item), [item]);
  }
  return out;
}
