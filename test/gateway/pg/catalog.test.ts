import pg from 'pg'
import t from 'tap'
import { Catalog } from '../../../src/gateway/pg/catalog.js'
import { createTestDatabase, databaseUrl } from '../../helpers/db.js'

if (databaseUrl === undefined) {
  t.comment('DATABASE_URL not set: the catalog tests (they read a real catalog) are skipped')
} else {
  t.test('what the catalog remembers of long table lists is bounded by their length, not only by their number', async (t) => {
    const catalog = new Catalog(new URL(databaseUrl as string), 30_000, { maxNameChars: 100_000 })
    t.teardown(async () => { await catalog.close() })
    // A statement may name tens of thousands of tables (up to the gateway's 1 MiB statement
    // limit); each list is kept under its own key, so a few thousand of them once held gigabytes.
    const lists = ['a', 'b', 'c', 'd'].map((p) => Array.from({ length: 5000 }, (_, i) => `${p}_table_${i}`))
    for (const l of lists) await catalog.readBehind(l)
    t.equal(catalog.behind(lists[0]), undefined, 'the oldest list is forgotten once the others fill the bound')
    t.same(catalog.behind(lists[3]), [], 'the newest is kept, so the statement that asked can be decided')
    await catalog.readBehind(['customers_nowhere'])
    t.same(catalog.behind(['customers_nowhere']), [], 'short lists are kept as before')
    t.same(catalog.behind(lists[3]), [])
  })

  /** DATABASE_URL with sslmode=prefer, when that server offers no TLS (undefined when it does). */
  const preferWithoutTls = async (): Promise<URL | undefined> => {
    const upstream = new URL(databaseUrl as string)
    const direct = new pg.Client({ connectionString: upstream.toString() })
    await direct.connect()
    const { rows } = await direct.query<{ ssl: string }>('SHOW ssl')
    await direct.end()
    if (rows[0].ssl === 'on') return undefined
    upstream.searchParams.set('sslmode', 'prefer')
    return upstream
  }

  t.test('sslmode=prefer reads the catalog of an upstream that offers no TLS in plain, as the sessions log in', async (t) => {
    const upstream = await preferWithoutTls()
    if (upstream === undefined) return t.comment('this PostgreSQL offers TLS: nothing to fall back from')
    const catalog = new Catalog(upstream)
    t.teardown(async () => { await catalog.close() })
    await catalog.readFunctions(['lower'])
    t.equal(catalog.mayWrite('lower'), false)
    await catalog.readFunctions(['upper'])
    t.equal(catalog.mayWrite('upper'), false, 'and on, in plain')
  })

  t.test('sslmode=prefer: catalog queries sent together to an upstream that offers no TLS all fall back to plain', async (t) => {
    const upstream = await preferWithoutTls()
    if (upstream === undefined) return t.comment('this PostgreSQL offers TLS: nothing to fall back from')
    const catalog = new Catalog(upstream)
    t.teardown(async () => { await catalog.close() })
    // Two sessions' first statements, checked at once: neither is refused for the other's fallback.
    await Promise.all([catalog.readFunctions(['lower']), catalog.readFunctions(['upper'])])
    t.equal(catalog.mayWrite('lower'), false)
    t.equal(catalog.mayWrite('upper'), false)
  })

  t.test('a column added to a table the catalog remembers is named, not left unmasked until the table expires', async (t) => {
    const upstream = await createTestDatabase()
    const direct = new pg.Client({ connectionString: upstream.url })
    await direct.connect()
    const catalog = new Catalog(new URL(upstream.url))
    t.teardown(async () => { await catalog.close(); await direct.end(); await upstream.drop() })
    await direct.query('CREATE TABLE staff (id int, ssn text)')
    const oid = Number((await direct.query<{ oid: string }>("SELECT 'staff'::regclass::oid AS oid")).rows[0].oid)
    t.match((await catalog.resolve([{ tableOid: oid, column: 2 }]))(oid, 2), { table: 'staff', column: 'ssn' })
    // Dropped and added again, `ssn` is attribute 3: a name kept for the table's attributes 1 and 2 would leave it unnamed, so unmasked.
    await direct.query('ALTER TABLE staff DROP COLUMN ssn; ALTER TABLE staff ADD COLUMN ssn text')
    t.match((await catalog.resolve([{ tableOid: oid, column: 3 }]))(oid, 3), { table: 'staff', column: 'ssn' }, 'read again for the column it did not know')
    t.equal((await catalog.resolve([{ tableOid: oid, column: -1 }]))(oid, -1), undefined, 'a system column is no stored column')
  })

  t.test('the column names kept for masking are bounded, and a call still names every table it asked for', async (t) => {
    const upstream = await createTestDatabase()
    const direct = new pg.Client({ connectionString: upstream.url })
    await direct.connect()
    // Room for two tables of two columns (each table counts one more).
    const catalog = new Catalog(new URL(upstream.url), 30_000, { maxColumns: 6 })
    t.teardown(async () => { await catalog.close(); await direct.end(); await upstream.drop() })
    const oids: number[] = []
    for (const name of ['a', 'b', 'c']) {
      await direct.query(`CREATE TABLE ${name} (id int, ssn_${name} text)`)
      oids.push(Number((await direct.query<{ oid: string }>(`SELECT '${name}'::regclass::oid AS oid`)).rows[0].oid))
    }
    const [a, b, c] = oids
    t.match((await catalog.resolve([{ tableOid: a, column: 2 }]))(a, 2), { column: 'ssn_a' })
    // b is read and kept beside a; c, read with a remembered, pushes a out, yet this call still names a.
    await catalog.resolve([{ tableOid: b, column: 2 }])
    const names = await catalog.resolve([{ tableOid: a, column: 2 }, { tableOid: c, column: 2 }])
    t.match(names(a, 2), { column: 'ssn_a' }, 'a table this call found in memory stays named, though the call pushed it out')
    t.match(names(c, 2), { column: 'ssn_c' })
    // a is forgotten: a rename shows at once, where a remembered name would have stood for the TTL.
    await direct.query('ALTER TABLE a RENAME COLUMN ssn_a TO tax_id')
    t.match((await catalog.resolve([{ tableOid: a, column: 2 }]))(a, 2), { column: 'tax_id' }, 'the oldest table was forgotten and read again')
  })

  t.test('the catalog tells which names pg_catalog or information_schema holds, of any kind an unqualified name could find there', async (t) => {
    const catalog = new Catalog(new URL(databaseUrl as string))
    t.teardown(async () => { await catalog.close() })
    const names = ['upper', 'int4range', '=', 'C', 'english', 'simple', 'integer_ops', 'cardinal_number', 'nosuch_function_here', 'UPPER']
    t.equal(catalog.systemNamed('upper'), undefined, 'nothing is known before it is read')
    await catalog.readSystemNames(names)
    t.same(Object.fromEntries(names.map((n) => [n, catalog.systemNamed(n)])), {
      upper: true, int4range: true, '=': true, C: true, english: true, simple: true, integer_ops: true, cardinal_number: true, nosuch_function_here: false, UPPER: false
    })
  })

  t.test('the catalog tells which relations a statement reaches through a view, and which of their columns the views read', async (t) => {
    const upstream = await createTestDatabase()
    const direct = new pg.Client({ connectionString: upstream.url })
    await direct.connect()
    const catalog = new Catalog(new URL(upstream.url))
    t.teardown(async () => { await catalog.close(); await direct.end(); await upstream.drop() })
    await direct.query(`CREATE TABLE customers (id int, name text, email text); CREATE TABLE archive () INHERITS (customers);
      CREATE VIEW names AS SELECT id, name FROM customers; CREATE VIEW outer_names AS SELECT name FROM names;
      CREATE VIEW rows_of AS SELECT c.id, row_to_json(c) AS j FROM customers c; CREATE MATERIALIZED VIEW copied AS SELECT email FROM customers`)
    const read = async (tables: string[]): Promise<unknown> => {
      await catalog.readBehind(tables)
      const v = catalog.throughViews(tables)
      return { behind: [...(catalog.behind(tables) ?? [])].sort(), relations: [...(v?.relations ?? [])].sort(), columns: v?.columns === 'all' ? 'all' : [...(v?.columns ?? [])].sort() }
    }
    t.same(await read(['outer_names']), {
      behind: ['public.archive', 'public.customers', 'public.names', 'public.outer_names'],
      relations: ['public.archive', 'public.customers', 'public.names'],
      columns: ['id', 'name']
    }, 'through two views, to the table and its child; the columns any of them reads')
    t.same(await read(['rows_of']), { behind: ['public.archive', 'public.customers', 'public.rows_of'], relations: ['public.archive', 'public.customers'], columns: 'all' }, 'a whole row reads them all')
    t.same(await read(['copied']), { behind: ['public.archive', 'public.copied', 'public.customers'], relations: ['public.archive', 'public.customers'], columns: ['email'] }, 'a materialized view too')
    t.same(await read(['archive']), { behind: ['public.archive', 'public.customers'], relations: [], columns: [] }, 'a parent is behind its child, through no view')
  })
}
