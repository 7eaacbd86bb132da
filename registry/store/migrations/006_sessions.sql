-- Browser login sessions (issue 10), in the database so every broker replica sharing it knows
-- them. The cookie carries only the signed id; the tokens are sealed (AES-256-GCM) under
-- CONSTELLATION_SECRET_KEY and bound to the session id, so a database dump alone reveals none.

CREATE TABLE sessions (
  -- 32 random bytes, base64url.
  id text PRIMARY KEY,
  -- The user's `sub` at the issuer, and the issuer itself (a session never outlives a change of provider).
  subject text NOT NULL,
  issuer text NOT NULL,
  access_token text NOT NULL,
  refresh_token text,
  id_token text,
  access_expires_at timestamptz NOT NULL,
  -- The session ends here whatever happens (the cookie's Max-Age says the same).
  expires_at timestamptz NOT NULL,
  -- Set while one broker refreshes the tokens, so another replica waits for it instead of
  -- spending the same refresh token twice (a provider that rotates them would revoke the grant).
  refreshing_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_subject ON sessions (subject);
