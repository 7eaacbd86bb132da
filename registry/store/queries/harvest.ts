/** Queries that record harvest runs, site health and cache validators. */
import type { Queryable } from '../db.js';
import type { HarvestRunRow, SiteStatus } from './rows.js';

const RUN_COLUMNS = `id, site_id AS "siteId", trigger, started_at AS "startedAt", finished_at AS "finishedAt", outcome,
  error_code AS "errorCode", error_message AS "errorMessage", bytes, duration_ms AS "durationMs"`;

/** Who holds a running harvest: the broker's id, and how long each renewal of its lease lasts. */
export interface HarvestLease {
  owner: string;
  ms: number;
}

/** Open a RUNNING harvest run for a site, held under `lease`. */
export async function startHarvestRun(db: Queryable, siteId: string, trigger: string, lease: HarvestLease): Promise<HarvestRunRow> {
  return (await db.query<HarvestRunRow>(
    `INSERT INTO harvest_runs (site_id, trigger, outcome, owner, lease_until)
     VALUES ($1, $2, 'RUNNING', $3, now() + make_interval(secs => $4 / 1000.0)) RETURNING ${RUN_COLUMNS}`,
    [siteId, trigger, lease.owner, lease.ms])).rows[0];
}

/** Extend the lease of every run `lease.owner` has RUNNING; the number renewed. */
export async function renewHarvestLeases(db: Queryable, lease: HarvestLease): Promise<number> {
  return (await db.query(
    `UPDATE harvest_runs SET lease_until = now() + make_interval(secs => $2 / 1000.0) WHERE owner = $1 AND outcome = 'RUNNING'`,
    [lease.owner, lease.ms])).rowCount ?? 0;
}

/**
 * Close every RUNNING run whose lease has lapsed (its broker died without recording the end) as
 * FAILED with `errorCode`; the runs closed. The sites' health is not touched: nothing says the
 * site failed.
 */
export async function closeLapsedHarvestRuns(db: Queryable, errorCode: string, errorMessage: string): Promise<HarvestRunRow[]> {
  return (await db.query<HarvestRunRow>(
    `UPDATE harvest_runs SET outcome = 'FAILED', error_code = $1, error_message = $2, finished_at = now(),
       duration_ms = (EXTRACT(EPOCH FROM (now() - started_at)) * 1000)::int
     WHERE outcome = 'RUNNING' AND lease_until < now() RETURNING ${RUN_COLUMNS}`,
    [errorCode, errorMessage])).rows;
}

/** Close a harvest run with its outcome. */
export async function finishHarvestRun(
  db: Queryable,
  runId: number,
  result: { outcome: Exclude<HarvestRunRow['outcome'], 'RUNNING'>; bytes: number; errorCode?: string; errorMessage?: string },
): Promise<HarvestRunRow> {
  return (await db.query<HarvestRunRow>(
    `UPDATE harvest_runs SET outcome = $2, bytes = $3, error_code = $4, error_message = $5, finished_at = now(),
       duration_ms = (EXTRACT(EPOCH FROM (now() - started_at)) * 1000)::int
     WHERE id = $1 RETURNING ${RUN_COLUMNS}`,
    [runId, result.outcome, result.bytes, result.errorCode ?? null, result.errorMessage ?? null])).rows[0];
}

/**
 * Record a harvest's effect on the site's health: success resets the failure count to 0 and
 * the status to UP; a failure counts up and moves the status to DEGRADED, then to DOWN once
 * `downAfter` failures in a row are reached. A status change bumps the registry version.
 */
export async function recordSiteHealth(db: Queryable, siteId: string, ok: boolean, downAfter: number): Promise<SiteStatus> {
  const before = (await db.query<{ status: SiteStatus }>('SELECT status FROM sites WHERE id = $1', [siteId])).rows[0]?.status;
  const after = (await db.query<{ status: SiteStatus }>(
    `UPDATE sites SET
       consecutive_failures = CASE WHEN $2 THEN 0 ELSE consecutive_failures + 1 END,
       status = CASE WHEN $2 THEN 'UP' WHEN consecutive_failures + 1 >= $3 THEN 'DOWN' ELSE 'DEGRADED' END
     WHERE id = $1 RETURNING status`,
    [siteId, ok, downAfter])).rows[0].status;
  await bumpOnStatusChange(db, siteId, before, after);
  return after;
}

/**
 * Record a held harvest: the site answered, so its failure count resets, but it is DEGRADED
 * (never DOWN: it is reachable) until a harvest is applied.
 */
export async function recordSiteHeld(db: Queryable, siteId: string): Promise<void> {
  const before = (await db.query<{ status: SiteStatus }>('SELECT status FROM sites WHERE id = $1', [siteId])).rows[0]?.status;
  await db.query(`UPDATE sites SET consecutive_failures = 0, status = 'DEGRADED' WHERE id = $1`, [siteId]);
  await bumpOnStatusChange(db, siteId, before, 'DEGRADED');
}

async function bumpOnStatusChange(db: Queryable, siteId: string, before: SiteStatus | undefined, after: SiteStatus): Promise<void> {
  if (after !== before) {
    // Cached answers show the status, so a change is a new registry version. The site's row is
    // locked before the version's (the InitPlan runs before the version row is locked), the order
    // a publish takes them in; the other order deadlocks against a publish of the same site.
    await db.query(
      `WITH s AS (SELECT id FROM sites WHERE id = $1 FOR UPDATE),
            v AS (UPDATE registry_state SET version = version + 1 WHERE EXISTS (SELECT 1 FROM s) RETURNING version)
       UPDATE sites SET registry_version = v.version, status_changed_at = now() FROM v WHERE id = $1`, [siteId]);
  }
}

/** What a harvest of a site is measured against. */
export interface HarvestedState {
  /** Local table names of the last applied harvest; when none was, those stored now (seeded or published). */
  tables: string[];
  /** True when the site's stored document is the one its last applied harvest stored. */
  current: boolean;
  /** Origin of the site's stored document, if any. */
  storedOrigin: string | null;
}

/** The site's last harvested state compared with what it stores now. */
export async function harvestedState(db: Queryable, siteId: string): Promise<HarvestedState> {
  const row = (await db.query<{ digest: string | null; tables: string[] | null; stored: string | null; origin: string | null; now: string[] }>(
    `SELECT s.harvested_digest AS digest, s.harvested_tables AS tables, d.digest AS stored, d.origin,
       ARRAY(SELECT local_table FROM replicas WHERE site_id = s.id) AS now
     FROM sites s LEFT JOIN LATERAL
       (SELECT digest, origin FROM site_documents WHERE site_id = s.id ORDER BY id DESC LIMIT 1) d ON true
     WHERE s.id = $1`, [siteId])).rows[0];
  if (!row) return { tables: [], current: false, storedOrigin: null };
  return { tables: row.tables ?? row.now, current: row.digest !== null && row.digest === row.stored, storedOrigin: row.origin };
}

/** Remember what an applied harvest stored: the digest of document `documentId` and its local tables. */
export async function saveHarvestedState(db: Queryable, siteId: string, documentId: number, tables: readonly string[]): Promise<void> {
  await db.query(
    `UPDATE sites SET harvested_digest = (SELECT digest FROM site_documents WHERE id = $2), harvested_tables = $3::text[] WHERE id = $1`,
    [siteId, documentId, tables]);
}

/** Cache validators (ETag, Last-Modified per URL) from the site's last successful harvest. */
export async function harvestValidators(db: Queryable, siteId: string): Promise<Record<string, { etag?: string; lastModified?: string }>> {
  return (await db.query<{ v: Record<string, { etag?: string; lastModified?: string }> }>(
    'SELECT harvest_validators AS v FROM sites WHERE id = $1', [siteId])).rows[0]?.v ?? {};
}

/** Store the validators to send next time. */
export async function saveHarvestValidators(db: Queryable, siteId: string, validators: Record<string, { etag?: string; lastModified?: string }>): Promise<void> {
  await db.query('UPDATE sites SET harvest_validators = $2::jsonb WHERE id = $1', [siteId, JSON.stringify(validators)]);
}

/** Claim the scheduled harvest of `siteId` at `tick`; true for exactly one claimant across brokers. */
export async function claimHarvestTick(db: Queryable, siteId: string, tick: Date, claimant: string): Promise<boolean> {
  const res = await db.query('INSERT INTO harvest_ticks (site_id, tick, claimed_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [siteId, tick, claimant]);
  // Old claims are only needed while a tick can still be contended.
  await db.query("DELETE FROM harvest_ticks WHERE tick < now() - interval '1 day'");
  return res.rowCount === 1;
}

/** Give back a tick this claimant claimed but did not run (its broker stopped first), so no claim stands without a run. */
export async function releaseHarvestTick(db: Queryable, siteId: string, tick: Date, claimant: string): Promise<void> {
  await db.query('DELETE FROM harvest_ticks WHERE site_id = $1 AND tick = $2 AND claimed_by = $3', [siteId, tick, claimant]);
}

/** The latest harvest runs of a site, newest first. */
export async function harvestRunsBySite(db: Queryable, siteId: string, limit: number): Promise<HarvestRunRow[]> {
  return (await db.query<HarvestRunRow>(`SELECT ${RUN_COLUMNS} FROM harvest_runs WHERE site_id = $1 ORDER BY id DESC LIMIT $2`, [siteId, limit])).rows;
}

/** The latest harvest run of each of these sites. */
export async function lastHarvestBySites(db: Queryable, siteIds: readonly string[]): Promise<HarvestRunRow[]> {
  return (await db.query<HarvestRunRow>(
    `SELECT DISTINCT ON (site_id) ${RUN_COLUMNS} FROM harvest_runs WHERE site_id = ANY($1) ORDER BY site_id, id DESC`, [siteIds])).rows;
}
