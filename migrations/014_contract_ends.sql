-- A human whose `ends_at` has passed counts as offboarded at once, by every process's clock;
-- the broker then records the offboarding (src/broker/contract-ends.ts). This index finds the
-- active humans whose end has come without reading every principal each time it looks.
CREATE INDEX principals_ends_at ON principals (ends_at) WHERE ends_at IS NOT NULL AND status = 'active';
