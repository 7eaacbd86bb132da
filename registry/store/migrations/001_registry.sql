-- The registry: what each site advertises, replaced whole on every publish.

CREATE TABLE registry_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- Bumped by every publish; readers compare it to know when cached views are stale.
  version bigint NOT NULL
);
INSERT INTO registry_state (singleton, version) VALUES (true, 0);

CREATE TABLE sites (
  id text PRIMARY KEY,
  name text NOT NULL,
  platform text NOT NULL,
  url text,
  location_lat double precision,
  location_lon double precision,
  contact text,
  status text NOT NULL DEFAULT 'UNKNOWN' CHECK (status IN ('UP', 'DEGRADED', 'DOWN', 'UNKNOWN')),
  -- Where the current advertised state came from: a shipped seed, a harvest or a publish.
  origin text CHECK (origin IN ('seed', 'harvest', 'publish')),
  as_of timestamptz,
  published_at timestamptz,
  registry_version bigint NOT NULL DEFAULT 0,
  consecutive_failures integer NOT NULL DEFAULT 0
);

-- Every accepted document, newest kept; pruned to the last few per site on publish.
CREATE TABLE site_documents (
  id bigserial PRIMARY KEY,
  site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  origin text NOT NULL CHECK (origin IN ('seed', 'harvest', 'publish')),
  digest text NOT NULL,
  as_of timestamptz,
  received_at timestamptz NOT NULL DEFAULT now(),
  document jsonb NOT NULL
);
CREATE INDEX site_documents_site ON site_documents (site_id, id DESC);

CREATE TABLE services (
  site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  id text NOT NULL,
  type text NOT NULL,
  url text NOT NULL,
  standard_id text,
  title text,
  upload boolean NOT NULL DEFAULT false,
  async boolean NOT NULL DEFAULT false,
  max_rec bigint,
  upload_limit_bytes bigint,
  languages text[] NOT NULL DEFAULT '{}',
  formats text[] NOT NULL DEFAULT '{}',
  auth text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (site_id, id)
);

-- Canonical datasets: one row per canonical id, shared by every site that holds a replica.
CREATE TABLE datasets (
  id text PRIMARY KEY,
  title text,
  description text
);

CREATE TABLE replicas (
  id bigserial PRIMARY KEY,
  dataset_id text NOT NULL REFERENCES datasets (id),
  site_id text NOT NULL,
  service_id text NOT NULL,
  local_table text NOT NULL,
  title text,
  description text,
  rows bigint,
  row_bytes integer,
  ra_column text,
  dec_column text,
  public boolean NOT NULL,
  groups text[] NOT NULL DEFAULT '{}',
  UNIQUE (site_id, dataset_id),
  FOREIGN KEY (site_id, service_id) REFERENCES services (site_id, id) ON DELETE CASCADE
);
CREATE INDEX replicas_dataset ON replicas (dataset_id);

CREATE TABLE replica_columns (
  replica_id bigint NOT NULL REFERENCES replicas (id) ON DELETE CASCADE,
  ordinal integer NOT NULL,
  name text NOT NULL,
  canonical text,
  datatype text,
  arraysize text,
  xtype text,
  unit text,
  ucd text,
  description text,
  indexed boolean,
  PRIMARY KEY (replica_id, ordinal)
);
CREATE INDEX replica_columns_ucd ON replica_columns (ucd);

CREATE TABLE coverage (
  replica_id bigint PRIMARY KEY REFERENCES replicas (id) ON DELETE CASCADE,
  -- Normalised IVOA MOC 2.0 ASCII.
  moc text NOT NULL,
  sky_fraction double precision NOT NULL
);

CREATE TABLE compute_pools (
  site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  id text NOT NULL,
  kind text NOT NULL,
  service_id text,
  cores integer NOT NULL,
  memory_gb double precision NOT NULL,
  gpus integer NOT NULL DEFAULT 0,
  free_cores integer,
  free_memory_gb double precision,
  queue_wait_s double precision,
  max_walltime_s integer,
  max_cores_per_job integer,
  max_memory_gb_per_job double precision,
  PRIMARY KEY (site_id, id)
);

CREATE TABLE images (
  site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  ref text NOT NULL,
  digest text,
  arch text,
  types text[] NOT NULL,
  software text[] NOT NULL DEFAULT '{}',
  compute text[],
  PRIMARY KEY (site_id, ref)
);
CREATE INDEX images_digest ON images (digest);

CREATE TABLE harvest_runs (
  id bigserial PRIMARY KEY,
  site_id text NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
  trigger text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  outcome text NOT NULL CHECK (outcome IN ('RUNNING', 'OK', 'NOT_MODIFIED', 'FAILED', 'INVALID')),
  error_code text,
  error_message text,
  bytes bigint,
  duration_ms integer
);
CREATE INDEX harvest_runs_site ON harvest_runs (site_id, id DESC);
