import t from 'tap'
import { classify, loadClassifier } from '../../../src/gateway/pg/classify.js'

await loadClassifier()

function classes (sqls: string[]): Record<string, string> {
  return Object.fromEntries(sqls.map((s) => [s, classify(s).class]))
}
const all = (sqls: string[], c: string): Record<string, string> => Object.fromEntries(sqls.map((s) => [s, c]))

t.test('creating, replacing or moving anything into pg_catalog or information_schema is admin: every session uses what they hold', async (t) => {
  const sqls = [
    'CREATE OR REPLACE VIEW pg_catalog.pg_tables AS SELECT 1',
    "CREATE FUNCTION pg_catalog.lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1'",
    "CREATE PROCEDURE information_schema.p() LANGUAGE sql AS 'SELECT 1'",
    'CREATE TABLE information_schema.x (a int)',
    'CREATE TABLE pg_catalog.ta AS SELECT 1',
    'CREATE MATERIALIZED VIEW "pg_catalog".mv AS SELECT 1',
    'SELECT 1 INTO information_schema.si',
    'CREATE SEQUENCE pg_catalog.s',
    'CREATE TYPE pg_catalog.ty AS (a int)',
    "CREATE TYPE pg_catalog.e AS ENUM ('a')",
    'CREATE TYPE information_schema.r AS RANGE (subtype = int4)',
    'CREATE DOMAIN pg_catalog.d AS int',
    'CREATE OPERATOR pg_catalog.=== (function = int4eq, leftarg = int, rightarg = int)',
    'CREATE AGGREGATE pg_catalog.a(int) (sfunc = int4pl, stype = int)',
    "CREATE COLLATION pg_catalog.c (locale = 'C')",
    'CREATE TEXT SEARCH CONFIGURATION pg_catalog.x (copy = english)',
    "CREATE CONVERSION pg_catalog.cv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8",
    'CREATE OPERATOR CLASS pg_catalog.oc FOR TYPE int USING btree AS OPERATOR 1 <',
    'CREATE OPERATOR FAMILY pg_catalog.of USING btree',
    'CREATE STATISTICS pg_catalog.st ON a, b FROM t',
    'CREATE FOREIGN TABLE information_schema.ft (a int) SERVER s',
    'ALTER TABLE t SET SCHEMA pg_catalog',
    'ALTER FUNCTION f() SET SCHEMA information_schema',
    'ALTER TYPE ty SET SCHEMA pg_catalog'
  ]
  t.same(classes(sqls), all(sqls, 'admin'))
  t.match(classify(sqls[0]).reason, /pg_catalog/)
})

t.test('changing or dropping what those schemas hold is admin, as is a trigger, rule, policy or index on a system catalog', async (t) => {
  const sqls = [
    'ALTER FUNCTION pg_catalog.now() VOLATILE',
    "ALTER TYPE pg_catalog.e ADD VALUE 'b'",
    'ALTER DOMAIN information_schema.cardinal_number DROP CONSTRAINT cardinal_number_domain_check',
    'ALTER TYPE pg_catalog.ty SET (storage = plain)',
    'ALTER OPERATOR pg_catalog.=(int, int) SET (restrict = eqsel)',
    'ALTER OPERATOR FAMILY pg_catalog.integer_ops USING btree ADD OPERATOR 1 < (int, int)',
    'ALTER TEXT SEARCH DICTIONARY pg_catalog.simple (stopwords = english)',
    'ALTER TEXT SEARCH CONFIGURATION pg_catalog.english ADD MAPPING FOR word WITH simple',
    'ALTER COLLATION pg_catalog.c REFRESH VERSION',
    'ALTER STATISTICS pg_catalog.s SET STATISTICS 1',
    'ALTER SEQUENCE pg_catalog.s RESTART',
    'ALTER TABLE pg_catalog.pg_class ADD COLUMN x int',
    'ALTER TABLE pg_attribute ALTER COLUMN attname SET STATISTICS 1',
    'ALTER VIEW information_schema.tables ALTER COLUMN table_name SET DEFAULT 1',
    'REFRESH MATERIALIZED VIEW pg_catalog.mv',
    'TRUNCATE pg_catalog.pg_class',
    'TRUNCATE pg_largeobject',
    'DROP FUNCTION pg_catalog.now()',
    'DROP TYPE pg_catalog.ty',
    'DROP VIEW information_schema.tables',
    'DROP SCHEMA information_schema, x',
    'ALTER SCHEMA information_schema RENAME TO x',
    "COMMENT ON FUNCTION pg_catalog.now() IS 'x'",
    'ALTER FUNCTION pg_catalog.now() RENAME TO x',
    'CREATE INDEX i ON pg_catalog.pg_class (relname)',
    'CREATE TRIGGER tr BEFORE INSERT ON pg_catalog.pg_class FOR EACH ROW EXECUTE FUNCTION f()',
    'CREATE RULE r AS ON INSERT TO pg_proc DO INSTEAD NOTHING',
    'CREATE POLICY p ON pg_catalog.pg_class USING (true)'
  ]
  t.same(classes(sqls), all(sqls, 'admin'))
})

t.test('DDL that only uses those schemas, or names a look-alike, stays ddl; a plain EXPLAIN creates nothing', async (t) => {
  const ddl = [
    'CREATE TABLE pg_x (a pg_catalog.int4)',
    'CREATE OR REPLACE VIEW pg_tables AS SELECT 1',
    'CREATE VIEW v AS SELECT table_name FROM information_schema.tables',
    "CREATE FUNCTION f(pg_catalog.int4) RETURNS pg_catalog.int4 LANGUAGE sql AS 'SELECT 1'",
    'DROP FUNCTION f(pg_catalog.int4)',
    'ALTER TABLE x.y SET SCHEMA public',
    'CREATE TYPE information_schema_x.t AS (a int)',
    'CREATE SCHEMA s CREATE TABLE t (a int)',
    'DROP SCHEMA a, b',
    'SELECT 1 INTO t'
  ]
  t.same(classes(ddl), all(ddl, 'ddl'))
  t.equal(classify('EXPLAIN SELECT 1 INTO pg_catalog.x').class, 'read')
})

t.test('locking rows of a system catalog or view is admin: a locked pg_class row holds up ALTER TABLE in every session', async (t) => {
  const sqls = [
    "SELECT relname FROM pg_class WHERE relname = 'accounts' FOR UPDATE",
    'SELECT * FROM pg_catalog.pg_proc FOR NO KEY UPDATE NOWAIT',
    'SELECT * FROM pg_namespace FOR SHARE',
    'SELECT * FROM pg_tables FOR KEY SHARE',
    'SELECT * FROM information_schema.tables FOR SHARE',
    'SELECT * FROM t JOIN pg_catalog.pg_class c ON true FOR UPDATE OF t, c',
    'SELECT * FROM t JOIN (pg_class c JOIN pg_namespace n ON true) ON true FOR UPDATE OF n',
    'SELECT * FROM (SELECT * FROM pg_class) s FOR SHARE',
    'WITH c AS (SELECT * FROM pg_proc) SELECT * FROM c FOR KEY SHARE',
    'SELECT * FROM t, LATERAL (SELECT * FROM pg_namespace FOR SHARE) x',
    'DECLARE c CURSOR FOR SELECT * FROM pg_class FOR UPDATE'
  ]
  t.same(classes(sqls), all(sqls, 'admin'))
  t.match(classify(sqls[0]).reason, /locks rows of system catalog pg_class/)
})

t.test('locking rows of user tables beside a catalog stays write; a plain EXPLAIN locks nothing', async (t) => {
  const sqls = [
    'SELECT * FROM jobs FOR UPDATE SKIP LOCKED',
    'SELECT * FROM t JOIN pg_catalog.pg_class c ON true FOR UPDATE OF t',
    'SELECT * FROM t WHERE a IN (SELECT oid FROM pg_class) FOR UPDATE',
    'SELECT * FROM (SELECT * FROM t FOR UPDATE) s JOIN pg_class ON true'
  ]
  t.same(classes(sqls), all(sqls, 'write'))
  t.equal(classify('EXPLAIN SELECT * FROM pg_class FOR UPDATE').class, 'read')
})

t.test('a text that may make search_path name a system schema, or creates an object unqualified, says so for the session to judge', async (t) => {
  const flags = (sql: string): string => { const c = classify(sql); return `${c.searchesSystem === true ? 'S' : '-'}${c.createsUnqualified === true ? 'U' : '-'}` }
  t.same(Object.fromEntries([
    'SET search_path = pg_catalog', 'SET LOCAL search_path TO nosuch, information_schema', "SELECT set_config('search_path', 'x, PG_CATALOG', false)",
    "SELECT set_config('search_path', $1, false)", 'SET "search_path" TO \'pg_catalog\'', 'SET search_path = "$user", public', 'RESET search_path',
    'CREATE TABLE t (a int)', 'CREATE OR REPLACE FUNCTION now() RETURNS int LANGUAGE sql AS \'SELECT 1\'', 'SELECT 1 INTO t', 'CREATE TYPE e AS ENUM (\'a\')',
    'CREATE TEMP TABLE t (a int)', 'CREATE TABLE public.t (a int)', 'CREATE INDEX ON t (a)', 'ALTER FUNCTION f() SET search_path = pg_catalog',
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = pg_catalog, pg_temp AS 'SELECT 1'"
  ].map((s) => [s, flags(s)])), {
    'SET search_path = pg_catalog': 'S-',
    'SET LOCAL search_path TO nosuch, information_schema': 'S-',
    "SELECT set_config('search_path', 'x, PG_CATALOG', false)": 'S-',
    "SELECT set_config('search_path', $1, false)": 'S-',
    'SET "search_path" TO \'pg_catalog\'': 'S-',
    'SET search_path = "$user", public': '--',
    'RESET search_path': '--',
    'CREATE TABLE t (a int)': '-U',
    'CREATE OR REPLACE FUNCTION now() RETURNS int LANGUAGE sql AS \'SELECT 1\'': '-U',
    'SELECT 1 INTO t': '-U',
    'CREATE TYPE e AS ENUM (\'a\')': '-U',
    'CREATE TEMP TABLE t (a int)': '--',
    'CREATE TABLE public.t (a int)': '--',
    'CREATE INDEX ON t (a)': '--',
    'ALTER FUNCTION f() SET search_path = pg_catalog': '--',
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = pg_catalog, pg_temp AS 'SELECT 1'": '-U'
  }, "a routine's own SET search_path holds only while it runs")
})

t.test('a function whose body would create an object in a system schema through search_path, or point its caller\'s search_path at one, is admin', async (t) => {
  const sqls = [
    "CREATE FUNCTION f() RETURNS void LANGUAGE sql SET search_path = pg_catalog AS 'CREATE TABLE x (a int)'",
    "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$SELECT set_config('search_path', 'pg_catalog', false)$$",
    'CREATE PROCEDURE p() LANGUAGE plpgsql AS $$BEGIN SET search_path = information_schema; END$$'
  ]
  t.same(classes(sqls), all(sqls, 'admin'))
  t.equal(classify("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = pg_catalog, pg_temp AS 'SELECT 1'").class, 'ddl')
})

t.test('changing an existing routine, type or operator by a name without a schema names it for the catalog to look up; relations are judged by name', async (t) => {
  const names = (sql: string): string[] | undefined => classify(sql).changesUnqualified
  t.same(names('ALTER FUNCTION upper(text) RENAME TO upper_orig'), ['upper'])
  t.same(names('ALTER FUNCTION upper(text) SET SCHEMA public'), ['upper'])
  t.same(names('ALTER TYPE int4range RENAME TO r2'), ['int4range'])
  t.same(names('ALTER OPERATOR = (int, int) SET (restrict = eqsel)'), ['='])
  t.same(names('DROP FUNCTION upper(text), app.f(int)'), ['upper'])
  t.same(names("COMMENT ON FUNCTION now() IS 'x'"), ['now'])
  t.same(names('DROP OPERATOR CLASS integer_ops USING btree'), ['integer_ops'])
  t.same(names('ALTER TEXT SEARCH CONFIGURATION english RENAME TO e2'), ['english'])
  for (const sql of ['ALTER FUNCTION app.f() VOLATILE', 'DROP TABLE upper', 'ALTER TABLE upper RENAME TO x', 'DROP INDEX upper', "COMMENT ON COLUMN t.upper IS 'x'",
    'DROP SCHEMA upper', 'CREATE FUNCTION upper(text) RETURNS text LANGUAGE sql AS \'SELECT $1\'', 'EXPLAIN SELECT 1']) t.equal(names(sql), undefined, sql)
})

t.test("writing information_schema's tables is admin, as writing a system catalog is", async (t) => {
  const sqls = [
    "UPDATE information_schema.sql_features SET comments = 'x'",
    "INSERT INTO information_schema.sql_parts VALUES ('x', 'y', 'NO', NULL, NULL)",
    'DELETE FROM information_schema.sql_implementation_info',
    'COPY information_schema.sql_sizing FROM STDIN',
    'MERGE INTO information_schema.sql_features f USING t ON true WHEN MATCHED THEN DELETE'
  ]
  t.same(classes(sqls), all(sqls, 'admin'))
  t.equal(classify('SELECT * FROM information_schema.sql_features').class, 'read')
})
