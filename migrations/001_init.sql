-- Lineage schema: identities, clients, signing keys, the token lineage tree, revocations,
-- and the change log that feeds every process's live-status view.

CREATE TABLE settings (
  key text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE principals (
  id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('human', 'service')),
  email text UNIQUE,
  external_id text UNIQUE,
  sponsor text REFERENCES principals (id),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'offboarded')),
  ends_at timestamptz,
  -- Chains rooted at or before this instant stay cut off, even after a reinstatement.
  cut_off_at timestamptz,
  grants text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'service') = (sponsor IS NOT NULL))
);
CREATE INDEX principals_sponsor ON principals (sponsor) WHERE sponsor IS NOT NULL;

CREATE TABLE clients (
  client_id text PRIMARY KEY,
  principal text NOT NULL REFERENCES principals (id),
  secret_hash bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  alg text NOT NULL,
  private_pkcs8 text NOT NULL,
  public_jwk jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

-- One row per token ever issued: the lineage tree. `exp`/`iat` are epoch seconds, as in the JWT.
CREATE TABLE tokens (
  jti text PRIMARY KEY,
  parent text,
  root text NOT NULL,
  depth integer NOT NULL,
  sub text NOT NULL,
  sponsor text,
  client_id text,
  actor text,
  scope text NOT NULL,
  aud text[] NOT NULL,
  ancestors text[] NOT NULL,
  iat bigint NOT NULL,
  exp bigint NOT NULL,
  -- When the root of this chain was issued, epoch ms (the lineage claim's rooted_at).
  rooted_at bigint NOT NULL,
  context jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX tokens_parent ON tokens (parent) WHERE parent IS NOT NULL;
-- Counting a principal's live tokens (the "revoked" of an offboarding) reads only these.
CREATE INDEX tokens_sub_exp ON tokens (sub, exp) INCLUDE (rooted_at);
CREATE INDEX tokens_sponsor_exp ON tokens (sponsor, exp) INCLUDE (rooted_at) WHERE sponsor IS NOT NULL;

-- A revoked token cuts off its whole subtree. Kept until `exp`: no descendant outlives it.
CREATE TABLE revocations (
  jti text PRIMARY KEY,
  exp bigint NOT NULL,
  reason text,
  revoked_by text NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revocations_exp ON revocations (exp);

-- Append-only change log. `change_head` hands out sequence numbers under a row lock, so
-- numbers are gap-free and commit in order: a reader that sees N has seen everything before N.
CREATE TABLE change_head (
  id integer PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL
);
INSERT INTO change_head (id, seq) VALUES (1, 0);

CREATE TABLE changes (
  seq bigint PRIMARY KEY,
  kind text NOT NULL,
  data jsonb NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
