-- Shared Signals transmitters whose Security Event Tokens `/ssf/events` accepts. The expected
-- Authorization header is kept as a SHA-256 hash.
CREATE TABLE transmitters (
  id text PRIMARY KEY,
  issuer text NOT NULL UNIQUE,
  audience text NOT NULL,
  jwks jsonb,
  jwks_uri text,
  authorization_sha256 bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((jwks IS NULL) <> (jwks_uri IS NULL))
);
