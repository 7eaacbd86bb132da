/**
 * submitQuery's routing: read the datasets from the ADQL, plan over them, and write the query
 * once per eligible site in that site's own table and column names.
 */
import {
  isAdqlError,
  parseAdqlOrThrow,
  printAdql,
  rewriteTables,
  tablesReferenced,
  toConstellationError,
  type Query,
  type TableMapping,
} from '../../adapters/ivoa/adql/index.js';
import type { SiteQuery } from '../../registry/model/adapter.js';
import { ConstellationError, invalidArgument } from '../../registry/model/errors.js';
import type { Queryable } from '../../registry/store/db.js';
import { columnsByReplicas } from '../../registry/store/queries/catalogue.js';
import type { ColumnRow } from '../../registry/store/queries/rows.js';
import { plan, type Caller, type Candidate, type PlannerSnapshot, type PlanRegion } from '../planner/index.js';
import { eligibleCandidates, planRecord, type PlanRecord } from './placement.js';
import { coneOfQuery } from './query-region.js';
import type { JobCandidate } from './plan.js';

/** submitQuery's input as GraphQL gives it. */
export interface QueryInput {
  adql: string;
  /** Canonical dataset ids planned besides those the FROM clauses name (they can only add to them). */
  datasets?: string[] | null;
  /** Run at this site only. */
  site?: string | null;
  maxrec?: number | null;
  /** The result format the job's results link asks for (votable, csv or json). */
  format?: string | null;
  /** Overrides the region read from the query's CONTAINS(POINT, CIRCLE) condition. */
  region?: PlanRegion | null;
  idempotencyKey?: string | null;
}

/** A query ready for JobService.submit: one rewritten query per eligible site, best first. */
export interface RoutedQuery {
  datasets: string[];
  candidates: JobCandidate[];
  plan: PlanRecord;
}

/** Results at most this many rows long run as synchronous TAP queries (estimated from TOP, MAXREC and the plan). */
export const SYNC_MAX_ROWS = 10_000;

const FORMATS = new Set(['votable', 'csv', 'json']);
const MAX_MAXREC = 1_000_000_000;

/** Plan an ADQL query and rewrite it for every eligible site. */
export async function routeQuery(snapshot: PlannerSnapshot, db: Queryable, input: QueryInput, caller: Caller): Promise<RoutedQuery> {
  checkInput(input);
  const query = parseAdqlOrThrow(input.adql);
  const datasets = datasetsOf(snapshot, query, input.datasets);
  const region = input.region ?? coneOfQuery(query);
  const thePlan = plan(snapshot, { kind: 'QUERY', datasets, region }, caller);
  const chosen = eligibleCandidates(thePlan, 'query', input.site);
  const replicaIds = chosen.flatMap((c) => datasets.map((d) => snapshot.site(c.site)!.replicas.get(d)!.row.id));
  const columns = groupBy(await columnsByReplicas(db, replicaIds), (c) => c.replicaId);
  const candidates: JobCandidate[] = [];
  const skipped: string[] = [];
  for (const c of chosen) {
    const routed = siteQueryFor(snapshot, c, query, datasets, columns, input);
    if (typeof routed === 'string') skipped.push(routed);
    else candidates.push(routed);
  }
  if (candidates.length === 0) throw new ConstellationError('NO_ELIGIBLE_SITE', `no site can run this query: ${skipped.join('; ')}`);
  return { datasets, candidates, plan: planRecord(thePlan, candidates[0].siteId) };
}

function checkInput(input: QueryInput): void {
  if (typeof input.adql !== 'string' || input.adql.trim() === '') throw invalidArgument('input.adql', 'must be a non-empty ADQL query');
  if (input.maxrec !== undefined && input.maxrec !== null && !(Number.isInteger(input.maxrec) && input.maxrec >= 0 && input.maxrec <= MAX_MAXREC)) {
    throw invalidArgument('input.maxrec', `must be an integer from 0 to ${MAX_MAXREC}, got ${input.maxrec}`);
  }
  if (input.format && !FORMATS.has(input.format.toLowerCase())) throw invalidArgument('input.format', `must be votable, csv or json, not "${input.format}"`);
}


/**
 * The canonical datasets the query reads: every table any FROM clause names (joins, derived
 * tables, subqueries in WHERE/SELECT/HAVING, set operation branches, CTEs), plus any `given`.
 * `given` may only add datasets: what the query reads is always planned, so the access rules
 * see every table the site will be asked for. A table the federation does not know, TAP_SCHEMA
 * or an upload is refused here, before anything is sent.
 */
export function datasetsOf(snapshot: PlannerSnapshot, query: Query, given: readonly string[] | null | undefined): string[] {
  const ids: string[] = [];
  for (const ref of tablesReferenced(query)) {
    // Any qualifier, quoted or not ("TAP_SCHEMA".tables, cat.tap_schema.tables).
    const qualifiers = ref.id.toLowerCase().replace(/"/g, '').split('.').slice(0, -1);
    if (qualifiers.includes('tap_schema')) {
      throw invalidArgument('input.adql', `reads ${ref.id}${at(ref.pos)}: TAP_SCHEMA describes one TAP service, not the federation; ask the datasets query, or a site directly`);
    }
    if (qualifiers.includes('tap_upload')) {
      throw invalidArgument('input.adql', `reads ${ref.id}${at(ref.pos)}: the broker sends no uploaded tables, so a query cannot read TAP_UPLOAD`);
    }
    if (snapshot.replicasOf(ref.id).length === 0) {
      throw invalidArgument('input.adql', `reads ${ref.id}${at(ref.pos)}, which is not a dataset of the federation; name tables by their canonical ids (the datasets query lists them)`);
    }
    if (!ids.includes(ref.id)) ids.push(ref.id);
  }
  (given ?? []).forEach((d, i) => {
    const id = d.trim().toLowerCase();
    if (snapshot.replicasOf(id).length === 0) throw invalidArgument(`input.datasets[${i}]`, `"${id}" is not a dataset of the federation`);
    if (!ids.includes(id)) ids.push(id);
  });
  if (ids.length === 0) throw invalidArgument('input.adql', 'reads no table: give input.datasets or a FROM clause naming a dataset');
  return ids;
}

function at(pos: { line: number; column: number } | undefined): string {
  return pos ? ` (line ${pos.line}, column ${pos.column})` : '';
}

/** The query as `candidate`'s site must receive it, or why that site cannot run it. */
function siteQueryFor(
  snapshot: PlannerSnapshot,
  candidate: Candidate,
  query: Query,
  datasets: readonly string[],
  columns: ReadonlyMap<number, ColumnRow[]>,
  input: QueryInput,
): JobCandidate | string {
  const site = snapshot.site(candidate.site)!;
  const replicas = datasets.map((d) => site.replicas.get(d)!);
  const services = [...new Set(replicas.map((r) => r.row.serviceId))];
  // A join runs inside one service; replicas behind two services of one site cannot be joined there.
  if (services.length > 1) return `site ${site.site.id} holds ${datasets.join(' and ')} behind different services (${services.join(', ')}) and cannot join them in one query`;
  const mapping = new Map<string, TableMapping>();
  replicas.forEach((r, i) => {
    const renames = new Map<string, string>();
    const columnList: string[] = [];
    for (const c of columns.get(r.row.id) ?? []) {
      const canonical = c.canonical ?? c.name.toLowerCase();
      columnList.push(canonical);
      if (canonical !== c.name) renames.set(canonical, c.name);
    }
    mapping.set(datasets[i], { table: r.row.table, columns: renames, ...(columnList.length > 0 ? { columnList } : {}) });
  });
  let adql: string;
  try {
    // TAP_SCHEMA and VOSI spell a name as it must be written in ADQL, quotes included when it
    // needs them (TAP 1.1, TAP_SCHEMA), so an unquoted mixed-case name is a regular identifier.
    adql = printAdql(rewriteTables(query, mapping, { quoteMixedCase: false }));
  } catch (err) {
    throw isAdqlError(err) ? toConstellationError(err) : err;
  }
  const siteQuery: SiteQuery = { adql, service: services[0], mode: isSmall(query, input.maxrec, candidate.estimatedRows) ? 'sync' : 'async' };
  if (input.maxrec !== undefined && input.maxrec !== null) siteQuery.maxrec = input.maxrec;
  return { kind: 'QUERY', siteId: site.site.id, siteQuery };
}

/** Small enough for a synchronous query: the smallest of TOP, MAXREC and the plan's row estimate is known and low. */
function isSmall(query: Query, maxrec: number | null | undefined, estimatedRows: number | null): boolean {
  const bounds = [query.body.kind === 'select' ? query.body.top : undefined, maxrec ?? undefined, estimatedRows ?? undefined].filter((n): n is number => n !== undefined);
  return bounds.length > 0 && Math.min(...bounds) <= SYNC_MAX_ROWS;
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
