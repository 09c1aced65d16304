-- What a chain rests on through actor tokens (RFC 8693 actor_token): `acting`, the principals
-- before its sponsor and subject, whose offboarding cuts it off like its sponsor's; and
-- `actor_tokens`, the actor tokens with their ancestors, whose revocation cuts it off like an
-- ancestor's. Both null for the chains no actor token acted in, which the partial indexes leave out.
ALTER TABLE tokens ADD COLUMN acting text[], ADD COLUMN actor_tokens text[];
CREATE INDEX tokens_acting ON tokens USING gin (acting) WHERE acting IS NOT NULL;
CREATE INDEX tokens_actor_tokens ON tokens USING gin (actor_tokens) WHERE actor_tokens IS NOT NULL;
