-- Hardening of the TAP facade's async jobs (review findings 2, 6, 7):
--  * a query of local tables only (TAP_SCHEMA, rr, an upload alone) runs at RUN: EXECUTING while
--    it runs, then COMPLETED with its bytes kept in result (bounded by broker/tap/limits.ts) and
--    served from there, or ERROR;
--  * timed_out_at marks a job the periodic clean-up found running past its EXECUTIONDURATION, so
--    that exactly one broker (the one whose UPDATE … RETURNING got the row) aborts what it runs.

ALTER TABLE tap_jobs DROP CONSTRAINT tap_jobs_phase_check;
ALTER TABLE tap_jobs ADD CONSTRAINT tap_jobs_phase_check CHECK (phase IN ('PENDING', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED'));

ALTER TABLE tap_jobs
  ADD COLUMN result bytea,
  ADD COLUMN result_type text,
  ADD COLUMN timed_out_at timestamptz;

-- The clean-up's search for jobs past their duration reads only started, not yet timed-out jobs.
CREATE INDEX tap_jobs_running ON tap_jobs (started_at) WHERE started_at IS NOT NULL AND timed_out_at IS NULL;
