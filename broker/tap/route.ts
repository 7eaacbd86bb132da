/**
 * A TAP query's way through the federation: read only local tables (answered here), or read
 * canonical datasets (and uploads) that one site holds together, planned like submitQuery and
 * written in each eligible site's own names, or a positional join of two datasets at different
 * sites, run as a cross-match thread (crossmatch-join.ts). Everything that can be refused is
 * refused here, before any site is asked: unknown tables and columns, any other join across sites.
 */
import { identifierKey, printAdql, rewriteTables, tablesReferenced, toConstellationError, isAdqlError, type Query, type TableMapping } from '../../adapters/ivoa/adql/index.js';
import type { SiteQuery } from '../../registry/model/adapter.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import type { Queryable } from '../../registry/store/db.js';
import { canonicalColumnsByDatasets, columnsByReplicas, datasetsByIds, type ReplicaVisibility } from '../../registry/store/queries/catalogue.js';
import type { ColumnRow } from '../../registry/store/queries/rows.js';
import { plan, type Caller, type PlannerSnapshot } from '../planner/index.js';
import { eligibleCandidates, planRecord, type PlanRecord } from '../jobs/placement.js';
import type { JobCandidate } from '../jobs/plan.js';
import { coneOfQuery } from '../jobs/query-region.js';
import { SYNC_MAX_ROWS } from '../jobs/route-query.js';
import { localTableOf, type LocalSchema } from './local-schema.js';
import { recognizeCrossSiteJoin, type CrossSiteJoin } from './crossmatch-join.js';

/** An uploaded table: its name under TAP_UPLOAD, its column names (lower case) and the VOTable text sent on. */
export interface Upload {
  name: string;
  columns: string[];
  votable: string;
}

/** Where a query runs. */
export type Route =
  | { kind: 'local' }
  | { kind: 'site'; datasets: string[]; candidates: JobCandidate[]; plan: PlanRecord }
  /** A positional join of tables held at different sites: run as a cross-match thread. */
  | { kind: 'crossmatch'; join: CrossSiteJoin };

/** What routing needs to know of the caller and the registry. */
export interface RouteContext {
  snapshot: PlannerSnapshot;
  db: Queryable;
  caller: Caller;
  visibility: ReplicaVisibility;
  locals: readonly LocalSchema[];
}

/** Route `query` (uploads and MAXREC as given), or throw the coded error that says why it cannot run. */
export async function routeTapQuery(query: Query, uploads: readonly Upload[], maxrec: number | undefined, ctx: RouteContext, waiting = false): Promise<Route> {
  const refs = tablesReferenced(query);
  const datasets: string[] = [];
  let local = false;
  const usedUploads = new Set<string>();
  for (const ref of refs) {
    const qualifiers = ref.id.replace(/"/g, '').toLowerCase().split('.');
    if (qualifiers.length === 2 && qualifiers[0] === 'tap_upload') {
      if (!uploads.some((u) => u.name.toLowerCase() === qualifiers[1])) throw unknownTable(ref.id, ref.pos, `no table "${qualifiers[1]}" was uploaded with this query (UPLOAD=${qualifiers[1]},param:...)`);
      usedUploads.add(qualifiers[1]);
      continue;
    }
    if (localTableOf(ctx.locals, ref.id)) {
      local = true;
      continue;
    }
    if (!datasets.includes(ref.id)) datasets.push(ref.id);
  }
  const visible = new Set((await datasetsByIds(ctx.db, datasets, ctx.visibility)).map((d) => d.id));
  for (const ref of refs) {
    // A protected dataset is unknown to a caller outside its groups, exactly as one that does not exist.
    if (datasets.includes(ref.id) && !visible.has(ref.id)) throw unknownTable(ref.id, ref.pos, 'it is not a table of this service (the TAP_SCHEMA.tables and /tap/tables list them)');
  }
  if (local && datasets.length > 0) {
    throw invalidArgument('QUERY', `reads both ${datasets.join(', ')} and this service's own schema tables; a query reads either the federation's datasets or TAP_SCHEMA, not both`);
  }
  // TAP_SCHEMA and uploaded tables alone are answered here.
  if (datasets.length === 0) return { kind: 'local' };
  const canonical = await canonicalColumnsByDatasets(ctx.db, datasets, ctx.visibility);
  const known = new Map<string, Set<string>>(datasets.map((d) => [d, new Set()]));
  for (const c of canonical) known.get(c.datasetId)?.add(c.name.toLowerCase());
  for (const u of uploads) known.set(`tap_upload.${u.name.toLowerCase()}`, new Set(u.columns));
  checkColumns(query, known);
  const apart = crossSiteHolders(ctx.snapshot, datasets);
  if (apart !== undefined) {
    const recognised = usedUploads.size === 0 ? recognizeCrossSiteJoin(query, known) : { ok: false as const, why: 'it also reads an uploaded table' };
    if (recognised.ok) return { kind: 'crossmatch', join: recognised.join };
    throw refuseCrossSite(apart, recognised.why);
  }

  const region = coneOfQuery(query);
  const thePlan = plan(ctx.snapshot, { kind: 'QUERY', datasets, region }, ctx.caller);
  const chosen = eligibleCandidates(thePlan, 'query');
  const replicaIds = chosen.flatMap((c) => datasets.map((d) => ctx.snapshot.site(c.site)!.replicas.get(d)!.row.id));
  const columns = new Map<number, ColumnRow[]>();
  for (const c of await columnsByReplicas(ctx.db, replicaIds)) {
    const list = columns.get(c.replicaId) ?? [];
    columns.set(c.replicaId, list);
    list.push(c);
  }
  const upload = uploads.find((u) => usedUploads.has(u.name.toLowerCase()));
  const candidates: JobCandidate[] = [];
  const skipped: string[] = [];
  for (const c of chosen) {
    const site = ctx.snapshot.site(c.site)!;
    const replicas = datasets.map((d) => site.replicas.get(d)!);
    const services = [...new Set(replicas.map((r) => r.row.serviceId))];
    if (services.length > 1) {
      skipped.push(`${c.site} holds ${datasets.join(' and ')} behind different services and cannot join them in one query`);
      continue;
    }
    const service = site.services.get(services[0]);
    if (upload && service && !service.upload) {
      skipped.push(`${c.site}'s TAP service takes no uploads`);
      continue;
    }
    if (upload && service?.uploadLimitBytes && Buffer.byteLength(upload.votable) > service.uploadLimitBytes) {
      skipped.push(`${c.site} takes uploads of at most ${service.uploadLimitBytes} bytes`);
      continue;
    }
    const mapping = new Map<string, TableMapping>();
    replicas.forEach((r, i) => {
      const renames = new Map<string, string>();
      const list: string[] = [];
      for (const col of columns.get(r.row.id) ?? []) {
        const name = col.canonical ?? col.name.toLowerCase();
        list.push(name);
        if (name !== col.name) renames.set(name, col.name);
      }
      mapping.set(datasets[i], { table: r.row.table, columns: renames, ...(list.length > 0 ? { columnList: list } : {}) });
    });
    let adql: string;
    try {
      const tableColumns = new Map(uploads.map((u) => [`tap_upload.${u.name.toLowerCase()}`, u.columns]));
      adql = printAdql(rewriteTables(query, mapping, { quoteMixedCase: false, tableColumns }));
    } catch (err) {
      throw isAdqlError(err) ? toConstellationError(err) : err;
    }
    const rows = boundOf(query, maxrec, c.estimatedRows);
    // A caller waiting on /tap/sync is answered from the site's own sync endpoint (kept by the
    // broker as it arrives) while the answer fits the kept-result budget: a site's async job
    // costs it seconds to start. Otherwise small results run sync, the rest as site UWS jobs.
    const small = waiting
      ? rows !== undefined && rows * (replicas.reduce((n, r) => n + (r.row.rowBytes ?? DEFAULT_ROW_BYTES), 0)) <= WAITING_SYNC_BYTES
      : rows !== undefined && rows <= SYNC_MAX_ROWS;
    const siteQuery: SiteQuery = { adql, service: services[0], mode: small ? 'sync' : 'async' };
    if (maxrec !== undefined) siteQuery.maxrec = maxrec;
    if (upload) siteQuery.upload = { name: upload.name, votable: upload.votable };
    candidates.push({ kind: 'QUERY', siteId: c.site, siteQuery });
  }
  if (candidates.length === 0) throw new ConstellationError('NO_ELIGIBLE_SITE', `no site can run this query: ${skipped.join('; ')}`);
  return { kind: 'site', datasets, candidates, plan: planRecord(thePlan, candidates[0].siteId) };
}

/** Largest answer (estimated bytes) a waiting /tap/sync caller gets through the site's sync endpoint: half the default kept-result limit. */
export const WAITING_SYNC_BYTES = 32 * 1024 * 1024;
/** Row width assumed for a replica that does not say (bytes). */
const DEFAULT_ROW_BYTES = 200;

/** The most rows the query can return, from TOP, MAXREC and the plan's estimate (undefined when none is known). */
function boundOf(query: Query, maxrec: number | undefined, estimatedRows: number | null): number | undefined {
  const bounds = [query.body.kind === 'select' ? query.body.top : undefined, maxrec, estimatedRows ?? undefined].filter((n): n is number => n !== undefined);
  return bounds.length > 0 ? Math.min(...bounds) : undefined;
}

function unknownTable(id: string, pos: { line: number; column: number } | undefined, why: string): ConstellationError {
  return invalidArgument('QUERY', `reads ${id}${pos ? ` (line ${pos.line}, column ${pos.column})` : ''}, which this service does not know: ${why}`, 'unknown-table');
}

/** Who holds what ("d is held at s, t") when no one site holds every dataset; undefined when one does. */
function crossSiteHolders(snapshot: PlannerSnapshot, datasets: readonly string[]): string | undefined {
  if (datasets.length < 2) return undefined;
  const holders = datasets.map((d) => new Set(snapshot.replicasOf(d).map((r) => r.row.siteId)));
  const together = [...holders[0]].filter((s) => holders.every((h) => h.has(s)));
  if (together.length > 0) return undefined;
  return datasets.map((d, i) => `${d} is held at ${[...holders[i]].sort().join(', ') || 'no site'}`).join('; ');
}

/**
 * A join of datasets no one site holds together, which is not a positional join a cross-match
 * thread answers (`why` says which part could not be mapped): refused, naming who holds what.
 */
function refuseCrossSite(where: string, why: string): ConstellationError {
  return invalidArgument('QUERY', `joins tables that no one site holds together (${where}); the federation's TAP service runs a join across sites only as a positional cross-match (a cross-match thread), and this query cannot be mapped to one: ${why}. A positional join reads SELECT <columns> FROM a AS l JOIN b AS r ON 1 = CONTAINS(POINT('ICRS', l.ra, l.dec), CIRCLE('ICRS', r.ra, r.dec, <radius deg>)) WHERE 1 = CONTAINS(POINT('ICRS', l.ra, l.dec), CIRCLE('ICRS', <ra>, <dec>, <radius deg>)); the GraphQL crossmatch mutation offers more (BEST matches, MOC regions)`, 'cross-site-join');
}

type Node = Record<string, unknown>;

/**
 * Every column reference must name a column of a table in the query (or a select-list alias).
 * Queries with derived tables or common table expressions are left to the site, whose error
 * comes back in the job: their columns are not known here.
 */
function checkColumns(query: Query, known: ReadonlyMap<string, ReadonlySet<string>>): void {
  const columnRefs: Node[] = [];
  const tables: { id: string; alias?: string }[] = [];
  const aliases = new Set<string>();
  let opaque = false;
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (n === null || typeof n !== 'object') return;
    const node = n as Node;
    if (node.kind === 'derived' || (node.kind === 'query' && Array.isArray(node.with) && node.with.length > 0)) opaque = true;
    if (node.kind === 'column') columnRefs.push(node);
    if (node.kind === 'table') {
      const name = node.name as { name: string; delimited: boolean }[];
      tables.push({ id: name.map((p) => identifierKey(p as never)).join('.'), ...(node.alias ? { alias: identifierKey(node.alias as never) } : {}) });
    }
    if (node.kind === 'item' && node.alias) aliases.add(identifierKey(node.alias as never).toLowerCase());
    for (const v of Object.values(node)) if (typeof v === 'object') walk(v);
  };
  walk(query);
  if (opaque) return;
  const columnsOf = (t: { id: string }) => known.get(t.id.replace(/"/g, '').toLowerCase());
  for (const ref of columnRefs) {
    const column = ref.column as { name: string; delimited: boolean; pos?: { line: number; column: number } };
    const key = identifierKey(column as never).toLowerCase();
    const at = column.pos ? ` (line ${column.pos.line}, column ${column.pos.column})` : '';
    const qualifier = ref.table as { name: string; delimited: boolean }[] | undefined;
    if (qualifier && qualifier.length > 0) {
      const q = qualifier.map((p) => identifierKey(p as never)).join('.').toLowerCase();
      const table = tables.find((t) => t.alias?.toLowerCase() === q) ?? tables.find((t) => !t.alias && (t.id.toLowerCase() === q || t.id.toLowerCase().endsWith(`.${q}`)));
      if (!table) throw invalidArgument('QUERY', `names ${q}.${column.name}${at}, but no table in the query is called ${q}`, 'unknown-table');
      const cols = columnsOf(table);
      if (cols && cols.size > 0 && !cols.has(key)) throw unknownColumn(column.name, at, `${table.id} has no column ${column.name}`);
      continue;
    }
    if (aliases.has(key)) continue;
    const holders = tables.map(columnsOf);
    if (holders.some((c) => c === undefined || c.size === 0 || c.has(key))) continue;
    throw unknownColumn(column.name, at, `no table in the query (${tables.map((t) => t.id).join(', ')}) has a column ${column.name}`);
  }
}

function unknownColumn(name: string, at: string, why: string): ConstellationError {
  return invalidArgument('QUERY', `names the column ${name}${at}, which does not exist: ${why}`, 'unknown-column');
}
