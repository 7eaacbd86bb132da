-- The registry version at which a site's advertised rows (services, replicas, columns, coverage,
-- compute, images) last changed, beside registry_version (at which anything of the site did).
-- A republish that writes no row (a harvest where only asOf moved) and a health change move only
-- registry_version: the in-memory view then takes the site's own row and keeps its replicas.
ALTER TABLE sites ADD COLUMN rows_version bigint NOT NULL DEFAULT 0;
UPDATE sites SET rows_version = registry_version;
