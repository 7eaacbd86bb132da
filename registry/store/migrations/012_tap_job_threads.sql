-- An async TAP job whose query is a positional join of catalogues held at different sites runs
-- as its owner's cross-match thread (issue 12) instead of a broker job: once thread_id is set
-- the thread's state is the TAP job's phase. thread_join keeps how the thread's result rows
-- become the query's rows (broker/tap/crossmatch-join.ts: columns, further cones, TOP), fixed
-- at RUN so the result reads the same whatever the catalogue says later.

ALTER TABLE tap_jobs
  ADD COLUMN thread_id uuid REFERENCES threads (id) ON DELETE SET NULL,
  ADD COLUMN thread_join jsonb;

CREATE INDEX tap_jobs_thread ON tap_jobs (thread_id);
