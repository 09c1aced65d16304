-- One id per deployment (per database): it scopes the Redis channels that carry change
-- announcements and confirmations, so deployments sharing a Redis never hear each other.
INSERT INTO settings (key, value) VALUES ('deployment_id', gen_random_uuid()::text) ON CONFLICT (key) DO NOTHING;
