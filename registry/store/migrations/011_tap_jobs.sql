-- The TAP facade's UWS jobs (issue 12): a TAP job holds its parameters while PENDING; PHASE=RUN
-- makes it an ordinary broker job (jobs.id), whose state is then the TAP job's phase.

CREATE TABLE tap_jobs (
  id uuid PRIMARY KEY,
  owner text NOT NULL,
  -- The TAP parameters as the caller gave them (upper-case keys), uploads excepted.
  params jsonb NOT NULL,
  -- One uploaded table (TAP_UPLOAD.<upload_name>), as the VOTable text the caller sent.
  upload_name text,
  upload_votable text,
  -- PENDING before the job runs; COMPLETED for a query of local tables (answered when its result is read),
  -- ERROR or ABORTED when it never became a broker job; once job_id is set the broker job's state rules.
  phase text NOT NULL DEFAULT 'PENDING' CHECK (phase IN ('PENDING', 'COMPLETED', 'ERROR', 'ABORTED')),
  job_id uuid REFERENCES jobs (id) ON DELETE SET NULL,
  error_message text,
  execution_duration integer NOT NULL,
  destruction timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz
);

CREATE INDEX tap_jobs_owner_created ON tap_jobs (owner, created_at DESC, id);
CREATE INDEX tap_jobs_destruction ON tap_jobs (destruction);
