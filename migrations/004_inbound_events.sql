-- Offboarding inputs (SCIM, Shared Signals, Okta, HR webhook) de-duplicated by the sender's
-- event id: the id is committed with the status change it caused, before the 2xx.
CREATE TABLE inbound_events (
  source text NOT NULL,
  event_id text NOT NULL,
  principal text,
  received_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, event_id)
);
