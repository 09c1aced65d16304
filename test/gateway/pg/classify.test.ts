import t, { type Test } from 'tap'
import { classify, fingerprint, loadClassifier, type StatementClass } from '../../../src/gateway/pg/classify.js'
import { nesting } from '../../../src/gateway/pg/nesting.js'

const early = ((): unknown => { try { return classify('SELECT 1') } catch (err) { return err } })()
await loadClassifier()

interface Case {
  sql: string
  class: StatementClass
  /** Shapes expected; none when omitted. */
  statements?: string[]
  /** Tables expected, in any order; not checked when omitted. */
  tables?: string[]
  count?: number
  copy?: { direction: 'to' | 'from', toClient: boolean, stdio: boolean }
  reason?: RegExp
}

function check (t: Test, cases: Case[]): void {
  for (const c of cases) {
    const got = classify(c.sql)
    const label = c.sql.length > 80 ? `${c.sql.slice(0, 77)}...` : c.sql
    t.equal(got.class, c.class, `${label}: class`)
    t.same([...got.statements].sort(), [...(c.statements ?? [])].sort(), `${label}: shapes`)
    if (c.tables !== undefined) t.same([...got.tables].sort(), [...c.tables].sort(), `${label}: tables`)
    if (c.count !== undefined) t.equal(got.count, c.count, `${label}: count`)
    if (c.copy !== undefined) t.same(got.copy, c.copy, `${label}: copy`)
    if (c.reason !== undefined) t.match(got.reason, c.reason, `${label}: reason`)
  }
}

t.test('classifying before the parser is loaded is a programming error', async (t) => {
  t.type(early, TypeError)
})

t.test('queries, inspection and session housekeeping are read', async (t) => {
  check(t, [
    { sql: 'SELECT * FROM t WHERE a = $1', class: 'read', tables: ['t'], count: 1 },
    { sql: 'VALUES (1), (2)', class: 'read', tables: [] },
    { sql: 'TABLE t', class: 'read', tables: ['t'] },
    { sql: 'SELECT 1 UNION ALL SELECT a FROM u', class: 'read', tables: ['u'] },
    { sql: 'SHOW search_path', class: 'read' },
    { sql: 'SELECT lo_open(16400, 262144)', class: 'read' },
    { sql: 'SELECT pg_catalog.lo_open((SELECT oid FROM docs LIMIT 1), 262144)', class: 'read', tables: ['docs'] },
    { sql: 'BEGIN', class: 'read' },
    { sql: 'START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY', class: 'read' },
    { sql: 'COMMIT', class: 'read' },
    { sql: 'END', class: 'read' },
    { sql: 'ROLLBACK', class: 'read' },
    { sql: 'SAVEPOINT s', class: 'read' },
    { sql: 'RELEASE SAVEPOINT s', class: 'read' },
    { sql: 'ROLLBACK TO SAVEPOINT s', class: 'read' },
    { sql: 'DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t', class: 'read', tables: ['t'] },
    { sql: 'FETCH 10 FROM c', class: 'read' },
    { sql: 'MOVE NEXT IN c', class: 'read' },
    { sql: 'CLOSE c', class: 'read' },
    { sql: 'LISTEN x', class: 'read' },
    { sql: 'UNLISTEN *', class: 'read' },
    { sql: 'DEALLOCATE ALL', class: 'read' },
    { sql: 'DISCARD PLANS', class: 'read' },
    { sql: 'DISCARD TEMP', class: 'read' },
    { sql: 'SET search_path TO app, public', class: 'read' },
    { sql: 'SET LOCAL statement_timeout = 5000', class: 'read' },
    { sql: 'RESET statement_timeout', class: 'read' },
    { sql: "SET TIME ZONE 'UTC'", class: 'read' },
    { sql: 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ', class: 'read' },
    { sql: "SET client_encoding TO 'UTF8'", class: 'read' },
    { sql: 'SET CONSTRAINTS ALL DEFERRED', class: 'read' },
    { sql: 'SELECT txid_current(), currval(\'s\'), pg_backend_pid(), now()', class: 'read' },
    { sql: 'EXPLAIN SELECT * FROM t', class: 'read', tables: ['t'] },
    { sql: 'EXPLAIN (VERBOSE, COSTS OFF) SELECT 1', class: 'read' }
  ])
})

t.test('a condition that names no column restricts nothing: the delete or update still carries its shape', async (t) => {
  check(t, [
    { sql: 'DELETE FROM t WHERE true', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: 'DELETE FROM t WHERE 1 = 1 OR $1', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: "UPDATE t SET a = 1 WHERE now() > '2000-01-01' AND NOT false", class: 'write', statements: ['update_without_where'], tables: ['t'] },
    { sql: 'DELETE FROM t WHERE EXISTS (SELECT 1)', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: 'DELETE FROM t WHERE CURRENT OF c', class: 'write', tables: ['t'] },
    { sql: 'DELETE FROM t WHERE id = $1', class: 'write', tables: ['t'] },
    { sql: 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', class: 'write', statements: ['delete_without_where'], tables: ['t', 's'] },
    { sql: 'MERGE INTO t USING s ON 1 = 1 WHEN MATCHED AND t.a = 1 THEN DELETE WHEN MATCHED THEN UPDATE SET a = 2 WHEN NOT MATCHED THEN INSERT VALUES (1)', class: 'write', statements: ['update_without_where'], tables: ['t', 's'] },
    { sql: 'MERGE INTO t USING s ON true WHEN NOT MATCHED BY SOURCE THEN DELETE', class: 'write', statements: ['delete_without_where'], tables: ['t', 's'] },
    { sql: 'MERGE INTO t USING s ON true WHEN NOT MATCHED THEN INSERT VALUES (1)', class: 'write', tables: ['t', 's'] },
    { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1 WHEN NOT MATCHED BY SOURCE THEN DELETE', class: 'write', tables: ['t', 's'] }
  ])
})

t.test('writes are write, and unbounded deletes and updates carry their shapes', async (t) => {
  check(t, [
    { sql: 'INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2', class: 'write', tables: ['t'] },
    { sql: 'INSERT INTO t SELECT * FROM u', class: 'write', tables: ['t', 'u'] },
    { sql: 'UPDATE t SET a = 1', class: 'write', statements: ['update_without_where'], tables: ['t'] },
    { sql: 'UPDATE t SET a = u.a FROM u WHERE t.id = u.id', class: 'write', tables: ['t', 'u'] },
    { sql: 'DELETE FROM t', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: 'DELETE FROM t WHERE id=1', class: 'write', tables: ['t'] },
    { sql: 'DELETE FROM t USING u WHERE t.id = u.id', class: 'write', tables: ['t', 'u'] },
    { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', class: 'write', tables: ['t', 's'] },
    { sql: 'NOTIFY x', class: 'write' },
    { sql: 'LOCK TABLE t IN ACCESS SHARE MODE', class: 'write', tables: ['t'] },
    { sql: 'select * from t for update', class: 'write', tables: ['t'] },
    { sql: 'SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED', class: 'write' },
    { sql: 'SELECT * FROM t FOR SHARE', class: 'write' },
    { sql: 'SELECT * FROM t a FOR KEY SHARE OF a', class: 'write', tables: ['t'] },
    { sql: "SELECT nextval('s')", class: 'write' },
    { sql: "SELECT pg_catalog.setval('s', 1)", class: 'write' },
    { sql: "SELECT pg_notify('x', 'y')", class: 'write' },
    { sql: 'SELECT pg_advisory_lock(1)', class: 'write' },
    { sql: 'SELECT pg_try_advisory_xact_lock(1)', class: 'write' },
    { sql: 'SELECT lo_create(0)', class: 'write' },
    { sql: 'SELECT lo_open(16400, 131072)', class: 'write' },
    { sql: 'SELECT lo_open(16400, 393216)', class: 'write' },
    { sql: 'SELECT lo_open(16400, $1)', class: 'write' },
    { sql: 'SELECT lo_open(16400, 262144 | 131072)', class: 'write' },
    { sql: 'SELECT lo_open(16400)', class: 'write' },
    { sql: 'COPY t FROM STDIN', class: 'write', tables: ['t'], copy: { direction: 'from', toClient: false, stdio: true } }
  ])
})

t.test('a write hidden in a CTE, a subquery, EXPLAIN ANALYZE, COPY or PREPARE is found', async (t) => {
  check(t, [
    { sql: 'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: 'WITH a AS (WITH b AS (UPDATE t SET x = 1 WHERE id = 2 RETURNING *) SELECT * FROM b) SELECT * FROM a', class: 'write', tables: ['t'] },
    { sql: 'SELECT * FROM (WITH d AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM d) s', class: 'write', tables: ['t'] },
    { sql: 'SELECT 1 WHERE EXISTS (WITH d AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT * FROM d)', class: 'write', tables: ['t'] },
    { sql: 'SELECT (WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT max(a) FROM u)', class: 'write', statements: ['update_without_where'] },
    { sql: '(WITH d AS (DELETE FROM t RETURNING 1) SELECT 1) UNION SELECT 2', class: 'write', statements: ['delete_without_where'] },
    { sql: 'SELECT * FROM u, LATERAL (SELECT nextval(\'s\')) n', class: 'write' },
    { sql: 'SELECT * FROM (SELECT * FROM (SELECT * FROM t FOR UPDATE) a) b', class: 'write' },
    { sql: 'EXPLAIN ANALYZE DELETE FROM t', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: 'EXPLAIN (ANALYZE, BUFFERS) WITH d AS (DELETE FROM t RETURNING 1) SELECT 1', class: 'write', statements: ['delete_without_where'] },
    { sql: 'EXPLAIN (ANALYZE true) UPDATE t SET a = 1 WHERE id = 1', class: 'write' },
    { sql: 'EXPLAIN (ANALYZE 1) INSERT INTO t VALUES (1)', class: 'write' },
    { sql: 'EXPLAIN (ANALYZE perhaps) INSERT INTO t VALUES (1)', class: 'write' },
    { sql: 'EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE', class: 'write' },
    { sql: 'COPY (DELETE FROM t RETURNING *) TO STDOUT', class: 'write', statements: ['delete_without_where'], tables: ['t'], copy: { direction: 'to', toClient: true, stdio: true } },
    { sql: 'COPY (WITH d AS (DELETE FROM t WHERE a > 1 RETURNING *) SELECT * FROM d) TO STDOUT', class: 'write' },
    { sql: 'PREPARE p AS DELETE FROM t', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: 'PREPARE p (int) AS UPDATE t SET a = $1 WHERE id = $1', class: 'write' },
    { sql: 'DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE', class: 'write' }
  ])
})

t.test('a plain EXPLAIN only plans its statement, so it is read whatever the statement', async (t) => {
  check(t, [
    { sql: 'EXPLAIN DELETE FROM t', class: 'read', tables: ['t'] },
    { sql: 'EXPLAIN (ANALYZE false) DELETE FROM t', class: 'read', tables: ['t'] },
    { sql: 'EXPLAIN (ANALYZE off, VERBOSE) UPDATE t SET a = 1', class: 'read' },
    { sql: "EXPLAIN (ANALYZE 'off') SELECT * FROM t FOR UPDATE", class: 'read' },
    { sql: 'EXPLAIN CREATE TABLE x AS SELECT 1', class: 'read' },
    { sql: 'EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1', class: 'ddl' }
  ])
})

t.test('DDL is ddl, and TRUNCATE and DROP carry their shapes', async (t) => {
  check(t, [
    { sql: 'CREATE TABLE x (a int PRIMARY KEY, b text REFERENCES y)', class: 'ddl', tables: ['x', 'y'] },
    { sql: 'CREATE TABLE x AS SELECT 1', class: 'ddl', tables: ['x'] },
    { sql: 'CREATE MATERIALIZED VIEW mv AS SELECT * FROM t', class: 'ddl', tables: ['mv', 't'] },
    { sql: 'SELECT * INTO newt FROM t', class: 'ddl', tables: ['newt', 't'] },
    { sql: 'SELECT * INTO newt FROM t UNION SELECT * FROM u', class: 'ddl' },
    { sql: 'CREATE VIEW v AS SELECT * FROM t', class: 'ddl', tables: ['v', 't'] },
    { sql: 'CREATE INDEX ON t (a)', class: 'ddl', tables: ['t'] },
    { sql: 'ALTER TABLE t ADD COLUMN c int', class: 'ddl', tables: ['t'] },
    { sql: 'ALTER TABLE t DROP COLUMN c', class: 'ddl', statements: ['drop'], tables: ['t'] },
    { sql: 'ALTER TABLE t RENAME TO u', class: 'ddl', tables: ['t'] },
    { sql: "COMMENT ON COLUMN s.t.c IS 'x'", class: 'ddl', tables: ['s.t'] },
    { sql: 'CREATE SEQUENCE s', class: 'ddl' },
    { sql: 'CREATE FOREIGN TABLE ft (l text) SERVER remote', class: 'ddl', tables: ['ft'] },
    { sql: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1', class: 'ddl' },
    { sql: 'REFRESH MATERIALIZED VIEW mv', class: 'ddl', tables: ['mv'] },
    { sql: 'TRUNCATE t', class: 'ddl', statements: ['truncate'], tables: ['t'] },
    { sql: 'TRUNCATE a, b.c CASCADE', class: 'ddl', statements: ['truncate'], tables: ['a', 'b.c'] },
    { sql: 'drop table t', class: 'ddl', statements: ['drop'], tables: ['t'] },
    { sql: 'DROP TABLE IF EXISTS t, s.u CASCADE', class: 'ddl', statements: ['drop'], tables: ['t', 's.u'] },
    { sql: 'DROP VIEW v', class: 'ddl', statements: ['drop'], tables: ['v'] },
    { sql: 'DROP INDEX i', class: 'ddl', statements: ['drop'], tables: [] },
    { sql: 'DROP POLICY p ON s.t', class: 'ddl', statements: ['drop'], tables: ['s.t'] },
    { sql: 'DROP FUNCTION f(int)', class: 'ddl', statements: ['drop'] }
  ])
})

t.test('SQL EXECUTE names what it runs, for the session to add; its parameters are classified as any expression', async (t) => {
  check(t, [
    { sql: 'EXECUTE p', class: 'read' },
    { sql: 'EXPLAIN ANALYZE EXECUTE p', class: 'read' },
    { sql: 'CREATE TABLE x AS EXECUTE p(1)', class: 'ddl' },
    { sql: "EXECUTE p(nextval('s'))", class: 'write' },
    // A plain EXPLAIN only plans the statement, but evaluates its parameters.
    { sql: "EXPLAIN EXECUTE p(nextval('s'))", class: 'write' },
    { sql: 'EXPLAIN EXECUTE p(pg_try_advisory_lock(1))', class: 'write' },
    { sql: "EXPLAIN CREATE TABLE x AS EXECUTE p(nextval('s'))", class: 'write' },
    { sql: "EXECUTE p(pg_read_file('/etc/passwd'))", class: 'admin', reason: /pg_read_file/ },
    { sql: "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'EXECUTE p'", class: 'admin', reason: /^its body runs prepared statement p$/ },
    { sql: "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'PREPARE p AS SELECT 1'", class: 'admin', reason: /^its body prepares statement p$/ },
    { sql: "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PREPARE p AS SELECT 1; END $$", class: 'admin' }
  ])
  t.same(classify('EXECUTE p(1)').executes, ['p'])
  t.same(classify('EXPLAIN EXECUTE p; CREATE TABLE x AS EXECUTE q').executes, ['q'], 'a plain EXPLAIN only plans it')
  t.same(classify('EXPLAIN EXECUTE p(f())').functions, ['f'], 'whose parameters run')
  t.same(classify('PREPARE a AS SELECT 1; PREPARE b AS SELECT 2').prepares, ['a', 'b'])
  t.equal(classify('SELECT 1').executes, undefined)
})

t.test('administration, and anything whose effect cannot be seen, is admin', async (t) => {
  check(t, [
    { sql: 'DO $$ BEGIN DELETE FROM t; END $$', class: 'admin' },
    { sql: 'CALL p()', class: 'admin' },
    { sql: 'GRANT SELECT ON t TO bob', class: 'admin' },
    { sql: 'REVOKE ALL ON t FROM bob', class: 'admin' },
    { sql: 'GRANT admins TO bob', class: 'admin' },
    { sql: "CREATE ROLE bob LOGIN PASSWORD 'x'", class: 'admin' },
    { sql: 'ALTER USER bob SUPERUSER', class: 'admin' },
    { sql: 'DROP ROLE bob', class: 'admin', statements: ['drop'] },
    { sql: "ALTER SYSTEM SET work_mem = '1GB'", class: 'admin' },
    { sql: 'VACUUM', class: 'admin' },
    { sql: 'VACUUM FULL t', class: 'admin', tables: ['t'] },
    { sql: 'ANALYZE t', class: 'admin' },
    { sql: 'CHECKPOINT', class: 'admin' },
    { sql: "LOAD 'plpgsql'", class: 'admin' },
    { sql: 'CLUSTER t USING i', class: 'admin' },
    { sql: 'REINDEX TABLE t', class: 'admin' },
    { sql: 'CREATE EXTENSION dblink', class: 'admin' },
    { sql: 'DROP EXTENSION dblink', class: 'admin', statements: ['drop'] },
    { sql: 'CREATE DATABASE d', class: 'admin' },
    { sql: 'ALTER DATABASE d SET search_path = x', class: 'admin' },
    { sql: 'DROP DATABASE d', class: 'admin', statements: ['drop'] },
    { sql: 'ALTER TABLE t OWNER TO bob', class: 'admin' },
    { sql: 'ALTER FUNCTION f() OWNER TO bob', class: 'admin' },
    { sql: 'CREATE LANGUAGE plperlu', class: 'admin' },
    { sql: 'CREATE SCHEMA s AUTHORIZATION bob', class: 'admin' },
    { sql: 'CREATE SCHEMA s CREATE TABLE q (a int) GRANT SELECT ON q TO bob', class: 'admin' },
    { sql: "SECURITY LABEL ON TABLE t IS 'x'", class: 'admin' },
    { sql: "PREPARE TRANSACTION 'x'", class: 'admin' },
    { sql: "COMMIT PREPARED 'x'", class: 'admin' },
    { sql: 'DISCARD ALL', class: 'admin', reason: /session authorization/ },
    { sql: "COPY t TO PROGRAM 'x'", class: 'admin', copy: { direction: 'to', toClient: false, stdio: false }, reason: /file or program/ },
    { sql: "COPY t FROM '/etc/passwd'", class: 'admin', copy: { direction: 'from', toClient: false, stdio: false } },
    { sql: "COPY (SELECT 1) TO '/tmp/x'", class: 'admin' },
    { sql: "COPY t FROM PROGRAM 'curl x'", class: 'admin' },
    { sql: "CREATE FOREIGN TABLE ft (l text) SERVER files OPTIONS (program 'id')", class: 'admin', reason: /foreign-data wrapper/ },
    { sql: "CREATE FOREIGN TABLE ft (l text) SERVER files OPTIONS (filename '/etc/passwd')", class: 'admin', reason: /foreign-data wrapper/ },
    { sql: "ALTER FOREIGN TABLE ft OPTIONS (SET filename '/etc/passwd')", class: 'admin', reason: /foreign-data wrapper/ },
    { sql: "ALTER TABLE ft OPTIONS (ADD program 'id')", class: 'admin', reason: /foreign-data wrapper/ },
    { sql: 'CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()', class: 'admin' }
  ])
})

t.test('changing who the session is, or how the server reads SQL, is admin in every spelling', async (t) => {
  check(t, [
    { sql: 'SET ROLE postgres', class: 'admin' },
    { sql: 'SET LOCAL ROLE postgres', class: 'admin' },
    { sql: 'SET SESSION ROLE postgres', class: 'admin' },
    { sql: 'SET ROLE TO DEFAULT', class: 'admin' },
    { sql: 'SET "ROLE" TO postgres', class: 'admin' },
    { sql: 'RESET ROLE', class: 'admin' },
    { sql: 'set session authorization postgres', class: 'admin' },
    { sql: 'SET SESSION AUTHORIZATION DEFAULT', class: 'admin' },
    { sql: 'RESET SESSION AUTHORIZATION', class: 'admin' },
    { sql: 'RESET ALL', class: 'admin', reason: /role/ },
    { sql: "SELECT set_config('role','x',false)", class: 'admin', reason: /set_config/ },
    { sql: "SELECT PG_CATALOG.Set_Config('role', 'x', false)", class: 'admin', reason: /set_config/ },
    { sql: "UPDATE pg_settings SET setting = 'x' WHERE name = 'role'", class: 'admin', reason: /pg_settings/ },
    { sql: "UPDATE pg_catalog.pg_settings SET setting = 'x' WHERE name = 'role'", class: 'admin' },
    { sql: 'COPY pg_catalog.pg_proc FROM STDIN', class: 'admin', reason: /writes system catalog pg_proc/ },
    { sql: 'COPY pg_description (objoid, description) FROM STDIN', class: 'admin' },
    { sql: 'LOCK orders, pg_catalog.pg_authid IN ACCESS EXCLUSIVE MODE', class: 'admin', reason: /locks system catalog pg_authid/ },
    { sql: 'LOCK TABLE orders IN SHARE MODE', class: 'write' },
    { sql: 'ALTER OPERATOR FAMILY f USING btree ADD FUNCTION 1 (oid, text) pg_catalog.lo_export(oid, text)', class: 'admin', reason: /makes a call of lo_export look like another/ },
    { sql: 'CREATE OPERATOR CLASS c FOR TYPE int4 USING btree AS OPERATOR 1 <, FUNCTION 1 btint4cmp(int4, int4)', class: 'ddl' },
    { sql: 'ALTER FUNCTION pg_catalog.pg_terminate_backend(int, bigint) RENAME TO tidy', class: 'admin', reason: /makes a call of pg_terminate_backend look like another/ },
    { sql: 'ALTER ROUTINE set_config(text, text, bool) RENAME TO sc', class: 'admin' },
    { sql: 'ALTER FUNCTION my_fn(int) RENAME TO other', class: 'ddl' },
    { sql: 'ALTER VIEW pg_catalog.pg_roles RENAME COLUMN rolconfig TO settings', class: 'admin', reason: /changes system catalog pg_roles/ },
    { sql: 'DROP VIEW pg_user', class: 'admin', statements: ['drop'], reason: /changes system catalog pg_user/ },
    { sql: 'ALTER TABLE orders RENAME COLUMN item TO i', class: 'ddl' },
    { sql: 'ALTER VIEW pg_catalog.pg_roles SET SCHEMA public', class: 'admin', reason: /changes system catalog pg_roles/ },
    { sql: 'ALTER TABLE orders SET SCHEMA archive', class: 'ddl' },
    { sql: 'SET session_replication_role = replica', class: 'admin' },
    { sql: 'SET post_auth_delay = 2147', class: 'admin', reason: /sets post_auth_delay/ },
    { sql: 'ALTER FUNCTION f() SET role = postgres', class: 'admin' },
    { sql: "SET app.tenant_id = '42'", class: 'admin', reason: /app\.tenant_id/ },
    { sql: 'SET standard_conforming_strings = off', class: 'admin' },
    { sql: 'SET backslash_quote = on', class: 'admin' },
    { sql: "SET NAMES 'SJIS'", class: 'admin', reason: /encoding/ },
    { sql: 'RESET client_encoding', class: 'admin' }
  ])
})

t.test("a function's string body is classified with the CREATE: one that does what only an admin may, or cannot be read, makes it admin", async (t) => {
  check(t, [
    { sql: "CREATE FUNCTION become() RETURNS text STABLE LANGUAGE sql AS $$ SELECT set_config('role', 'pg_monitor', false) $$", class: 'admin', reason: /^its body calls set_config: sets role$/ },
    { sql: 'CREATE FUNCTION ok(n int) RETURNS int LANGUAGE sql AS $$ SELECT n + 1 $$', class: 'ddl' },
    { sql: "CREATE OR REPLACE FUNCTION w(n int) RETURNS void LANGUAGE sql AS 'INSERT INTO t VALUES (n)'", class: 'ddl' },
    { sql: 'CREATE FUNCTION p(n int) RETURNS int LANGUAGE plpgsql AS $$ DECLARE c int := 0; BEGIN IF n > 1 THEN c := n * 2; END IF; INSERT INTO t VALUES (n); RETURN c; END $$', class: 'ddl' },
    { sql: 'CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated = now(); RETURN NEW; END $$', class: 'ddl' },
    { sql: "CREATE FUNCTION p() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('role', 'x', false); END $$", class: 'admin', reason: /sets role/ },
    { sql: "CREATE FUNCTION p() RETURNS void LANGUAGE plpgsql AS $$ DECLARE x text; BEGIN x := pg_read_file('/etc/passwd'); END $$", class: 'admin', reason: /^its body calls pg_read_file$/ },
    { sql: "CREATE FUNCTION p() RETURNS void LANGUAGE plpgsql AS $$ BEGIN IF pg_terminate_backend(1) THEN NULL; END IF; END $$", class: 'admin', reason: /pg_terminate_backend/ },
    { sql: "CREATE FUNCTION p() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'SELECT 1'; END $$", class: 'admin', reason: /built at run time/ },
    { sql: "CREATE FUNCTION p() RETURNS SETOF int LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY EXECUTE 'SELECT 1'; END $$", class: 'admin', reason: /built at run time/ },
    { sql: 'CREATE FUNCTION py() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$', class: 'admin', reason: /language plpython3u/ },
    { sql: 'CREATE FUNCTION bad() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN $$', class: 'admin', reason: /cannot be read/ },
    { sql: "CREATE FUNCTION q() RETURNS int LANGUAGE 'PLPGSQL' AS $$ BEGIN RETURN 1; END $$", class: 'admin', reason: /language PLPGSQL/ },
    { sql: 'CREATE FUNCTION q() RETURNS int LANGUAGE PLPGSQL AS $$ BEGIN RETURN 1; END $$', class: 'ddl' },
    { sql: 'SELECT 1; CREATE PROCEDURE pr() LANGUAGE plpgsql AS $$ BEGIN SET ROLE postgres; END $$; SELECT 2', class: 'admin', reason: /^its body sets role$/, count: 3 },
    { sql: "CREATE FUNCTION é() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$; CREATE FUNCTION p() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM dblink_exec('x'); END $$", class: 'admin', reason: /dblink_exec/ }
  ])
})

t.test("a PL/pgSQL assignment's target is read with its value: its subscripts are expressions too", async (t) => {
  check(t, [
    { sql: "CREATE FUNCTION f() RETURNS int STABLE LANGUAGE plpgsql AS $$ DECLARE a int[]; BEGIN a[length(set_config('role', 'pg_monitor', false))] := 1; RETURN 1; END $$", class: 'admin', reason: /^its body calls set_config: sets role$/ },
    { sql: "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE a int[]; BEGIN a[1][pg_cancel_backend(42)::int] = 1; RETURN 1; END $$", class: 'admin', reason: /pg_cancel_backend/ },
    { sql: "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE a int[]; BEGIN a[(SELECT 1 WHERE pg_cancel_backend(42) = true)] := 1; RETURN 1; END $$", class: 'admin', reason: /pg_cancel_backend/ },
    { sql: 'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ DECLARE "x=y" int; a int[]; BEGIN "x=y" := 1; a[1] := a[2] = 3; RETURN 1; END $$', class: 'ddl' }
  ])
})

t.test('an aggregate, operator or type defined with a function only an admin may call is admin: calls of it would not name the function', async (t) => {
  check(t, [
    { sql: "CREATE AGGREGATE become(text, boolean) (SFUNC = set_config, STYPE = text, INITCOND = 'role')", class: 'admin', reason: /set_config/ },
    { sql: 'CREATE AGGREGATE become (BASETYPE = text, SFUNC = pg_catalog."set_config", STYPE = text)', class: 'admin', reason: /set_config/ },
    { sql: 'CREATE OPERATOR !!! (RIGHTARG = int, FUNCTION = pg_cancel_backend)', class: 'admin', reason: /pg_cancel_backend/ },
    { sql: 'ALTER OPERATOR !!! (NONE, int) SET (RESTRICT = pg_terminate_backend)', class: 'admin', reason: /pg_terminate_backend/ },
    { sql: 'CREATE TYPE r AS RANGE (SUBTYPE = text, SUBTYPE_DIFF = pg_read_file)', class: 'admin', reason: /pg_read_file/ },
    { sql: 'CREATE AGGREGATE total(int) (SFUNC = int4pl, STYPE = int, INITCOND = 0)', class: 'ddl' },
    { sql: 'CREATE AGGREGATE grab(bigint) (SFUNC = pg_advisory_lock, STYPE = void)', class: 'admin', reason: /pg_advisory_lock, which writes/ },
    { sql: 'CREATE OPERATOR ### (RIGHTARG = regclass, FUNCTION = nextval)', class: 'admin', reason: /nextval, which writes/ },
    { sql: 'CREATE OPERATOR !~! (RIGHTARG = text, FUNCTION = current_setting)', class: 'admin', reason: /current_setting, which reads a setting named at run time/ },
    { sql: "CREATE AGGREGATE cs(bool) (SFUNC = pg_catalog.current_setting, STYPE = text, INITCOND = 'app.jwt_secret')", class: 'admin', reason: /current_setting/ },
    { sql: 'CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq, COMMUTATOR = ===)', class: 'ddl' }
  ])
})

t.test('a view of a system catalog is admin: an UPDATE or INSERT of the view writes the catalog (of pg_settings, it is set_config)', async (t) => {
  check(t, [
    { sql: 'CREATE VIEW s AS SELECT * FROM pg_settings', class: 'admin', reason: /pg_settings/ },
    { sql: 'CREATE OR REPLACE VIEW s AS SELECT name, setting FROM pg_catalog.pg_settings WHERE name LIKE $$enable%$$', class: 'admin', reason: /pg_settings/ },
    { sql: 'CREATE VIEW s AS SELECT * FROM (SELECT * FROM pg_settings) x', class: 'admin', reason: /pg_settings/ },
    { sql: 'CREATE VIEW s AS SELECT relname FROM pg_class', class: 'admin', reason: /^a view of system catalog pg_class would write it through an UPDATE or INSERT of the view$/ },
    { sql: 'CREATE VIEW procs AS SELECT oid, proname FROM pg_catalog.pg_proc', class: 'admin', reason: /pg_proc/ },
    { sql: 'CREATE VIEW s AS SELECT relname FROM public.pg_things', class: 'ddl' },
    { sql: 'CREATE VIEW s AS SELECT id FROM orders', class: 'ddl' }
  ])
})

t.test('reading a custom setting is admin, as setting one is: it may be a secret or another tenant\'s', async (t) => {
  check(t, [
    { sql: "SELECT current_setting('app.jwt_secret')", class: 'admin', reason: /^reads custom setting app\.jwt_secret$/ },
    { sql: "SELECT current_setting('App.Tenant', true)", class: 'admin', reason: /app\.tenant/ },
    { sql: 'SELECT current_setting(name) FROM t', class: 'admin', reason: /named at run time/ },
    { sql: "SELECT ('app.jwt_secret'::text).current_setting", class: 'admin', reason: /named at run time/ },
    { sql: 'SELECT (t.name).current_setting FROM t', class: 'admin', reason: /named at run time/ },
    { sql: 'SHOW app.jwt_secret', class: 'admin', reason: /custom setting/ },
    { sql: 'SELECT setconfig FROM pg_db_role_setting', class: 'admin', reason: /pg_db_role_setting/ },
    { sql: "SELECT current_setting('server_version_num')::int", class: 'read' },
    { sql: 'SHOW search_path', class: 'read' },
    { sql: 'SHOW ALL', class: 'admin', reason: /SHOW ALL/ }
  ])
})

t.test('set_config with a constant name is the SET it amounts to', async (t) => {
  check(t, [
    { sql: "SELECT set_config('search_path', 'app, public', false)", class: 'read' },
    { sql: "SELECT pg_catalog.set_config('statement_timeout', '5s', true)", class: 'read' },
    { sql: "SELECT set_config('role', 'postgres', false)", class: 'admin', reason: /^calls set_config: sets role$/ },
    { sql: "SELECT set_config('default_transaction_read_only', 'off', false)", class: 'write' },
    { sql: "SELECT set_config('default_transaction_read_only', 'on', false)", class: 'read' },
    { sql: "SELECT set_config('log_statement', 'none', false)", class: 'admin', reason: /only a superuser/ },
    { sql: "SELECT set_config('app.tenant', '7', true)", class: 'admin', reason: /custom setting/ },
    { sql: "SELECT set_config('application_name', 'lineage:other', false)", class: 'admin' },
    { sql: "SELECT set_config('application_name', name, false) FROM t", class: 'admin', reason: /known only at run time/ },
    { sql: "SELECT set_config(name, 'x', false) FROM t", class: 'admin', reason: /^calls set_config$/ },
    { sql: "SELECT myschema.set_config('search_path', 'x', false)", class: 'admin', reason: /^calls set_config$/ },
    { sql: "SELECT set_config('search_path', pg_read_file('/etc/passwd'), false)", class: 'admin', reason: /pg_read_file/ }
  ])
  t.same(classify("SELECT set_config('search_path', 'app', false)").functions, ['set_config'], 'the catalog is asked whether a set_config of the user\'s own would run instead')
})

t.test('a call to an admin function anywhere makes the text admin, whatever its case or schema', async (t) => {
  const cases: Array<[string, string]> = [
    ['SELECT * FROM t WHERE pg_terminate_backend(pid) IS NOT NULL', 'pg_terminate_backend'],
    ['INSERT INTO t VALUES (pg_read_file(\'/etc/passwd\'))', 'pg_read_file'],
    ['CREATE TABLE x (a text DEFAULT set_config(\'role\', \'x\', false))', 'set_config: sets role'],
    ['WITH a AS (SELECT pg_cancel_backend(1)) SELECT * FROM a', 'pg_cancel_backend'],
    ['SELECT * FROM pg_ls_dir(\'.\')', 'pg_ls_dir'],
    ['SELECT 1 ORDER BY pg_reload_conf()', 'pg_reload_conf'],
    ['SELECT lo_import(\'/etc/passwd\')', 'lo_import'],
    ['SELECT lo_export(1, \'/tmp/x\')', 'lo_export'],
    ['SELECT * FROM public.dblink(\'host=x\', \'DELETE FROM t\') AS r(a int)', 'dblink'],
    ['SELECT dblink_exec(\'DELETE FROM t\')', 'dblink_exec'],
    ['SELECT query_to_xml(\'DELETE FROM t RETURNING *\', true, false, \'\')', 'query_to_xml'],
    ['SELECT table_to_xml(\'payroll\', true, false, \'\')', 'table_to_xml'],
    ['SELECT cursor_to_xml(\'c\', 1, true, false, \'\')', 'cursor_to_xml'],
    ['SELECT database_to_xml(true, false, \'\')', 'database_to_xml'],
    ['SELECT ts_stat(\'SELECT v FROM t\')', 'ts_stat'],
    ['SELECT * FROM crosstab($$SELECT \'a\'::text, \'b\'::text, set_config(\'role\', \'x\', false)$$) AS t(r text, c text)', 'crosstab'],
    ['SELECT * FROM public.crosstab3(\'SELECT * FROM payroll\')', 'crosstab3'],
    ['SELECT * FROM connectby(\'payroll\', \'id\', \'boss\', \'1\', 0) AS t(id text, boss text, level int)', 'connectby'],
    ['SELECT * FROM xpath_table(\'id\', \'doc\', \'payroll\', \'/a\', \'true\') AS t(id int, a text)', 'xpath_table'],
    ['SELECT t_data FROM heap_page_items(get_raw_page(\'customers\', 0))', 'get_raw_page'],
    ['SELECT data FROM bt_page_items(\'customers_email_key\', 1)', 'bt_page_items'],
    ['SELECT heap_force_kill(\'payroll\', ARRAY[\'(0,1)\'::tid])', 'heap_force_kill'],
    ['SELECT tuple_data_split(\'t\'::regclass::oid, $1::bytea, 6, 1, NULL, true)', 'tuple_data_split'],
    ['SELECT t_attrs FROM heap_page_item_attrs($1::bytea, \'t\', true)', 'heap_page_item_attrs'],
    ['SELECT * FROM brin_page_items($1::bytea, \'t_brin\')', 'brin_page_items'],
    ['SELECT * FROM gist_page_items($1::bytea, \'t_gist\')', 'gist_page_items'],
    ['SELECT block_data FROM pg_get_wal_block_info(\'0/1000000\', \'FFFFFFFF/FFFFFFFF\')', 'pg_get_wal_block_info'],
    ['SELECT pg_switch_wal(), pg_promote()', 'pg_switch_wal'],
    ['SELECT pg_catalog.pg_create_restore_point(\'x\')', 'pg_create_restore_point'],
    ['SELECT PG_ROTATE_LOGFILE()', 'pg_rotate_logfile'],
    ['SELECT pg_stat_file(\'x\'), pg_read_binary_file(\'x\')', 'pg_stat_file'],
    ['SELECT pg_file_write(\'x\', \'y\', false)', 'pg_file_write'],
    ['SELECT * FROM pg_logdir_ls() AS l(a timestamp, b text)', 'pg_logdir_ls'],
    ['UPDATE t SET a = 1 WHERE b = (SELECT pg_terminate_backend(1)::int)', 'pg_terminate_backend'],
    ['EXPLAIN SELECT set_config(\'role\', \'x\', false)', 'set_config: sets role'],
    ['DECLARE c CURSOR FOR SELECT "set_config"(\'role\', \'x\', false)', 'set_config: sets role'],
    ['CALL p(pg_terminate_backend(1))', 'pg_terminate_backend']
  ]
  for (const [sql, name] of cases) {
    const got = classify(sql)
    t.equal(got.class, 'admin', sql)
    t.equal(got.reason, `calls ${name}`, `${sql}: reason`)
  }
})

t.test('a function called in functional notation, (x).f or t.f, is a call too', async (t) => {
  check(t, [
    { sql: "SELECT ('/etc/hostname'::text).pg_read_file", class: 'admin', reason: /^calls pg_read_file$/ },
    { sql: "SELECT ('/etc/hostname'::text).lo_import", class: 'admin', reason: /^calls lo_import$/ },
    { sql: 'SELECT (pg_backend_pid()).pg_cancel_backend', class: 'admin', reason: /^calls pg_cancel_backend$/ },
    { sql: "SELECT ('SELECT k FROM secrets'::text).ts_stat", class: 'admin', reason: /^calls ts_stat$/ },
    { sql: 'SELECT ((1)::int).x.PG_TERMINATE_BACKEND', class: 'admin', reason: /^calls pg_terminate_backend$/ },
    { sql: "SELECT ('s'::regclass).nextval", class: 'write' },
    { sql: 'SELECT (42::bigint).pg_advisory_lock', class: 'write' },
    { sql: 'SELECT s.nextval FROM (SELECT 1) AS s', class: 'write' },
    { sql: 'SELECT * FROM t WHERE t.id = (1::int).pg_cancel_backend::int', class: 'admin' }
  ])
  t.same([...(classify('SELECT c.purge_customers, c.id FROM customers c').functions ?? [])].sort(), ['id', 'purge_customers'], 'a selected name that is not a column may be a user function')
})

t.test('comments, strings, quoting and escapes neither hide a statement nor invent one', async (t) => {
  check(t, [
    { sql: '/* hello */ DROP TABLE x', class: 'ddl', statements: ['drop'], tables: ['x'] },
    { sql: '-- hello\nDROP TABLE x', class: 'ddl', statements: ['drop'] },
    { sql: 'SELECT 1 -- ; DROP TABLE x', class: 'read', tables: [], count: 1 },
    { sql: 'SELECT 1 /* ; DROP TABLE x */', class: 'read', count: 1 },
    { sql: '/* /* */ DROP TABLE x */ SELECT 1', class: 'read', tables: [], count: 1 },
    { sql: '/* /* */ */ DROP TABLE x', class: 'ddl', statements: ['drop'] },
    { sql: 'SELECT 1; /* */ DELETE FROM t -- ', class: 'write', statements: ['delete_without_where'], count: 2 },
    { sql: 'DEL/**/ETE FROM t', class: 'admin', reason: /^unparsable: / },
    { sql: "SELECT ';DROP TABLE x'", class: 'read', count: 1 },
    { sql: "SELECT 'it''s; DROP TABLE x'", class: 'read', count: 1 },
    { sql: "SELECT 'a\\' , '; DROP TABLE x; --'", class: 'read', count: 1 },
    { sql: "SELECT E'a\\' , '; DROP TABLE x; --'", class: 'ddl', statements: ['drop'], count: 2 },
    { sql: "SELECT E'\\'; DROP TABLE x; --'", class: 'read', count: 1 },
    { sql: 'SELECT $$; DELETE FROM t$$', class: 'read', tables: [], count: 1 },
    { sql: 'SELECT $a$ $$; DELETE FROM t; $$ $a$', class: 'read', count: 1 },
    { sql: 'SELECT $a$ x $a$; DELETE FROM t WHERE a = $1', class: 'write', count: 2 },
    { sql: 'DO $$ BEGIN EXECUTE \'DROP TABLE x\'; END $$', class: 'admin', statements: [] },
    { sql: 'DO LANGUAGE plpgsql $x$ BEGIN NULL; END $x$', class: 'admin' },
    { sql: 'SELECT * FROM U&"d\\0061ta"', class: 'read', tables: ['data'] },
    { sql: 'DELETE FROM U&"d\\0061ta"', class: 'write', statements: ['delete_without_where'], tables: ['data'] },
    { sql: "SELECT U&'\\0044ROP TABLE x'", class: 'read', count: 1 },
    { sql: "SELECT U&'!0027; DROP TABLE x' UESCAPE '!'", class: 'read', count: 1 },
    { sql: 'SELECT "DROP TABLE x" FROM t', class: 'read', tables: ['t'] },
    { sql: 'SELECT 1 AS "; DELETE FROM t"', class: 'read', tables: [] }
  ])
})

t.test('several statements take the strongest class and the union of shapes and tables', async (t) => {
  check(t, [
    { sql: 'SELECT 1; DROP TABLE x', class: 'ddl', statements: ['drop'], tables: ['x'], count: 2 },
    { sql: 'begin; commit', class: 'read', count: 2 },
    { sql: 'BEGIN; UPDATE t SET a = 1; COMMIT;', class: 'write', statements: ['update_without_where'], count: 3 },
    { sql: 'SELECT * FROM a; DELETE FROM b; TRUNCATE c', class: 'ddl', statements: ['delete_without_where', 'truncate'], tables: ['a', 'b', 'c'], count: 3 },
    { sql: 'SELECT 1; SET ROLE postgres; SELECT 2', class: 'admin', count: 3 },
    { sql: 'SELECT 1;;SELECT 2;', class: 'read', count: 2 },
    { sql: 'DROP TABLE a; DROP TABLE b', class: 'ddl', statements: ['drop'], tables: ['a', 'b'], count: 2 }
  ])
})

t.test('the pgbench statements classify as their commands', async (t) => {
  check(t, [
    { sql: 'BEGIN;', class: 'read', count: 1 },
    { sql: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;', class: 'read', tables: ['pgbench_accounts'] },
    { sql: 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;', class: 'write', tables: ['pgbench_accounts'] },
    { sql: 'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;', class: 'write', tables: ['pgbench_tellers'] },
    { sql: 'UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;', class: 'write', tables: ['pgbench_branches'] },
    { sql: 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);', class: 'write', tables: ['pgbench_history'] },
    { sql: 'END;', class: 'read', count: 1 },
    { sql: "select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1", class: 'read' }
  ])
})

t.test('tables are named as PostgreSQL resolves them, without CTE names', async (t) => {
  check(t, [
    { sql: 'SELECT * FROM public.customers c JOIN orders o ON c.id = o.customer_id', class: 'read', tables: ['public.customers', 'orders'] },
    { sql: 'SELECT * FROM Orders, "Payroll", app."Mixed"', class: 'read', tables: ['orders', 'Payroll', 'app.Mixed'] },
    { sql: 'SELECT * FROM db.app.t', class: 'read', tables: ['app.t'] },
    { sql: 'SELECT * FROM t, t AS again, public.t', class: 'read', tables: ['t', 'public.t'] },
    { sql: 'WITH recent AS (SELECT * FROM orders) SELECT * FROM recent', class: 'read', tables: ['orders'] },
    { sql: 'WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b', class: 'read', tables: [] },
    // A CTE's name is the CTE only where it is in scope: later siblings, its statement, RECURSIVE bodies.
    { sql: 'WITH b AS (SELECT * FROM c), c AS (SELECT 1) SELECT * FROM b', class: 'read', tables: ['c'] },
    { sql: 'WITH a AS (SELECT * FROM a) SELECT * FROM a', class: 'read', tables: ['a'] },
    { sql: 'WITH RECURSIVE a AS (SELECT 1 UNION ALL SELECT * FROM a) SELECT * FROM a', class: 'read', tables: [] },
    { sql: 'SELECT * FROM payroll, (WITH payroll AS (SELECT 1) SELECT * FROM payroll) q', class: 'read', tables: ['payroll'] },
    { sql: 'WITH payroll AS (SELECT 1) SELECT * FROM public.payroll', class: 'read', tables: ['public.payroll'] },
    { sql: 'WITH payroll AS (SELECT 1) SELECT * FROM (SELECT * FROM payroll) s', class: 'read', tables: [] },
    { sql: 'WITH t AS (SELECT 1) DELETE FROM t', class: 'write', statements: ['delete_without_where'], tables: ['t'] },
    { sql: 'WITH src AS (SELECT * FROM staging) INSERT INTO target SELECT * FROM src', class: 'write', tables: ['staging', 'target'] },
    { sql: 'SELECT * FROM a WHERE x IN (SELECT y FROM b WHERE EXISTS (SELECT 1 FROM c))', class: 'read', tables: ['a', 'b', 'c'] },
    { sql: 'SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.id = a.id) l', class: 'read', tables: ['a', 'b'] },
    { sql: 'SELECT * FROM generate_series(1, 3) g, unnest(ARRAY[1]) u', class: 'read', tables: [] },
    { sql: 'LOCK TABLE a, s.b', class: 'write', tables: ['a', 's.b'] },
    { sql: 'COPY s.t (a, b) TO STDOUT', class: 'read', tables: ['s.t'] }
  ])
})

t.test('COPY reports its direction and whether the client streams it', async (t) => {
  check(t, [
    { sql: 'COPY t TO STDOUT', class: 'read', tables: ['t'], copy: { direction: 'to', toClient: true, stdio: true } },
    { sql: "COPY (SELECT * FROM t WHERE a > 1) TO STDOUT WITH (FORMAT csv)", class: 'read', tables: ['t'], copy: { direction: 'to', toClient: true, stdio: true } },
    { sql: 'COPY t (a) FROM STDIN WITH (FORMAT binary)', class: 'write', copy: { direction: 'from', toClient: false, stdio: true } },
    { sql: 'COPY t FROM STDIN; COPY u TO STDOUT', class: 'write', tables: ['t', 'u'], copy: { direction: 'from', toClient: true, stdio: true } },
    { sql: 'COPY u TO STDOUT; COPY t FROM STDIN', class: 'write', copy: { direction: 'from', toClient: true, stdio: true } },
    { sql: "COPY t TO STDOUT; COPY t TO '/tmp/x'", class: 'admin', copy: { direction: 'to', toClient: true, stdio: false } },
    { sql: "COPY t TO '/tmp/x'", class: 'admin', copy: { direction: 'to', toClient: false, stdio: false } }
  ])
  t.equal(classify('SELECT 1').copy, undefined)
})

t.test('unparsable, hostile and oversized text never throws and is admin', async (t) => {
  let seed = 7
  const random = (n: number): string => {
    let s = ''
    for (let i = 0; i < n; i++) { seed = (seed * 1103515245 + 12345) % 2147483648; s += String.fromCharCode(1 + (seed % 0xfffe)) }
    return s
  }
  const hostile = [
    'garbage here', 'SELEC 1', 'SELECT (', "SELECT 'unterminated", 'SELECT $$unterminated', '/* unterminated',
    random(64), random(4096), 'x'.repeat(1024 * 1024), 'SELECT 1; DROP ' + '('.repeat(1024 * 1024),
    'SELECT ' + '('.repeat(100_000) + '1' + ')'.repeat(100_000), 'SELECT 1\0; DROP TABLE x', '\0', '\u00a0'
  ]
  for (const sql of hostile) {
    const got = classify(sql)
    t.equal(got.class, 'admin', `${JSON.stringify(sql.slice(0, 40))}: admin`)
    t.ok(got.reason !== undefined && got.reason.length < 300, `${JSON.stringify(sql.slice(0, 40))}: a short reason`)
  }
  t.match(classify('SELEC 1').reason, /^unparsable: syntax error at or near "SELEC"/)
  t.match(classify('SELECT 1\0; DROP TABLE x').reason, /NUL/)
  t.equal(classify('SELEC 1').count, 1, 'unparsable text is never mistaken for an empty query')
  const big = classify('DELETE FROM t WHERE ' + 'a = 1 OR '.repeat(120_000) + 'false')
  t.same([big.class, big.tables], ['write', ['t']], 'a valid megabyte statement is classified like a short one')
  t.equal(classify('DROP TABLE \udfff').class, 'ddl', 'a lone surrogate reads as an identifier character')
  const deep = classify('SELECT * FROM ' + '(SELECT * FROM '.repeat(1000) + 't' + ') x'.repeat(1000))
  t.same([deep.class, deep.tables], ['read', ['t']], 'deep but valid nesting is walked without overflowing')
})

t.test('empty text and bare semicolons are an empty, read query', async (t) => {
  check(t, ['', '   \n\t', ';;', ';', '-- only a comment', '/* only */ /* comments */'].map((sql) => ({ sql, class: 'read' as const, tables: [], count: 0 })))
})

t.test('the same text gets the same shared, frozen result', async (t) => {
  const a = classify('SELECT * FROM cached_table')
  t.equal(classify('SELECT * FROM cached_table'), a)
  t.not(classify('SELECT * FROM cached_table '), a, 'the cache is keyed by exact text')
  t.ok(Object.isFrozen(a) && Object.isFrozen(a.tables) && Object.isFrozen(a.statements))
  for (let i = 0; i < 12_000; i++) classify(`SELECT ${i}`)
  t.equal(classify('SELECT 1').class, 'read', 'the cache keeps working past its bound')
})

t.test('fingerprints ignore constants and layout, and fall back to a hash for unparsable text', async (t) => {
  t.match(fingerprint('SELECT * FROM t WHERE a = 1'), /^[0-9a-f]{16}$/)
  t.equal(fingerprint('SELECT * FROM t WHERE a = 1'), fingerprint('select *  from t\nwhere a = 42'))
  t.not(fingerprint('SELECT * FROM t'), fingerprint('SELECT * FROM u'))
  t.match(fingerprint('garbage here'), /^[0-9a-f]{16}$/)
  t.not(fingerprint('garbage here'), fingerprint('garbage there'))
  t.equal(fingerprint('garbage here'), fingerprint('garbage here'))
  t.match(fingerprint(''), /^[0-9a-f]{16}$/)
  t.not(fingerprint('SELECT 1\0; DROP TABLE x'), fingerprint('SELECT 1'), 'text after a NUL is not ignored')
})

t.test('statements that differ only in numeric constants share one classification', async (t) => {
  const a = classify('SELECT abalance FROM pgbench_accounts WHERE aid = 4711;')
  t.equal(classify('SELECT abalance FROM pgbench_accounts WHERE aid = 99;'), a, 'one cache entry, one parse')
  t.equal(a.class, 'read')
  t.equal(classify('UPDATE pgbench_accounts SET abalance = abalance + -4995 WHERE aid = 53012;').class, 'write')
  t.equal(classify('EXPLAIN (ANALYZE 0) DELETE FROM t WHERE id = 1').class, 'write', 'a number read as a boolean folds to the stricter reading')
  t.not(classify("SELECT 1 FROM t WHERE s = '2'"), classify("SELECT 1 FROM t WHERE s = '3'"), 'text with a string is not folded')
  t.same(classify('SELECT * FROM t2 WHERE c3 = 4').tables, ['t2'], 'digits inside names are not numbers')
  t.same(classify('COPY café2 TO STDOUT').tables, ['café2'], 'nor after a letter outside ASCII')
  t.same(classify('SELECT ssn FROM 表9 WHERE n = 5').tables, ['表9'])
})

t.test('functions no list knows are named for the caller to look up', async (t) => {
  t.same(classify('SELECT purge_customers()').functions, ['purge_customers'])
  t.equal(classify("SELECT brin_summarize_new_values('i'), gin_clean_pending_list('g')").class, 'write', 'index maintenance, which a read-only transaction allows')
  t.same(classify('SELECT "Purge"(), PURGE_ALL()').functions, ['Purge', 'purge_all'], 'a quoted name keeps its case, as the catalog holds it')
  t.equal(classify('SELECT "SET_CONFIG"(\'a\', \'b\', false)').class, 'admin', 'the lists match whatever the case')
  t.equal(classify('SELECT purge_customers()').class, 'read', 'read until the catalog says otherwise')
  t.same([...(classify('SELECT count(*), lower(name) FROM t').functions ?? [])].sort(), ['count', 'lower'])
  t.equal(classify("SELECT nextval('s')").functions, undefined, 'a listed function is classified here')
  t.equal(classify('EXPLAIN SELECT purge_customers()').functions, undefined, 'a plain EXPLAIN runs nothing')
})

t.test('SQL/JSON and MERGE syntax is named as the function it calls on PostgreSQL 15, where those names are no keywords', async (t) => {
  for (const [sql, name] of [
    ["SELECT json_value('a', 'b')", 'json_value'], ["SELECT json_query('a', 'b')", 'json_query'], ["SELECT json_exists('a', 'b')", 'json_exists'],
    ["SELECT json_scalar('a')", 'json_scalar'], ["SELECT json_serialize('a')", 'json_serialize'], ["SELECT json('a'::text)", 'json'],
    ["SELECT json_array('a')", 'json_array'], ['SELECT json_object()', 'json_object'], ['SELECT json_arrayagg(a) FROM t', 'json_arrayagg'],
    ['SELECT merge_action()', 'merge_action']
  ]) {
    t.same(classify(sql).functions, [name], sql)
  }
})

t.test('statements that change prepared statements or portals in SQL name what they change', async (t) => {
  t.same(classify('PREPARE x AS SELECT 1').renames, { statements: ['x'], portals: [] })
  t.same(classify('DEALLOCATE x; DEALLOCATE PREPARE y').renames, { statements: ['x', 'y'], portals: [] })
  t.same(classify('DEALLOCATE ALL').renames, { statements: 'all', portals: [] })
  t.same(classify('CLOSE c; DECLARE d CURSOR FOR SELECT 1').renames, { statements: [], portals: ['c', 'd'] })
  t.same(classify('CLOSE ALL').renames, { statements: [], portals: 'all' })
  t.same(classify('DISCARD ALL').renames, { statements: 'all', portals: 'all' })
  t.equal(classify('SELECT 1; FETCH 1 FROM c').renames, undefined)
})

t.test('reading column statistics or TOAST data, which hold other tables\' values, is admin', async (t) => {
  check(t, [
    { sql: "SELECT most_common_vals FROM pg_stats WHERE tablename = 'customers'", class: 'admin', reason: /reads pg_stats, whose statistics sample the values of every table/ },
    { sql: 'SELECT * FROM pg_catalog.pg_statistic', class: 'admin', reason: /pg_statistic/ },
    { sql: 'SELECT * FROM pg_stats_ext_exprs', class: 'admin' },
    { sql: 'SELECT 1 FROM t WHERE EXISTS (SELECT 1 FROM pg_stats)', class: 'admin' },
    { sql: 'SELECT * FROM pg_stat_user_tables', class: 'read' },
    { sql: 'SELECT chunk_data FROM pg_toast.pg_toast_2619', class: 'admin', reason: /holds other tables' long values/ },
    { sql: 'SELECT chunk_data FROM pg_toast_16384', class: 'admin' }
  ])
})

t.test("reading other sessions' SQL text, which every agent of a target could see, is admin", async (t) => {
  check(t, [
    { sql: 'SELECT query FROM pg_stat_activity', class: 'admin', reason: /reads pg_stat_activity, which shows other sessions' SQL text/ },
    { sql: 'SELECT query FROM pg_catalog.pg_stat_activity WHERE pid <> pg_backend_pid()', class: 'admin' },
    { sql: 'SELECT query FROM public.pg_stat_statements', class: 'admin', reason: /pg_stat_statements/ },
    { sql: 'SELECT * FROM pg_stat_get_activity(NULL)', class: 'admin', reason: /calls pg_stat_get_activity/ },
    { sql: 'SELECT pg_stat_get_backend_activity(s) FROM pg_stat_get_backend_idset() s', class: 'admin' },
    { sql: 'SELECT * FROM pg_stat_statements(true)', class: 'admin' },
    { sql: 'SELECT count(*) FROM pg_locks', class: 'read' }
  ])
})

t.test('reading password hashes or the server\'s configuration files is admin', async (t) => {
  check(t, [
    { sql: 'SELECT rolpassword FROM pg_authid', class: 'admin', reason: /reads pg_authid, which holds password hashes/ },
    { sql: 'SELECT passwd FROM pg_catalog.pg_shadow', class: 'admin' },
    { sql: 'SELECT umoptions FROM pg_user_mappings', class: 'admin' },
    { sql: 'SELECT option_value FROM information_schema.user_mapping_options', class: 'admin', reason: /reads user_mapping_options/ },
    { sql: 'SELECT umoptions FROM information_schema._pg_user_mappings', class: 'admin' },
    { sql: 'SELECT subconninfo FROM pg_subscription', class: 'admin', reason: /reads pg_subscription/ },
    { sql: 'SELECT * FROM pg_hba_file_rules', class: 'admin', reason: /the server's configuration files/ },
    { sql: 'SELECT * FROM pg_file_settings', class: 'admin' },
    { sql: 'SELECT * FROM pg_show_all_file_settings()', class: 'admin', reason: /calls pg_show_all_file_settings/ },
    { sql: 'SELECT rolname FROM pg_roles', class: 'read' }
  ])
})

t.test("a role's settings in pg_roles or pg_user are admin to read, by name, through *, a whole row or columns renamed by position", async (t) => {
  const reason = /^may read pg_roles\.rolconfig, which holds custom settings such as secrets; select its other columns by name$/
  check(t, [
    { sql: 'SELECT rolconfig FROM pg_roles', class: 'admin', reason },
    { sql: 'SELECT * FROM pg_catalog.pg_roles', class: 'admin', reason },
    { sql: 'TABLE pg_roles', class: 'admin', reason },
    { sql: 'SELECT row_to_json(r) FROM pg_roles r', class: 'admin', reason },
    { sql: 'SELECT pg_roles FROM pg_roles', class: 'admin', reason },
    { sql: 'SELECT rolconfig(r) FROM pg_roles r', class: 'admin', reason },
    { sql: 'SELECT (r).rolconfig FROM pg_roles r', class: 'admin', reason },
    { sql: 'SELECT r.row_to_json FROM pg_roles r', class: 'admin', reason },
    { sql: 'SELECT pg_catalog.pg_roles.to_jsonb FROM pg_catalog.pg_roles', class: 'admin', reason },
    { sql: 'SELECT u.row_to_json FROM pg_user u', class: 'admin', reason: /^may read pg_user\.useconfig/ },
    { sql: 'SELECT row_to_json(x) FROM (pg_roles CROSS JOIN (SELECT 1 AS one) s) AS x', class: 'admin', reason },
    { sql: 'SELECT x.row_to_json FROM (pg_roles JOIN pg_user ON usename = rolname) AS x', class: 'admin', reason },
    { sql: 'SELECT x.l FROM (pg_roles CROSS JOIN (SELECT 1) s) AS x (a, b, c, d, e, f, g, h, i, j, k, l)', class: 'admin', reason },
    { sql: 'SELECT l FROM pg_roles r (a, b, c, d, e, f, g, h, i, j, k, l)', class: 'admin', reason },
    { sql: 'SELECT x FROM (SELECT rolname, rolconfig FROM pg_roles) x', class: 'admin', reason },
    { sql: 'CREATE VIEW v AS SELECT rolname, rolconfig FROM pg_roles', class: 'admin', reason: /pg_roles/ },
    { sql: 'SELECT useconfig FROM pg_user', class: 'admin', reason: /^may read pg_user\.useconfig/ },
    { sql: "SELECT rolname, rolsuper FROM pg_roles WHERE rolname = 'rolconfig'", class: 'read' },
    { sql: 'SELECT r.rolname, m.member FROM pg_roles r JOIN pg_auth_members m ON m.roleid = r.oid', class: 'read' },
    { sql: 'WITH c AS (SELECT rolname FROM pg_roles) SELECT c FROM c', class: 'read' },
    { sql: 'SELECT usename FROM pg_user', class: 'read' },
    { sql: 'SELECT r.oid, r.rolname, u.usesysid FROM pg_roles r JOIN pg_user u ON u.usename = r.rolname', class: 'read' },
    { sql: 'SELECT x.rolname FROM (pg_roles CROSS JOIN (SELECT 1) s) AS x', class: 'read' }
  ])
})

t.test('text that may nest deeper than the parser can return is refused before it is parsed, and the parser goes on working', async (t) => {
  const deep = [
    'SELECT 1' + '+1'.repeat(20_000),
    'SELECT ' + '(SELECT '.repeat(3000) + '1' + ')'.repeat(3000),
    'SELECT x' + ' COLLATE "C"'.repeat(6000),
    'SELECT 1' + ' UNION SELECT 1'.repeat(13_000),
    'SELECT 1' + '::int'.repeat(10_000),
    'SELECT 1' + ' IS NULL'.repeat(5000),
    'SELECT 1' + ' + t.and'.repeat(12_000),
    'SELECT true' + ' BETWEEN true AND true IS TRUE'.repeat(6000),
    'SELECT t.a' + ' + t./**/and'.repeat(10_000) + ' FROM t',
    'SELECT t.a' + ' + t.--\nor'.repeat(10_000) + ' FROM t',
    "SELECT '\x01'" + ' + 1'.repeat(12_000),
    'SELECT 1 /*\x0b*/' + ' + 1'.repeat(12_000),
    'SELECT 1 FROM t' + ' JOIN t ON true AND true'.repeat(12_000),
    'SELECT 1, 1' + ' UNION SELECT 1, 1'.repeat(30_000)
  ]
  for (const sql of deep) t.match(classify(sql), { class: 'admin', reason: /^nested deeper than the parser can safely read$/ }, sql.slice(0, 30))
  t.equal(fingerprint(deep[0]).length, 16, 'a fingerprint falls back to a hash')
  t.equal(classify('SELECT 1 + 2 FROM t WHERE a IN (SELECT b FROM u)').class, 'read', 'the parser still works')
  t.match(classify('SELECT 1' + '+1'.repeat(900)), { class: 'read' }, 'a long chain under the bound parses')
  const rows = Array.from({ length: 5000 }, (_, i) => `(${i}, 'a-b+c(', -${i}.5, $$x)$$)`).join(',')
  t.equal(classify(`INSERT INTO t VALUES ${rows}`).class, 'write', 'long flat lists are not deep')
  const branches = Array.from({ length: 3000 }, (_, i) => `WHEN ("t"."id" = ${i}) THEN 'v${i}'::text`).join(' ')
  t.equal(classify(`UPDATE t SET f = CASE ${branches} ELSE NULL END WHERE "t"."id" IN (1, 2)`).class, 'write', 'a bulk update\'s CASE branches are a flat list')
  t.equal(classify('INSERT INTO log (x) ' + Array.from({ length: 2000 }, (_, i) => `SELECT 'v${i}'`).join(' UNION ALL ')).class, 'write', 'a bulk insert of UNION ALL arms')
  t.equal(classify(Array.from({ length: 2000 }, (_, i) => `SELECT id, name FROM t WHERE id = ${i} AND x > 1`).join(' UNION ALL ')).class, 'read', 'each arm\'s operators are its own')
  const terms = Array.from({ length: 3000 }, (_, i) => `(a = ${i} AND b = -${i})`).join(' OR ')
  t.equal(classify(`SELECT * FROM t WHERE ${terms}`).class, 'read', 'OR and AND terms are flat lists')
})

t.test('the nesting bound counts levels and operators, and list separators start siblings', async (t) => {
  const tok = (s: string): Array<{ text: string, keywordKind: number }> => s.split(' ').map((text) => ({ text, keywordKind: /^[A-Z]+$/.test(text) ? 1 : 0 }))
  t.equal(nesting(tok('SELECT a + b + c')), 2)
  t.equal(nesting(tok('SELECT ( a + ( b ) ) , c')), 9, 'a parenthesis is 4 units')
  t.equal(nesting(tok('SELECT a + b , c + d AND e')), 1)
  t.equal(nesting(tok('SELECT CASE WHEN a = b THEN c END + d')), 5)
  t.equal(nesting(tok('SELECT a UNION SELECT b ; SELECT c')), 1)
  t.equal(nesting(tok('SELECT 1 FROM a JOIN b ON x AND y JOIN c ON x AND y')), 2, 'an ON condition\'s AND does not end the join')
  t.equal(nesting(tok('SELECT a , b UNION SELECT a , b UNION SELECT a = b')), 3, 'nor a select list\'s comma the set operation')
  t.equal(nesting(tok('SELECT 1 FROM a JOIN b JOIN c UNION SELECT 1 FROM d JOIN e')), 2, 'an arm\'s joins are its own')
  t.equal(nesting(tok('SELECT a BETWEEN b AND c IS TRUE BETWEEN b AND c IS TRUE')), 4, 'BETWEEN\'s AND separates nothing')
  t.equal(nesting(tok('SELECT 1 + t . AND + t . OR + t . END')), 3, 'a keyword after a dot is a name')
  t.equal(nesting(tok('SELECT a :: int :: text || b :: text || c')), 2, 'a cast binds to its operand; only a run of them nests')
  t.equal(nesting(tok('END ; END')), 0, 'an END that closes no CASE closes nothing')
  t.equal(nesting(tok('SELECT * , t . * , count ( * ) FROM t')), 4, 'a star for all columns is no operator')
  t.equal(nesting(tok('SELECT a * b')), 1)
})

t.test('asking for read-write transactions is a write: a session whose token may not write is read-only upstream', async (t) => {
  check(t, [
    { sql: 'SET default_transaction_read_only = off', class: 'write' },
    { sql: 'SET default_transaction_read_only TO DEFAULT', class: 'write' },
    { sql: 'RESET transaction_read_only', class: 'write' },
    { sql: 'SET LOCAL transaction_read_only = false', class: 'write' },
    { sql: 'SET TRANSACTION READ WRITE', class: 'write' },
    { sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE', class: 'write' },
    { sql: 'BEGIN READ WRITE', class: 'write' },
    { sql: 'START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE', class: 'write' },
    { sql: 'SET default_transaction_read_only = on', class: 'read' },
    { sql: 'BEGIN READ ONLY', class: 'read' },
    { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', class: 'read' },
    { sql: 'BEGIN', class: 'read' }
  ])
})

t.test('settings only a superuser may change are admin, whatever role the target logs in as', async (t) => {
  check(t, [
    { sql: "SET log_statement = 'none'", class: 'admin', reason: /sets log_statement, which only a superuser may/ },
    { sql: 'SET jit_profiling_support = on', class: 'admin', reason: /sets jit_profiling_support, which only a superuser may/ },
    { sql: 'SET event_triggers = off', class: 'admin', reason: /sets event_triggers, which only a superuser may/ },
    { sql: 'SET log_min_messages TO panic', class: 'admin' },
    { sql: 'SET zero_damaged_pages = on', class: 'admin' },
    { sql: 'RESET track_functions', class: 'admin' },
    { sql: "SET session_preload_libraries = 'x'", class: 'admin' },
    { sql: 'SET work_mem = \'64MB\'', class: 'read' },
    { sql: 'SET statement_timeout = 1000', class: 'read' }
  ])
})

t.test('an application name the gateway gives its own sessions is admin to set', async (t) => {
  check(t, [
    { sql: "SET application_name = 'lineage:deploy-bot'", class: 'admin', reason: /names the session as one of another agent/ },
    { sql: "SET application_name TO 'LINEAGE:x'", class: 'admin' },
    { sql: "SET application_name = 'report-job'", class: 'read' }
  ])
})

t.test('a LISTEN is named wherever the text may run one: beside other statements, or in the string body of a function it creates', async (t) => {
  t.equal(classify('LISTEN jobs').listens, true)
  t.equal(classify('SELECT 1; LISTEN jobs').listens, true)
  t.equal(classify("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'LISTEN jobs'").listens, true, 'a later SELECT f() would LISTEN unseen')
  t.equal(classify('CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN LISTEN jobs; END $$').listens, true)
  t.equal(classify('UNLISTEN jobs').listens, undefined)
  t.equal(classify("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'").listens, undefined)
})
