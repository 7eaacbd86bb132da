-- Jobs: one row per submitted query or container job, its state machine and its history.

CREATE TABLE jobs (
  id uuid PRIMARY KEY,
  owner text NOT NULL DEFAULT 'anonymous',
  kind text NOT NULL CHECK (kind IN ('QUERY', 'CONTAINER')),
  state text NOT NULL DEFAULT 'PENDING'
    CHECK (state IN ('PENDING', 'QUEUED', 'EXECUTING', 'COMPLETED', 'ERROR', 'ABORTED')),
  request jsonb NOT NULL,
  -- The candidate sites in the order they are tried, as the plan gave them.
  plan jsonb NOT NULL,
  candidate_index integer NOT NULL DEFAULT 0,
  site_id text,
  site_job_id text,
  site_phase text,
  idempotency_key text,
  error_code text,
  error_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Set just before a site is asked to create the job: a crash between that and recording
  -- site_job_id leaves an uncertain submission that must not be blindly repeated.
  submitted_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  next_poll_at timestamptz,
  lease_owner text,
  lease_until timestamptz,
  poll_failures integer NOT NULL DEFAULT 0,
  unreachable_since timestamptz,
  -- A retried submit with the same key finds this row instead of creating a second job.
  UNIQUE (owner, idempotency_key)
);

CREATE INDEX jobs_owner_created ON jobs (owner, created_at DESC, id);
-- Only unfinished jobs are polled; a partial index keeps the poller's scan small.
CREATE INDEX jobs_due ON jobs (next_poll_at) WHERE state IN ('PENDING', 'QUEUED', 'EXECUTING');

CREATE TABLE job_events (
  id bigserial PRIMARY KEY,
  job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  from_state text,
  to_state text NOT NULL,
  site_id text,
  error_code text,
  message text
);

CREATE INDEX job_events_job ON job_events (job_id, id);

-- Every recorded event is pushed to brokers listening on constellation_jobs (subscriptions
-- fan out across replicas); the payload is small, listeners re-read the row.
CREATE FUNCTION constellation_job_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('constellation_jobs', json_build_object(
    'jobId', NEW.job_id, 'eventId', NEW.id, 'from', NEW.from_state, 'to', NEW.to_state)::text);
  RETURN NEW;
END;
$$;

CREATE TRIGGER job_events_notify AFTER INSERT ON job_events
  FOR EACH ROW EXECUTE FUNCTION constellation_job_event_notify();
