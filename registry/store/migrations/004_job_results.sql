-- Finished synchronous query results, kept by the broker so /results serves them again without
-- asking the site a second time. In the database (not on one broker's disk), so every broker
-- sharing it serves them; in chunks, so a result is written and read in constant memory.

CREATE TABLE job_results (
  job_id uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  content_type text NOT NULL,
  bytes bigint NOT NULL DEFAULT 0,
  chunks integer NOT NULL DEFAULT 0,
  -- False while the chunks are being written: readers serve only complete results.
  complete boolean NOT NULL DEFAULT false,
  stored_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Set when the retention clean-up removed the chunks; the row stays to say when.
  expired_at timestamptz
);
CREATE INDEX job_results_expiry ON job_results (expires_at) WHERE expired_at IS NULL;

CREATE TABLE job_result_chunks (
  job_id uuid NOT NULL REFERENCES job_results (job_id) ON DELETE CASCADE,
  seq integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (job_id, seq)
);
