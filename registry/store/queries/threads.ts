/** Queries on cross-match threads and their steps: create once, claim under a lease, record steps, finish. */
import type pg from 'pg';
import { ConstellationError } from '../../model/errors.js';
import { readThreadRecord, type StoredThreadRecord, type ThreadPlanRecord, type ThreadRunbook, type ThreadState, type ThreadStepKind } from '../../model/thread.js';
import { withTransaction, type Queryable } from '../db.js';
import { readThreadDocuments, saveThreadCredentials, type SealedThreadCredential, type ThreadDocument } from './thread-provenance.js';

export type { ThreadState, ThreadStepKind };

/** One thread as stored, its jsonb read once. */
export interface ThreadRow {
  id: string;
  owner: string;
  idempotencyKey: string | null;
  state: ThreadState;
  /** The request as the caller gave it (compared for idempotency). */
  request: unknown;
  /** The plan and runbook, or the coded error saying how the stored ones are damaged. */
  record: StoredThreadRecord;
  resultPath: string | null;
  resultRows: number | null;
  resultBytes: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  /** The broker version (package.json) that started the thread; null for threads older than migration 010. */
  brokerVersion: string | null;
  /** The capability document each runbook site had when the thread was planned. */
  documents: ThreadDocument[];
  /** The thread this one re-runs, if any. */
  rerunOf: string | null;
  /** The result's order-independent checksum (hex), once COMPLETED. */
  resultChecksum: string | null;
}

/** One step of a thread. */
export interface ThreadStepRow {
  threadId: string;
  ordinal: number;
  kind: ThreadStepKind;
  /** The tile's order (null: the whole region) and NESTED cell. */
  tileOrder: number | null;
  tileCell: number;
  siteId: string | null;
  jobId: string | null;
  state: ThreadState;
  rowsIn: number | null;
  rowsOut: number | null;
  bytesIn: number | null;
  bytesOut: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Order-independent checksum (hex) of the step's result rows, once read. */
  checksum: string | null;
}

/** A step as created with its thread. */
export interface NewThreadStep {
  ordinal: number;
  kind: ThreadStepKind;
  tileOrder: number | null;
  tileCell: number;
  siteId: string | null;
}

type StoredThreadRow = Omit<ThreadRow, 'record' | 'documents'> & { plan: unknown; runbook: unknown; documents: unknown };

const COLUMNS = `id, owner, idempotency_key AS "idempotencyKey", state, request, plan, runbook, result_path AS "resultPath",
  result_rows AS "resultRows", result_bytes AS "resultBytes", error_code AS "errorCode", error_message AS "errorMessage",
  created_at AS "createdAt", updated_at AS "updatedAt", finished_at AS "finishedAt", lease_owner AS "leaseOwner", lease_until AS "leaseUntil",
  broker_version AS "brokerVersion", documents, rerun_of AS "rerunOf", result_checksum AS "resultChecksum"`;

const STEP_COLUMNS = `thread_id AS "threadId", ordinal, kind, tile_order AS "tileOrder", tile_cell AS "tileCell", site_id AS "siteId",
  job_id AS "jobId", state, rows_in AS "rowsIn", rows_out AS "rowsOut", bytes_in AS "bytesIn", bytes_out AS "bytesOut",
  error_code AS "errorCode", error_message AS "errorMessage", started_at AS "startedAt", finished_at AS "finishedAt", checksum`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function threadRow(stored: StoredThreadRow): ThreadRow {
  const { plan, runbook, documents, ...rest } = stored;
  return { ...rest, documents: readThreadDocuments(documents), record: readThreadRecord(stored.id, plan, runbook) };
}

function first(r: pg.QueryResult<StoredThreadRow>): ThreadRow | undefined {
  return r.rows[0] ? threadRow(r.rows[0]) : undefined;
}

/**
 * Create the thread and its steps in one transaction; a second call with the owner's same key
 * returns the stored thread (created false) and creates nothing.
 */
export async function createThreadOnce(
  pool: pg.Pool,
  thread: {
    id: string; owner: string; idempotencyKey?: string; request: unknown; plan: ThreadPlanRecord; runbook: ThreadRunbook; steps: readonly NewThreadStep[];
    brokerVersion: string; documents: readonly ThreadDocument[]; rerunOf?: string; credentials: readonly SealedThreadCredential[];
  },
): Promise<{ thread: ThreadRow; created: boolean }> {
  const made = await withTransaction(pool, async (client) => {
    const inserted = await client.query<StoredThreadRow>(
      `INSERT INTO threads (id, owner, idempotency_key, request, plan, runbook, broker_version, documents, rerun_of)
       VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8::jsonb, $9)
       ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING ${COLUMNS}`,
      [thread.id, thread.owner, thread.idempotencyKey ?? null, JSON.stringify(thread.request), JSON.stringify(thread.plan), JSON.stringify(thread.runbook),
        thread.brokerVersion, JSON.stringify(thread.documents), thread.rerunOf ?? null],
    );
    const row = inserted.rows[0];
    if (!row) return undefined;
    await saveThreadCredentials(client, thread.id, thread.credentials);
    for (const s of thread.steps) {
      await client.query(
        'INSERT INTO thread_steps (thread_id, ordinal, kind, tile_order, tile_cell, site_id) VALUES ($1, $2, $3, $4, $5, $6)',
        [thread.id, s.ordinal, s.kind, s.tileOrder, s.tileCell, s.siteId],
      );
    }
    return threadRow(row);
  });
  if (made) return { thread: made, created: true };
  const existing = thread.idempotencyKey === undefined ? undefined : await threadByIdempotencyKey(pool, thread.owner, thread.idempotencyKey);
  if (!existing) throw new ConstellationError('INTERNAL', `thread ${thread.id} was neither inserted nor found under its idempotency key`);
  return { thread: existing, created: false };
}

/** The thread with this id, or undefined. */
export async function threadById(db: Queryable, id: string): Promise<ThreadRow | undefined> {
  if (!UUID.test(id)) return undefined;
  return first(await db.query<StoredThreadRow>(`SELECT ${COLUMNS} FROM threads WHERE id = $1`, [id]));
}

/** The owner's thread created under this idempotency key, or undefined. */
export async function threadByIdempotencyKey(db: Queryable, owner: string, key: string): Promise<ThreadRow | undefined> {
  return first(await db.query<StoredThreadRow>(`SELECT ${COLUMNS} FROM threads WHERE owner = $1 AND idempotency_key = $2`, [owner, key]));
}

/** An owner's threads, newest first. */
export async function threadsByOwner(db: Queryable, owner: string, filter: { states?: readonly ThreadState[]; limit: number; offset: number }): Promise<ThreadRow[]> {
  const r = await db.query<StoredThreadRow>(
    `SELECT ${COLUMNS} FROM threads WHERE owner = $1 AND ($2::text[] IS NULL OR state = ANY($2::text[]))
     ORDER BY created_at DESC, id LIMIT $3 OFFSET $4`,
    [owner, filter.states && filter.states.length > 0 ? filter.states : null, filter.limit, filter.offset],
  );
  return r.rows.map(threadRow);
}

/** A thread's steps, by ordinal. */
export async function threadSteps(db: Queryable, threadId: string): Promise<ThreadStepRow[]> {
  const r = await db.query<ThreadStepRow>(`SELECT ${STEP_COLUMNS} FROM thread_steps WHERE thread_id = $1 ORDER BY ordinal`, [threadId]);
  return r.rows;
}

/**
 * Take (or renew) the lease on an unfinished thread: when it is free, its lease ran out, or this
 * broker holds it. A QUEUED thread becomes RUNNING. Undefined when finished or held by another.
 */
export async function claimThread(db: Queryable, id: string, brokerId: string, leaseMs: number): Promise<ThreadRow | undefined> {
  return first(await db.query<StoredThreadRow>(
    `UPDATE threads SET lease_owner = $2, lease_until = now() + $3::bigint * interval '1 millisecond',
       state = CASE WHEN state = 'QUEUED' THEN 'RUNNING' ELSE state END, updated_at = now()
     WHERE id = $1 AND state IN ('QUEUED', 'RUNNING') AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $2)
     RETURNING ${COLUMNS}`,
    [id, brokerId, leaseMs],
  ));
}

/** Completed threads whose result files are past their retention: their ids and paths, oldest first. */
export async function threadResultsExpired(db: Queryable, retentionMs: number, limit: number): Promise<{ id: string; path: string }[]> {
  const r = await db.query<{ id: string; path: string }>(
    `SELECT id, result_path AS path FROM threads
     WHERE state = 'COMPLETED' AND result_path IS NOT NULL AND finished_at < now() - $1::bigint * interval '1 millisecond'
     ORDER BY finished_at, id LIMIT $2`,
    [retentionMs, limit],
  );
  return r.rows;
}

/** Record that a thread's result file was removed (its rows and bytes stay, for the record). */
export async function forgetThreadResult(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE threads SET result_path = NULL, updated_at = now() WHERE id = $1', [id]);
}

/** Give up this broker's lease on a thread (it is stopping), so another broker takes it at once. */
export async function releaseThread(db: Queryable, id: string, brokerId: string): Promise<void> {
  await db.query(`UPDATE threads SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`, [id, brokerId]);
}

/** Unfinished threads no live broker drives (no lease, or one that ran out), oldest first. */
export async function threadsDue(db: Queryable, limit: number): Promise<string[]> {
  const r = await db.query<{ id: string }>(
    `SELECT id FROM threads WHERE state IN ('QUEUED', 'RUNNING') AND (lease_until IS NULL OR lease_until < now())
     ORDER BY created_at, id LIMIT $1`,
    [limit],
  );
  return r.rows.map((row) => row.id);
}

/** Record what a step is doing (only the fields given change). */
export async function updateThreadStep(
  db: Queryable,
  threadId: string,
  ordinal: number,
  patch: Partial<Pick<ThreadStepRow, 'jobId' | 'siteId' | 'state' | 'rowsIn' | 'rowsOut' | 'bytesIn' | 'bytesOut' | 'errorCode' | 'errorMessage'>>,
): Promise<void> {
  const sets: string[] = [];
  const values: unknown[] = [threadId, ordinal];
  for (const [key, value] of Object.entries(patch)) {
    const name = STEP_FIELDS.get(key);
    if (name === undefined) continue;
    values.push(value);
    sets.push(`${name} = $${values.length}`);
  }
  if (patch.state === 'RUNNING') sets.push('started_at = COALESCE(started_at, now())');
  if (patch.state === 'COMPLETED' || patch.state === 'ERROR' || patch.state === 'ABORTED') sets.push('finished_at = COALESCE(finished_at, now())');
  if (sets.length === 0) return;
  await db.query(`UPDATE thread_steps SET ${sets.join(', ')} WHERE thread_id = $1 AND ordinal = $2`, values);
}

// The step fields updateThreadStep may set, and their columns.
const STEP_FIELDS: ReadonlyMap<string, string> = new Map([
  ['jobId', 'job_id'], ['siteId', 'site_id'], ['state', 'state'], ['rowsIn', 'rows_in'], ['rowsOut', 'rows_out'], ['bytesIn', 'bytes_in'],
  ['bytesOut', 'bytes_out'], ['errorCode', 'error_code'], ['errorMessage', 'error_message'],
]);

/**
 * End an unfinished thread (COMPLETED with its result, ERROR or ABORTED with why); the lease is
 * released. Undefined when it had already ended (cancelled meanwhile, or ended by another broker).
 */
export async function finishThread(
  db: Queryable,
  id: string,
  end: { state: 'COMPLETED'; resultPath: string; resultRows: number; resultBytes: number } | { state: 'ERROR' | 'ABORTED'; errorCode: string | null; errorMessage: string },
): Promise<ThreadRow | undefined> {
  const done = end.state === 'COMPLETED';
  return first(await db.query<StoredThreadRow>(
    `UPDATE threads SET state = $2, result_path = $3, result_rows = $4, result_bytes = $5, error_code = $6, error_message = $7,
       finished_at = now(), updated_at = now(), lease_owner = NULL, lease_until = NULL
     WHERE id = $1 AND state IN ('QUEUED', 'RUNNING') RETURNING ${COLUMNS}`,
    [id, end.state, done ? end.resultPath : null, done ? end.resultRows : null, done ? end.resultBytes : null,
      done ? null : end.errorCode, done ? null : end.errorMessage.slice(0, 8000)],
  ));
}

/** Note that the thread changed (a step moved), so followers re-read it. */
export async function touchThread(db: Queryable, id: string): Promise<ThreadRow | undefined> {
  return first(await db.query<StoredThreadRow>(`UPDATE threads SET updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`, [id]));
}
