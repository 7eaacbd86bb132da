-- Where a job's result was staged (issue 10, point 5): one row per job that asked for
-- `stageTo`, written when staging starts and completed with the place the site gave it, or
-- with the coded error it failed with. A separate table, so the jobs table stays as it is.

CREATE TABLE job_staging (
  job_id uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
  site_id text NOT NULL,
  name text NOT NULL,
  state text NOT NULL CHECK (state IN ('STAGING', 'DONE', 'FAILED')),
  -- The platform's own name for the place: MyDB.t, mydb://t, vos://cadc.nrc.ca~vault/user/f.vot.
  location text,
  bytes bigint,
  error_code text,
  error_message text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  -- A broker staging the result holds it until then; after that another may take it over.
  lease_until timestamptz
);
