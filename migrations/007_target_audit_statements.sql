-- How the PostgreSQL gateway records statements of a target: their text, or only a
-- fingerprint (for databases whose statements carry personal data in literals).
ALTER TABLE targets ADD COLUMN audit_statements text NOT NULL DEFAULT 'text' CHECK (audit_statements IN ('text', 'fingerprint'));
