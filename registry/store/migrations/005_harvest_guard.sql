-- Harvests as the truth for a harvested site (issue 9, findings 9 and 10).

-- HELD: a harvest that would remove too many datasets, kept for confirmation and not applied.
-- RESTORED: the site answered 304 but its stored document was not the harvested one, so the
-- harvested state was put back.
ALTER TABLE harvest_runs DROP CONSTRAINT harvest_runs_outcome_check;
ALTER TABLE harvest_runs ADD CONSTRAINT harvest_runs_outcome_check
  CHECK (outcome IN ('RUNNING', 'OK', 'NOT_MODIFIED', 'RESTORED', 'HELD', 'FAILED', 'INVALID'));

-- What the last applied harvest stored: the digest of its document (to tell it from one
-- published since) and its local table names (what a later harvest is measured against).
ALTER TABLE sites ADD COLUMN harvested_digest text;
ALTER TABLE sites ADD COLUMN harvested_tables text[];
