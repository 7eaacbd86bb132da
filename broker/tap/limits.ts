/**
 * What one owner may keep in async TAP jobs, and the times a job may ask for (UWS lets the
 * service choose: a value over a bound is lowered to it, and the job document shows the value kept).
 */
import { invalidArgument } from '../../registry/model/errors.js';

/** Live (not yet destroyed) async jobs one owner may hold; a further POST /tap/async is refused. */
export const MAX_LIVE_JOBS_PER_OWNER = 100;
/**
 * Bytes of uploaded tables and kept local results one owner's live jobs may hold together. The
 * job cap alone would allow 100 × (8 MB upload + 16 MB result); this keeps one owner's share of
 * the database to a fixed, smaller amount.
 */
export const MAX_STORED_BYTES_PER_OWNER = 128 * 1024 * 1024;
/** Largest result of a query of local tables that a job keeps (the query itself stops at 100,000 rows). */
export const MAX_LOCAL_RESULT_BYTES = 16 * 1024 * 1024;
/** The default and the longest EXECUTIONDURATION (seconds); 0 (unlimited) means the longest. */
export const DEFAULT_EXECUTION_DURATION_S = 3600;
export const MAX_EXECUTION_DURATION_S = 24 * 3600;
/** How long a job is kept by default, and the furthest DESTRUCTION a client may set. */
export const DEFAULT_RETENTION_MS = 7 * 86_400_000;
export const MAX_RETENTION_MS = 30 * 86_400_000;
/** Most jobs one job list answers (LAST above it is lowered to it). */
export const MAX_LISTED_JOBS = 1000;

/** EXECUTIONDURATION as given (a non-negative whole number of seconds), as kept: 0 and anything over the longest become the longest. */
export function executionDurationOf(value: string): number {
  const v = value.trim();
  if (!/^\d+$/.test(v)) throw invalidArgument('EXECUTIONDURATION', `must be a non-negative whole number of seconds, not "${value.slice(0, 40)}"`);
  // Compared as digits first: a 30-digit number is over the bound without becoming a float.
  const n = v.length > 9 ? Infinity : Number(v);
  return n === 0 || n > MAX_EXECUTION_DURATION_S ? MAX_EXECUTION_DURATION_S : n;
}

/** DESTRUCTION as given (an ISO 8601 time), as kept: no later than MAX_RETENTION_MS from `now`. */
export function destructionOf(value: string, now = Date.now()): Date {
  const at = new Date(value);
  if (!/^\d{4}-\d\d-\d\dT/.test(value) || Number.isNaN(at.getTime())) throw invalidArgument('DESTRUCTION', `must be an ISO 8601 time, not "${value.slice(0, 40)}"`);
  return at.getTime() > now + MAX_RETENTION_MS ? new Date(now + MAX_RETENTION_MS) : at;
}

/** LAST as given (a positive integer), as used: at most MAX_LISTED_JOBS. */
export function lastOf(value: string): number {
  const v = value.trim();
  if (!/^\d+$/.test(v) || /^0+$/.test(v)) throw invalidArgument('LAST', `must be a positive integer, not "${value.slice(0, 40)}"`);
  return v.length > 9 ? MAX_LISTED_JOBS : Math.min(Number(v), MAX_LISTED_JOBS);
}
