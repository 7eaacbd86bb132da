-- A harvest run is held under a lease its broker renews while the harvest runs. A broker that
-- dies without recording the end (SIGKILL, a lost machine) leaves the run RUNNING; once its
-- lease has lapsed any broker closes it FAILED (CONSTELLATION_E_HARVEST_ABANDONED).
ALTER TABLE harvest_runs ADD COLUMN owner text;
ALTER TABLE harvest_runs ADD COLUMN lease_until timestamptz;
-- Runs left RUNNING before leases existed: none runs for an hour (harvest.timeoutS is at most one).
UPDATE harvest_runs SET lease_until = started_at + interval '1 hour' WHERE outcome = 'RUNNING';
CREATE INDEX harvest_runs_running ON harvest_runs (lease_until) WHERE outcome = 'RUNNING';
