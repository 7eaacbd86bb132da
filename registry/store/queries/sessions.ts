/** Queries on browser login sessions: rows of sealed tokens, shared by every broker replica. */
import type { Queryable } from '../db.js';

/** A session row; the token columns hold sealed values, never plain tokens. */
export interface SessionRow {
  id: string;
  subject: string;
  issuer: string;
  accessToken: string;
  refreshToken: string | null;
  idToken: string | null;
  accessExpiresAt: Date;
  expiresAt: Date;
  refreshingUntil: Date | null;
}

/** What a new session holds. */
export interface NewSession {
  id: string;
  subject: string;
  issuer: string;
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  accessExpiresAt: Date;
  expiresAt: Date;
}

/** The sealed tokens a refresh produced. */
export interface RefreshedTokens {
  accessToken: string;
  /** Undefined keeps the stored refresh token (a provider that does not rotate them sends none). */
  refreshToken?: string;
  idToken?: string;
  accessExpiresAt: Date;
}

const COLUMNS = `id, subject, issuer, access_token AS "accessToken", refresh_token AS "refreshToken", id_token AS "idToken",
  access_expires_at AS "accessExpiresAt", expires_at AS "expiresAt", refreshing_until AS "refreshingUntil"`;

/** Store a new session. */
export async function insertSession(db: Queryable, s: NewSession): Promise<void> {
  await db.query(
    `INSERT INTO sessions (id, subject, issuer, access_token, refresh_token, id_token, access_expires_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [s.id, s.subject, s.issuer, s.accessToken, s.refreshToken ?? null, s.idToken ?? null, s.accessExpiresAt, s.expiresAt],
  );
}

/** A session that has not ended, or undefined; notes that it was seen (at most once a minute, to spare writes). */
export async function findSession(db: Queryable, id: string): Promise<SessionRow | undefined> {
  const found = (await db.query<SessionRow & { stale: boolean }>(
    `SELECT ${COLUMNS}, last_seen_at < now() - interval '1 minute' AS stale FROM sessions WHERE id = $1 AND expires_at > now()`, [id])).rows[0];
  if (!found) return undefined;
  const { stale, ...row } = found;
  if (stale) await db.query(`UPDATE sessions SET last_seen_at = now() WHERE id = $1`, [id]);
  return row;
}

/**
 * Claim the right to refresh a session for `leaseMs`: only when its access token expires within
 * `withinMs` and no other broker holds an unexpired claim. Returns the row when claimed.
 */
export async function claimRefresh(db: Queryable, id: string, withinMs: number, leaseMs: number): Promise<SessionRow | undefined> {
  return (
    await db.query<SessionRow>(
      `UPDATE sessions SET refreshing_until = now() + $3::bigint * interval '1 millisecond'
       WHERE id = $1 AND expires_at > now()
         AND access_expires_at < now() + $2::bigint * interval '1 millisecond'
         AND (refreshing_until IS NULL OR refreshing_until < now())
       RETURNING ${COLUMNS}`,
      [id, withinMs, leaseMs],
    )
  ).rows[0];
}

/** Store refreshed tokens and release the claim. */
export async function storeRefreshed(db: Queryable, id: string, t: RefreshedTokens): Promise<void> {
  await db.query(
    `UPDATE sessions SET access_token = $2, refresh_token = COALESCE($3, refresh_token), id_token = COALESCE($4, id_token),
       access_expires_at = $5, refreshing_until = NULL, last_seen_at = now()
     WHERE id = $1`,
    [id, t.accessToken, t.refreshToken ?? null, t.idToken ?? null, t.accessExpiresAt],
  );
}

/** Release a refresh claim without changing the tokens (the refresh failed for a passing reason). */
export async function releaseRefresh(db: Queryable, id: string): Promise<void> {
  await db.query(`UPDATE sessions SET refreshing_until = NULL WHERE id = $1`, [id]);
}

/** End a session; returns the row it had (undefined when there was none). */
export async function deleteSession(db: Queryable, id: string): Promise<SessionRow | undefined> {
  return (await db.query<SessionRow>(`DELETE FROM sessions WHERE id = $1 RETURNING ${COLUMNS}`, [id])).rows[0];
}

/** Remove sessions past their end; returns how many. */
export async function deleteExpiredSessions(db: Queryable): Promise<number> {
  return (await db.query(`DELETE FROM sessions WHERE expires_at <= now()`)).rowCount ?? 0;
}
