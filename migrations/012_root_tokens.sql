-- The newest live chain naming a principal as subject or sponsor is found among root tokens
-- alone (every chain has its root's subject, sponsor and rooted_at, and a root outlives its
-- descendants): a cut-off reads the principal's live roots, not every token below them.
CREATE INDEX tokens_root_sub_exp ON tokens (sub, exp) INCLUDE (rooted_at) WHERE depth = 0;
CREATE INDEX tokens_root_sponsor_exp ON tokens (sponsor, exp) INCLUDE (rooted_at) WHERE depth = 0 AND sponsor IS NOT NULL;
