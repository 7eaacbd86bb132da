-- Provenance, re-run and kept credentials of cross-match threads (issue 11, points 5 and 6).

-- The broker version that started the thread, the capability document (id and sha256 digest)
-- each site of its runbook had when it was planned, the thread it re-runs, and the result's
-- order-independent checksum (sum mod 2^64 of a 64-bit hash per row, hex).
ALTER TABLE threads ADD COLUMN broker_version text;
ALTER TABLE threads ADD COLUMN documents jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE threads ADD COLUMN rerun_of uuid REFERENCES threads (id) ON DELETE SET NULL;
ALTER TABLE threads ADD COLUMN result_checksum text;

-- The same checksum over each step's result rows (a read, a join, or the broker's match).
ALTER TABLE thread_steps ADD COLUMN checksum text;

-- The owner's site credentials resolved when the thread started, sealed ('job-credentials',
-- "thread:<thread_id>|<site_id>" as associated data), so whichever broker drives the thread
-- submits every step as the owner, also after another broker took the thread over.
CREATE TABLE thread_credentials (
  thread_id uuid NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
  site_id text NOT NULL,
  sealed text NOT NULL,
  expires_at timestamptz,
  PRIMARY KEY (thread_id, site_id)
);
