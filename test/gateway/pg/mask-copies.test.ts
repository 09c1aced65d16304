import t from 'tap'
import { databaseUrl } from '../../helpers/db.js'
import { startPgTarget } from '../../helpers/pg-target.js'
import { run } from '../../helpers/process.js'

// Where columns are masked, ways a ddl or write token could copy a masked value somewhere masking no longer sees it.
if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: skipped')
} else {
  const { gw, direct, token } = await startPgTarget(t, {
    tables: 'CREATE TABLE leak (v text)',
    rules: [
      { effect: 'mask', columns: ['customers.email'], with: 'email' },
      { effect: 'mask', columns: ['*.ssn'], with: 'last4' }
    ]
  })
  const builder = await token('builder', 'db:read db:write db:ddl')
  const psql = async (password: string, args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> =>
    await run('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(gw.pgPort), '-U', 'agent', '-d', 'db', ...args], { PGPASSWORD: password, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' })
  /** Runs each statement through the gateway as the builder, then reads `leak` directly. */
  const attempt = async (statements: string[]): Promise<{ stderr: string, stdout: string, leaked: string[] }> => {
    const r = await psql(builder, statements.flatMap((s) => ['-c', s]))
    const rows = await direct.query('SELECT v FROM leak')
    await direct.query('TRUNCATE leak')
    return { stderr: r.stderr, stdout: r.stdout, leaked: rows.rows.map((x: { v: string }) => x.v).filter((v) => /ann@|bob@|6789/.test(v)) }
  }

  const unmasked = /ann@|bob@|6789/

  t.test('a masked column\'s value written into another relation is refused: a table, a view or a materialized view made of it shows it unmasked', async (t) => {
    await direct.query('CREATE MATERIALIZED VIEW customers_copy AS SELECT id, email FROM customers')
    t.teardown(async () => { await direct.query('DROP MATERIALIZED VIEW customers_copy') })
    for (const sql of ['SELECT email INTO copy1 FROM customers', 'CREATE TABLE copy2 AS SELECT email FROM customers', 'INSERT INTO leak SELECT email FROM customers',
      'CREATE MATERIALIZED VIEW mv AS SELECT email FROM customers', 'CREATE VIEW v1 AS SELECT email FROM customers', 'CREATE VIEW v2 AS SELECT * FROM customers',
      'UPDATE leak SET v = (SELECT email FROM customers WHERE id = 1)', 'MERGE INTO leak USING customers c ON false WHEN NOT MATCHED THEN INSERT VALUES (c.email)',
      'WITH x AS (SELECT email FROM customers) INSERT INTO leak SELECT email FROM x', 'COPY customers_copy TO STDOUT', 'COPY (SELECT email FROM customers_copy) TO STDOUT']) {
      const r = await attempt([sql])
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: customers\.email is masked/, sql)
      t.same(r.leaked, [], `${sql}: nothing copied`)
      t.notMatch(r.stdout, unmasked, `${sql}: nothing shown`)
    }
    const made = await direct.query("SELECT relname FROM pg_class WHERE relname IN ('copy1', 'copy2', 'mv', 'v1', 'v2')")
    t.same(made.rows, [], 'no relation was made')
  })

  t.test('where columns of a table are masked, a trigger, rule or policy on it, turning its triggers or rules on or off, or replacing a trigger function, is refused: such code sees NEW and OLD unmasked and may copy them anywhere', async (t) => {
    await direct.query(`CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO leak VALUES (NEW.id::text); RETURN NEW; END';
      CREATE TRIGGER audit BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION audit_row();
      CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'`)
    t.teardown(async () => { await direct.query('DROP TRIGGER audit ON customers; DROP TRIGGER IF EXISTS stamped ON orders; DROP FUNCTION audit_row(), stamp(); DROP FUNCTION IF EXISTS copy_email()') })
    for (const sql of [
      ["CREATE FUNCTION copy_email() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO leak VALUES (NEW.email); RETURN NEW; END'", 'CREATE TRIGGER t_copy BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION copy_email()'],
      ["CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO leak VALUES (NEW.email); RETURN NEW; END'"],
      ['CREATE RULE r_copy AS ON UPDATE TO customers DO ALSO INSERT INTO leak SELECT NEW.*'],
      ['CREATE POLICY p_leak ON customers USING (true)'],
      ['ALTER TABLE customers DISABLE TRIGGER audit'],
      ['ALTER TABLE customers ENABLE ALWAYS TRIGGER audit']
    ]) {
      const r = await attempt([...sql, 'UPDATE customers SET name = name WHERE id = 1'])
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: (customers\.email is masked, and this statement attaches code to customers|a function may not be replaced \(CREATE OR REPLACE\) where columns are masked)/, sql.join('; '))
      t.same(r.leaked, [], `${sql.join('; ')}: nothing copied`)
      const kept = await direct.query("SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'customers'::regclass UNION ALL SELECT rulename, '' FROM pg_rules WHERE tablename = 'customers' UNION ALL SELECT policyname, '' FROM pg_policies")
      t.same(kept.rows, [{ tgname: 'audit', tgenabled: 'O' }], `${sql.join('; ')}: only the trigger made before, as it was`)
      await direct.query(`DROP TRIGGER IF EXISTS t_copy ON customers; DROP RULE IF EXISTS r_copy ON customers; DROP POLICY IF EXISTS p_leak ON customers; DROP FUNCTION IF EXISTS copy_email();
        ALTER TABLE customers ENABLE TRIGGER audit; CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO leak VALUES (NEW.id::text); RETURN NEW; END'`)
    }
    const r = await psql(builder, ['-c', 'CREATE TRIGGER stamped BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION stamp()', '-c', 'ALTER TABLE orders DISABLE TRIGGER stamped',
      '-c', "CREATE FUNCTION copy_email() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"])
    t.equal(r.stderr, '', 'a trigger on a table with no masked column, and a new trigger function, are made as before')
  })

  t.test('where columns are masked, replacing a function is refused: a CHECK constraint (or an index, a default) may call it on the real value', async (t) => {
    await direct.query(`CREATE FUNCTION valid_email(text) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 LIKE ''%@%''';
      ALTER TABLE customers ADD CONSTRAINT email_ok CHECK (valid_email(email))`)
    t.teardown(async () => { await direct.query('ALTER TABLE customers DROP CONSTRAINT email_ok; DROP FUNCTION valid_email(text); DROP FUNCTION IF EXISTS fresh_fn(int)') })
    const r = await attempt([
      "CREATE OR REPLACE FUNCTION valid_email(text) RETURNS bool LANGUAGE plpgsql AS 'BEGIN INSERT INTO leak VALUES ($1); RETURN true; END'",
      'UPDATE customers SET email = email WHERE id = 1'])
    t.match(r.stderr, /ERROR: {2}lineage: denied by policy: a function may not be replaced \(CREATE OR REPLACE\) where columns are masked/)
    t.same(r.leaked, [], 'nothing copied')
    t.match((await direct.query("SELECT prosrc FROM pg_proc WHERE proname = 'valid_email'")).rows, [{ prosrc: /LIKE/ }], 'the function is as the DBA made it')
    const made = await psql(builder, ['-c', "CREATE FUNCTION fresh_fn(int) RETURNS int LANGUAGE sql AS 'SELECT $1'"])
    t.equal(made.stderr, '', 'a new function is made as before')
  })

  t.test('where columns are masked, an operator, aggregate or operator class whose support function reads a masked table is refused: a use shows no call, and what it returns is of no table', async (t) => {
    await direct.query(`CREATE FUNCTION email_of(int) RETURNS text LANGUAGE sql STABLE AS 'SELECT email FROM customers WHERE id = $1';
      CREATE FUNCTION email_step(text, int) RETURNS text LANGUAGE sql STABLE AS 'SELECT coalesce($1, '''') || email FROM customers WHERE id = $2';
      CREATE FUNCTION plain_of(int) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1::text'`)
    t.teardown(async () => {
      await direct.query(`DROP OPERATOR IF EXISTS ### (NONE, int); DROP OPERATOR IF EXISTS #### (NONE, int); DROP OPERATOR IF EXISTS ##### (NONE, int); DROP OPERATOR IF EXISTS ~~~ (NONE, int);
        DROP AGGREGATE IF EXISTS email_agg(int); DROP FUNCTION IF EXISTS make_op(); DROP FUNCTION IF EXISTS op_fn(int); DROP FUNCTION email_of(int), email_step(text, int), plain_of(int)`)
    })
    for (const sql of [
      ['CREATE OPERATOR ### (FUNCTION = email_of, RIGHTARG = int)', 'INSERT INTO leak SELECT ### 1'],
      ['CREATE AGGREGATE email_agg(int) (SFUNC = email_step, STYPE = text)', 'INSERT INTO leak SELECT email_agg(1)'],
      ["CREATE FUNCTION op_fn(int) RETURNS text LANGUAGE sql AS 'SELECT $1::text'", 'CREATE OPERATOR #### (FUNCTION = op_fn, RIGHTARG = int)',
        "CREATE OR REPLACE FUNCTION op_fn(int) RETURNS text LANGUAGE sql AS 'SELECT email_of($1)'", 'INSERT INTO leak SELECT #### 1'],
      ["CREATE FUNCTION make_op() RETURNS void LANGUAGE sql AS 'CREATE OPERATOR ##### (FUNCTION = email_of, RIGHTARG = int)'", 'SELECT make_op()', 'INSERT INTO leak SELECT ##### 1']
    ]) {
      const r = await attempt(sql)
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: (customers\.email is masked, and this statement calls a function that reads customers|a function may not be replaced)/, sql.join('; '))
      t.same(r.leaked, [], `${sql.join('; ')}: nothing copied`)
    }
    const r = await psql(builder, ['-c', 'CREATE OPERATOR ~~~ (FUNCTION = plain_of, RIGHTARG = int)', '-c', 'SELECT ~~~ 7'])
    t.equal(r.stderr, '')
    t.equal(r.stdout, 'CREATE OPERATOR\n7\n', 'an operator whose function reads no masked table is made and used as before')
  })
  t.test('where columns are masked, an operator, function or aggregate named as one a masked column may be compared with is refused: the comparison would call it with the value', async (t) => {
    await direct.query(`CREATE FUNCTION leak_eq(text, int) RETURNS bool LANGUAGE plpgsql AS $$BEGIN INSERT INTO leak VALUES ($1); RETURN false; END$$;
      CREATE FUNCTION leak_like(text, text) RETURNS bool LANGUAGE plpgsql AS $$BEGIN INSERT INTO leak VALUES ($1); RETURN false; END$$;
      CREATE FUNCTION leak_pos(text, int) RETURNS int LANGUAGE plpgsql AS $$BEGIN INSERT INTO leak VALUES ($1); RETURN 0; END$$;
      CREATE FUNCTION leak_step(text, text) RETURNS text LANGUAGE plpgsql AS $$BEGIN INSERT INTO leak VALUES ($2); RETURN $2; END$$`)
    t.teardown(async () => {
      await direct.query(`DROP OPERATOR IF EXISTS = (text, int); DROP OPERATOR IF EXISTS public.~~ (text, text); DROP FUNCTION IF EXISTS public.lower(text), make_eq(), strpos(text, int);
        DROP AGGREGATE IF EXISTS public.upper(text); DROP FUNCTION leak_eq(text, int), leak_like(text, text), leak_step(text, text); DROP FUNCTION IF EXISTS leak_pos(text, int)`)
    })
    for (const sql of [
      ['CREATE OPERATOR = (LEFTARG = text, RIGHTARG = int, FUNCTION = leak_eq)', 'SELECT 1 FROM customers WHERE email = 1'],
      ['CREATE OPERATOR public.~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = leak_like)', 'SET search_path = public, pg_catalog', "SELECT 1 FROM customers WHERE email LIKE 'x'"],
      ["CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS $$BEGIN INSERT INTO leak VALUES ($1); RETURN $1; END$$", 'SET search_path = public, pg_catalog',
        "SELECT 1 FROM customers WHERE lower(email) = 'x'"],
      ['ALTER FUNCTION leak_pos(text, int) RENAME TO strpos', 'SELECT 1 FROM customers WHERE strpos(ssn, 1) > 0'],
      ['CREATE AGGREGATE public.upper(text) (SFUNC = leak_step, STYPE = text)', 'SET search_path = public, pg_catalog', "SELECT 1 FROM customers GROUP BY id HAVING upper(email) = 'x'"],
      ["CREATE FUNCTION make_eq() RETURNS void LANGUAGE sql AS 'CREATE OPERATOR = (LEFTARG = text, RIGHTARG = int, FUNCTION = leak_eq)'", 'SELECT make_eq()', 'SELECT 1 FROM customers WHERE email = 1']
    ]) {
      const r = await attempt(sql)
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: an operator or function named (=|~~|lower|strpos|upper) may not be defined where columns are masked/, sql.join('; '))
      t.same(r.leaked, [], `${sql.join('; ')}: nothing copied`)
      t.notMatch(r.stdout, unmasked, `${sql.join('; ')}: nothing shown`)
    }
    const made = await direct.query("SELECT proname FROM pg_proc WHERE proname IN ('lower', 'upper', 'strpos', 'make_eq') AND pronamespace = 'public'::regnamespace UNION ALL SELECT oprname FROM pg_operator WHERE oprnamespace = 'public'::regnamespace")
    t.same(made.rows, [], 'nothing was defined by those names')
  })
  t.test('where columns are masked, making an operator class or adding to a family is refused: an index or sort using it calls its functions with the values', async (t) => {
    await direct.query("CREATE FUNCTION leak_cmp(text, text) RETURNS int LANGUAGE plpgsql AS $$BEGIN INSERT INTO leak VALUES ($1); RETURN bttextcmp($1, $2); END$$; CREATE OPERATOR FAMILY leak_fam USING btree")
    t.teardown(async () => {
      await direct.query('DROP INDEX IF EXISTS leak_idx; DROP OPERATOR CLASS IF EXISTS leak_ops USING btree; DROP OPERATOR FAMILY IF EXISTS leak_ops USING btree; DROP OPERATOR FAMILY leak_fam USING btree; DROP FUNCTION leak_cmp(text, text)')
    })
    for (const sql of [
      ['CREATE OPERATOR CLASS leak_ops FOR TYPE text USING btree AS OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 leak_cmp(text, text)',
        'CREATE INDEX leak_idx ON customers (email leak_ops)'],
      ['ALTER OPERATOR FAMILY leak_fam USING btree ADD FUNCTION 1 leak_cmp(text, text)']
    ]) {
      const r = await attempt(sql)
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: an operator class or family may not be made or added to where columns are masked/, sql.join('; '))
      t.same(r.leaked, [], `${sql.join('; ')}: nothing copied`)
    }
    const made = await direct.query("SELECT amproc FROM pg_amproc WHERE amproc = 'leak_cmp'::regproc")
    t.same(made.rows, [], 'the function is in no class or family')
  })
  t.test('where columns are masked, a masked column\'s type is not changed and a domain\'s constraint is not added or validated: a domain\'s check runs on every stored value', async (t) => {
    await direct.query(`CREATE FUNCTION leak_check(text) RETURNS bool LANGUAGE plpgsql AS $$BEGIN INSERT INTO leak VALUES ($1); RETURN true; END$$;
      CREATE DOMAIN leak_checked AS text CHECK (leak_check(VALUE)); CREATE DOMAIN plain_text AS text; CREATE TABLE typed (id int, ssn plain_text);
      INSERT INTO typed VALUES (1, '987-65-6789')`)
    t.teardown(async () => { await direct.query('ALTER TABLE customers ALTER COLUMN ssn TYPE text; DROP TABLE typed; DROP DOMAIN leak_checked, plain_text; DROP FUNCTION leak_check(text)') })
    for (const sql of [
      ['ALTER TABLE customers ALTER COLUMN ssn TYPE leak_checked'],
      ['ALTER DOMAIN plain_text ADD CONSTRAINT leaks CHECK (leak_check(VALUE)) NOT VALID', 'ALTER DOMAIN plain_text VALIDATE CONSTRAINT leaks'],
      ['ALTER DOMAIN plain_text ADD CONSTRAINT leaks CHECK (leak_check(VALUE))']
    ]) {
      const r = await attempt(sql)
      t.match(r.stderr, /ERROR: {2}lineage: denied by policy: (customers\.ssn is masked|a domain's constraint may not be added or validated where columns are masked)/, sql.join('; '))
      t.same(r.leaked, [], `${sql.join('; ')}: nothing copied`)
    }
    const kept = await direct.query("SELECT format_type(atttypid, NULL) AS type FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'ssn' UNION ALL SELECT conname FROM pg_constraint WHERE conname = 'leaks'")
    t.same(kept.rows, [{ type: 'text' }], 'the column keeps its type, the domain gets no constraint')
  })
}
