import t from 'tap'
import { classify, loadClassifier } from '../../../src/gateway/pg/classify.js'
import { exposedMask, type ColumnName, type MaskRule } from '../../../src/gateway/pg/mask.js'

await loadClassifier()

/** Column names used other than as stored, whether bare or as a table's own (`x.col`). */
const exposed = (sql: string): string[] => {
  const e = classify(sql).exposes
  return [...new Set([...(e?.columns ?? []), ...(e?.columnsOf ?? []).map((q) => q.name)])]
}

/** Names of `x.f` references the catalog must confirm as columns (of any table, or of `x`'s own). */
const named = (sql: string): string[] => {
  const e = classify(sql).exposes
  return [...(e?.qualified ?? []), ...(e?.ofTables ?? []).map((q) => q.name)]
}

t.test('columns selected as stored, or only compared, ordered or grouped, expose nothing', async (t) => {
  for (const sql of [
    'SELECT id, email FROM customers WHERE email = $1 ORDER BY email',
    'SELECT * FROM customers',
    'SELECT c.*, c.email FROM customers c JOIN orders o ON o.customer = c.id AND c.email <> o.note',
    'SELECT x.e FROM (SELECT email AS e FROM customers) x',
    'WITH w AS (SELECT email FROM customers) SELECT * FROM w',
    "SELECT email FROM customers WHERE email LIKE 'a%' AND ssn IS NOT NULL AND email IN ('a', 'b') AND email BETWEEN 'a' AND 'b'",
    'SELECT id FROM customers WHERE email IN (SELECT email FROM customers) AND EXISTS (SELECT email FROM customers) AND email = ANY($1)',
    'UPDATE customers SET name = $1 WHERE email = $2 RETURNING email, *',
    'SELECT email, count(*) FROM customers GROUP BY email HAVING count(*) > 1',
    'SELECT DISTINCT ON (email) email FROM customers ORDER BY email COLLATE "C", id',
    'SELECT CASE WHEN email = $1 THEN 1 ELSE 0 END, CASE email WHEN $2 THEN 1 END FROM customers',
    'SELECT count(*), row_number() OVER (PARTITION BY email ORDER BY email) FROM customers',
    'DECLARE c CURSOR FOR SELECT email FROM customers',
    'SELECT email FROM customers WHERE active AND NOT deleted',
    'SELECT id FROM customers WHERE lower(email) = lower($1) AND UPPER("email"::text) LIKE UPPER($2) AND email::varchar LIKE \'a%\' ORDER BY lower(email)',
    'SELECT id FROM customers WHERE (email, id) > ($1, $2) ORDER BY email, id',
    'SELECT count(email), count(c) FILTER (WHERE ssn IS NULL) FROM customers c',
    'SELECT 1 FROM customers WHERE length(email) > 5 AND lower(name || \' \' || email) LIKE $1 AND coalesce(nullif(btrim(email), \'\'), name) = $2',
    'SELECT id FROM customers WHERE to_tsvector(concat(name, \' \', email)) @@ to_tsquery($1) AND email ^@ $2 AND left(email, 3) = $3'
  ]) {
    const e = classify(sql).exposes
    t.same([e?.columns ?? [], e?.all ?? false], [[], false], sql)
  }
  t.equal(classify('SELECT id, email FROM customers WHERE email = $1').exposes, undefined, 'nothing to look up in the catalog either')
  t.same(classify('SELECT c.email, x.e FROM customers c, (SELECT name AS e FROM orders) x').exposes?.ofTables, [{ relation: 'customers', name: 'email' }], 'a table\'s qualified name must be its column, or it is a function call')
})

t.test('a column computed on, converted, aggregated, combined or set-operated is exposed, through the names subqueries give it', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['SELECT upper(email) FROM customers', ['email']],
    ["SELECT email || '' FROM customers", ['email']],
    ['SELECT email::text FROM customers', ['email']],
    ['SELECT 1 FROM customers WHERE email::int = 1', ['email']],
    ['SELECT max(email) FROM customers', ['email']],
    ['SELECT email FROM customers UNION ALL SELECT email FROM customers', ['email']],
    ['SELECT (SELECT email FROM customers LIMIT 1)', ['email']],
    ['SELECT ARRAY(SELECT email FROM customers)', ['email']],
    ['SELECT upper(x.e) FROM (SELECT email AS e FROM customers) x', ['e', 'email']],
    ['WITH w AS (SELECT email AS e FROM customers), v AS (SELECT e AS f FROM w) SELECT f || 1 FROM v', ['f', 'e', 'email']],
    ['WITH u AS (UPDATE customers SET name = name WHERE id = 1 RETURNING email AS e) SELECT lower(e) FROM u', ['e', 'email']],
    ['SELECT email FROM customers a FULL JOIN customers b USING (email)', ['email']],
    ['SELECT email FROM customers a JOIN customers b USING (id)', ['id']],
    ['SELECT ssn FROM people LEFT JOIN (SELECT NULL::text AS ssn) x USING (ssn)', ['ssn']],
    ['SELECT id, percentile_disc(0) WITHIN GROUP (ORDER BY email) FROM customers GROUP BY id', ['email']],
    ['SELECT ~ssn, -salary FROM staff', ['ssn', 'salary']],
    ['SELECT lower(email) FROM customers', ['email']],
    ['SELECT string_agg(name, \',\' ORDER BY email) FROM customers', ['name']],
    ['UPDATE customers SET name = email WHERE id = 1', ['email']],
    ['INSERT INTO notes (body) SELECT email FROM customers', ['email']],
    ['SELECT COALESCE(email, name), NULLIF(ssn, $1) FROM customers', ['email', 'name', 'ssn']],
    ['SELECT CASE WHEN id = 1 THEN email END FROM customers', ['email']],
    ['SELECT f.x FROM customers c, LATERAL unnest(ARRAY[c.email]) f', ['email']],
    ['SELECT email FROM customers a FULL JOIN customers b USING (email) UNION SELECT 1', ['email']],
    ['SELECT email INTO copy FROM customers', ['email']],
    ['SELECT email FROM customers WHERE email OPERATOR(public.===) $1', ['email']]
  ]
  for (const [sql, columns] of cases) {
    t.equal(classify(sql).exposes?.all, false, `${sql}: not all`)
    t.same(exposed(sql).sort(), [...columns].sort(), sql)
  }
})

t.test('whole rows, stars in expressions or set operations, natural full joins and positional aliases may expose any column', async (t) => {
  for (const sql of [
    'SELECT c FROM customers c',
    'SELECT customers FROM customers',
    'SELECT row_to_json(c) FROM customers c',
    'SELECT to_json(c.*) FROM customers c',
    'SELECT (c).email FROM customers c',
    'SELECT email(c) FROM customers c',
    'SELECT * FROM customers UNION SELECT * FROM customers',
    'SELECT upper(e) FROM (SELECT email FROM customers) AS x(e)',
    'WITH w(e) AS (SELECT email FROM customers) SELECT e || 1 FROM w',
    'SELECT * FROM customers NATURAL FULL JOIN customers_old',
    'SELECT x FROM (SELECT * FROM customers) x',
    'SELECT mode() WITHIN GROUP (ORDER BY c) FROM customers c GROUP BY c.id',
    'SELECT to_json(j) FROM customers LEFT JOIN (SELECT NULL::text AS email) x USING (email) AS j',
    'SELECT * FROM people NATURAL LEFT JOIN (SELECT NULL::text AS ssn) x',
    // A prepared statement's rows copied into a table: masking never sees them.
    'CREATE TABLE x AS EXECUTE p',
    'EXPLAIN ANALYZE CREATE TABLE x AS EXECUTE p(1)'
  ]) t.equal(classify(sql).exposes?.all, true, sql)
  for (const sql of ['EXECUTE p', 'EXPLAIN ANALYZE EXECUTE p(1)']) t.equal(classify(sql).exposes, undefined, `${sql}: its rows are returned as they are`)
})

t.test('SYSTEM_USER is also the column of that name, as PostgreSQL 15 reads it', async (t) => {
  t.same(exposed('SELECT lower(system_user) FROM accounts'), ['system_user'], 'computed on')
  t.same(exposed("SELECT system_user, id FROM accounts WHERE system_user = 'a' ORDER BY system_user"), [], 'selected as stored or compared')
})

t.test('the nesting of a statement cannot overflow the walk', async (t) => {
  const deep = `SELECT ${'upper('.repeat(5000)}email${')'.repeat(5000)} FROM customers`
  const c = classify(deep)
  t.ok(c.class === 'admin' || c.exposes?.columns.includes('email') === true, 'refused by the parser or exposed')
})

t.test('an exposure is refused when one of the statement\'s tables has a masked column of that name', async (t) => {
  const rules: MaskRule[] = [{ columns: ['customers.email'], with: 'email' }, { columns: ['*.ssn'], with: 'last4' }]
  const catalog: ColumnName[] = [
    ...['id', 'name', 'email', 'ssn'].map((column) => ({ schema: 'public', table: 'customers', column })),
    ...['id', 'email', 'note'].map((column) => ({ schema: 'public', table: 'users', column })),
    ...['id', 'item'].map((column) => ({ schema: 'public', table: 'orders', column }))
  ]
  const verdict = (sql: string, r = rules): string | undefined => {
    const c = classify(sql)
    const columns = catalog.filter((col) => c.tables.includes(col.table))
    return c.exposes === undefined ? undefined : exposedMask(r, columns, c.exposes)
  }
  t.match(verdict('SELECT upper(email) FROM customers'), /customers\.email is masked: it may be selected or compared as it is stored/)
  t.match(verdict('SELECT upper(x.e) FROM (SELECT email AS e FROM customers) x'), /customers\.email is masked/)
  t.equal(verdict('SELECT upper(email) FROM users'), undefined, 'another table\'s email is not masked')
  t.equal(verdict('SELECT lower(u.email) FROM users u JOIN customers c ON c.id = u.id'), undefined, 'a table\'s own column is told apart from another table\'s')
  t.match(verdict('SELECT lower(email) FROM users u JOIN customers c ON c.id = u.id'), /customers\.email is masked/, 'a bare name may be either')
  t.equal(verdict('SELECT upper(name) FROM customers'), undefined, 'an unmasked column')
  t.match(verdict('SELECT row_to_json(c) FROM customers c'), /customers\.email is masked, and this statement would return whole rows/)
  t.equal(verdict('SELECT row_to_json(o) FROM orders o'), undefined, 'a table with no masked column')
  t.equal(verdict('SELECT coalesce(json_agg(t), \'[]\') FROM (SELECT id, item FROM orders) t'), undefined)
  t.match(verdict('SELECT c.row_to_json FROM customers c'), /\.row_to_json names no column here, so PostgreSQL would call row_to_json\(\) on a whole row/)
  t.match(verdict('SELECT s.concat FROM (SELECT email FROM customers) s'), /would call concat\(\)/)
  t.equal(verdict('SELECT c.email, c.name FROM customers c'), undefined, 'qualified columns that exist are columns')
  t.equal(verdict('SELECT o.row_to_json FROM orders o'), undefined, 'no masked column to carry')
  t.match(verdict('SELECT c.note FROM customers c, users u'), /\.note names no column here/, 'a column of another table of the statement is none of c\'s')
  t.equal(verdict('SELECT u.note, c.email FROM customers c, users u'), undefined)
})

t.test('COPY … TO exposes every column it copies, which no RowDescription names; COPY … FROM exposes none', async (t) => {
  t.equal(classify('COPY customers TO STDOUT').exposes?.all, true)
  t.same(exposed('COPY customers (id, email) TO STDOUT').sort(), ['email', 'id'])
  t.same(exposed('COPY (SELECT id, c.email FROM customers c WHERE ssn = $1 ORDER BY name) TO STDOUT').sort(), ['email', 'id'])
  t.equal(classify('COPY (SELECT * FROM customers) TO STDOUT').exposes?.all, true)
  t.same(exposed('COPY (SELECT e FROM (SELECT email AS e FROM customers) x) TO STDOUT WITH (FORMAT csv)').sort(), ['e', 'email'])
  t.equal(classify('COPY (WITH w AS (SELECT email FROM customers) SELECT * FROM w) TO STDOUT').exposes?.all, true)
  t.same(exposed('COPY (DELETE FROM customers WHERE id = 1 RETURNING id, email) TO STDOUT').sort(), ['email', 'id'])
  t.same(exposed('COPY (SELECT x.email FROM (SELECT email FROM customers) x) TO STDOUT'), ['email'])
  t.same(exposed('COPY (SELECT c.ssn FROM customers c) TO STDOUT'), ['ssn'])
  t.equal(classify('COPY (TABLE customers) TO STDOUT').exposes?.all, true)
  t.same(exposed('COPY (VALUES ((SELECT email FROM customers LIMIT 1))) TO STDOUT'), ['email'])
  t.equal(classify('DELETE FROM customers WHERE id = 1 RETURNING id, email').exposes, undefined, 'RETURNING outside COPY returns as stored')
  t.equal(classify('COPY customers FROM STDIN').exposes, undefined)
  t.equal(classify('COPY customers (id, email) FROM STDIN').exposes, undefined)
})

t.test('what a function in FROM returns is judged by its arguments, not by its alias', async (t) => {
  t.same(classify('SELECT email, g, n + 1 FROM customers c, generate_series(1, 9) g, generate_series(1, 2) AS s(n)').exposes, { columns: ['n'], all: false, qualified: [], ofTables: [], columnsOf: [] })
  t.same(classify('SELECT x FROM customers c, unnest(ARRAY[c.email]) AS f(x)').exposes, { columns: [], all: false, qualified: [], ofTables: [{ relation: 'customers', name: 'email' }], columnsOf: [{ relation: 'customers', name: 'email' }] })
})

t.test('a subquery\'s columns named by PostgreSQL\'s own rule are columns, not function calls', async (t) => {
  t.same(named('SELECT s.count, s.lower, s.email, s.text FROM (SELECT count(*), lower(name), email::text, $1::text FROM customers) s'), [])
})

t.test('a qualified name is a column where the text defines it, a function\'s row or a system column; elsewhere the catalog tells', async (t) => {
  const q = (sql: string): string[] => named(sql).sort()
  t.same(q('WITH x AS (SELECT 1 AS row_to_json) SELECT c.id, c.row_to_json FROM customers c'), ['id', 'row_to_json'], 'a CTE column of that name does not make it one of c')
  t.same(q('SELECT c.to_json FROM customers c, (SELECT 1 AS to_json) x'), ['to_json'])
  t.same(q('SELECT x.to_json, g.n, v.a, j.key, c.xmin, c.ctid FROM (SELECT 1 AS to_json) x, generate_series(1, 2) AS g(n), (VALUES (1)) v(a), jsonb_each(\'{}\') j, customers c'), [], 'defined by the text, rows of functions, system columns')
  t.same(q('WITH t(b) AS (SELECT 1) SELECT t.b FROM t'), [])
  t.same(q('SELECT id FROM customers WHERE strpos(email, $1) > 0 AND position($2 in email) > 0'), [])
  t.equal(classify('SELECT id FROM customers WHERE strpos(email, $1) > 0').exposes, undefined)
})

t.test('a qualifier is resolved in its own query level: a name bound elsewhere hides no functional notation', async (t) => {
  const q = named
  t.same(q('SELECT c.row_to_json FROM customers c WHERE EXISTS (SELECT 1 FROM generate_series(1, 1) c)'), ['row_to_json'])
  t.same(q('SELECT c.row_to_json FROM customers c WHERE EXISTS (SELECT 1 FROM (SELECT 1 AS row_to_json) c)'), ['row_to_json'])
  t.same(q('SELECT x.j FROM (SELECT c.row_to_json AS j FROM customers c) x, (SELECT 1 AS row_to_json) c'), ['row_to_json'])
  t.same(q('WITH a AS (SELECT customers.row_to_json FROM customers), customers AS (SELECT 1 AS row_to_json) SELECT * FROM a'), ['row_to_json'])
  t.same(q('WITH s AS (SELECT count(*) AS n FROM orders) SELECT st.n, w.day FROM s st, (WITH d AS (SELECT * FROM generate_series(1, 2) g(day)) SELECT d.day FROM d) w'), ['day'], 'a CTE under an alias keeps its columns; one that selects `*` names none the text can see')
})

t.test('statements that write: their target\'s whole row, subscripts and window frames are judged; assignments to themselves and computed rows are not exposures', async (t) => {
  for (const sql of [
    'UPDATE customers SET name = name WHERE id = 1 RETURNING customers',
    'UPDATE customers c SET name = c::text WHERE id = 1',
    'DELETE FROM customers c WHERE id > 0 RETURNING to_jsonb(c)',
    'INSERT INTO customers AS c (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = c.name RETURNING c'
  ]) t.equal(classify(sql).exposes?.all, true, sql)
  t.same(classify("SELECT ('{1}'::int[])[email::int] FROM customers").exposes?.columns, ['email'], 'a subscript')
  t.same(classify('SELECT count(*) OVER w FROM customers WINDOW w AS (ORDER BY id ROWS BETWEEN (SELECT email::int FROM customers WHERE id = 2) PRECEDING AND CURRENT ROW)').exposes?.columns, ['email'], 'a named window\'s frame')
  for (const sql of [
    'INSERT INTO customers (id, email) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, ssn = excluded.ssn',
    'UPDATE customers SET email = email WHERE id = $1',
    'INSERT INTO customers (id, email) SELECT * FROM unnest($1::int[], $2::text[])',
    'UPDATE customers c SET email = v.email FROM (VALUES (1, $1)) v(id, email) WHERE c.id = v.id'
  ]) {
    const e = classify(sql).exposes
    t.same([e?.all ?? false, (e?.columns ?? []).filter((n) => n === 'email' || n === 'ssn')], [false, sql.includes('v.email') ? ['email'] : []], sql)
  }
  t.same(classify('INSERT INTO customers (id, email) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = excluded.email').exposes?.columns, ['email'], 'a proposed value moved into another column')
})

t.test('a function in FROM without an alias goes by its name', async (t) => {
  t.equal(classify('SELECT unnest.x FROM customers, unnest($1::int[]) WHERE id = unnest.x').exposes, undefined)
})

t.test('what a name stands for is trusted only when the text binds it once, and never for a statement\'s own target', async (t) => {
  const all = (sql: string): boolean | undefined => classify(sql).exposes?.all
  const q = named
  t.equal(all('SELECT (SELECT c FROM unnest(ARRAY[c]) c) FROM customers c'), true, 'a function aliased like the row in its own arguments')
  t.equal(all('SELECT x.* FROM customers c, LATERAL (SELECT c FROM unnest(ARRAY[c]) c) x'), true)
  t.equal(all('SELECT (SELECT row_to_json(public.customers.*) FROM unnest(ARRAY[1]) u) FROM public.customers'), true, 'schema.table.*')
  t.equal(all('WITH customers AS (VALUES (1)) UPDATE customers SET name = name WHERE id = 1 RETURNING customers'), true, 'a target is a table, whatever CTE shares its name')
  t.equal(all('INSERT INTO customers AS excluded (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = \'Ann\' RETURNING excluded'), true)
  t.same(q('SELECT (SELECT t.x FROM (SELECT s.row_to_json AS x) t, (SELECT 1 AS row_to_json) s) FROM customers s'), ['row_to_json'])
  t.same(q('SELECT (SELECT u.row_to_json FROM (unnest(ARRAY[1]) o JOIN unnest(ARRAY[1]) u ON true) j) FROM customers u'), ['row_to_json'])
  t.same(exposed('SELECT xmlforest(email AS email, ssn AS ssn) FROM customers').sort(), ['email', 'ssn'], 'XML\'s named arguments are no assignments')
  t.same(exposed('UPDATE contacts SET email = excluded.email FROM customers excluded WHERE contacts.id = excluded.id'), ['email'], 'excluded is ON CONFLICT\'s only')
  t.same(exposed('MERGE INTO contacts t USING customers excluded ON t.id = excluded.id WHEN MATCHED THEN UPDATE SET email = excluded.email'), ['email'])
  t.equal(classify("SELECT '1'::int::text AS a, c.* FROM customers c").exposes, undefined)
})

t.test('a name bound again inside a lateral subquery does not change what it stands for outside (Drizzle\'s relational queries)', async (t) => {
  const sql = 'select "customers"."id", "customers"."email", "customers_orders"."data" as "orders" from "customers" left join lateral (select coalesce(json_agg(json_build_array("customers_orders"."id", "customers_orders"."total")), \'[]\'::json) as "data" from "orders" "customers_orders" where "customers_orders"."customer_id" = "customers"."id") "customers_orders" on true'
  t.notOk(named(sql).includes('data'), 'data is the lateral subquery\'s own column')
  t.equal(named('SELECT c.row_to_json FROM customers c, (unnest(ARRAY[1]) c JOIN orders o ON true) j').includes('row_to_json'), true, 'a name bound twice in one level is trusted as neither')
})

t.test('x.* in a subquery or CTE stands for columns the text does not name, and a CTE seen through an alias column list is renamed', async (t) => {
  const q = named
  t.same(q('SELECT s.to_json FROM (SELECT c.* AS to_json FROM customers c) s'), ['to_json'])
  t.same(q('WITH s AS (SELECT to_json.* FROM customers to_json) SELECT s.to_json FROM s'), ['to_json'])
  t.same(q('WITH s AS (SELECT email AS row_to_json, id FROM customers) SELECT t.row_to_json FROM s AS t(x)'), ['row_to_json'])
  t.same(q('WITH s AS (SELECT email AS e, id FROM customers) SELECT t.x FROM s AS t(x)'), [], 'the new name is its column')
  t.equal(classify('SELECT \'x\', 1 UNION ALL SELECT * FROM (SELECT email FROM customers), generate_series(1, 1) g').exposes?.all, true, 'an unaliased subquery is no computed rows')
  t.equal(classify('SELECT 1 FROM orders; FETCH ALL FROM cur').cursor, true)
})

t.test('(x).* in a subquery or CTE names no column either', async (t) => {
  const q = named
  t.ok(q('SELECT s.row_to_json FROM (SELECT c.id, c.email, (row_to_json).* FROM customers c, (VALUES (1)) row_to_json(a)) s').includes('row_to_json'))
  t.ok(q('WITH w AS (SELECT c.email, (to_jsonb).* FROM customers c, (VALUES (1)) to_jsonb(a)) SELECT w.to_jsonb FROM w').includes('to_jsonb'))
})

t.test('a table renamed by an alias column list is judged by name, and length compares only with one argument', async (t) => {
  t.equal(classify('SELECT id, lower(x.name) FROM customers AS x(id, nm, name)').exposes?.all, true)
  t.same(exposed("SELECT id FROM customers WHERE length(''::bytea, email) = 1"), ['email'], 'length(bytea, name) quotes its encoding argument')
  t.same(exposed('SELECT id FROM customers WHERE length(email) = 1'), [])
})

t.test('a column renamed, or its table renamed or moved, is exposed: a mask rule names it by the name it had', async (t) => {
  t.same(exposed('ALTER TABLE customers RENAME COLUMN email TO contact'), ['email'])
  t.equal(classify('ALTER TABLE customers RENAME TO people').exposes?.all, true)
  t.equal(classify('ALTER TABLE customers SET SCHEMA archive').exposes?.all, true)
  t.same(exposed('ALTER TABLE customers ALTER COLUMN email SET NOT NULL'), [])
})

t.test('a table made a child or a partition may expose any column: its rows are read through the parent, by the parent\'s names', async (t) => {
  t.equal(classify('ALTER TABLE customers INHERIT base').exposes?.all, true)
  t.equal(classify('ALTER TABLE parent ATTACH PARTITION customers FOR VALUES IN (1)').exposes?.all, true)
  t.same(exposed('ALTER TABLE orders ADD COLUMN copy text GENERATED ALWAYS AS (item) STORED'), ['item'], 'other commands are walked as before')
})

t.test('a trigger, rule or policy attached to a table, or its triggers or rules switched, runs code on its whole rows; replacing a function is marked', async (t) => {
  for (const sql of ['CREATE TRIGGER t BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION f()', 'CREATE RULE r AS ON UPDATE TO customers DO ALSO NOTIFY x',
    'CREATE POLICY p ON customers USING (true)', 'ALTER POLICY p ON customers USING (true)', 'ALTER TABLE customers DISABLE TRIGGER ALL', 'ALTER TABLE customers ENABLE RULE r']) t.equal(classify(sql).exposes?.rowCode, true, sql)
  t.same(classify('CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION s.copy_rows()').returnedCalls, ['copy_rows'], 'a trigger\'s function is judged as a call')
  for (const sql of ["CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'", "CREATE OR REPLACE FUNCTION f(text) RETURNS bool LANGUAGE sql AS 'SELECT true'"]) t.equal(classify(sql).replacesFunction, true, sql)
  for (const sql of ["CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'", "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", 'ALTER TABLE customers ADD COLUMN x int']) {
    t.equal(classify(sql).replacesFunction, undefined, sql)
    t.equal(classify(sql).exposes?.rowCode, undefined, sql)
  }
})

t.test('support functions an operator, aggregate, type or operator class names, and what a routine\'s body calls, count as calls of the statement', async (t) => {
  const cases: Array<[string, string[]]> = [
    ['CREATE OPERATOR ### (FUNCTION = public.email_of, RIGHTARG = int)', ['email_of']],
    ['CREATE AGGREGATE a(int) (SFUNC = step, STYPE = text, FINALFUNC = done)', ['step', 'done']],
    ['CREATE OPERATOR CLASS c FOR TYPE int USING btree AS OPERATOR 1 <, FUNCTION 1 cmp(int, int)', ['cmp']],
    ['ALTER OPERATOR ### (NONE, int) SET (RESTRICT = sel)', ['sel']],
    ["CREATE FUNCTION f(int) RETURNS text LANGUAGE sql AS 'SELECT email_of($1)'", ['email_of']]
  ]
  for (const [sql, calls] of cases) t.same([...classify(sql).returnedCalls ?? []].sort(), [...calls].sort(), sql)
})
