-- The key of the PostgreSQL gateway's `hash` mask: 32 bytes, one per deployment (per database),
-- so every gateway process gives a value the same digest and no one without the key can
-- hash candidate values to reverse it. PostgreSQL 15 has no core function for random bytes
-- (gen_random_bytes is pgcrypto's); gen_random_uuid draws 122 bits from pg_strong_random,
-- so two of them, hashed to spread them over 32 bytes, carry 244.
INSERT INTO settings (key, value) VALUES ('mask_key', encode(sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())), 'hex')) ON CONFLICT (key) DO NOTHING;
