-- Per-user site credentials, sealed with AES-256-GCM under CONSTELLATION_SECRET_KEY (the
-- plaintext never reaches the database): the tokens users link to a site, and the credential
-- each job runs with at each of its candidate sites, so any broker sharing the database (or one
-- restarted) can poll, cancel and read the job as its submitter.

CREATE TABLE site_credentials (
  -- ownerOf(identity): 'user:<sub>'.
  owner text NOT NULL,
  site_id text NOT NULL,
  -- keyId.iv.tag.ciphertext, sealed for 'site-credentials' with "<owner>|<site_id>" as associated data.
  sealed text NOT NULL,
  linked_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (owner, site_id)
);

CREATE TABLE job_credentials (
  job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  site_id text NOT NULL,
  -- The SiteCredential as JSON, sealed for 'job-credentials' with "<job_id>|<site_id>" as associated data.
  sealed text NOT NULL,
  -- When the credential stops working (an exchanged token's expiry); null when unknown.
  expires_at timestamptz,
  PRIMARY KEY (job_id, site_id)
);
