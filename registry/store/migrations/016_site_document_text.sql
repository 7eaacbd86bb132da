-- A site's document history stored as the text it was published as, beside its digest: the jsonb
-- form was parsed and re-encoded by the server at every publish (2.3 to 2.8 ms of each, the
-- largest single statement of a republish) though nothing queries inside it; it is only ever read
-- whole. Older rows keep their jsonb; each row holds exactly one of the two.
ALTER TABLE site_documents ADD COLUMN body text;
ALTER TABLE site_documents ALTER COLUMN document DROP NOT NULL;
ALTER TABLE site_documents ADD CONSTRAINT site_documents_one_body CHECK ((document IS NULL) <> (body IS NULL));
-- lz4 compresses a 50 kB document about as small as pglz at a fraction of the time, where the
-- server was built with it (PostgreSQL 14 and later); elsewhere the default stays.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
    ALTER TABLE site_documents ALTER COLUMN body SET COMPRESSION lz4;
  END IF;
END $$;
