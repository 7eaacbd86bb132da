-- Harvesting: cache validators per site, and one claim per scheduled tick across brokers.

ALTER TABLE sites ADD COLUMN harvest_validators jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE sites ADD COLUMN status_changed_at timestamptz;

-- A scheduled harvest of a site at a tick is run by whichever broker inserts the row first.
CREATE TABLE harvest_ticks (
  site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  tick timestamptz NOT NULL,
  claimed_by text NOT NULL,
  PRIMARY KEY (site_id, tick)
);
