-- Targets: named upstreams behind the gateway. `headers` hold the upstream credential and
-- never leave the broker and gateway processes.
CREATE TABLE targets (
  name text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('http', 'postgres', 'ssh')),
  upstream text NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}',
  policy jsonb NOT NULL DEFAULT '{"rules": []}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
