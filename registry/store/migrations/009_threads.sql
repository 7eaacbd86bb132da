-- Cross-match threads (issue 11): one row per thread a user started, and one per step it runs.
-- A step that runs at a site is an ordinary job (jobs.id); the thread only records which.

CREATE TABLE threads (
  id uuid PRIMARY KEY,
  owner text NOT NULL,
  idempotency_key text,
  state text NOT NULL DEFAULT 'QUEUED'
    CHECK (state IN ('QUEUED', 'RUNNING', 'COMPLETED', 'ERROR', 'ABORTED')),
  -- The request as the caller gave it, and the strategy plan the thread runs (every candidate listed).
  request jsonb NOT NULL,
  plan jsonb NOT NULL,
  -- What the thread runs: the chosen strategy's sites, tables, tiles and ADQL (see broker/threads/runbook.ts).
  runbook jsonb NOT NULL,
  result_path text,
  result_rows bigint,
  result_bytes bigint,
  error_code text,
  error_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- The broker driving the thread holds it until then; after that any broker may take it over.
  lease_owner text,
  lease_until timestamptz,
  UNIQUE (owner, idempotency_key)
);

CREATE INDEX threads_owner_created ON threads (owner, created_at DESC, id);
CREATE INDEX threads_unfinished ON threads (lease_until) WHERE state IN ('QUEUED', 'RUNNING');

CREATE TABLE thread_steps (
  thread_id uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
  ordinal integer NOT NULL,
  kind text NOT NULL CHECK (kind IN ('site-read', 'site-join', 'upload-join', 'match')),
  -- The tile's NESTED cell and order (order NULL: the whole region as one step).
  tile_order integer,
  tile_cell bigint NOT NULL DEFAULT 0,
  site_id text,
  job_id uuid REFERENCES jobs (id) ON DELETE SET NULL,
  state text NOT NULL DEFAULT 'QUEUED'
    CHECK (state IN ('QUEUED', 'RUNNING', 'COMPLETED', 'ERROR', 'ABORTED')),
  rows_in bigint,
  rows_out bigint,
  bytes_in bigint,
  bytes_out bigint,
  error_code text,
  error_message text,
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (thread_id, ordinal)
);

CREATE INDEX thread_steps_job ON thread_steps (job_id);
