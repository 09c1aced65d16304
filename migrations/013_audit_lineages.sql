-- Each audit record names its lineage (root, principals, actors) by reference to one row of
-- `audit_lineages`: a token's records all name the same lineage, and indexing root and
-- principals on every record (a b-tree and a GIN index) cost PostgreSQL about as much again as
-- the rest of the record. The filters by root and principal now find lineages first, then
-- their records by `(lineage, seq)`. The view `audit` still shows every record with its
-- lineage's fields, as the table did; hashes are unchanged, and an edited or removed lineage
-- breaks the hash of every record naming it (`lineage audit verify`). No foreign key: its
-- check on every record would cost what this saves, and verification finds what it guards.
CREATE TABLE audit_lineages (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  root text,
  principals text[] NOT NULL,
  actors text[] NOT NULL
);

INSERT INTO audit_lineages (root, principals, actors) SELECT DISTINCT root, principals, actors FROM audit;

ALTER TABLE audit RENAME TO audit_records;

ALTER TABLE audit_records ADD COLUMN lineage bigint;

UPDATE audit_records r SET lineage = l.id FROM audit_lineages l
  WHERE l.root IS NOT DISTINCT FROM r.root AND l.principals = r.principals AND l.actors = r.actors;

ALTER TABLE audit_records ALTER COLUMN lineage SET NOT NULL, DROP COLUMN root, DROP COLUMN principals, DROP COLUMN actors;

CREATE INDEX audit_records_lineage ON audit_records (lineage, seq);

CREATE INDEX audit_lineages_root ON audit_lineages (root);

CREATE INDEX audit_lineages_principals ON audit_lineages USING gin (principals);

CREATE VIEW audit AS
  SELECT r.seq, r.at, r.kind, r.decision, r.status, r.target, r.method, r.path, r.jti, l.root, l.principals, l.actors, r.detail, r.hash
  FROM audit_records r JOIN audit_lineages l ON l.id = r.lineage;
