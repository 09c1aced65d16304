-- The principals a chain rests on through actor tokens (RFC 8693 actor_token), before its
-- sponsor and subject: offboarding one of them cuts the chain off like offboarding its sponsor.
-- Null for the chains no actor token acted in, which the partial index leaves out.
ALTER TABLE tokens ADD COLUMN acting text[];
CREATE INDEX tokens_acting ON tokens USING gin (acting) WHERE acting IS NOT NULL;
