-- The audit trail: every exchange, revocation, status change and gateway decision, with the
-- token's whole lineage. Each record's hash covers the previous record's hash, so an edited,
-- removed or reordered record breaks the chain (`lineage audit verify`).
CREATE TABLE audit (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  kind text NOT NULL,
  decision text,
  status integer,
  target text,
  method text,
  path text,
  jti text,
  root text,
  principals text[] NOT NULL DEFAULT '{}',
  actors text[] NOT NULL DEFAULT '{}',
  detail jsonb NOT NULL DEFAULT '{}',
  hash text NOT NULL
);
CREATE INDEX audit_root ON audit (root, seq);
CREATE INDEX audit_jti ON audit (jti, seq);
CREATE INDEX audit_target ON audit (target, seq);
CREATE INDEX audit_principals ON audit USING gin (principals);

-- The chain's head: writers take this row's lock, so records from every process form one chain.
CREATE TABLE audit_head (
  id integer PRIMARY KEY CHECK (id = 1),
  seq bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
