import { randomBytes } from 'node:crypto'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import postgres from 'postgres'
import t, { type Test } from 'tap'
import { claimsOf, exchangeToken, rootToken } from '../../helpers/broker.js'
import { databaseUrl } from '../../helpers/db.js'
import { createTarget, saveTarget, startTestGateway } from '../../helpers/gateway.js'
import { startPgTarget } from '../../helpers/pg-target.js'
import { run } from '../../helpers/process.js'
import { loadTlsContext } from '../../../src/gateway/pg/tls.js'
import { connectUpstream } from '../../../src/gateway/pg/upstream.js'
import { fingerprint } from '../../../src/gateway/pg/classify.js'
import { passwordMessage, query, startupMessage } from '../../../src/gateway/pg/protocol/frontend.js'
import { parseErrorFields } from '../../../src/gateway/pg/protocol/backend.js'
import { Framer, type Frame } from '../../../src/gateway/pg/protocol/framer.js'
import { Writer } from '../../../src/gateway/pg/protocol/writer.js'

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the PostgreSQL gateway tests (they need a real upstream) are skipped')
} else {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-pg-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const { b, gw, upstream, direct, client, root, token } = await startPgTarget(t, {
    gateway: { tls: await loadTlsContext({ dataDir: dir }), pgLoginTimeoutMs: 500 },
    tables: 'CREATE TABLE secrets_vault (k text)',
    rules: [
      { effect: 'mask', columns: ['customers.email'], with: 'email' },
      { effect: 'mask', columns: ['*.ssn'], with: 'last4' },
      { effect: 'deny', statements: ['delete_without_where', 'update_without_where'], reason: 'every delete and update names its rows' },
      { effect: 'deny', tables: ['secrets*'], reason: 'the vault is off limits' },
      { effect: 'deny', actions: ['ddl'], min_depth: 2 }
    ]
  })
  const reader = await token('reader', 'db:read')
  const writer = await token('writer', 'db:read db:write')
  const port = gw.pgPort
  const connection = (password: string, extra: Record<string, unknown> = {}): pg.ClientConfig => ({ host: '127.0.0.1', port, user: 'agent', password, database: 'db', ...extra })
  const psql = async (password: string, args: string[], sslmode = 'require'): Promise<{ code: number | null, stdout: string, stderr: string }> =>
    await run('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', 'agent', '-d', 'db', ...args], { PGPASSWORD: password, PGSSLMODE: sslmode, PGCONNECT_TIMEOUT: '10' })
  const connected = async (password: string): Promise<pg.Client> => {
    const c = new pg.Client(connection(password))
    await c.connect()
    return c
  }

  t.test('psql over TLS reads through the gateway with the policy\'s columns masked', async (t) => {
    const r = await psql(reader, ['-c', 'SELECT id, name, email, ssn FROM customers ORDER BY id'])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, '1|Ann|a***@example.com|***6789\n2|Bob|b***@example.org|\n')
    const plain = await psql(reader, ['-c', 'SELECT 1'], 'disable')
    t.equal(plain.stdout, '1\n', 'without TLS too')
  })

  t.test('a refused statement answers 42501 with a lineage: message and the session goes on', async (t) => {
    const r = await psql(reader, ['-c', 'INSERT INTO orders VALUES (1, \'x\')', '-c', 'DELETE FROM customers', '-c', 'SELECT count(*) FROM customers', '-c', 'SELECT * FROM secrets_vault'])
    t.match(r.stderr, /ERROR: {2}lineage: scope db:write is required/)
    t.match(r.stdout, /^2$/m, 'the next statement runs')
    t.match(r.stderr, /lineage: denied by policy: the vault is off limits/)
    const w = await psql(writer, ['-c', 'DELETE FROM customers', '-c', 'UPDATE customers SET name = name', '-c', 'UPDATE customers SET name = name WHERE id = 2'])
    t.match(w.stderr, /lineage: denied by policy: every delete and update names its rows/)
    t.match(w.stdout, /^$/m)
    t.equal((await direct.query('SELECT count(*)::int AS n FROM customers')).rows[0].n, 2, 'nothing was deleted')
  })

  t.test('a tables rule covers the rows a statement reaches through a view, an inheritance parent or a partitioned table', async (t) => {
    await direct.query(`CREATE VIEW vault_view AS SELECT * FROM secrets_vault; CREATE VIEW outer_view AS SELECT * FROM vault_view;
      CREATE TABLE base (k text); CREATE TABLE secrets_child () INHERITS (base);
      CREATE TABLE parts (a int) PARTITION BY LIST (a); CREATE TABLE secrets_part PARTITION OF parts FOR VALUES IN (1);
      CREATE TABLE secrets_parted (a int) PARTITION BY LIST (a); CREATE TABLE plain_part PARTITION OF secrets_parted FOR VALUES IN (1);
      CREATE TABLE noted (a int); CREATE RULE noted_copy AS ON INSERT TO noted DO ALSO INSERT INTO secrets_vault VALUES ('x')`)
    t.teardown(async () => { await direct.query('DROP VIEW outer_view, vault_view; DROP TABLE secrets_child, base, parts, secrets_parted, noted') })
    const r = await psql(reader, ['-c', 'SELECT * FROM outer_view', '-c', 'SELECT * FROM base', '-c', 'SELECT count(*) FROM parts', '-c', 'SELECT * FROM ONLY base',
      '-c', 'SELECT * FROM plain_part', '-c', 'SELECT count(*) FROM orders', '-c', 'SELECT count(*) FROM noted'])
    t.equal(r.stderr.match(/lineage: denied by policy: the vault is off limits/g)?.length, 5, r.stderr)
    t.match(r.stdout, /^\d+\n0$/m, 'other tables are read as before, one whose rule acts only on writes too')
    t.match((await psql(reader, ['-c', 'SELECT * FROM plain_part'])).stderr, /the vault is off limits/, 'a partition named alone is its table\'s rows')
  })

  t.test('statements that hide a write or DDL are refused whole', async (t) => {
    const hostile = [
      'SELECT 1; DROP TABLE customers',
      'WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING *) SELECT * FROM d',
      'SELECT 1 /* ; */ ; DELETE FROM customers WHERE id = 1 -- ',
      'EXPLAIN ANALYZE DELETE FROM customers WHERE id = 1',
      'DO $$ BEGIN DELETE FROM customers; END $$',
      'SELECT set_config(\'role\', \'postgres\', false)',
      'SET ROLE postgres',
      'COPY customers TO PROGRAM \'cat\'',
      'PREPARE p AS DELETE FROM customers WHERE id = 1',
      'SELECT U&"d\\0061ta" FROM (SELECT 1 AS data) x; TRUNCATE customers',
      "SELECT ('/etc/hostname'::text).pg_read_file",
      'SELECT (pg_backend_pid()).pg_terminate_backend',
      "SELECT c.nextval FROM (SELECT 'customers_id_seq'::regclass) AS c(nextval_arg)"
    ]
    for (const sql of hostile) {
      const r = await psql(reader, ['-c', sql])
      t.match(r.stderr, /lineage: /, sql)
    }
    t.equal((await direct.query('SELECT count(*)::int AS n FROM customers')).rows[0].n, 2, 'the table is untouched')
  })

  t.test('a read that calls a volatile user-defined function needs write; stable and built-in functions stay reads', async (t) => {
    await direct.query(`CREATE FUNCTION purge_orders() RETURNS int LANGUAGE sql VOLATILE AS 'DELETE FROM orders WHERE id < 0; SELECT 1';
      CREATE FUNCTION order_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM orders'`)
    const r = await psql(reader, ['-c', 'SELECT purge_orders()', '-c', 'SELECT order_count() >= 0, lower(\'X\'), now() IS NOT NULL'])
    t.match(r.stderr, /lineage: scope db:write is required \(calls purge_orders, a volatile function that may write\)/)
    t.match(r.stdout, /^t\|x\|t$/m)
    const w = await psql(writer, ['-c', 'SELECT purge_orders()'])
    t.equal(w.stdout, '1\n', 'a token with write may call it')
    // PostgreSQL 15 reads json_value(…) as a call of whatever function has that name; the parser's grammar (18) as SQL/JSON syntax.
    await direct.query("CREATE FUNCTION json_value(text, text) RETURNS text LANGUAGE sql VOLATILE AS 'DELETE FROM orders WHERE id < 0; SELECT $1'")
    t.teardown(async () => { await direct.query('DROP FUNCTION json_value(text, text)') })
    const j = await psql(reader, ['-c', "SELECT json_value('a', 'b')"])
    t.match(j.stderr, /lineage: scope db:write is required \(calls json_value, a volatile function that may write\)/)
  })

  t.test('a token that may not write gets a read-only session: writes hidden in functions, operators and views fail upstream', async (t) => {
    await direct.query(`CREATE TABLE marks (n int);
      CREATE FUNCTION mark() RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO marks VALUES (1); SELECT 1';
      CREATE FUNCTION looks_stable() RETURNS int LANGUAGE plpgsql STABLE AS 'BEGIN RETURN mark(); END';
      CREATE FUNCTION mark_op(int, int) RETURNS int LANGUAGE sql VOLATILE AS 'INSERT INTO marks VALUES ($1); SELECT $2';
      CREATE OPERATOR #&# (LEFTARG = int, RIGHTARG = int, FUNCTION = mark_op);
      CREATE VIEW marking AS SELECT mark() AS m`)
    t.teardown(async () => { await direct.query('DROP VIEW marking; DROP OPERATOR #&# (int, int); DROP FUNCTION mark_op(int, int), looks_stable(), mark(); DROP TABLE marks') })
    const r = await psql(reader, ['-c', 'SHOW default_transaction_read_only', '-c', 'SELECT looks_stable()', '-c', 'SELECT 1 #&# 2', '-c', 'SELECT * FROM marking',
      '-c', 'SET default_transaction_read_only = off', '-c', 'BEGIN READ WRITE', '-c', 'SELECT 7'])
    t.equal(r.stdout, 'on\n7\n')
    t.equal(r.stderr.match(/cannot execute INSERT in a read-only transaction/g)?.length, 3, r.stderr)
    t.equal(r.stderr.match(/lineage: scope db:write is required/g)?.length, 2, 'the read-only setting cannot be undone')
    t.equal((await direct.query('SELECT count(*)::int AS n FROM marks')).rows[0].n, 0, 'nothing was written')
    const w = await psql(writer, ['-c', 'SHOW default_transaction_read_only', '-c', 'SELECT looks_stable()'])
    t.equal(w.stdout, 'off\n1\n', 'a token that may write gets an ordinary session')
  })

  t.test('node-postgres: extended protocol, named prepared statements, masking and refusals that keep the session usable', async (t) => {
    const c = await connected(writer)
    t.teardown(async () => { await c.end().catch(() => {}) })
    const named = await c.query({ name: 'by-id', text: 'SELECT email, ssn FROM customers WHERE id = $1', values: [1] })
    t.same(named.rows, [{ email: 'a***@example.com', ssn: '***6789' }])
    const again = await c.query({ name: 'by-id', text: 'SELECT email, ssn FROM customers WHERE id = $1', values: [2] })
    t.same(again.rows, [{ email: 'b***@example.org', ssn: null }], 'the prepared statement re-executed, still masked')
    await t.rejects(c.query('DELETE FROM orders'), { code: '42501', message: /^lineage: denied by policy/ })
    t.same((await c.query('SELECT $1::int + 1 AS n', [41])).rows, [{ n: 42 }], 'the session goes on')
    // A refusal inside a transaction aborts it, as any error would.
    await c.query('BEGIN')
    await c.query('INSERT INTO orders VALUES (10, \'kept?\')')
    await t.rejects(c.query('DELETE FROM orders'), { code: '42501' })
    await t.rejects(c.query('SELECT 1'), { code: '25P02' })
    await c.query('ROLLBACK')
    t.equal((await direct.query('SELECT count(*)::int AS n FROM orders WHERE id = 10')).rows[0].n, 0, 'the transaction rolled back')
    await c.query('INSERT INTO orders VALUES (11, \'ok\')')
    t.equal((await direct.query('SELECT count(*)::int AS n FROM orders WHERE id = 11')).rows[0].n, 1)
  })

  t.test('binary results are masked too, and columns of other types come through untouched', async (t) => {
    // node-postgres's `binary` option (missing from its types) asks for every result column in binary.
    const c = new pg.Client({ ...connection(reader), binary: true } as pg.ClientConfig)
    await c.connect()
    t.teardown(async () => { await c.end() })
    const r = await c.query('SELECT id, email, ssn FROM customers WHERE id = $1', [1])
    t.equal(r.rows[0].email, 'a***@example.com')
    t.equal(r.rows[0].ssn, '***6789')
    t.equal(r.rows[0].id, 1)
  })

  t.test('a masked column computed on, converted, combined or read as a whole row is refused, while plain selects and lookups by it work', async (t) => {
    const bypasses = [
      'SELECT upper(email) FROM customers',
      "SELECT email || '' AS e FROM customers",
      'SELECT email::varchar(200) FROM customers',
      'SELECT 1 FROM customers WHERE email::int = 1',
      'SELECT max(ssn) FROM customers',
      'SELECT email FROM customers UNION ALL SELECT \'x\'',
      'SELECT (SELECT email FROM customers ORDER BY id LIMIT 1)',
      'SELECT c FROM customers c',
      'SELECT row_to_json(c) FROM customers c',
      'SELECT upper(x.e) FROM (SELECT email AS e FROM customers) x',
      'SELECT email FROM customers a FULL JOIN customers b USING (email)',
      'SELECT * FROM customers UNION SELECT * FROM customers',
      'SELECT id, percentile_disc(0) WITHIN GROUP (ORDER BY email) FROM customers GROUP BY id',
      'SELECT mode() WITHIN GROUP (ORDER BY c) FROM customers c GROUP BY c.id',
      'SELECT c.row_to_json FROM customers c',
      'WITH x AS (SELECT 1 AS row_to_json) SELECT c.id, c.row_to_json FROM customers c',
      'SELECT c.row_to_json FROM customers c WHERE EXISTS (SELECT 1 FROM generate_series(1, 1) c)',
      "SELECT ('{1}'::int[])[(SELECT string_agg(email || ssn, ',')::int FROM customers)]",
      'SELECT xmlforest(email AS email, ssn AS ssn) FROM customers',
      'SELECT (SELECT c FROM unnest(ARRAY[c]) c) FROM customers c',
      'SELECT s.row_to_json FROM (SELECT c.id, c.email, c.ssn, (row_to_json).* FROM customers c, (VALUES (1)) row_to_json(a)) s',
      'SELECT id, lower(x.name) FROM customers AS x(id, nm, name)',
      "SELECT id FROM customers WHERE length(''::bytea, email) = 1",
      'SELECT s.concat FROM (SELECT email FROM customers) s',
      'SELECT to_json(j) FROM customers LEFT JOIN (SELECT NULL::text AS email) x USING (email) AS j',
      'SELECT ssn FROM people LEFT JOIN (SELECT NULL::text AS ssn) x USING (ssn)',
      'SELECT * FROM people NATURAL LEFT JOIN (SELECT NULL::text AS ssn) x',
      'SELECT ~ssn FROM staff'
    ]
    await direct.query(`CREATE TABLE people (id int, ssn varchar(11)); INSERT INTO people VALUES (1, '987-65-4321');
      CREATE TABLE staff (id int, ssn bigint); INSERT INTO staff VALUES (1, 123456789)`)
    t.teardown(async () => { await direct.query('DROP TABLE people, staff') })
    for (const sql of bypasses) {
      const r = await psql(reader, ['-c', sql])
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: .*masked/, sql)
      t.notMatch(r.stdout + r.stderr, /ann@|bob@|6789|45-|4321|-123456790/i, `${sql}: nothing unmasked, not even in an error`)
    }
    const plain = await psql(reader, ['-c', "SELECT id, email, ssn FROM customers WHERE email = 'ann@example.com' AND ssn LIKE '%89' ORDER BY email",
      '-c', 'SELECT x.e FROM (SELECT email AS e FROM customers WHERE id = 2) x', '-c', 'SELECT upper(name), count(*) FROM customers GROUP BY name ORDER BY 1',
      '-c', "SELECT c.id, count(c.email) FROM customers c WHERE lower(c.email) = lower('ANN@example.com') AND (email, id) > ('a', 0) GROUP BY c.id ORDER BY lower(email)",
      '-c', "SELECT c.id, g.n FROM customers c, generate_series(1, 2) AS g(n) WHERE strpos(c.email, 'bob') > 0 AND c.xmin IS NOT NULL ORDER BY 2"])
    t.equal(plain.code, 0, plain.stderr)
    t.equal(plain.stdout, '1|a***@example.com|***6789\nb***@example.org\nANN|1\nBOB|1\n1|1\n2|1\n2|2\n', 'selected as stored: masked; compared: matched; other columns computed freely')
    const c = await connected(writer)
    t.teardown(async () => { await c.end() })
    await t.rejects(c.query('SELECT lower(email) AS e FROM customers WHERE id = $1', [1]), { code: '42501', message: /^lineage: denied by policy: customers\.email is masked/ }, 'extended protocol too')
    await t.rejects(c.query('UPDATE customers SET name = email WHERE id = $1', [1]), { code: '42501' }, 'a writer cannot copy a masked column into an unmasked one')
    t.equal((await direct.query('SELECT name FROM customers WHERE id = 1')).rows[0].name, 'Ann')
    t.same((await c.query('SELECT email FROM customers WHERE id = $1', [1])).rows, [{ email: 'a***@example.com' }], 'the session goes on, masked')
    await b.broker.ctx.audit.flush()
    const audit = await b.admin('GET', `/v1/audit?jti=${claimsOf(reader).jti as string}&decision=deny&limit=1000`)
    const records = audit.body.events as Array<Record<string, any>>
    t.match(records.find((x) => x.path === 'SELECT upper(email) FROM customers'), { decision: 'deny', method: 'read', detail: { reason: /customers\.email is masked/ } }, 'the refusal is audited with its reason')
  })

  t.test('a masked column a view reads, or one read through an inheritance parent no rule masks, is refused: PostgreSQL reports such columns as the view\'s or the parent\'s', async (t) => {
    await direct.query(`CREATE VIEW contacts AS SELECT id, email AS contact FROM customers;
      CREATE VIEW whole_rows AS SELECT c.id, row_to_json(c) AS j FROM customers c;
      CREATE VIEW by_email AS SELECT id FROM customers WHERE email LIKE '%.com';
      CREATE VIEW names AS SELECT id, name FROM customers; CREATE VIEW counted AS SELECT count(*) AS n FROM customers;
      CREATE MATERIALIZED VIEW customers_copy AS SELECT * FROM customers;
      CREATE TABLE everyone (id int, name text, email text, ssn text); ALTER TABLE customers INHERIT everyone`)
    t.teardown(async () => { await direct.query('DROP VIEW contacts, whole_rows, by_email, names, counted; DROP MATERIALIZED VIEW customers_copy; ALTER TABLE customers NO INHERIT everyone; DROP TABLE everyone') })
    for (const sql of ['SELECT contact FROM contacts', 'SELECT j FROM whole_rows', 'SELECT * FROM customers_copy', 'SELECT id FROM by_email',
      'SELECT n.id, c.contact FROM names n JOIN contacts c USING (id)', 'SELECT email FROM everyone']) {
      const r = await psql(reader, ['-c', sql])
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: customers\.email is masked, and this statement reads customers (through a view|as an inheritance parent or child)/, sql)
      t.notMatch(r.stdout + r.stderr, /ann@|bob@/i, `${sql}: nothing unmasked`)
    }
    const r = await psql(reader, ['-c', 'SELECT * FROM names ORDER BY id', '-c', 'SELECT n FROM counted', '-c', 'SELECT email FROM customers ORDER BY id'])
    t.equal(r.stderr, '')
    t.equal(r.stdout, '1|Ann\n2|Bob\n2\na***@example.com\nb***@example.org\n', 'a view that reads no masked column, and the child itself, read as before')
  })

  t.test('a function whose body reads a table is judged as reading it: its result would show the rows as of no table, for masks and tables rules to miss', async (t) => {
    const builder = await token('function-maker', 'db:read db:ddl')
    t.teardown(async () => { await direct.query('DROP FUNCTION IF EXISTS everyone_rows(), emails(), vault_keys(), greeting()') })
    const r = await psql(builder, ['-c', "CREATE FUNCTION everyone_rows() RETURNS SETOF customers LANGUAGE sql AS 'SELECT * FROM customers'",
      '-c', "CREATE FUNCTION emails() RETURNS SETOF text LANGUAGE plpgsql AS 'BEGIN RETURN QUERY SELECT email FROM customers; END'",
      '-c', "CREATE FUNCTION vault_keys() RETURNS SETOF text LANGUAGE sql AS 'SELECT k FROM secrets_vault'",
      '-c', "CREATE FUNCTION greeting() RETURNS text LANGUAGE sql AS 'SELECT ''hello'''"])
    t.equal(r.stderr.match(/lineage: denied by policy: customers\.email is masked, and this statement would return whole rows/g)?.length, 2, r.stderr)
    t.match(r.stderr, /lineage: denied by policy: the vault is off limits/)
    const made = await direct.query("SELECT proname FROM pg_proc WHERE proname IN ('everyone_rows', 'emails', 'vault_keys', 'greeting')")
    t.same(made.rows, [{ proname: 'greeting' }], 'only the function that reads no table was made')
  })

  t.test('a tables rule covers a call of a function whose body reads the table, however the call is nested', async (t) => {
    await direct.query(`INSERT INTO secrets_vault VALUES ('hunter2');
      CREATE FUNCTION vault_dump() RETURNS SETOF text LANGUAGE sql STABLE AS 'SELECT k FROM secrets_vault';
      CREATE FUNCTION vault_first() RETURNS text LANGUAGE plpgsql STABLE AS $$BEGIN RETURN (SELECT k FROM public.secrets_vault LIMIT 1); END$$;
      CREATE FUNCTION vault_wrapped() RETURNS SETOF text LANGUAGE sql STABLE AS 'SELECT * FROM vault_dump()';
      CREATE FUNCTION orders_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM orders'`)
    t.teardown(async () => { await direct.query('DROP FUNCTION vault_wrapped(), vault_dump(), vault_first(), orders_count(); DELETE FROM secrets_vault') })
    for (const sql of ['SELECT vault_dump()', 'SELECT * FROM vault_dump()', 'SELECT vault_first()', 'SELECT 1 FROM orders WHERE EXISTS (SELECT vault_wrapped())', 'SELECT upper(vault_first())']) {
      const r = await psql(reader, ['-c', sql])
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: the vault is off limits/, sql)
      t.notMatch(r.stdout, /hunter2/, sql)
    }
    const r = await psql(reader, ['-c', 'SELECT orders_count() >= 0'])
    t.equal(r.stderr, '')
    t.equal(r.stdout, 't\n', 'a function that reads no table a rule covers is called as before')
  })

  t.test('where columns are masked, a call of a function whose body reads a masked table, or cannot be read, is refused: what it returns is of no table', async (t) => {
    await direct.query(`CREATE FUNCTION customer_rows() RETURNS SETOF customers LANGUAGE sql STABLE AS 'SELECT * FROM customers';
      CREATE FUNCTION built_emails() RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$BEGIN RETURN QUERY EXECUTE 'SELECT email FROM ' || 'customers'; END$$;
      CREATE FUNCTION orders_total() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM orders'`)
    t.teardown(async () => { await direct.query('DROP FUNCTION customer_rows(), built_emails(), orders_total()') })
    await direct.query("CREATE FUNCTION wrapped_rows() RETURNS SETOF customers LANGUAGE sql STABLE AS 'SELECT * FROM customer_rows()'")
    t.teardown(async () => { await direct.query('DROP FUNCTION wrapped_rows()') })
    for (const sql of ['SELECT * FROM customer_rows()', 'SELECT email FROM customer_rows() WHERE id = 1', 'SELECT built_emails()', 'SELECT 1 FROM orders WHERE EXISTS (SELECT customer_rows())',
      'SELECT (wrapped_rows()).email']) {
      const r = await psql(reader, ['-c', sql])
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: (customers\.email is masked, and this statement calls a function that reads customers|it calls built_emails, whose body the gateway cannot read)/, sql)
      t.notMatch(r.stdout + r.stderr, /ann@|bob@/i, `${sql}: nothing unmasked`)
    }
    const r = await psql(reader, ['-c', 'SELECT orders_total() >= 0', '-c', 'SELECT lower(name) FROM customers ORDER BY id'])
    t.equal(r.stderr, '')
    t.equal(r.stdout, 't\nann\nbob\n', 'functions that read no masked table, built-in ones included, are called as before')
  })

  t.test('large results stream through, masked row by row', async (t) => {
    const c = await connected(reader)
    t.teardown(async () => { await c.end() })
    const plain = await c.query('SELECT g, repeat(\'x\', 100) AS pad FROM generate_series(1, 200000) g')
    t.equal(plain.rows.length, 200000)
    t.equal(plain.rows[199999].g, 200000)
    const masked = await c.query('SELECT c.email, g FROM customers c, generate_series(1, 50000) g WHERE c.id = 1')
    t.equal(masked.rows.length, 50000)
    t.ok(masked.rows.every((r: { email: string }) => r.email === 'a***@example.com'), 'every row masked')
  })

  t.test('a value of many megabytes is passed on as it arrives, not held whole, when nothing in it is masked', async (t) => {
    const s = connect(port, '127.0.0.1')
    t.teardown(() => s.destroy())
    let received: Buffer[] = []
    let bytesIn = 0
    s.on('data', (d: Buffer) => { received.push(d); bytesIn += d.length })
    const readyAfter = async (from: number): Promise<void> => {
      for (let i = 0; i < 600; i++) {
        const all = Buffer.concat(received)
        const z = all.indexOf(Buffer.from([0x5a, 0, 0, 0, 5]), from)
        if (z >= 0) return
        received = [all]
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      throw new Error('no ReadyForQuery')
    }
    await new Promise((resolve) => s.once('connect', resolve))
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(reader)]))
    await readyAfter(0)
    const loggedIn = bytesIn
    received = []
    const size = 64 * 1024 * 1024
    global.gc?.()
    const before = process.memoryUsage().arrayBuffers
    s.pause()
    s.write(query(`SELECT repeat('x', ${size}) AS big`))
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const held = process.memoryUsage().arrayBuffers - before
    t.ok(held < size / 2, `${Math.round(held / 1e6)} MB held while the client does not read a ${size / 1e6} MB value`)
    s.resume()
    await readyAfter(0)
    const all = Buffer.concat(received)
    t.equal(all[0], 0x54, 'RowDescription')
    const row = all.indexOf(0x44, all.readUInt32BE(1) + 1)
    t.equal(all.readUInt32BE(row + 1), 4 + 2 + 4 + size, 'a DataRow of the whole value')
    t.equal(all.readUInt32BE(row + 7), size)
    t.ok(all.subarray(row + 11, row + 11 + size).every((b) => b === 0x78), 'every byte of it')
    t.ok(bytesIn > loggedIn + size)
    await direct.query(`CREATE TABLE big_ssn (id int, ssn text, note text); INSERT INTO big_ssn VALUES (1, repeat('9', ${1024 * 1024}), repeat('n', ${1024 * 1024}))`)
    t.teardown(async () => { await direct.query('DROP TABLE big_ssn') })
    const masked = await connected(reader)
    t.teardown(async () => { await masked.end() })
    t.same((await masked.query('SELECT id, ssn FROM big_ssn')).rows, [{ id: 1, ssn: '***9999' }], 'a large value of a masked column is still masked')
    t.equal((await masked.query('SELECT note FROM big_ssn')).rows[0].note.length, 1024 * 1024, 'a large value of another column of the table passes')
  })

  t.test('a cut-off while a large value is passed on ends the connection without writing into that value', async (t) => {
    const doomed = await token('doomed-mid-row', 'db:read')
    const s = connect(port, '127.0.0.1')
    t.teardown(() => s.destroy())
    let received: Buffer[] = []
    s.on('data', (d: Buffer) => { received.push(d) })
    const closed = new Promise((resolve) => s.on('close', resolve))
    await new Promise((resolve) => s.once('connect', resolve))
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(doomed)]))
    for (let i = 0; i < 200 && !Buffer.concat(received).includes(Buffer.from([0x5a, 0, 0, 0, 5])); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    received = []
    const size = 64 * 1024 * 1024
    // The client does not read: the gateway is in the middle of the row when the cut-off comes.
    // PostgreSQL sends nothing, not even the RowDescription, until it has built the whole value, which
    // takes well over a second when the machine is busy: wait for the row to reach the paused socket's
    // buffer, not for a fixed time, or the cut-off comes before the row and the test proves nothing.
    s.pause()
    s.write(query(`SELECT repeat('x', ${size}) AS big`))
    for (let i = 0; i < 1500 && s.readableLength < 1024; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.ok(s.readableLength >= 1024, 'the row is on its way when the cut-off comes')
    t.equal((await b.admin('POST', `/v1/tokens/${claimsOf(doomed).jti as string}/revoke`)).status, 200)
    await new Promise((resolve) => setTimeout(resolve, 300))
    s.resume()
    await closed
    const all = Buffer.concat(received)
    const row = all.indexOf(0x44, all.readUInt32BE(1) + 1)
    t.equal(all.readUInt32BE(row + 7), size, 'the row had begun')
    const value = all.subarray(row + 11)
    t.ok(value.length < size, 'and was cut short')
    t.ok(value.every((x) => x === 0x78), 'nothing but the value came inside the value')
  })

  /** A raw client, logged in: node-postgres gives up on a connection after any error it did not ask for. `until(tag)`: the frames up to the next one of that type. */
  const rawSession = async (password: string): Promise<{ s: ReturnType<typeof connect>, until: (tag: number) => Promise<Frame[]>, closed: Promise<unknown> }> => {
    const s = connect(port, '127.0.0.1')
    const framer = new Framer({ mode: 'tagged' })
    const frames: Frame[] = []
    s.on('data', (d: Buffer) => { for (const f of framer.push(d)) frames.push({ tag: f.tag, body: Buffer.from(f.body) }) })
    const closed = new Promise((resolve) => s.on('close', resolve))
    const until = async (tag: number): Promise<Frame[]> => {
      for (let i = 0; i < 200 && !frames.some((f) => f.tag === tag); i++) await new Promise((resolve) => setTimeout(resolve, 10))
      return frames.splice(0, frames.findIndex((f) => f.tag === tag) + 1)
    }
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(password)]))
    await until(0x5a)
    return { s, until, closed }
  }

  t.test('messages out of order are refused and the session goes on; a password after login ends it', async (t) => {
    const { s, until, closed } = await rawSession(reader)
    // Execute of a portal nothing was bound to, then Sync: a statement the gateway never saw is admin.
    s.write(Buffer.concat([Buffer.from([0x45, 0, 0, 0, 16]), Buffer.from('nowhere\0'), Buffer.from([0, 0, 0, 0]), Buffer.from([0x53, 0, 0, 0, 4])]))
    const answer = await until(0x5a)
    t.match(parseErrorFields(answer.find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /^lineage: scope db:admin is required \(a prepared statement the gateway did not see\)/ })
    s.write(query('SELECT 7'))
    t.ok((await until(0x5a)).some((f) => f.tag === 0x44), 'the session is usable afterwards')
    s.write(passwordMessage('again'))
    const last = await until(0x45)
    t.match(parseErrorFields(last.at(-1)?.body ?? Buffer.alloc(1)), { S: 'FATAL', C: '08P01' }, 'a password message after login is a protocol violation')
    await closed
  })

  t.test('a malformed message queued behind a statement that waits for the catalog ends that session only', async (t) => {
    const { s, until, closed } = await rawSession(reader)
    // The function is new to the gateway: the Query waits for the catalog, and the Bind behind it is read afterwards.
    const bind = Buffer.from([0x42, 0, 0, 0, 5, 0])
    s.write(Buffer.concat([query('SELECT never_seen_before_fn()'), bind, Buffer.from([0x53, 0, 0, 0, 4])]))
    const last = await until(0x45).then(async (f) => f.some((x) => parseErrorFields(x.body).S === 'FATAL') ? f : await until(0x45))
    t.match(parseErrorFields(last.at(-1)?.body ?? Buffer.alloc(1)), { S: 'FATAL', C: '08P01', M: /^lineage: Bind: string is missing its terminator/ })
    await closed
    t.equal((await psql(reader, ['-c', 'SELECT 41 + 1'])).stdout, '42\n', 'the gateway serves everyone else')
  })

  t.test('a Flush or Sync with a body ends the session, before PostgreSQL skips what follows it unbeknown to the gateway', async (t) => {
    for (const tag of [0x48, 0x53]) {
      const { s, until, closed } = await rawSession(reader)
      s.write(Buffer.from([tag, 0, 0, 0, 5, 0]))
      const last = await until(0x45)
      t.match(parseErrorFields(last.at(-1)?.body ?? Buffer.alloc(1)), { S: 'FATAL', C: '08P01', M: /^lineage: (Flush|Sync): 1 unexpected trailing bytes/ })
      await closed
    }
  })

  // Raw protocol pieces for the tests below.
  const sync = Buffer.from([0x53, 0, 0, 0, 4])
  const parse = (name: string, sql: string): Buffer => new Writer().cstring(name).cstring(sql).int16(0).frame(0x50)
  const bind = (portal: string, statement: string): Buffer => new Writer().cstring(portal).cstring(statement).int16(0).int16(0).int16(0).frame(0x42)
  const execute = (portal: string): Buffer => new Writer().cstring(portal).int32(0).frame(0x45)
  const describe = (kind: 'S' | 'P', name: string): Buffer => new Writer().byte(kind.charCodeAt(0)).cstring(name).frame(0x44)
  const close = (kind: 'S' | 'P', name: string): Buffer => new Writer().byte(kind.charCodeAt(0)).cstring(name).frame(0x43)
  const texts = (frames: Frame[]): string => frames.filter((f) => f.tag === 0x44).map((f) => f.body.toString('latin1')).join('|')

  t.test('after an extended batch fails, the gateway skips what the upstream skips, and masking holds', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    // A Bind that fails, then a simple Query, a Describe and a Parse: PostgreSQL skips all three until Sync.
    s.write(Buffer.concat([bind('', 'nope'), query('SELECT 1'), ...Array.from({ length: 1000 }, () => describe('S', '')), parse('later', 'SELECT 2'), sync]))
    const failed = await until(0x5a)
    t.same(failed.map((f) => f.tag), [0x45, 0x5a], 'one error, one ReadyForQuery')
    t.match(parseErrorFields(failed[0].body), { C: '26000' })
    s.write(query('SELECT email, ssn FROM customers ORDER BY id'))
    const rows = await until(0x5a)
    t.match(texts(rows), /a\*\*\*@example\.com.*\*\*\*6789/, 'still masked')
    t.notMatch(texts(rows), /ann@example|123-45/)
    s.write(Buffer.concat([parse('', 'SELECT email FROM customers WHERE id = 1'), bind('', ''), execute(''), sync]))
    const extended = await until(0x5a)
    t.same(extended.map((f) => f.tag), [0x31, 0x32, 0x44, 0x43, 0x5a], 'ParseComplete, BindComplete, one row, CommandComplete: nothing unasked')
    t.match(texts(extended), /a\*\*\*@example\.com/)
    s.write(Buffer.concat([bind('', 'later'), sync]))
    t.match(parseErrorFields((await until(0x5a))[0].body), { C: '26000' }, 'the skipped Parse prepared nothing upstream')
  })

  t.test('a Parse the upstream refuses leaves the statement of that name as it was', async (t) => {
    const c = await token('renamer', 'db:read')
    const { s, until } = await rawSession(c)
    t.teardown(() => s.destroy())
    s.write(Buffer.concat([parse('x', 'SELECT 1 AS first'), sync]))
    await until(0x5a)
    // A second Parse of an existing name fails upstream (42P05); x still means the first text.
    s.write(Buffer.concat([parse('x', 'SELECT 2 AS second'), sync]))
    t.match(parseErrorFields((await until(0x5a))[0].body), { C: '42P05' })
    s.write(Buffer.concat([bind('', 'x'), execute(''), sync]))
    t.match(texts(await until(0x5a)), /1/)
    await b.broker.ctx.audit.flush()
    const r = await b.admin('GET', `/v1/audit?jti=${claimsOf(c).jti as string}`)
    const ran = (r.body.events as Array<Record<string, any>>).filter((e) => e.decision === 'allow' && e.detail?.rows === 1).map((e) => e.path)
    t.same(ran, ['SELECT 1 AS first'], 'audited as the statement that ran')
  })

  t.test('COPY FROM STDIN in the extended protocol with a Sync sent early keeps the session in step', async (t) => {
    const { s, until } = await rawSession(writer)
    t.teardown(() => s.destroy())
    // Drivers that send Sync after every Execute: PostgreSQL ignores a Sync during COPY FROM STDIN.
    s.write(Buffer.concat([parse('', 'COPY orders (id, item) FROM STDIN'), bind('', ''), execute(''), sync]))
    await until(0x47)
    s.write(Buffer.concat([new Writer().bytes(Buffer.from('31\tpen\n')).frame(0x64), Buffer.from([0x63, 0, 0, 0, 4]), sync]))
    const done = await until(0x5a)
    t.ok(done.some((f) => f.tag === 0x43), 'CommandComplete')
    s.write(query('SELECT email FROM customers WHERE id = 1'))
    const next = await until(0x5a)
    t.match(texts(next), /a\*\*\*@example\.com/, 'the next result is masked and the session lives')
    t.equal((await direct.query('SELECT item FROM orders WHERE id = 31')).rows[0]?.item, 'pen')
  })

  t.test('a statement sent into a COPY FROM STDIN ends that session, before it can make the gateway lose step', async (t) => {
    // PostgreSQL aborts the copy at any other message and drops that message, so the gateway would await an answer that never comes.
    const one = await rawSession(writer)
    one.s.write(query('COPY orders (id, item) FROM STDIN'))
    await one.until(0x47)
    one.s.write(query('SELECT email FROM customers'))
    const fatal = await one.until(0x45)
    t.match(parseErrorFields(fatal.at(-1)?.body ?? Buffer.alloc(1)), { S: 'FATAL', C: '08P01', M: /during COPY FROM STDIN/ })
    t.notMatch(texts(fatal), /ann@example/)
    await one.closed
    // The same pipelined before the copy began: the session ends when the upstream starts the copy.
    const two = await rawSession(writer)
    two.s.write(Buffer.concat([query('COPY orders (id, item) FROM STDIN'), query('SELECT email FROM customers')]))
    const ended = await two.until(0x45)
    t.match(parseErrorFields(ended.at(-1)?.body ?? Buffer.alloc(1)), { S: 'FATAL', C: '28000', M: /lost step with the upstream: the client sent statements into a COPY FROM STDIN/ })
    t.notMatch(texts(ended), /ann@example/)
    await two.closed
    t.equal((await psql(writer, ['-c', 'SELECT 41 + 1'])).stdout, '42\n', 'others go on')
  })

  t.test('a portal keeps the statement it was bound to, and a Bind the upstream refuses leaves the portal as it was', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    // The unnamed statement is parsed again after the Bind: PostgreSQL's portal P still runs the first text.
    const flush = Buffer.from([0x48, 0, 0, 0, 4])
    s.write(Buffer.concat([parse('', 'SELECT email, ssn FROM customers ORDER BY id'), bind('P', ''), parse('', "SELECT 'a'::text, 'b'::text"), describe('S', ''), flush]))
    await until(0x54)
    s.write(Buffer.concat([execute('P'), sync]))
    const first = texts(await until(0x5a))
    t.match(first, /a\*\*\*@example\.com.*\*\*\*6789/)
    t.notMatch(first, /ann@example|123-45/)
    // A Bind of an existing portal fails upstream (42P03): P still runs what it was bound to.
    s.write(query('BEGIN'))
    await until(0x5a)
    s.write(Buffer.concat([parse('a', 'SELECT email, ssn FROM customers ORDER BY id'), parse('b', "SELECT 'x'::text, 'y'::text"), describe('S', 'b'), bind('Q', 'a'), sync]))
    await until(0x5a)
    s.write(query('SAVEPOINT s'))
    await until(0x5a)
    s.write(Buffer.concat([bind('Q', 'b'), sync]))
    t.match(parseErrorFields((await until(0x5a))[0].body), { C: '42P03' })
    s.write(query('ROLLBACK TO SAVEPOINT s'))
    await until(0x5a)
    s.write(Buffer.concat([execute('Q'), sync]))
    const second = texts(await until(0x5a))
    t.match(second, /a\*\*\*@example\.com/)
    t.notMatch(second, /ann@example|123-45/)
    s.write(query('ROLLBACK'))
    await until(0x5a)
  })

  t.test('SQL EXECUTE runs with the class, tables and masks of what the session prepared under its name', async (t) => {
    const r = await psql(reader, ['-c', 'PREPARE people AS SELECT id, email, ssn FROM customers ORDER BY id', '-c', 'EXECUTE people',
      '-c', 'PREPARE named(int) AS SELECT name FROM customers WHERE id = $1', '-c', 'EXECUTE named(2)', '-c', 'EXECUTE never_prepared',
      '-c', 'PREPARE two AS SELECT 2; EXECUTE two', '-c', "EXECUTE named(length(set_config('role', 'postgres', false)))",
      '-c', 'EXECUTE named((SELECT length(email) FROM customers LIMIT 1))', '-c', 'EXPLAIN (COSTS OFF) EXECUTE named(1)',
      '-c', 'PREPARE gone AS DELETE FROM orders WHERE id = 1', '-c', 'EXECUTE gone'])
    t.match(r.stdout, /^PREPARE\n1\|a\*\*\*@example\.com\|\*\*\*6789\n2\|b\*\*\*@example\.org\|\nPREPARE\nBob\n/, 'a prepared read runs, its columns masked')
    t.notMatch(r.stdout, /ann@example|123-45/)
    t.match(r.stderr, /lineage: scope db:admin is required \(runs prepared statement never_prepared, which the gateway did not see prepared\)/)
    t.match(r.stdout, /^2$/m, 'a name prepared by the same text')
    t.match(r.stderr, /calls set_config: sets role/, 'its parameters are classified too')
    t.match(r.stderr, /customers\.email is masked/)
    t.match(r.stdout, /Index Scan/, 'EXPLAIN of one')
    t.match(r.stderr, /lineage: scope db:admin is required \(runs prepared statement gone, which the gateway did not see prepared\)/, 'a write the token may not prepare stays unknown')
    // Written by the extended protocol and run in SQL, and the other way round.
    const { s, until } = await rawSession(writer)
    t.teardown(() => s.destroy())
    s.write(Buffer.concat([parse('add', "INSERT INTO orders VALUES ($1::int, 'prepared') RETURNING id"), sync]))
    await until(0x5a)
    t.teardown(async () => { await direct.query("DELETE FROM orders WHERE item = 'prepared'") })
    s.write(query('EXECUTE add(77)'))
    t.match(texts(await until(0x5a)), /77/)
    s.write(query('PREPARE them AS SELECT email FROM customers WHERE id = 1'))
    await until(0x5a)
    s.write(Buffer.concat([parse('', 'EXECUTE them'), bind('', ''), execute(''), sync]))
    const masked = texts(await until(0x5a))
    t.match(masked, /a\*\*\*@example\.com/)
    t.notMatch(masked, /ann@example/)
    t.equal((await direct.query("SELECT count(*)::int AS n FROM orders WHERE item = 'prepared'")).rows[0].n, 1)
  })

  t.test('a name DEALLOCATE could not drop, prepared again in vain, still runs as what it held', async (t) => {
    const { s, until } = await rawSession(writer)
    t.teardown(() => s.destroy())
    s.write(query('PREPARE held AS SELECT id, email FROM customers WHERE id = 1'))
    await until(0x5a)
    // DEALLOCATE fails in an aborted transaction; the PREPARE after it fails since the name is held.
    s.write(query('BEGIN; SELECT 1/0'))
    await until(0x5a)
    s.write(query('DEALLOCATE held'))
    await until(0x5a)
    s.write(query('ROLLBACK'))
    await until(0x5a)
    s.write(query("PREPARE held AS SELECT 1, 'x'::text"))
    t.match(parseErrorFields((await until(0x5a)).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42P05', M: /already exists/ })
    s.write(query('EXECUTE held'))
    const ran = texts(await until(0x5a))
    t.match(ran, /a\*\*\*@example\.com/, 'what PostgreSQL ran, masked')
    t.notMatch(ran, /ann@example/)
  })

  /** Saves target db's policy with a rule denying `orders` (waiting until the gateway holds it), and the policy as it was again when `t` ends. */
  const closeOrders = async (t: Test): Promise<void> => {
    const policy = (await b.admin('GET', '/v1/targets/db')).body.policy
    const saved = async (rules: unknown[]): Promise<number> => await saveTarget(b, gw, 'db', { kind: 'postgres', upstream: upstream.url, policy: { rules } })
    t.equal(await saved([...policy.rules, { effect: 'deny', tables: ['orders'], reason: 'orders are closed' }]), 200)
    t.teardown(async () => { await saved(policy.rules) })
  }

  t.test('a Close the upstream skips after an error leaves the statement held, and EXECUTE of it is decided with it', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    s.write(Buffer.concat([parse('kept', 'SELECT id, item FROM orders'), sync]))
    await until(0x5a)
    // The Parse fails, so PostgreSQL skips the Close behind it; PREPARE then fails, since the name is held.
    s.write(Buffer.concat([parse('', 'SELEC 1'), close('S', 'kept'), sync]))
    await until(0x5a)
    s.write(query('PREPARE kept AS SELECT 1, 2'))
    t.match(parseErrorFields((await until(0x5a)).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42P05' })
    // A policy saved since denies the table the name still holds.
    await closeOrders(t)
    s.write(query('EXECUTE kept'))
    t.match(parseErrorFields((await until(0x5a)).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /orders are closed/ })
  })

  t.test('a Parse or Bind the upstream refuses, pipelined with what uses its name after a Sync, leaves that decided by what the name holds', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    const error = (frames: Frame[]): Record<string, string> => parseErrorFields(frames.find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1))
    s.write(query('BEGIN'))
    await until(0x5a)
    s.write(Buffer.concat([parse('held', 'SELECT id, item FROM orders'), bind('P', 'held'), parse('other', 'SELECT 1, 2'), sync]))
    await until(0x5a)
    s.write(query('SAVEPOINT s'))
    await until(0x5a)
    // A policy saved since denies the table the names hold.
    await closeOrders(t)
    // Each Parse or Bind fails upstream (the name is held), but what follows its Sync is sent before that answer comes.
    s.write(Buffer.concat([bind('P', 'other'), sync, query('ROLLBACK TO SAVEPOINT s'), execute('P'), sync]))
    t.match(error(await until(0x5a)), { C: '42P03' })
    await until(0x5a)
    const portal = await until(0x5a)
    t.match(error(portal), { C: '42501', M: /orders are closed/ }, 'the portal runs what it was bound to first')
    t.notOk(portal.some((f) => f.tag === 0x44), 'and sends no row')
    s.write(query('ROLLBACK'))
    await until(0x5a)
    s.write(Buffer.concat([parse('held', 'SELECT 1, 2'), sync, bind('', 'held'), execute(''), sync, query('EXECUTE held')]))
    t.match(error(await until(0x5a)), { C: '42P05' })
    t.match(error(await until(0x5a)), { C: '42501', M: /orders are closed/ }, 'the Bind binds the statement held')
    t.match(error(await until(0x5a)), { C: '42501', M: /orders are closed/ }, 'and SQL EXECUTE runs it')
  })

  t.test('a Parse the upstream refuses does not undo a Close and Parse of its name sent after its Sync', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    s.write(Buffer.concat([parse('swapped', 'SELECT 1, 2'), parse('primer', 'SELECT id, item FROM orders'), sync]))
    await until(0x5a)
    // The first Parse fails (42P05); the Close and Parse after its Sync make the name hold the read of orders.
    s.write(Buffer.concat([parse('swapped', 'SELECT 3, 4'), sync, close('S', 'swapped'), parse('swapped', 'SELECT id, item FROM orders'), sync]))
    t.match(parseErrorFields((await until(0x5a))[0].body), { C: '42P05' })
    t.same((await until(0x5a)).map((f) => f.tag), [0x33, 0x31, 0x5a], 'CloseComplete, ParseComplete')
    // A policy saved since denies the table the name holds.
    await closeOrders(t)
    s.write(Buffer.concat([bind('', 'swapped'), execute(''), sync]))
    const ran = await until(0x5a)
    t.match(parseErrorFields(ran.find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /orders are closed/ })
    t.notOk(ran.some((f) => f.tag === 0x44), 'no row')
  })

  t.test('a masked result is masked by its own description, not one of a statement or portal since replaced in SQL', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    const unmasked = /ann@example|123-45/
    // A statement described, then deallocated and prepared again in SQL under its name.
    s.write(Buffer.concat([parse('x', "SELECT '1'::text, '2'::text, '3'::text, '4'::text"), describe('S', 'x'), sync]))
    await until(0x5a)
    s.write(query('DEALLOCATE x'))
    await until(0x5a)
    s.write(query('PREPARE x AS SELECT id, name, email, ssn FROM customers ORDER BY id'))
    await until(0x5a)
    s.write(Buffer.concat([bind('', 'x'), execute(''), sync]))
    const replaced = await until(0x5a)
    t.notMatch(texts(replaced), unmasked)
    t.match(parseErrorFields(replaced.find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /a prepared statement the gateway did not see/ }, 'the name holds what the gateway did not see parsed')
    // A portal described, then closed and declared again in SQL under its name.
    s.write(query('BEGIN'))
    await until(0x5a)
    s.write(Buffer.concat([parse('h', 'SELECT id, name, name, name FROM customers WHERE id = 1'), bind('c', 'h'), describe('P', 'c'), sync]))
    await until(0x5a)
    s.write(query('CLOSE c; DECLARE c CURSOR FOR SELECT id, name, email, ssn FROM customers ORDER BY id'))
    await until(0x5a)
    s.write(Buffer.concat([execute('c'), sync]))
    t.notMatch(texts(await until(0x5a)), unmasked)
    s.write(query('ROLLBACK'))
    await until(0x5a)
    // A prepared FETCH, whose description PostgreSQL never checks again, from a cursor declared anew.
    s.write(query('BEGIN; DECLARE cur CURSOR FOR SELECT id, name, name, name FROM customers'))
    await until(0x5a)
    s.write(Buffer.concat([parse('f', 'FETCH 3 FROM cur'), describe('S', 'f'), sync]))
    await until(0x5a)
    s.write(query('CLOSE cur; DECLARE cur CURSOR FOR SELECT id, name, email, ssn FROM customers ORDER BY id'))
    await until(0x5a)
    s.write(Buffer.concat([bind('', 'f'), execute(''), sync]))
    const fetched = texts(await until(0x5a))
    t.match(fetched, /a\*\*\*@example\.com.*\*\*\*6789/, 'masked by the description of what ran')
    t.notMatch(fetched, unmasked)
    s.write(query('ROLLBACK'))
    await until(0x5a)
  })

  t.test('a writer gets no whole row of a masked table back, and may upsert masked columns from its own values', async (t) => {
    const c = await connected(writer)
    t.teardown(async () => { await c.end() })
    await c.query('BEGIN')
    for (const sql of ['UPDATE customers SET name = name WHERE id = 1 RETURNING customers', 'UPDATE customers c SET name = c::text WHERE id = 1 RETURNING name',
      'WITH u AS (DELETE FROM customers c WHERE id = 2 RETURNING to_jsonb(c)) SELECT * FROM u']) {
      await t.rejects(c.query(sql), { code: '42501', message: /masked/ }, sql)
      await c.query('ROLLBACK')
      await c.query('BEGIN')
    }
    await direct.query('CREATE TABLE contacts (id int, email text); INSERT INTO contacts VALUES (1, NULL)')
    t.teardown(async () => { await direct.query('DROP TABLE contacts') })
    await t.rejects(c.query('UPDATE contacts SET email = excluded.email FROM customers excluded WHERE contacts.id = excluded.id'), { code: '42501' }, 'a table aliased excluded is no proposed row')
    await c.query('ROLLBACK')
    await c.query('BEGIN')
    const up = await c.query('INSERT INTO customers (id, name, email) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email RETURNING email', [1, 'Ann', 'ann@example.net'])
    t.same(up.rows, [{ email: 'a***@example.net' }], 'an upsert of a masked column from a parameter, returned masked')
    await c.query('ROLLBACK')
    t.equal((await direct.query('SELECT email FROM customers WHERE id = 1')).rows[0].email, 'ann@example.com')
  })

  t.test('a constraint error on a table with masked columns comes without the row its detail would quote', async (t) => {
    const c = await connected(writer)
    t.teardown(async () => { await c.end() })
    const err = await c.query('UPDATE customers SET id = NULL WHERE id = 1').catch((e: Error & { detail?: string, code?: string }) => e) as Error & { detail?: string, code?: string }
    t.equal(err.code, '23502', 'PostgreSQL\'s own error')
    t.equal(err.detail, undefined, 'no "Failing row contains (…)"')
    const other = await c.query('INSERT INTO orders VALUES (11, \'dup\')').catch((e: Error & { detail?: string }) => e) as Error & { detail?: string }
    t.match(other.detail, /Key \(id\)=\(11\) already exists/, 'a table without masks keeps its detail')
    // A deferred check fails at the Sync that commits an extended batch, after the statement's own answer.
    await direct.query(`CREATE UNIQUE INDEX customers_ssn_key ON customers (ssn); CREATE TABLE claims (id int PRIMARY KEY, ssn text REFERENCES customers (ssn) DEFERRABLE INITIALLY DEFERRED);
      INSERT INTO claims VALUES (1, '123-45-6789')`)
    t.teardown(async () => { await direct.query('DROP TABLE claims; DROP INDEX customers_ssn_key') })
    const deferred = await c.query('DELETE FROM customers WHERE id = $1', [1]).catch((e: Error & { detail?: string, code?: string }) => e) as Error & { detail?: string, code?: string }
    t.equal(deferred.code, '23503')
    t.equal(deferred.detail, undefined, 'no key of claims in the detail')
    t.equal((await direct.query('SELECT count(*)::int AS n FROM customers WHERE id = 1')).rows[0].n, 1)
    const data = await c.query("SELECT id FROM customers WHERE id = 'x'").catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(data.code, '22P02')
    t.match(data.message, /^lineage: the message of data exception 22P02 is hidden/, 'a data exception on a masked table quotes nothing')
    const plain = await c.query("SELECT id FROM orders WHERE id = 'x'").catch((e: Error) => e) as Error
    t.match(plain.message, /invalid input syntax for type integer: "x"/, 'elsewhere it stays as PostgreSQL wrote it')
    const param = await c.query('SELECT email FROM customers WHERE id = $1', ['x']).catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(param.code, '22P02')
    t.match(param.message, /invalid input syntax for type integer: "x"/, 'a parameter refused at Bind is the client\'s own: its message stays')
    // A cascade into the masked table fails there: its detail too would quote the row.
    await direct.query('CREATE TABLE accounts (id int PRIMARY KEY); INSERT INTO accounts VALUES (10); ALTER TABLE customers ADD COLUMN account int REFERENCES accounts ON UPDATE CASCADE CHECK (account < 1000); UPDATE customers SET account = 10 WHERE id = 1')
    t.teardown(async () => { await direct.query('ALTER TABLE customers DROP COLUMN account; DROP TABLE accounts') })
    const cascade = await c.query('UPDATE accounts SET id = 5000 WHERE id = 10').catch((e: Error & { detail?: string, code?: string }) => e) as Error & { detail?: string, code?: string }
    t.equal(cascade.code, '23514')
    t.equal(cascade.detail, undefined, 'no row of customers in the detail')
  })

  t.test('a notice or an exception a trigger raises on a table with masked columns comes without its text', async (t) => {
    const c = await connected(writer)
    t.teardown(async () => { await c.end() })
    await direct.query(`CREATE FUNCTION customers_tell () RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE NOTICE 'changing %', OLD.email;
          IF NEW.name = 'boom' THEN RAISE EXCEPTION 'ssn % refused', OLD.ssn; END IF;
          IF NEW.name = 'again' THEN EXECUTE format('INSERT INTO customers_seen VALUES (%L)', OLD.email); END IF;
          IF NEW.name = 'coded' THEN RAISE EXCEPTION 'ssn % taken', OLD.ssn USING ERRCODE = 'unique_violation'; END IF;
          IF NEW.name = 'hint' THEN RAISE EXCEPTION 'refused' USING HINT = 'was ' || OLD.email, COLUMN = OLD.ssn, CONSTRAINT = OLD.email, DATATYPE = OLD.ssn, SCHEMA = OLD.email; END IF;
          RETURN NEW;
        END $$;
      CREATE TRIGGER customers_tell BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION customers_tell();
      CREATE TABLE customers_seen (email text PRIMARY KEY); INSERT INTO customers_seen VALUES ('ann@example.com');
      CREATE FUNCTION orders_tell () RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE WARNING 'order %', OLD.item; RETURN NEW; END $$;
      CREATE TRIGGER orders_tell BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_tell()`)
    t.teardown(async () => { await direct.query('DROP TRIGGER customers_tell ON customers; DROP FUNCTION customers_tell; DROP TABLE customers_seen; DROP TRIGGER orders_tell ON orders; DROP FUNCTION orders_tell') })
    const notices: Array<{ message?: string, severity?: string, code?: string, detail?: string }> = []
    c.on('notice', (n) => notices.push(n))
    await c.query('BEGIN')
    await c.query('UPDATE customers SET name = name WHERE id = 1')
    t.match(notices, [{ severity: 'NOTICE', code: '00000', message: /^lineage: the text of this notice is hidden/ }])
    t.notMatch(JSON.stringify(notices), /@example/, 'no address in it')
    const raised = await c.query("UPDATE customers SET name = 'boom' WHERE id = 1").catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(raised.code, 'P0001')
    t.match(raised.message, /^lineage: the message of raised exception P0001 is hidden/)
    t.notMatch(raised.message, /6789/, 'no ssn in it')
    await c.query('ROLLBACK')
    await c.query('BEGIN')
    const again = await c.query("UPDATE customers SET name = 'again' WHERE id = 1").catch((e: Error & { code?: string }) => e) as Error & { code?: string, where?: string }
    t.equal(again.code, '23505')
    t.notMatch(JSON.stringify({ ...again, message: again.message }), /@example/, 'no address in the context quoting the statement EXECUTE built')
    await c.query('ROLLBACK')
    await c.query('BEGIN')
    const coded = await c.query("UPDATE customers SET name = 'coded' WHERE id = 1").catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(coded.code, '23505', 'raised with a code of its own')
    t.match(coded.message, /^lineage: the message of raised exception 23505 is hidden/)
    t.notMatch(coded.message, /6789/, 'no ssn in it')
    await c.query('ROLLBACK')
    await c.query('BEGIN')
    const hinted = await c.query("UPDATE customers SET name = 'hint' WHERE id = 1").catch((e: Error & { code?: string }) => e) as Error & { code?: string, hint?: string, column?: string, constraint?: string, dataType?: string, schema?: string }
    t.equal(hinted.code, 'P0001')
    t.notMatch(JSON.stringify({ ...hinted, message: hinted.message }), /@example|6789/, 'nor an address or an ssn in its hint or the fields USING sets')
    await c.query('ROLLBACK')
    // A trigger on a table without masks, or a function, may read one that has them.
    notices.length = 0
    await direct.query(`CREATE FUNCTION orders_peek () RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE WARNING 'near %', (SELECT email FROM customers WHERE id = 1); RETURN NEW; END $$;
      CREATE TRIGGER orders_peek BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_peek()`)
    t.teardown(async () => { await direct.query('DROP TRIGGER orders_peek ON orders; DROP FUNCTION orders_peek') })
    await c.query('BEGIN')
    await c.query("INSERT INTO orders VALUES (4242, 'widget')")
    await c.query('UPDATE orders SET item = item WHERE id = 4242')
    await c.query('ROLLBACK')
    t.match(notices, [{ severity: 'WARNING', message: /^lineage: the text of this warning is hidden/ }, { severity: 'WARNING', message: /^lineage: the text of this warning is hidden/ }])
    t.notMatch(JSON.stringify(notices), /@example|widget/, 'where columns are masked, a notice from any table passes only its severity and code')
    await direct.query(`CREATE FUNCTION customers_probe () RETURNS int LANGUAGE plpgsql AS $$ BEGIN
        IF (SELECT count(*) FROM customers) > 100000 THEN RETURN 0; END IF;
        RAISE EXCEPTION 'first is %', (SELECT email FROM customers WHERE id = 1) USING ERRCODE = 'check_violation'; END $$`)
    t.teardown(async () => { await direct.query('DROP FUNCTION customers_probe') })
    const probe = await c.query('SELECT * FROM orders WHERE id = customers_probe()').catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.notMatch(probe.message, /@example/, `a function raising what it read: ${probe.message}`)
    await direct.query(`CREATE FUNCTION customers_cast () RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN (SELECT email FROM customers WHERE id = 1)::int; END $$`)
    t.teardown(async () => { await direct.query('DROP FUNCTION customers_cast') })
    const cast = await c.query('SELECT * FROM orders WHERE id = customers_cast()').catch((e: Error & { code?: string }) => e) as Error & { code?: string, where?: string }
    t.equal(cast.code, '22P02')
    t.notMatch(JSON.stringify({ ...cast, message: cast.message }), /@example/, `a data exception inside a function: ${cast.message}`)
  })

  t.test('an error inside a trigger or a function, of any SQLSTATE, quotes no masked value where columns are masked', async (t) => {
    const c = await connected(writer)
    t.teardown(async () => { await c.end() })
    await direct.query(`CREATE FUNCTION customers_name () RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.name = 'ident' THEN EXECUTE 'SELECT ' || quote_ident(OLD.email); END IF; RETURN NEW; END $$;
      CREATE TRIGGER customers_name BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION customers_name();
      CREATE TABLE order_notes (note text CHECK (length(note) < 5));
      CREATE FUNCTION orders_note () RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO order_notes SELECT email FROM customers WHERE id = 1; RETURN NEW; END $$;
      CREATE TRIGGER orders_note BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_note();
      CREATE FUNCTION customers_column () RETURNS int LANGUAGE plpgsql STABLE AS $$
        BEGIN EXECUTE 'SELECT ' || quote_ident((SELECT email FROM customers WHERE id = 1)); RETURN 0; END $$`)
    t.teardown(async () => { await direct.query('DROP TRIGGER customers_name ON customers; DROP FUNCTION customers_name; DROP TRIGGER orders_note ON orders; DROP FUNCTION orders_note; DROP TABLE order_notes; DROP FUNCTION customers_column') })
    const shown = (e: Error): string => JSON.stringify({ ...e, message: e.message })
    const ident = await c.query("UPDATE customers SET name = 'ident' WHERE id = 1").catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(ident.code, '42703', 'PostgreSQL\'s own code')
    t.notMatch(shown(ident), /@example/, `no address in the message or the internal query of a statement a trigger built: ${shown(ident)}`)
    await c.query("INSERT INTO orders VALUES (4343, 'gadget')")
    await c.query('SELECT note FROM order_notes')
    t.teardown(async () => { await direct.query('DELETE FROM orders WHERE id = 4343') })
    const note = await c.query('UPDATE orders SET item = item WHERE id = 4343').catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(note.code, '23514')
    t.notMatch(shown(note), /@example/, `no address in the failing row of a table a trigger on another wrote to: ${shown(note)}`)
    t.match(note.message, /violates check constraint/, 'a constraint error keeps its message, which names no value')
    const file = join(dir, 'copy-dup.sql')
    await writeFile(file, 'COPY orders (id, item) FROM STDIN;\n4343\tdup\n\\.\n')
    const copied = await psql(writer, ['-f', file])
    t.match(copied.stderr, /DETAIL: {2}Key \(id\)=\(4343\) already exists/, `a COPY's own constraint error keeps the detail that quotes the line the client sent: ${copied.stderr}`)
    const fn = await c.query('SELECT * FROM orders WHERE id = customers_column()').catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(fn.code, '42703')
    t.notMatch(shown(fn), /@example/, `no address from a function either: ${shown(fn)}`)
    await direct.query("CREATE FUNCTION customers_sqlcast () RETURNS int LANGUAGE sql STABLE AS 'SELECT (SELECT email FROM customers WHERE id = 1)::int'")
    t.teardown(async () => { await direct.query('DROP FUNCTION customers_sqlcast') })
    const inlined = await c.query('SELECT * FROM orders WHERE id = customers_sqlcast()').catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(inlined.code, '22P02')
    t.notMatch(shown(inlined), /@example/, `no address from an SQL function the planner inlined: ${shown(inlined)}`)
    // An immutable function on constants runs when the statement is planned: for an unnamed statement, at its Bind.
    await direct.query(`CREATE FUNCTION customers_folded (n int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN EXECUTE 'SELECT ' || quote_ident((SELECT email FROM customers WHERE id = n)); RETURN 0; END $$`)
    t.teardown(async () => { await direct.query('DROP FUNCTION customers_folded') })
    const folded = await c.query('SELECT * FROM orders WHERE id + $1 = customers_folded(1)', [0]).catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.equal(folded.code, '42703')
    t.notMatch(shown(folded), /@example/, `no address from a function run at Bind: ${shown(folded)}`)
    const plain = await c.query('SELECT nosuch FROM orders').catch((e: Error & { code?: string }) => e) as Error & { code?: string }
    t.match(plain.message, /column "nosuch" does not exist/, 'an error of the statement itself stays as PostgreSQL wrote it')
  })

  t.test('long statement names cut inside a character are told apart as PostgreSQL tells them apart', async (t) => {
    const namer = await token('namer', 'db:read')
    const { s, until } = await rawSession(namer)
    t.teardown(() => s.destroy())
    const x = 'a'.repeat(62) + 'é'
    const y = 'a'.repeat(62) + '\uFFFD'
    s.write(Buffer.concat([parse(x, 'SELECT ssn FROM customers WHERE id = 1'), parse(y, 'SELECT item FROM orders LIMIT 1'), bind('', x), execute(''), sync]))
    const rows = (await until(0x5a)).filter((f) => f.tag === 0x44).map((f) => f.body.subarray(6).toString())
    t.same(rows, ['***6789'])
    await b.broker.ctx.audit.flush()
    const paths = ((await b.admin('GET', `/v1/audit?jti=${claimsOf(namer).jti as string}`)).body.events as Array<{ path?: string }>).map((e) => e.path)
    t.ok(paths.includes('SELECT ssn FROM customers WHERE id = 1'), 'checked and audited as the statement the upstream runs')
    t.notOk(paths.includes('SELECT item FROM orders LIMIT 1'))
  })

  t.test('a Terminate from a client that stopped reading a large result still ends the upstream session', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    s.write(query('BEGIN'))
    await until(0x5a)
    s.pause()
    s.write(query("SELECT repeat('x', 1000000) AS terminate_me FROM generate_series(1, 64)"))
    const running = async (): Promise<number> => (await direct.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%AS terminate_me%' AND pid <> pg_backend_pid()")).rows[0].n
    for (let i = 0; i < 50 && await running() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    await new Promise((resolve) => setTimeout(resolve, 300))
    s.write(Buffer.from([0x58, 0, 0, 0, 4]))
    let left = 1
    for (let i = 0; i < 100 && left > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      left = await running()
    }
    t.equal(left, 0, 'the upstream backend ended')
  })

  t.test('a session ended for a protocol violation closes its client connection even when the client stopped reading', async (t) => {
    // A gateway of its own: its connections are this test's alone.
    const own = await startTestGateway(b)
    t.teardown(async () => { await own.close() })
    const connections = async (): Promise<number> => await new Promise((resolve, reject) => {
      own.gateway.pgServer.getConnections((err, n) => { if (err !== null) reject(err); else resolve(n) })
    })
    const s = connect(own.pgPort, '127.0.0.1')
    s.on('error', () => {})
    t.teardown(() => s.destroy())
    const ready = new Promise((resolve) => s.once('data', resolve))
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(reader)]))
    await ready
    s.pause()
    s.write(query("SELECT repeat('x', 1000) FROM generate_series(1, 100000)"))
    await new Promise((resolve) => setTimeout(resolve, 300))
    s.write(Buffer.from([0x7a, 0, 0, 0, 4]))
    let open = 1
    for (let i = 0; i < 60 && open > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      open = await connections()
    }
    t.equal(open, 0, 'the gateway let go of the connection')
  })

  t.test('a portal name longer than PostgreSQL keeps is forgotten by the 63 bytes PostgreSQL keeps of it', async (t) => {
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    s.write(query('BEGIN'))
    await until(0x5a)
    s.write(Buffer.concat([parse('', 'SELECT id, name FROM customers'), bind('A'.repeat(64), ''), sync]))
    await until(0x5a)
    s.write(query(`CLOSE "${'A'.repeat(63)}"; DECLARE "${'A'.repeat(63)}" CURSOR FOR SELECT id, email, ssn FROM customers`))
    await until(0x5a)
    s.write(Buffer.concat([execute('A'.repeat(64)), sync]))
    const r = await until(0x5a)
    t.match(parseErrorFields(r.find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /a prepared statement the gateway did not see/ })
    s.write(query('ROLLBACK'))
    await until(0x5a)
  })

  const grantsOfAlice = ['db:*']
  /**
   * A target `name` on the same upstream with `rules`, and a token for it (a service of alice's,
   * actor `agent-<name>`), once the gateway has learnt of the target from its next poll:
   * `psql(args)` runs psql on it with that token.
   */
  const newTarget = async (name: string, rules: unknown[], scope: string): Promise<((args: string[]) => Promise<{ code: number | null, stdout: string, stderr: string }>) & { token: string }> => {
    if ((await b.admin('POST', '/v1/targets', { name, kind: 'postgres', upstream: upstream.url, policy: { rules } })).status !== 201) throw new Error(`target ${name} not saved`)
    grantsOfAlice.push(`${name}:*`)
    await b.admin('PUT', '/v1/principals/alice/grants', { grants: grantsOfAlice })
    await b.admin('POST', '/v1/principals', { id: `ci-${name}`, kind: 'service', sponsor: 'alice', grants: [`${name}:*`] })
    const cl = await b.admin('POST', `/v1/principals/ci-${name}/clients`)
    const ex = await exchangeToken(b, await rootToken(b, { clientId: cl.body.client_id, clientSecret: cl.body.client_secret }), { actor: `agent-${name}`, scope })
    const run1 = async (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> =>
      await run('psql', ['-X', '-q', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', 'agent', '-d', name, ...args], { PGPASSWORD: ex.body.access_token, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' })
    for (let i = 0; i < 50 && (await run1(['-c', 'SELECT 1'])).code !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
    return Object.assign(run1, { token: ex.body.access_token as string })
  }

  t.test('LISTEN is refused where columns are masked; elsewhere notifications pass, their payloads redacted once a policy masks', async (t) => {
    const masked = await connected(reader)
    t.teardown(async () => { await masked.end() })
    await t.rejects(masked.query('LISTEN jobs'), { code: '42501', message: /^lineage: denied by policy: LISTEN is not allowed where columns are masked/ }, 'a trigger\'s payload could carry a masked value')
    t.same((await masked.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the session goes on')

    const rules = [{ effect: 'mask', principals: ['nobody-here'], columns: ['*.ssn'], with: 'redact' }]
    const hears = await newTarget('hears', rules, 'hears:read')
    const listener = new pg.Client(connection(hears.token, { database: 'hears' }))
    await listener.connect()
    const notifier = await connected(writer)
    t.teardown(async () => { await listener.end(); await notifier.end() })
    await listener.query('LISTEN jobs')
    const heard = async (payload: string): Promise<pg.Notification> => {
      const got = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve))
      await notifier.query(`SELECT pg_notify('jobs', $1)`, [payload])
      return await got
    }
    t.match(await heard('build 42'), { channel: 'jobs', payload: 'build 42' }, 'no mask rule applies to this token: LISTEN and NOTIFY pass through')
    await direct.query("CREATE FUNCTION say_plain () RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN RAISE NOTICE 'plain %', 42; RETURN 1; END $$")
    t.teardown(async () => { await direct.query('DROP FUNCTION say_plain') })
    const said: Array<{ message?: string }> = []
    listener.on('notice', (n) => said.push(n))
    await listener.query('SELECT say_plain()')
    t.match(said, [{ message: 'plain 42' }], 'nor is any notice\'s text hidden')

    // A policy saved since the LISTEN masks columns for this token: what it hears is redacted.
    t.equal(await saveTarget(b, gw, 'hears', { kind: 'postgres', upstream: upstream.url, policy: { rules: [{ effect: 'mask', columns: ['*.ssn'], with: 'redact' }] } }), 200)
    t.match(await heard('ssn 123-45-6789'), { channel: 'jobs', payload: '***' })
    t.match(await heard(''), { channel: 'jobs', payload: '' }, 'an empty payload says nothing, and stays empty')
    await t.rejects(listener.query('LISTEN more'), { code: '42501' }, 'and it may LISTEN no more')
  })

  t.test('a client is given its upstream backend\'s process id, so that it knows its own notifications; cancelling still works', async (t) => {
    const own = await newTarget('own', [], 'own:read own:write')
    const c = new pg.Client(connection(own.token, { database: 'own' }))
    await c.connect()
    t.teardown(async () => { await c.end() })
    const backend = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid
    const given = (c as unknown as { processID: number }).processID
    t.equal(given, backend, 'BackendKeyData names the backend pg_backend_pid() names')
    const heard = new Promise<pg.Notification>((resolve) => c.once('notification', resolve))
    await c.query('LISTEN own_work')
    await c.query("NOTIFY own_work, 'mine'")
    t.match(await heard, { processId: given, payload: 'mine' }, 'a notification of its own is told by its process id, as the PostgreSQL docs advise')
    const sql = postgres({ host: '127.0.0.1', port, user: 'agent', password: own.token, database: 'own', max: 1, onnotice: () => {} })
    t.teardown(async () => { await sql.end({ timeout: 1 }) })
    const slow = sql`SELECT pg_sleep(20)`
    setTimeout(() => { slow.cancel() }, 300)
    await t.rejects(slow, { code: '57014' }, 'the CancelRequest still reaches the upstream backend')
  })

  t.test('a FETCH sent with a statement on another table is masked by a rule limited to the cursor\'s table', async (t) => {
    const db2 = await newTarget('db2', [{ effect: 'mask', tables: ['customers'], columns: ['customers.email'], with: 'email' }], 'db2:read')
    const r = await db2(['-c', 'BEGIN', '-c', 'DECLARE cur CURSOR FOR SELECT id, email FROM customers ORDER BY id',
      '-c', 'FETCH 1 FROM cur', '-c', 'SELECT 1 FROM orders LIMIT 0; FETCH ALL FROM cur', '-c', 'COMMIT'])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, '1|a***@example.com\n2|b***@example.org\n')
  })

  t.test('a mask rule for reads masks what a write returns too', async (t) => {
    const db3 = await newTarget('db3', [{ effect: 'mask', actions: ['read'], columns: ['customers.email'], with: 'redact' }], 'db3:read db3:write')
    const r = await db3(['-c', 'BEGIN', '-c', 'UPDATE customers SET name = name WHERE id = 1 RETURNING id, email', '-c', 'SELECT id, email FROM customers WHERE id = 2 FOR UPDATE',
      '-c', 'SELECT id, email FROM customers WHERE id = 1', '-c', 'ROLLBACK'])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, '1|***\n2|***\n1|***\n')
  })

  t.test('a tables rule on a whole schema holds when the search path reaches into it', async (t) => {
    await direct.query("CREATE SCHEMA hidden; CREATE TABLE hidden.plans (secret text); INSERT INTO hidden.plans VALUES ('launch')")
    t.teardown(async () => { await direct.query('DROP SCHEMA hidden CASCADE') })
    const db4 = await newTarget('db4', [{ effect: 'deny', tables: ['hidden.*'], reason: 'hidden' }], 'db4:read')
    const r = await db4(['-c', 'SELECT * FROM hidden.plans', '-c', 'SET search_path = hidden, public', '-c', 'SELECT * FROM plans', '-c', 'TABLE plans', '-c', 'SELECT count(*) FROM orders'])
    t.equal(r.stderr.match(/lineage: denied by policy: hidden/g)?.length, 3, r.stderr)
    t.notMatch(r.stdout, /launch/)
  })

  t.test('a tables rule on a whole schema holds against renaming or dropping that schema', async (t) => {
    await direct.query("CREATE SCHEMA kept; CREATE TABLE kept.plans (secret text); INSERT INTO kept.plans VALUES ('launch'); CREATE SCHEMA scratch")
    t.teardown(async () => { await direct.query('DROP SCHEMA IF EXISTS kept, moved, scratch CASCADE') })
    const db6 = await newTarget('db6', [{ effect: 'deny', tables: ['kept.*'], reason: 'kept' }], 'db6:read db6:ddl')
    const r = await db6(['-c', 'ALTER SCHEMA kept RENAME TO moved', '-c', 'SELECT * FROM moved.plans', '-c', 'DROP SCHEMA kept CASCADE', '-c', 'DROP SCHEMA scratch'])
    t.equal(r.stderr.match(/lineage: denied by policy: kept/g)?.length, 2, r.stderr)
    t.notMatch(r.stdout, /launch/)
    t.same((await direct.query("SELECT nspname FROM pg_namespace WHERE nspname IN ('kept', 'moved', 'scratch')")).rows, [{ nspname: 'kept' }], 'the schema is still there by its name; one the rule does not cover is dropped')
    await direct.query('CREATE SCHEMA shelf; CREATE TABLE shelf.customers (email text)')
    t.teardown(async () => { await direct.query('DROP SCHEMA IF EXISTS shelf, shelved CASCADE') })
    const keeper = await token('schema-keeper', 'db:read db:ddl')
    const m = await psql(keeper, ['-c', 'ALTER SCHEMA shelf RENAME TO shelved', '-c', 'DROP SCHEMA shelved CASCADE'])
    t.notMatch(m.stderr, /ERROR/, 'a schema holding masked columns, which no tables rule covers, is renamed and dropped as before')
    t.same((await direct.query("SELECT nspname FROM pg_namespace WHERE nspname IN ('shelf', 'shelved')")).rows, [])
  })

  t.test('where columns are masked, a statement naming hundreds of tables is refused before the catalog is asked', async (t) => {
    const many = Array.from({ length: 300 }, (_, i) => `t${i}`).join(', ')
    const r = await psql(reader, ['-c', `SELECT 1 FROM ${many}`, '-c', 'SELECT email FROM customers WHERE id = 1'])
    t.match(r.stderr, /lineage: statements naming more than 256 tables are not accepted where columns are masked/)
    t.equal(r.stdout, 'a***@example.com\n', 'the session goes on')
  })

  t.test('column statistics are admin, and COPY finds a masked table by its quoted name or in any schema', async (t) => {
    await direct.query(`ANALYZE customers; CREATE TABLE "People" (id int, ssn text); INSERT INTO "People" VALUES (1, '111-22-3333');
      CREATE SCHEMA shop; CREATE TABLE shop.members (id int, ssn text); INSERT INTO shop.members VALUES (7, '444-55-6666')`)
    t.teardown(async () => { await direct.query('DROP TABLE "People"; DROP SCHEMA shop CASCADE') })
    const stats = await psql(reader, ['-c', "SELECT most_common_vals, histogram_bounds FROM pg_stats WHERE tablename = 'customers'", '-c', 'SELECT stavalues1 FROM pg_catalog.pg_statistic'])
    t.match(stats.stderr, /lineage: scope db:admin is required \(reads pg_stats, whose statistics sample the values of every table\)/)
    t.match(stats.stderr, /reads pg_statistic/)
    t.notMatch(stats.stdout, /ann@|bob@/)
    const copy = await psql(reader, ['-c', 'COPY "People" TO STDOUT', '-c', 'SET search_path = shop, public', '-c', 'COPY members TO STDOUT'])
    t.equal(copy.stderr.match(/lineage: COPY of masked columns is not allowed/g)?.length, 2, copy.stderr)
    t.notMatch(copy.stdout, /3333|6666/)
  })

  t.test("a user mapping's password cannot be read through information_schema any more than through pg_user_mappings", async (t) => {
    await direct.query(`CREATE FOREIGN DATA WRAPPER any_fdw; CREATE SERVER remote_db FOREIGN DATA WRAPPER any_fdw;
      CREATE USER MAPPING FOR CURRENT_USER SERVER remote_db OPTIONS (user 'remote', password 'fdw-secret')`)
    t.teardown(async () => { await direct.query('DROP SERVER remote_db CASCADE; DROP FOREIGN DATA WRAPPER any_fdw') })
    const r = await psql(reader, ['-c', 'SELECT umoptions FROM pg_user_mappings', '-c', 'SELECT option_value FROM information_schema.user_mapping_options',
      '-c', 'SELECT umoptions FROM information_schema._pg_user_mappings', '-c', 'SELECT srvname FROM pg_foreign_server'])
    t.match(r.stderr, /lineage: scope db:admin is required \(reads user_mapping_options, which holds password hashes\)/)
    t.equal(r.stderr.match(/lineage: scope db:admin is required/g)?.length, 3, r.stderr)
    t.notMatch(r.stdout, /fdw-secret/)
    t.equal(r.stdout, 'remote_db\n', 'the servers themselves are read as before')
  })

  t.test('a database whose default turns standard_conforming_strings off still reads strings as the classifier does', async (t) => {
    const name = new URL(upstream.url).pathname.slice(1)
    await direct.query(`CREATE TABLE victim (a int); ALTER DATABASE "${name}" SET standard_conforming_strings = off`)
    t.teardown(async () => { await direct.query(`ALTER DATABASE "${name}" RESET standard_conforming_strings; DROP TABLE IF EXISTS victim`) })
    // Read with the setting off, the first string ends at the second quote, and the DROP runs.
    const r = await psql(writer, ['-c', 'SHOW standard_conforming_strings', '-c', "SELECT 'x\\', '; DROP TABLE victim; --'"])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, 'on\nx\\|; DROP TABLE victim; --\n')
    t.equal((await direct.query("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'victim'")).rows[0].n, 1, 'the table is still there')
  })

  t.test('a statement nested too deep for the parser is refused, and every session goes on parsing', async (t) => {
    const r = await psql(reader, ['-c', 'SELECT 1' + '+1'.repeat(20_000), '-c', 'SELECT 1 + 2'])
    t.match(r.stderr, /lineage: scope db:admin is required \(nested deeper than the parser can safely read\)/)
    t.equal(r.stdout, '3\n')
    const other = await psql(reader, ['-c', 'SELECT count(*) FROM (SELECT 1 UNION SELECT 2) u WHERE 1 + 1 = 2'])
    t.equal(other.stdout, '2\n', other.stderr)
  })

  t.test("another agent's SQL, literals included, cannot be read from pg_stat_activity", async (t) => {
    const other = await rawSession(writer)
    t.teardown(() => { other.s.destroy() })
    other.s.write(query("SELECT id FROM customers WHERE email = 'ann@example.com'"))
    await other.until(0x5a)
    t.equal((await direct.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%ann@example.com%'")).rows[0].n >= 1, true, 'upstream shows the literal')
    const r = await psql(reader, ['-c', 'SELECT query FROM pg_stat_activity', '-c', 'SELECT query FROM pg_stat_get_activity(NULL)', '-c', 'SELECT 1'])
    t.match(r.stderr, /lineage: scope db:admin is required \(reads pg_stat_activity, which shows other sessions' SQL text\)/)
    t.match(r.stderr, /calls pg_stat_get_activity/)
    t.notMatch(r.stdout, /ann@example/)
    t.equal(r.stdout, '1\n', 'the session goes on')
  })

  t.test("a role's settings, custom ones included, cannot be read from pg_roles or pg_user", async (t) => {
    const role = `lineage_settings_${randomBytes(4).toString('hex')}`
    await direct.query(`CREATE ROLE ${role}`)
    t.teardown(async () => { await direct.query(`DROP ROLE ${role}`) })
    await direct.query(`ALTER ROLE ${role} SET pgrst.jwt_secret = 'hunter2-secret'`)
    const r = await psql(reader, ['-c', `SELECT rolconfig FROM pg_roles WHERE rolname = '${role}'`, '-c', `SELECT row_to_json(u) FROM pg_user u WHERE usename = '${role}'`,
      '-c', 'SELECT * FROM pg_roles', '-c', `SELECT rolname FROM pg_roles WHERE rolname = '${role}'`])
    t.match(r.stderr, /lineage: scope db:admin is required \(may read pg_roles\.rolconfig, which holds custom settings such as secrets; select its other columns by name\)/)
    t.match(r.stderr, /may read pg_user\.useconfig/)
    t.notMatch(r.stdout, /hunter2/)
    t.equal(r.stdout, `${role}\n`, 'the session goes on, and the other columns can be read')
  })

  t.test('a COPY FROM STDIN sent with a Sync behind it keeps step whether it fails at once, on its data, or goes through', async (t) => {
    const one = await rawSession(writer)
    t.teardown(() => one.s.destroy())
    // COPY … FREEZE fails right after CopyInResponse, before it reads anything: PostgreSQL answers the Sync sent behind it.
    one.s.write(Buffer.concat([parse('', 'COPY orders FROM STDIN (FREEZE)'), bind('', ''), execute(''), sync]))
    const frozen = await one.until(0x5a)
    t.same(frozen.map((f) => String.fromCharCode(f.tag)), ['1', '2', 'G', 'E', 'Z'])
    t.match(parseErrorFields(frozen[3].body), { S: 'ERROR', C: '55000' })
    // What libpq sends after it (copy end and a Sync) is ignored by the upstream, and the Sync answered.
    one.s.write(Buffer.concat([Buffer.from([0x63, 0, 0, 0, 4]), sync, query('SELECT email FROM customers WHERE id = 1')]))
    t.same((await one.until(0x5a)).map((f) => String.fromCharCode(f.tag)), ['Z'])
    t.match(texts(await one.until(0x5a)), /a\*\*\*@example\.com/, 'the session goes on, masked')
    // libpq's PQexecParams: Parse, Bind, Describe, Execute and Sync at once, then the data, CopyDone and another Sync.
    for (const [data, code] of [['not-a-number\tx\n', '22P02'], ['1\tdup\n1\tdup\n', '23505']]) {
      one.s.write(Buffer.concat([parse('', 'COPY orders (id, item) FROM STDIN'), bind('', ''), describe('P', ''), execute(''), sync]))
      await one.until(0x47)
      one.s.write(Buffer.concat([new Writer().bytes(Buffer.from(data)).frame(0x64), Buffer.from([0x63, 0, 0, 0, 4]), sync]))
      const failed = await one.until(0x5a)
      t.match(parseErrorFields(failed.find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { S: 'ERROR', C: code }, `a copy failing on its data (${code}) is an error, not the session's end`)
      t.equal(failed.filter((f) => f.tag === 0x5a).length, 1)
    }
    one.s.write(Buffer.concat([parse('', 'COPY orders (id, item) FROM STDIN'), bind('', ''), execute(''), sync]))
    await one.until(0x47)
    one.s.write(Buffer.concat([new Writer().bytes(Buffer.from('61\tlamp\n')).frame(0x64), Buffer.from([0x63, 0, 0, 0, 4]), sync]))
    t.ok((await one.until(0x5a)).some((f) => f.tag === 0x43), 'and one that goes through completes')
    t.equal((await direct.query('SELECT item FROM orders WHERE id = 61')).rows[0]?.item, 'lamp')
    // Bad data, then a Sync the client sends while it still copies: the gateway keeps it back, as PostgreSQL would ignore it.
    const two = await rawSession(writer)
    t.teardown(() => two.s.destroy())
    two.s.write(query('COPY orders (id, item) FROM STDIN'))
    await two.until(0x47)
    two.s.write(Buffer.concat([new Writer().bytes(Buffer.from('not-a-number\tx\n')).frame(0x64), sync, Buffer.from([0x63, 0, 0, 0, 4]), parse('', 'SELECT email, ssn FROM customers ORDER BY id'), bind('', ''), execute(''), sync]))
    const failed = await two.until(0x5a)
    t.match(parseErrorFields(failed.find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '22P02' })
    const rows = await two.until(0x5a)
    t.match(texts(rows), /a\*\*\*@example\.com.*\*\*\*6789/)
    t.notMatch(texts(rows), /ann@example|123-45/)
  })

  t.test('a statement sent with the Terminate in one packet still runs, and is audited with its rows', async (t) => {
    const c = await token('leaver', 'db:read db:write')
    const { s, closed } = await rawSession(c)
    s.write(Buffer.concat([query("INSERT INTO orders VALUES (77, 'sent before Terminate')"), Buffer.from([0x58, 0, 0, 0, 4])]))
    await closed
    for (let i = 0; i < 100 && (await direct.query('SELECT 1 FROM orders WHERE id = 77')).rowCount === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal((await direct.query('SELECT 1 FROM orders WHERE id = 77')).rowCount, 1)
    await new Promise((resolve) => setTimeout(resolve, 100))
    await b.broker.ctx.audit.flush()
    const r = await b.admin('GET', `/v1/audit?jti=${claimsOf(c).jti as string}`)
    t.match((r.body.events as Array<Record<string, any>>).find((e) => String(e.path).startsWith('INSERT')), { decision: 'allow', detail: { rows: 1 } })
  })

  t.test('what a session may prepare is bounded: the statement past the cap is refused, the session goes on', async (t) => {
    const s = connect(port, '127.0.0.1')
    const framer = new Framer({ mode: 'tagged', maxLength: 64 * 1024 * 1024 })
    const frames: Frame[] = []
    s.on('data', (d: Buffer) => { for (const f of framer.push(d)) frames.push({ tag: f.tag, body: Buffer.from(f.body) }) })
    const until = async (tag: number): Promise<Frame[]> => {
      for (let i = 0; i < 1000 && !frames.some((f) => f.tag === tag); i++) await new Promise((resolve) => setTimeout(resolve, 10))
      return frames.splice(0, frames.findIndex((f) => f.tag === tag) + 1)
    }
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(reader)]))
    await until(0x5a)
    const parses = Array.from({ length: 10_001 }, (_, i) => new Writer().cstring(`s${i}`).cstring('SELECT 1').int16(0).frame(0x50))
    s.write(Buffer.concat([...parses, Buffer.from([0x53, 0, 0, 0, 4])]))
    const answer = await until(0x5a)
    const errors = answer.filter((f) => f.tag === 0x45).map((f) => parseErrorFields(f.body))
    t.equal(answer.filter((f) => f.tag === 0x31).length, 10_000, '10,000 prepared')
    t.match(errors, [{ C: '42501', M: /^lineage: at most 10000 prepared statements per session/ }])
    s.write(query('SELECT 7'))
    t.ok((await until(0x5a)).some((f) => f.tag === 0x44), 'the session is usable afterwards')
    s.destroy()
  })

  t.test('postgres.js: masked results, binary parameters and a cancelled query', async (t) => {
    const sql = postgres({ host: '127.0.0.1', port, user: 'agent', password: writer, database: 'db', max: 1, onnotice: () => {} })
    t.teardown(async () => { await sql.end({ timeout: 1 }) })
    t.same([...await sql`SELECT name, email FROM customers WHERE id = ${1}`], [{ name: 'Ann', email: 'a***@example.com' }])
    await t.rejects(sql`TRUNCATE customers`, { code: '42501' })
    const started = Date.now()
    const slow = sql`SELECT pg_sleep(20)`
    setTimeout(() => { slow.cancel() }, 300)
    await t.rejects(slow, { code: '57014' }, 'the CancelRequest reached the upstream backend')
    t.ok(Date.now() - started < 5000)
    t.same([...await sql`SELECT 1 AS one`], [{ one: 1 }])
  })

  t.test('COPY FROM STDIN works for a token with write; COPY TO STDOUT of masked columns is refused, of the others allowed', async (t) => {
    const file = join(dir, 'copy.sql')
    await writeFile(file, 'COPY orders (id, item) FROM STDIN;\n100\tbook\n101\tlamp\n\\.\n')
    const r = await psql(writer, ['-f', file])
    t.equal(r.code, 0, r.stderr)
    t.equal((await direct.query('SELECT count(*)::int AS n FROM orders WHERE id >= 100')).rows[0].n, 2)
    const ro = await psql(reader, ['-f', file])
    t.match(ro.stderr, /scope db:write is required/)
    const out = await psql(reader, ['-c', 'COPY orders TO STDOUT'])
    t.match(out.stdout, /100\tbook/)
    const masked = await psql(reader, ['-c', 'COPY customers TO STDOUT', '-c', 'COPY (SELECT email FROM customers) TO STDOUT', '-c', 'COPY customers (id, ssn) TO STDOUT',
      '-c', 'COPY (SELECT * FROM customers) TO STDOUT', '-c', 'COPY (SELECT e FROM (SELECT email AS e FROM customers) x) TO STDOUT (FORMAT csv)'])
    t.equal(masked.stderr.match(/lineage: COPY of masked columns is not allowed/g)?.length, 5, masked.stderr)
    t.notMatch(masked.stdout, /ann@example\.com|6789/)
    const plain = await psql(reader, ['-c', 'COPY (SELECT id, name FROM customers ORDER BY id) TO STDOUT', '-c', 'COPY customers (name) TO STDOUT', '-c', "COPY (SELECT id FROM customers WHERE email LIKE 'ann@%') TO STDOUT (FORMAT csv)"])
    t.equal(plain.stderr, '')
    t.equal(plain.stdout.split('\n').slice(0, 2).join('\n'), '1\tAnn\n2\tBob', 'columns that are not masked are copied')
    t.same(plain.stdout.split('\n').slice(2, 4).sort(), ['Ann', 'Bob'])
    t.equal(plain.stdout.split('\n').slice(4).join('\n'), '1\n')
    const both = await psql(writer, ['-c', 'COPY orders FROM STDIN; COPY customers TO STDOUT'])
    t.match(both.stderr, /lineage: COPY of masked columns is not allowed/, 'also behind a COPY FROM in the same text')
    t.notMatch(both.stdout, /ann@example\.com/)
  })

  t.test('COPY FROM STDIN into a system catalog is admin, as an INSERT into one is', async (t) => {
    // A row of pg_proc would make a function of any internal one (pg_terminate_backend) under a name no list knows.
    const file = join(dir, 'catalog.sql')
    await writeFile(file, 'COPY pg_catalog.pg_description FROM STDIN;\n424242\t1259\t0\tcopied in\n\\.\nCOPY pg_description FROM STDIN;\n424243\t1259\t0\tcopied in\n\\.\n')
    t.teardown(async () => { await direct.query('DELETE FROM pg_description WHERE objoid IN (424242, 424243)') })
    const r = await psql(writer, ['-f', file])
    t.equal(r.stderr.match(/lineage: scope db:admin is required \(writes system catalog pg_description\)/g)?.length, 2, r.stderr)
    t.equal((await direct.query('SELECT count(*)::int AS n FROM pg_description WHERE objoid IN (424242, 424243)')).rows[0].n, 0, 'no row was written')
  })

  t.test('LOCK of a system catalog is admin: it would hold up every login to the server, other agents\' too', async (t) => {
    const r = await psql(writer, ['-c', 'BEGIN; LOCK pg_catalog.pg_database IN ACCESS EXCLUSIVE MODE; SELECT 1', '-c', 'ROLLBACK', '-c', 'BEGIN; LOCK orders IN SHARE MODE; SELECT 2; COMMIT'])
    t.match(r.stderr, /lineage: scope db:admin is required \(locks system catalog pg_database\)/)
    t.match(r.stdout, /^2$/m, 'a table of the target is locked as before')
  })

  t.test('pgbench runs through the gateway in simple, extended and prepared modes', async (t) => {
    const init = await run('pgbench', ['-i', '-q', '-s', '1', upstream.url], {})
    t.equal(init.code, 0, init.stderr)
    for (const mode of ['simple', 'extended', 'prepared']) {
      const r = await run('pgbench', ['-n', '-c', '2', '-t', '25', '-M', mode, '-h', '127.0.0.1', '-p', String(port), '-U', 'agent', 'db'], { PGPASSWORD: writer, PGSSLMODE: 'disable' })
      t.equal(r.code, 0, `${mode}: ${r.stderr}`)
      t.match(r.stdout, /number of transactions actually processed: 50\/50/, mode)
    }
  })

  t.test('a cut-off ends idle sessions and sessions in the middle of a long query with FATAL 28000', async (t) => {
    const doomed = await token('doomed', 'db:read')
    const idle = await connected(doomed)
    const busy = await connected(doomed)
    const bystander = await connected(reader)
    t.teardown(async () => { await bystander.end() })
    const fatal = (c: pg.Client): Promise<{ code?: string, message: string, at: number }> => new Promise((resolve) => {
      // The FATAL comes first; the end of the connection follows as a second error.
      c.on('error', (err: Error & { code?: string }) => resolve({ code: err.code, message: err.message, at: Date.now() }))
    })
    const idleEnd = fatal(idle)
    busy.on('error', () => {})
    // The FATAL fails the running query.
    const busyEnd = busy.query('SELECT pg_sleep(30)').then(() => ({ code: 'none', message: 'finished', at: Date.now() }), (err: Error & { code?: string }) => ({ code: err.code, message: err.message, at: Date.now() }))
    await new Promise((resolve) => setTimeout(resolve, 200))
    const started = Date.now()
    const revoked = await b.admin('POST', `/v1/tokens/${claimsOf(doomed).jti as string}/revoke`)
    t.equal(revoked.status, 200)
    const [a, c] = await Promise.all([idleEnd, busyEnd])
    t.equal(a.code, '28000')
    t.match(a.message, /^lineage: chain cut off: token .* was revoked/)
    t.equal(c.code, '28000')
    t.ok(Math.max(a.at, c.at) - started < 1000, `within a second (${Math.max(a.at, c.at) - started} ms)`)
    let sleeping = 1
    for (let i = 0; i < 50 && sleeping > 0; i++) {
      sleeping = (await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'")).rows[0].n
      if (sleeping > 0) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.equal(sleeping, 0, 'the upstream statement was cancelled')
    t.same((await bystander.query('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'other sessions are unaffected')
    const after = new pg.Client(connection(doomed))
    await t.rejects(after.connect(), { code: '28000', message: /^lineage: chain cut off/ }, 'and it cannot log in again')
  })

  t.test('revoking an actor token that acted in a session\'s chain ends the session with FATAL 28000', async (t) => {
    const actorRoot = await rootToken(b, client)
    const acted = (await exchangeToken(b, root, { actor_token: actorRoot, actor_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'db:read' })).body.access_token
    const c = await connected(acted)
    const ended = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve))
    t.same((await c.query('SELECT 1 AS one')).rows, [{ one: 1 }])
    const started = Date.now()
    t.equal((await b.admin('POST', `/v1/tokens/${claimsOf(actorRoot).jti as string}/revoke`)).status, 200)
    const err = await ended
    t.equal(err.code, '28000')
    t.match(err.message, /^lineage: chain cut off: actor token \S+ \(or one it descends from\) was revoked/)
    t.ok(Date.now() - started < 1000, `within a second (${Date.now() - started} ms)`)
  })

  t.test('a contract end date brought forward ends a session at the new date', async (t) => {
    t.equal((await b.admin('POST', '/v1/principals', { id: 'frank', kind: 'human', grants: ['db:*'] })).status, 201)
    t.equal((await b.admin('POST', '/v1/principals', { id: 'frank-ci', kind: 'service', sponsor: 'frank', grants: ['db:*'] })).status, 201)
    const cl = (await b.admin('POST', '/v1/principals/frank-ci/clients')).body
    const tk = await token('frank-agent', 'db:read', await rootToken(b, { clientId: cl.client_id, clientSecret: cl.client_secret }))
    const c = await connected(tk)
    const errors: Error[] = []
    c.on('error', (err) => errors.push(err))
    const ended = new Promise((resolve) => c.once('end', resolve))
    const view = b.broker.ctx.view
    const frank = view.principal('frank')!
    view.apply({ seq: view.seq, kind: 'principal', data: { id: 'frank', kind: 'human', status: 'active', sponsor: null, ends_at: b.clock.now() + 200, cut_off_at: frank.cutOffAt } })
    t.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'live until then')
    b.clock.advance(200) // the test's clock moves by hand: the end date arrives when it has moved past it
    await ended
    t.match(errors[0], { code: '28000', message: /principal frank reached its end date/ })
  })

  t.test('a statement sent once the clock has passed a contract end date ends the session, whatever the timer says', async (t) => {
    const endsAt = new Date(b.clock.now() + 60_000)
    t.equal((await b.admin('POST', '/v1/principals', { id: 'gail', kind: 'human', ends_at: endsAt.toISOString(), grants: ['db:*'] })).status, 201)
    t.equal((await b.admin('POST', '/v1/principals', { id: 'gail-ci', kind: 'service', sponsor: 'gail', grants: ['db:*'] })).status, 201)
    const cl = (await b.admin('POST', '/v1/principals/gail-ci/clients')).body
    const tk = await token('gail-agent', 'db:read', await rootToken(b, { clientId: cl.client_id, clientSecret: cl.client_secret }))
    const c = await connected(tk)
    c.on('error', () => {})
    t.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1, 'live before the end')
    // The wall clock moves past the end date while the timer still waits (a host that was suspended, a clock stepped forward).
    const step = endsAt.getTime() - b.clock.now()
    b.clock.advance(step)
    t.teardown(async () => { b.clock.advance(-step); await b.broker.ctx.sync.catchUp() })
    await b.broker.ctx.sync.catchUp()
    await t.rejects(c.query('SELECT 2 AS two'), { code: '28000', message: /principal gail reached its end date/ })
  })

  t.test('a client that goes away mid-statement leaves nothing running upstream', async (t) => {
    const c = await connected(reader)
    c.on('error', () => {})
    const q = c.query('SELECT pg_sleep(31)').catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 300))
    ;(c as unknown as { connection: { stream: { destroy: () => void } } }).connection.stream.destroy()
    await q
    let running = 1
    for (let i = 0; i < 50 && running > 0; i++) {
      running = (await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(31)' AND state = 'active'")).rows[0].n
      if (running > 0) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.equal(running, 0, 'the statement was cancelled')
  })

  t.test('every statement is audited with its class, rows and the whole lineage', async (t) => {
    const auditor = await token('auditor', 'db:read db:write')
    const c = await connected(auditor)
    await c.query('UPDATE orders SET item = item WHERE id = 11')
    await t.rejects(c.query('DELETE FROM orders'))
    await c.end()
    await b.broker.ctx.audit.flush()
    const r = await b.admin('GET', `/v1/audit?jti=${claimsOf(auditor).jti as string}`)
    t.equal(r.status, 200)
    const records = r.body.events as Array<Record<string, any>>
    t.match(records.find((x) => x.path === 'UPDATE orders SET item = item WHERE id = 11'), { kind: 'gateway.pg', target: 'db', decision: 'allow', method: 'write', principals: ['alice', 'ci-nightly'], actors: ['auditor'], detail: { rows: 1 } })
    t.match(records.find((x) => x.path === 'DELETE FROM orders'), { decision: 'deny', method: 'write', detail: { reason: /every delete and update names its rows/ } })
    t.match(records.find((x) => x.detail?.event === 'login'), { decision: 'allow' })
    const all = await b.admin('GET', '/v1/audit?target=db&limit=1000')
    t.ok((all.body.events as Array<Record<string, any>>).some((x) => x.detail?.event === 'session_ended'), 'the cut-off session end is recorded')
    t.notOk(JSON.stringify(all.body).includes(auditor), 'no token in the trail')
  })

  t.test('a token that may change schema but is no admin cannot make a function do what only an admin may', async (t) => {
    const builder = await token('builder', 'db:read db:ddl')
    const r = await psql(builder, ['-c', "CREATE FUNCTION become() RETURNS text STABLE LANGUAGE sql AS $$ SELECT set_config('role', 'pg_monitor', false) $$",
      '-c', 'CREATE FUNCTION plus_one(n int) RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT n + 1 $$', '-c', 'SELECT plus_one(41)'])
    t.match(r.stderr, /lineage: scope db:admin is required \(its body calls set_config: sets role\)/)
    t.equal(r.stdout, 'CREATE FUNCTION\n42\n', 'a function whose body is within its scopes is created and runs')
    t.teardown(async () => { await direct.query('DROP FUNCTION IF EXISTS plus_one(int); DROP FUNCTION IF EXISTS become()') })
    t.equal((await direct.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'become'")).rows[0].n, 0, 'the other was never created')
  })

  t.test('a token that may change schema but is no admin cannot make an operator class\'s support function one only an admin may call', async (t) => {
    const builder = await token('opclass-builder', 'db:read db:ddl')
    t.teardown(async () => { await direct.query('DROP OPERATOR FAMILY IF EXISTS exported USING btree; DROP OPERATOR FAMILY IF EXISTS unlinked USING hash; DROP OPERATOR FAMILY IF EXISTS plain USING btree') })
    // An index scan comparing an oid with a text would call lo_export(oid, text), writing a server file.
    const r = await psql(builder, ['-c', 'CREATE OPERATOR FAMILY exported USING btree', '-c', 'ALTER OPERATOR FAMILY exported USING btree ADD FUNCTION 1 (oid, text) lo_export(oid, text)',
      '-c', 'CREATE OPERATOR CLASS unlinked FOR TYPE oid USING hash AS OPERATOR 1 =, FUNCTION 1 lo_unlink(oid)'])
    // On a target that masks no column: where columns are masked, no class is made at all (mask-copies.test.ts).
    const classes = await newTarget('classes', [], 'classes:read classes:ddl')
    t.equal((await classes(['-c', 'CREATE OPERATOR CLASS plain FOR TYPE int4 USING btree AS OPERATOR 1 <, FUNCTION 1 btint4cmp(int4, int4)'])).stderr, '')
    t.match(r.stderr, /lineage: scope db:admin is required \(makes a call of lo_export look like another\)/)
    t.match(r.stderr, /lineage: scope db:admin is required \(makes a call of lo_unlink, which writes, look like a read\)/)
    const { rows } = await direct.query("SELECT p.proname FROM pg_amproc a JOIN pg_proc p ON p.oid = a.amproc JOIN pg_opfamily f ON f.oid = a.amprocfamily WHERE f.opfname IN ('exported', 'unlinked', 'plain') ORDER BY 1")
    t.same(rows.map((x) => x.proname), ['btint4cmp'], 'only the class of an ordinary comparison was made')
  })

  t.test('a token that may change schema but is no admin cannot rename a function only an admin may call, for any token to call it by a name no list knows', async (t) => {
    const builder = await token('renamer', 'db:read db:ddl')
    t.teardown(async () => { await direct.query("DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'tidy_up') THEN ALTER FUNCTION pg_catalog.tidy_up(int) RENAME TO pg_cancel_backend; END IF; END $$") })
    const r = await psql(builder, ['-c', 'ALTER FUNCTION pg_catalog.pg_cancel_backend(int) RENAME TO tidy_up', '-c', 'SELECT 1'])
    t.match(r.stderr, /lineage: scope db:admin is required \(makes a call of pg_cancel_backend look like another\)/)
    t.equal((await direct.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'tidy_up'")).rows[0].n, 0, 'the function keeps its name')
  })

  t.test('a token that may change schema but is no admin cannot rename, move or drop a system view, pg_roles.rolconfig for any token to read by another name', async (t) => {
    const builder = await token('view-renamer', 'db:read db:ddl')
    t.teardown(async () => {
      await direct.query("DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_catalog.pg_roles'::regclass AND attname = 'settings') THEN ALTER VIEW pg_catalog.pg_roles RENAME COLUMN settings TO rolconfig; END IF; END $$")
    })
    // Moved out of pg_catalog, it could be renamed as any view is, and `SELECT *` of it would read rolconfig.
    const r = await psql(builder, ['-c', 'ALTER VIEW pg_catalog.pg_roles RENAME COLUMN rolconfig TO settings', '-c', 'ALTER TABLE pg_user RENAME useconfig TO settings',
      '-c', 'DROP VIEW pg_catalog.pg_roles CASCADE', '-c', 'ALTER VIEW pg_roles SET SCHEMA public'])
    t.equal(r.stderr.match(/lineage: scope db:admin is required \(changes system catalog pg_(roles|user)\)/g)?.length, 4, r.stderr)
    const { rows } = await direct.query("SELECT attname FROM pg_attribute WHERE attrelid = 'pg_catalog.pg_roles'::regclass AND attname IN ('rolconfig', 'settings')")
    t.same(rows.map((x) => x.attname), ['rolconfig'], 'the view is as it was')
  })

  t.test('a token that may change schema but is no admin cannot replace, rename or move what pg_catalog holds, by its schema, by a name pg_catalog holds or through search_path', async (t) => {
    const builder = await token('catalog-changer', 'db:read db:ddl')
    t.teardown(async () => {
      await direct.query(`DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'upper_orig') THEN ALTER FUNCTION pg_catalog.upper_orig(text) RENAME TO upper; END IF;
        DROP FUNCTION IF EXISTS pg_catalog.hijack(); DROP FUNCTION IF EXISTS public.hijack(); DROP FUNCTION IF EXISTS public.upper(text);
      END $$`)
    })
    // Renamed, `upper` would no longer be found in pg_catalog: a `public.upper` of the agent's own would run in every session.
    const r = await psql(builder, ['-c', 'ALTER FUNCTION upper(text) RENAME TO upper_orig', '-c', 'CREATE OR REPLACE VIEW pg_catalog.pg_tables AS SELECT 1',
      '-c', "CREATE FUNCTION hijack() RETURNS int LANGUAGE sql AS 'SELECT 1'", '-c', 'ALTER FUNCTION hijack() SET SCHEMA pg_catalog',
      '-c', 'SET search_path = nosuch, pg_catalog', '-c', "CREATE FUNCTION upper(text) RETURNS text LANGUAGE sql AS 'SELECT $1'"])
    t.match(r.stderr, /lineage: scope db:admin is required \(changes upper by a name pg_catalog holds, which is found first; name its schema\)/)
    t.match(r.stderr, /lineage: scope db:admin is required \(creates or changes an object in pg_catalog, which every session uses\)/)
    t.match(r.stderr, /lineage: scope db:admin is required \(creates an object by an unqualified name, and search_path was set to name pg_catalog/)
    t.equal(r.stderr.match(/db:admin is required/g)?.length, 4, r.stderr)
    const { rows } = await direct.query("SELECT DISTINCT n.nspname || '.' || p.proname AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE proname IN ('upper', 'upper_orig', 'hijack') AND n.nspname IN ('pg_catalog', 'public') ORDER BY 1")
    t.same(rows.map((x) => x.f), ['pg_catalog.upper', 'public.hijack'], 'upper is as it was, and the function the agent made stayed in public')
  })

  t.test('a token that may change schema cannot rename a masked column or its table away from the name its mask rule gives', async (t) => {
    const builder = await token('unmasker', 'db:read db:ddl')
    t.teardown(async () => {
      await direct.query(`DO $$ BEGIN
        IF EXISTS (SELECT 1 FROM pg_class WHERE relname = 'people') THEN ALTER TABLE people RENAME TO customers; END IF;
        IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'contact') THEN ALTER TABLE customers RENAME COLUMN contact TO email; END IF;
        IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'number') THEN ALTER TABLE customers RENAME COLUMN number TO ssn; END IF;
      END $$`)
    })
    const r = await psql(builder, ['-c', 'ALTER TABLE customers RENAME COLUMN email TO contact', '-c', 'ALTER TABLE customers RENAME ssn TO number', '-c', 'ALTER TABLE customers RENAME TO people',
      '-c', 'ALTER TABLE orders RENAME COLUMN item TO article', '-c', 'ALTER TABLE orders RENAME COLUMN article TO item'])
    t.equal(r.stderr.match(/lineage: denied by policy: customers\.(email|ssn) is masked/g)?.length, 3, r.stderr)
    t.equal(r.stdout, 'ALTER TABLE\nALTER TABLE\n', 'a column no rule masks is renamed as before')
    const { rows } = await direct.query("SELECT attname FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname IN ('email', 'ssn') ORDER BY 1")
    t.same(rows.map((x) => x.attname), ['email', 'ssn'], 'the masked columns and their table keep their names')
    t.equal((await psql(reader, ['-c', 'SELECT email FROM customers WHERE id = 1'])).stdout, 'a***@example.com\n')
  })

  t.test('a token that may change schema cannot make a table with masked columns a child or a partition, to read its rows through the parent', async (t) => {
    const builder = await token('adopter', 'db:read db:ddl')
    await direct.query('CREATE TABLE adoptive (id int, name text, email text, ssn text)')
    t.teardown(async () => { await direct.query('ALTER TABLE customers NO INHERIT adoptive').catch(() => {}); await direct.query('DROP TABLE adoptive') })
    const r = await psql(builder, ['-c', 'ALTER TABLE customers INHERIT adoptive'])
    // Which masked column the refusal names depends on the order the catalog lists them in.
    t.match(r.stderr, /lineage: denied by policy: (customers\.email|customers\.ssn|adoptive\.ssn) is masked/)
    const read = await psql(reader, ['-c', 'SELECT email FROM adoptive ORDER BY id'])
    t.equal(read.stdout, '', read.stderr)
  })

  t.test('a view of a system catalog is admin: an UPDATE of it would rename pg_cancel_backend for any token to call as a read', async (t) => {
    const builder = await token('catalog-viewer', 'db:read db:write db:ddl')
    t.teardown(async () => {
      await direct.query("DROP VIEW IF EXISTS procs; DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'tidy_cancel') THEN ALTER FUNCTION pg_catalog.tidy_cancel(int) RENAME TO pg_cancel_backend; END IF; END $$")
    })
    const r = await psql(builder, ['-c', 'CREATE VIEW procs AS SELECT oid, proname FROM pg_proc', '-c', "UPDATE procs SET proname = 'tidy_cancel' WHERE proname = 'pg_cancel_backend'"])
    t.match(r.stderr, /lineage: scope db:admin is required \(a view of system catalog pg_proc would write it through an UPDATE or INSERT of the view\)/)
    t.equal((await direct.query("SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'tidy_cancel'")).rows[0].n, 0, 'the function keeps its name')
  })

  t.test('a fast-path function call is classified as a call of the function its OID names, and audited whether refused or allowed', async (t) => {
    const operator = await token('operator', 'db:read db:write db:ddl db:admin')
    // FunctionCall ('F'): the OID, argument formats, arguments, the result's format.
    const call = (oid: number, args: Buffer[] = []): Buffer => {
      const w = new Writer().int32(oid).int16(args.length)
      for (let i = 0; i < args.length; i++) w.int16(1)
      w.int16(args.length)
      for (const a of args) w.int32(a.length).bytes(a)
      return w.int16(0).frame(0x46)
    }
    const int4 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b }
    const answers = async (who: string, message: Buffer): Promise<Frame[]> => {
      const { s, until } = await rawSession(who)
      t.teardown(() => s.destroy())
      s.write(message)
      return await until(0x5a)
    }
    // pg_backend_pid (2026) reads; lo_creat (957) writes a large object; pg_terminate_backend (2096) is admin.
    t.ok((await answers(reader, call(2026))).some((f) => f.tag === 0x56), 'a reading function answers a reader')
    const refused = (await answers(reader, call(957, [int4(-1)]))).find((f) => f.tag === 0x45)
    t.match(parseErrorFields(refused?.body ?? Buffer.alloc(1)), { C: '42501', M: /lineage: scope db:write is required/ }, 'a writing one is refused to a reader')
    const created = (await answers(writer, call(957, [int4(-1)]))).find((f) => f.tag === 0x56)
    t.ok(created !== undefined && created.body.readInt32BE(0) > 0, 'and answers a writer: pgjdbc\'s large objects work')
    const lo = Number(created?.body.subarray(4).toString())
    t.teardown(async () => { await direct.query('SELECT lo_unlink($1)', [lo]) })
    t.ok((await direct.query('SELECT 1 FROM pg_largeobject_metadata WHERE oid = $1', [lo])).rowCount === 1, 'the large object exists')
    // lo_open (952) with INV_READ (0x40000) opens to read, as pgjdbc reads a large object; with INV_WRITE (0x20000) too, to write.
    t.ok((await answers(reader, call(952, [int4(lo), int4(0x40000)]))).some((f) => f.tag === 0x56), 'a reader opens a large object to read it')
    t.match(parseErrorFields((await answers(reader, call(952, [int4(lo), int4(0x60000)]))).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /scope db:write is required/ }, 'but not to write it')
    t.match(parseErrorFields((await answers(reader, call(952, [int4(lo)]))).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /scope db:write is required/ }, 'nor without a mode')
    await direct.query('SELECT lo_put($1, 0, $2)', [lo, Buffer.from('hello')])
    const sql = await connected(reader)
    t.teardown(async () => { await sql.end() })
    await sql.query('BEGIN')
    const fd = (await sql.query<{ fd: number }>(`SELECT lo_open(${lo}, 262144) AS fd`)).rows[0].fd
    t.same((await sql.query<{ b: Buffer }>('SELECT loread($1, 5) AS b', [fd])).rows[0].b, Buffer.from('hello'), 'and reads it in SQL too')
    await t.rejects(sql.query(`SELECT lo_open(${lo}, 131072)`), { code: '42501' }, 'where a write mode is refused too')
    await sql.query('ROLLBACK')
    t.match(parseErrorFields((await answers(writer, call(2096, [int4(1)]))).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /scope db:admin is required \(calls pg_terminate_backend\)/ })
    t.match(parseErrorFields((await answers(writer, call(2_000_000_000))).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42501', M: /scope db:admin is required \(a fast-path call of a function the catalog does not know\)/ }, 'an OID that names no function is admin')
    t.match(parseErrorFields((await answers(operator, call(2_000_000_000))).find((f) => f.tag === 0x45)?.body ?? Buffer.alloc(1)), { C: '42883' }, 'to an admin, PostgreSQL answers it')
    await b.broker.ctx.audit.flush()
    const records = async (jwt: string): Promise<Array<Record<string, any>>> => (await b.admin('GET', `/v1/audit?jti=${claimsOf(jwt).jti as string}`)).body.events
    t.match((await records(reader)).filter((x) => x.path?.startsWith('(function call)')), [
      { decision: 'deny', method: 'write', path: '(function call) pg_catalog.lo_open' },
      { decision: 'deny', method: 'write', path: '(function call) pg_catalog.lo_open' },
      { decision: 'allow', method: 'read', path: '(function call) pg_catalog.lo_open' },
      { decision: 'deny', method: 'write', path: '(function call) pg_catalog.lo_creat' },
      { decision: 'allow', method: 'read', path: '(function call) pg_catalog.pg_backend_pid' }
    ], 'newest first')
    t.match((await records(writer)).find((x) => x.path === '(function call) pg_catalog.lo_creat'), { decision: 'allow', method: 'write', actors: ['writer'] }, 'the allowed call is recorded too')
  })

  t.test('where columns are masked, a function called by fast path whose body reads a masked table is refused, and nothing it would raise comes through', async (t) => {
    await direct.query(`CREATE FUNCTION customers_shout () RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN
        RAISE NOTICE 'first is %', (SELECT email FROM customers WHERE id = 1);
        RAISE EXCEPTION 'first is %', (SELECT email FROM customers WHERE id = 1); END $$`)
    t.teardown(async () => { await direct.query('DROP FUNCTION customers_shout') })
    const oid = Number((await direct.query("SELECT 'customers_shout'::regproc::oid AS oid")).rows[0].oid)
    const { s, until } = await rawSession(reader)
    t.teardown(() => s.destroy())
    s.write(new Writer().int32(oid).int16(0).int16(0).int16(0).frame(0x46))
    const frames = await until(0x5a)
    const error = frames.find((f) => f.tag === 0x45)
    t.equal(frames.find((f) => f.tag === 0x4e), undefined, 'it did not run')
    t.match(parseErrorFields(error?.body ?? Buffer.alloc(1)), { C: '42501', M: /^lineage: denied by policy: customers\.email is masked, and this statement calls a function that reads customers/ })
    t.notMatch(frames.map((f) => f.body.toString()).join(), /@example/, 'no address')
  })

  t.test('a target that asks for fingerprints records no statement text', async (t) => {
    t.equal((await createTarget(b, gw, { name: 'quiet', kind: 'postgres', upstream: upstream.url, audit_statements: 'fingerprint' })).status, 201)
    for (const p of ['alice', 'ci-nightly']) t.equal((await b.admin('PUT', `/v1/principals/${p}/grants`, { grants: ['db:*', 'quiet:read'] })).status, 200)
    const tk = await token('quiet', 'quiet:read', await rootToken(b, client, { scope: 'quiet:read' }))
    const c = new pg.Client({ ...connection(tk), database: 'quiet' })
    await c.connect()
    await c.query("SELECT * FROM customers WHERE email = 'ann@example.com'")
    await c.end()
    await b.broker.ctx.audit.flush()
    const r = await b.admin('GET', '/v1/audit?target=quiet')
    const stmt = (r.body.events as Array<Record<string, any>>).find((x) => x.method === 'read')
    t.match(stmt?.path, /^fingerprint:[0-9a-f]{16}$/)
    t.notOk(JSON.stringify(r.body).includes('ann@example.com'))
  })

  t.test('long statements are classified on the worker thread, in order with what was pipelined behind them, and audited', async (t) => {
    const ids = Array.from({ length: 4000 }, (_, i) => String(i)).join(', ')
    const longRead = `SELECT count(*) FROM customers WHERE id IN (${ids})`
    const longWrite = `INSERT INTO orders (id, item) SELECT x, 'long' FROM unnest(ARRAY[${ids}]) x WHERE x < 0`
    t.ok(longRead.length > 16 * 1024 && longWrite.length > 16 * 1024)
    const r = await psql(reader, ['-c', longRead, '-c', longWrite, '-c', 'SELECT 3'])
    t.equal(r.stdout, '2\n3\n')
    t.match(r.stderr, /lineage: scope db:write is required/)
    const sql = postgres({ host: '127.0.0.1', port, user: 'agent', password: reader, database: 'db', max: 1, onnotice: () => {} })
    t.teardown(async () => { await sql.end() })
    const [a, b2, c] = await Promise.allSettled([sql.unsafe(`${longRead} AND name = $1`, ['Ann']), sql.unsafe(longWrite), sql.unsafe('SELECT $1::int AS n', [7])])
    t.match(a, { status: 'fulfilled', value: [{ count: '1' }] }, 'a long Parse with parameters')
    t.match(b2, { status: 'rejected', reason: { code: '42501' } })
    t.match(c, { status: 'fulfilled', value: [{ n: 7 }] }, 'the statement pipelined behind them runs after them')
    await b.broker.ctx.audit.flush()
    const events = (await b.admin('GET', `/v1/audit?jti=${claimsOf(reader).jti as string}&limit=1000`)).body.events as Array<Record<string, any>>
    t.ok(events.some((e) => e.decision === 'deny' && e.method === 'write' && typeof e.path === 'string' && e.path.startsWith('INSERT INTO orders (id, item) SELECT x')), 'the refusal is audited')
  })

  t.test('a target that asks for fingerprints gets them for long statements too', async (t) => {
    const tk = await token('quiet-long', 'quiet:read', await rootToken(b, client, { scope: 'quiet:read' }))
    const c = new pg.Client({ ...connection(tk), database: 'quiet' })
    await c.connect()
    const long = `SELECT name FROM customers WHERE id IN (${Array.from({ length: 4000 }, (_, i) => String(i)).join(', ')})`
    t.equal((await c.query(long)).rows.length, 2)
    await c.end()
    await b.broker.ctx.audit.flush()
    const r = await b.admin('GET', `/v1/audit?jti=${claimsOf(tk).jti as string}`)
    const stmt = (r.body.events as Array<Record<string, any>>).find((x) => x.method === 'read')
    t.equal(stmt?.path, `fingerprint:${fingerprint(long)}`)
  })

  t.test('a client turned away at login, still sending, is not read into memory', async (t) => {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    await new Promise((resolve) => s.once('connect', resolve))
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage('not-a-token')]))
    const chunk = Buffer.concat([query('x'.repeat(1024 * 1024 - 6))])
    let closed = false
    s.once('close', () => { closed = true })
    const started = Date.now()
    // Writes until the gateway closes the connection or stops reading for a second.
    while (!closed && Date.now() - started < 3000) {
      if (!s.write(chunk)) await Promise.race([new Promise((resolve) => s.once('drain', resolve)), new Promise((resolve) => setTimeout(resolve, 1000))])
      if (s.writableLength > 0 && s.writableNeedDrain) break
    }
    const accepted = s.bytesWritten - s.writableLength
    s.destroy()
    t.ok(accepted < 64 * 1024 * 1024, `${Math.round(accepted / 1e6)} MB left the client: only what socket buffers hold`)
  })

  t.test('settings a client gives at startup reach the upstream when its token may set them; one it may not set fails the login', async (t) => {
    const c = new pg.Client(connection(reader, { statement_timeout: 200, options: '-c search_path=pg_catalog --DateStyle=SQL,\\ DMY -c extra-float-digits=3' }))
    await c.connect()
    t.teardown(async () => { await c.end() })
    t.same((await c.query('SHOW search_path')).rows, [{ search_path: 'pg_catalog' }], 'options -c')
    t.same((await c.query('SHOW DateStyle')).rows, [{ DateStyle: 'SQL, DMY' }], 'options --name=value, an escaped space kept')
    t.same((await c.query('SHOW extra_float_digits')).rows, [{ extra_float_digits: '3' }], 'a dash in a name is an underscore')
    await t.rejects(c.query('SELECT pg_sleep(2)'), { code: '57014' }, 'a parameter of its own (statement_timeout)')
    for (const options of ['-c role=postgres', '-c default_transaction_read_only=off', '-c session_replication_role=replica', '-B 1000', '-c user=postgres']) {
      const refused = new pg.Client(connection(reader, { options }))
      const err = await refused.connect().then(() => undefined, (e: { code?: string, message: string }) => e)
      t.match(err, { message: /^lineage: / }, options)
      t.ok(err?.code === '42501' || err?.code === '0A000', `${options}: ${err?.code ?? ''}`)
      await refused.end().catch(() => {})
    }
    for (const replication of ['database', 'true']) {
      const walsender = new pg.Client({ ...connection(reader), replication } as pg.ClientConfig)
      await t.rejects(walsender.connect(), { code: '0A000', message: /^lineage: replication connections \(replication=\w+\) are not served/ }, `replication=${replication}`)
      await walsender.end().catch(() => {})
    }
    const ordinary = new pg.Client({ ...connection(reader), replication: 'off' } as pg.ClientConfig)
    await ordinary.connect()
    t.same((await ordinary.query('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'replication=off is an ordinary session')
    await ordinary.end()
    const tryRole = postgres({ host: '127.0.0.1', port, user: 'agent', password: reader, database: 'db', connection: { role: 'postgres' }, max: 1, onnotice: () => {} })
    await t.rejects(tryRole`SELECT 1`, { code: '42501' }, 'a top-level parameter is a setting too')
    await tryRole.end()
  })

  t.test('post_auth_delay at startup fails the login: the upstream backend would sleep in a connection slot long after the gateway gave up', async (t) => {
    // Any role may give it at startup (up to 2147 s): logins enough would fill the server's max_connections, for every agent and every database.
    for (const options of ['-c post_auth_delay=30', '--post-auth-delay=30']) {
      const c = new pg.Client(connection(reader, { options }))
      const err = await c.connect().then(() => undefined, (e: { code?: string, message: string }) => e)
      await c.end().catch(() => {})
      t.match(err, { code: '42501', message: /^lineage: startup parameter post_auth_delay: scope db:admin is required/ }, options)
    }
  })

  t.test('JIT profiling or debugging support at startup fails the login: superuser-only settings, profiling writing files to the server\'s disk for every JIT-compiled query', async (t) => {
    for (const options of ['-c jit_profiling_support=on -c jit_above_cost=0', '-c jit_debugging_support=on']) {
      const c = new pg.Client(connection(reader, { options }))
      const err = await c.connect().then(() => undefined, (e: { code?: string, message: string }) => e)
      await c.end().catch(() => {})
      t.match(err, { code: '42501', message: /^lineage: startup parameter jit_(profiling|debugging)_support: scope db:admin is required/ }, options)
    }
  })

  t.test('the settings a login is allowed to give are audited with the login, as the SET statements they were checked as', async (t) => {
    const settler = await token('settler', 'db:read')
    const c = new pg.Client(connection(settler, { statement_timeout: 5000, options: '-c search_path=pg_catalog' }))
    await c.connect()
    await c.end()
    await b.broker.ctx.audit.flush()
    const events = (await b.admin('GET', `/v1/audit?jti=${claimsOf(settler).jti as string}`)).body.events as Array<Record<string, any>>
    t.match(events.filter((x) => x.detail?.event === 'login').reverse(), [
      { decision: 'allow', method: 'read', path: 'SET "statement_timeout" TO \'5000\'' },
      { decision: 'allow', method: 'read', path: 'SET "search_path" TO \'pg_catalog\'' },
      { decision: 'allow', detail: { event: 'login' } }
    ], 'oldest first')
  })

  t.test('bad logins: a garbage token, a token in the user name, an unknown target', async (t) => {
    const bad = new pg.Client(connection('not-a-token'))
    await t.rejects(bad.connect(), { code: '28000', message: /^lineage: / })
    const swapped = new pg.Client({ ...connection('x'), user: reader })
    await t.rejects(swapped.connect(), { code: '28000' })
    const nowhere = new pg.Client({ ...connection(reader), database: 'nope' })
    await t.rejects(nowhere.connect(), { code: '3D000' })
    await b.broker.ctx.audit.flush()
    const probe = (await b.admin('GET', '/v1/audit?target=nope')).body.events
    t.match(probe, [{ decision: 'deny', jti: claimsOf(reader).jti, principals: ['alice', 'ci-nightly'], detail: { event: 'login', reason: 'no such target' } }], 'an unknown target\'s login names the chain of its genuine token')
    const r = await b.admin('GET', '/v1/audit?limit=1000')
    t.notOk(JSON.stringify(r.body).includes(reader), 'the token given as a user name is recorded nowhere')
  })

  t.test('a prepared statement executed after what the catalog told has expired is checked again, not ended', async (t) => {
    const quick = await startTestGateway(b, { pgCatalogTtlMs: 100 })
    t.teardown(async () => { await quick.close() })
    const c = new pg.Client({ ...connection(reader), port: quick.pgPort })
    await c.connect()
    const q = { name: 'by-name', text: 'SELECT lower(name) AS name, email FROM customers WHERE id = $1' }
    t.same((await c.query({ ...q, values: [2] })).rows, [{ name: 'bob', email: 'b***@example.org' }])
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.same((await c.query({ ...q, values: [2] })).rows, [{ name: 'bob', email: 'b***@example.org' }])
    await c.end()
  })

  t.test('while its view of revocations cannot be proven fresh, a gateway refuses every statement and every login', async (t) => {
    let freshAt = b.clock.now()
    const blind = await startTestGateway(b, { freshAt: () => freshAt })
    t.teardown(async () => { await blind.close() })
    const c = new pg.Client({ ...connection(reader), port: blind.pgPort })
    await c.connect()
    t.same((await c.query('SELECT 1 AS ok')).rows, [{ ok: 1 }])
    freshAt = 0
    await t.rejects(c.query('SELECT 1'), { code: '42501', message: /^lineage: the live-status view is \d+ ms old/ })
    await t.rejects(new pg.Client({ ...connection(reader), port: blind.pgPort }).connect(), { code: '57P03' })
    await b.broker.ctx.audit.flush()
    const logins = (await b.admin('GET', `/v1/audit?jti=${claimsOf(reader).jti}&limit=20`)).body.events.filter((e: { detail: { event?: string } }) => e.detail.event === 'login')
    t.match(logins[0], { decision: 'deny', target: 'db', detail: { reason: /^the live-status view is \d+ ms old/ } }, 'the refused login is recorded, with its lineage')
    freshAt = b.clock.now()
    t.same((await c.query('SELECT 2 AS ok')).rows, [{ ok: 2 }], 'and serves again once it catches up')
    await c.end()
  })

  t.test('a statement still running when the view can no longer be proven fresh ends its session within a second, cancelled upstream; an idle session waits for its next statement', async (t) => {
    let freshAt = b.clock.now()
    const blind = await startTestGateway(b, { freshAt: () => freshAt })
    t.teardown(async () => { await blind.close() })
    const idle = new pg.Client({ ...connection(reader), port: blind.pgPort })
    await idle.connect()
    const busy = new pg.Client({ ...connection(reader), port: blind.pgPort })
    await busy.connect()
    const ended = new Promise<{ code?: string, message: string }>((resolve) => {
      busy.on('error', (err: Error & { code?: string }) => resolve(err))
      busy.query('SELECT pg_sleep(29.25)').catch((err: Error & { code?: string }) => resolve(err))
    })
    const sleeping = async (): Promise<number> => (await direct.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(29.25)' AND state = 'active'")).rows[0].n
    for (let i = 0; i < 100 && await sleeping() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    // The database stopped answering: a cut-off may be committed that this gateway cannot see.
    freshAt = b.clock.now() - 60_000
    const started = Date.now()
    const err = await Promise.race([ended, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3000))])
    t.match(err, { code: '57P03', message: /^lineage: the live-status view is \d+ ms old/ }, 'the session ended with FATAL')
    t.ok(Date.now() - started < 1500, `within a second of the view going stale (${Date.now() - started} ms)`)
    for (let i = 0; i < 100 && await sleeping() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(await sleeping(), 0, 'the statement was cancelled upstream')
    freshAt = b.clock.now()
    t.same((await idle.query('SELECT 3 AS ok')).rows, [{ ok: 3 }], 'the idle session serves on once the view is fresh')
    await idle.end()
    busy.end().catch(() => {})
  })

  t.test('a client that pipelines its login and a query, one byte per packet, is served', async (t) => {
    const bytes = Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(reader), query('SELECT 40 + 2 AS answer')])
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(port, '127.0.0.1')
      s.setNoDelay(true)
      const chunks: Buffer[] = []
      s.on('data', (d) => {
        chunks.push(d)
        // The query's ReadyForQuery follows its CommandComplete.
        if (Buffer.concat(chunks).includes('SELECT 1\0')) { s.destroy(); resolve(Buffer.concat(chunks)) }
      })
      s.on('error', reject)
      s.on('connect', async () => {
        for (let i = 0; i < bytes.length; i++) {
          s.write(bytes.subarray(i, i + 1))
          await new Promise((resolve) => setImmediate(resolve))
        }
      })
    })
    t.ok(got.includes('answer\0'), 'RowDescription')
    t.ok(got.includes(Buffer.from([0x44, 0, 0, 0, 12, 0, 1, 0, 0, 0, 2, 0x34, 0x32])), 'DataRow 42')
  })

  t.test('a malformed message pipelined behind the login is a protocol violation, not an internal error', async (t) => {
    const s = connect(port, '127.0.0.1')
    const framer = new Framer({ mode: 'tagged' })
    const frames: Frame[] = []
    s.on('data', (d: Buffer) => { for (const f of framer.push(d)) frames.push({ tag: f.tag, body: Buffer.from(f.body) }) })
    const closed = new Promise((resolve) => s.on('close', resolve))
    s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(reader), Buffer.from([0x42, 0, 0, 0, 5, 0])]))
    await closed
    t.match(parseErrorFields(frames.filter((f) => f.tag === 0x45).at(-1)?.body ?? Buffer.alloc(1)), { S: 'FATAL', C: '08P01', M: /^lineage: Bind: string is missing its terminator/ })
  })

  t.test('a GSSENCRequest is answered N and the login goes on in the clear', async (t) => {
    const gssenc = Buffer.alloc(8)
    gssenc.writeInt32BE(8)
    gssenc.writeInt32BE(80877104, 4)
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(port, '127.0.0.1')
      const chunks: Buffer[] = []
      let answered = false
      s.on('data', (d) => {
        chunks.push(d)
        const all = Buffer.concat(chunks)
        if (!answered && all.length >= 1) {
          answered = true
          s.write(Buffer.concat([startupMessage({ user: 'agent', database: 'db' }), passwordMessage(reader), query('SELECT 1')]))
        }
        if (all.includes('SELECT 1\0')) { s.destroy(); resolve(all) }
      })
      s.on('error', reject)
      s.on('connect', () => s.write(gssenc))
    })
    t.equal(got[0], 0x4e, 'N')
    t.ok(got.includes('SELECT 1\0'), 'then a normal session')
  })

  t.test('a message longer than the cap ends the session before it is read, and others go on', async (t) => {
    const c = await connected(reader)
    const ended = new Promise((resolve) => c.on('error', resolve))
    const stream = (c as unknown as { connection: { stream: { write: (b: Buffer) => void } } }).connection.stream
    const head = Buffer.alloc(5)
    head[0] = 0x51
    head.writeInt32BE(64 * 1024 * 1024, 1)
    stream.write(head)
    t.match(await ended, { code: '08P01' })
    const ok = await connected(reader)
    t.same((await ok.query('SELECT 1 AS ok')).rows, [{ ok: 1 }])
    await ok.end()
  })

  t.test('hostile bytes get a FATAL or a closed connection, and the gateway keeps serving', async (t) => {
    const raw = async (bytes: Buffer[], waitMs = 300): Promise<Buffer> => await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1')
      const got: Buffer[] = []
      s.on('data', (d) => got.push(d))
      s.on('error', () => {})
      s.on('close', () => resolve(Buffer.concat(got)))
      s.on('connect', () => { for (const x of bytes) s.write(x) })
      setTimeout(() => s.destroy(), waitMs)
    })
    const header = (len: number, code: number): Buffer => { const h = Buffer.alloc(8); h.writeInt32BE(len); h.writeInt32BE(code, 4); return h }
    t.match((await raw([header(0x7fffffff, 196608)])).toString(), /08P01|too large|lineage/, 'an oversized startup length')
    t.match((await raw([header(8, 1234)])).toString(), /lineage/, 'an unknown request code')
    const bigPassword = Buffer.from([0x70, 0, 0, 0, 0])
    bigPassword.writeInt32BE(16 * 1024 * 1024 - 1, 1)
    t.match((await raw([startupMessage({ user: 'agent', database: 'db' }), bigPassword])).toString(), /08P01/, 'a password message longer than PostgreSQL allows one, before any byte of it is held')
    t.match((await raw([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')])).toString(), /lineage/, 'HTTP on the PostgreSQL port')
    // SSLRequest followed by plaintext instead of a TLS handshake, then nothing: the login timer ends it.
    const ssl = header(8, 80877103)
    const started = Date.now()
    await raw([ssl], 3000)
    t.ok(Date.now() - started < 2500, 'a client that never finishes TLS is dropped')
    // Random tagged messages after a real login.
    const c = await connected(reader)
    const ended = new Promise((resolve) => c.on('error', resolve))
    ;(c as unknown as { connection: { stream: { write: (b: Buffer) => void } } }).connection.stream.write(Buffer.from([0x7a, 0, 0, 0, 8, 1, 2, 3, 4]))
    t.match(await ended, { code: '08P01' })
    const ok = await connected(reader)
    t.same((await ok.query('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'other sessions are unaffected')
    await ok.end()
  })

  t.test('an upstream that takes the connection, then hangs up or says nothing, fails the login in time and is let go', async (t) => {
    // A listener that closes each connection at once (a proxy whose database is down), holds it
    // without a word, or logs the gateway in and then resets the connection.
    let mode: 'hang up' | 'hold' | 'reset' = 'hang up'
    const held: Socket[] = []
    const mute = createServer((s) => {
      s.on('error', () => {})
      if (mode === 'hang up') s.destroy()
      else if (mode === 'hold') held.push(s.resume())
      else {
        s.on('data', (d: Buffer) => {
          if (d.length === 8 && d.readUInt32BE(4) === 80877103) s.write('N')
          else if (d.readUInt32BE(4) === 196608) s.write(Buffer.concat([new Writer().uint32(0).frame(0x52), new Writer().uint32(42).uint32(7).frame(0x4b), new Writer().byte(0x49).frame(0x5a)]))
          else s.resetAndDestroy()
        })
      }
    })
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { for (const s of held) s.destroy(); mute.close() })
    const at = `postgres://app:secret@127.0.0.1:${(mute.address() as AddressInfo).port}/shop`
    t.equal((await createTarget(b, gw, { name: 'mute', kind: 'postgres', upstream: at })).status, 201)
    for (const p of ['alice', 'ci-nightly']) {
      const grants = (await b.admin('GET', `/v1/principals/${p}`)).body.grants as string[]
      t.equal((await b.admin('PUT', `/v1/principals/${p}/grants`, { grants: [...grants, 'mute:read'] })).status, 200)
    }
    const tk = await token('mute', 'mute:read', await rootToken(b, client, { scope: 'mute:read' }))
    // The gateway's logins time out after 500 ms here: the hang-up must be told before that.
    const c = new pg.Client({ ...connection(tk), database: 'mute' })
    await t.rejects(c.connect(), { code: '08006', message: 'lineage: target mute: the upstream database is unreachable' })
    await b.broker.ctx.audit.flush()
    t.match((await b.admin('GET', '/v1/audit?target=mute')).body.events, [{ decision: 'deny', detail: { event: 'login', reason: 'the upstream database is unreachable' } }], 'and the login is recorded')
    mode = 'hold'
    const err = await Promise.race([
      connectUpstream(new URL(at), { timeoutMs: 300, applicationName: 'x' }).catch((e: unknown) => e),
      new Promise((resolve) => setTimeout(() => resolve(new Error('still waiting')), 3000))
    ])
    t.match(err, { message: 'the upstream database is unreachable' }, 'an upstream that never answers the SSLRequest')
    const closed = await new Promise((resolve) => {
      if (held[0] === undefined || held[0].closed) { resolve(true); return }
      held[0].once('close', () => resolve(true))
      setTimeout(() => resolve(false), 2000)
    })
    t.ok(closed, 'its connection is closed')
    // The session of a read token is made read-only before it is handed over: a reset then fails the login, not the gateway.
    mode = 'reset'
    await t.rejects(new pg.Client({ ...connection(tk), database: 'mute' }).connect(), { code: '08006', message: 'lineage: target mute: the upstream database closed the connection' })
    const ok = await connected(reader)
    t.same((await ok.query('SELECT 1 AS ok')).rows, [{ ok: 1 }], 'the gateway serves on')
    await ok.end()
  })
}
