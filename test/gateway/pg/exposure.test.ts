import t from 'tap'
import { classify, loadClassifier } from '../../../src/gateway/pg/classify.js'
import { exposedMask, type MaskRule } from '../../../src/gateway/pg/mask.js'

await loadClassifier()

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
    'SELECT email FROM customers a JOIN customers b USING (email)',
    'SELECT email FROM customers WHERE active AND NOT deleted'
  ]) t.equal(classify(sql).exposes, undefined, sql)
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
    ['WITH u AS (UPDATE customers SET name = name WHERE id = 1 RETURNING email AS e) SELECT lower(e) FROM u', ['e', 'email', 'name']],
    ['SELECT email FROM customers a FULL JOIN customers b USING (email)', ['email']],
    ['UPDATE customers SET name = email WHERE id = 1', ['email']],
    ['INSERT INTO notes (body) SELECT email FROM customers', ['email']],
    ['SELECT COALESCE(email, name), NULLIF(ssn, $1) FROM customers', ['email', 'name', 'ssn']],
    ['SELECT CASE WHEN id = 1 THEN email END FROM customers', ['email']],
    ['SELECT 1 FROM customers WHERE length(email) > 5', ['email']],
    ['SELECT f.x FROM customers c, LATERAL unnest(ARRAY[c.email]) f', ['email']],
    ['SELECT email FROM customers a FULL JOIN customers b USING (email) UNION SELECT 1', ['email']],
    ['SELECT email INTO copy FROM customers', ['email']],
    ['SELECT email FROM customers WHERE email OPERATOR(public.===) $1', ['email']]
  ]
  for (const [sql, columns] of cases) {
    const e = classify(sql).exposes
    t.equal(e?.all, false, `${sql}: not all`)
    t.same([...(e?.columns ?? [])].sort(), [...columns].sort(), sql)
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
    'SELECT x FROM (SELECT * FROM customers) x'
  ]) t.equal(classify(sql).exposes?.all, true, sql)
})

t.test('the nesting of a statement cannot overflow the walk', async (t) => {
  const deep = `SELECT ${'upper('.repeat(5000)}email${')'.repeat(5000)} FROM customers`
  const c = classify(deep)
  t.ok(c.class === 'admin' || c.exposes?.columns.includes('email') === true, 'refused by the parser or exposed')
})

t.test('an exposure is refused when a mask rule could name the column in one of the statement\'s tables', async (t) => {
  const rules: MaskRule[] = [{ columns: ['customers.email'], with: 'email' }, { columns: ['*.ssn'], with: 'last4' }]
  const verdict = (sql: string, r = rules): string | undefined => {
    const c = classify(sql)
    return c.exposes === undefined ? undefined : exposedMask(r, c.tables, c.exposes)
  }
  t.match(verdict('SELECT upper(email) FROM customers'), /column email is masked \(customers\.email\)/)
  t.match(verdict('SELECT upper(x.e) FROM (SELECT email AS e FROM public.customers) x'), /column email is masked/)
  t.equal(verdict('SELECT upper(email) FROM orders'), undefined, 'another table\'s email is not masked')
  t.equal(verdict('SELECT upper(name) FROM customers'), undefined, 'an unmasked column')
  t.match(verdict('SELECT ssn || \'\' FROM anything'), /column ssn is masked \(\*\.ssn\)/)
  t.match(verdict('SELECT row_to_json(c) FROM customers c'), /customers has masked columns \(customers\.email\)/)
  t.match(verdict('SELECT row_to_json(o) FROM orders o'), /orders has masked columns \(\*\.ssn\)/, 'without the catalog any table may have an ssn')
  t.equal(verdict('SELECT row_to_json(o) FROM orders o', [rules[0]]), undefined)
  const qualified: MaskRule[] = [{ columns: ['shop.customers.email'], with: 'redact' }]
  t.match(verdict('SELECT upper(email) FROM shop.customers', qualified), /masked/)
  t.match(verdict('SELECT upper(email) FROM customers', qualified), /masked/, 'an unqualified table may be in that schema')
  t.equal(verdict('SELECT upper(email) FROM other.customers', qualified), undefined)
  t.match(verdict('SELECT upper(email) FROM customers', [{ columns: ['customers.*'], with: 'redact' }]), /masked/, 'a glob over the columns')
})

t.test('what a function in FROM returns is judged by its arguments, not by its alias', async (t) => {
  t.same(classify('SELECT c.email, g, n + 1 FROM customers c, generate_series(1, 9) g, generate_series(1, 2) AS s(n)').exposes, { columns: ['n'], all: false })
  t.same(classify('SELECT x FROM customers c, unnest(ARRAY[c.email]) AS f(x)').exposes, { columns: ['email'], all: false })
})
