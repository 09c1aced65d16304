import t from 'tap'
import type { AccessClaims } from '../../../src/lineage/claims.js'
import type { Catalog } from '../../../src/gateway/pg/catalog.js'
import { classify, fingerprint, loadClassifier, textFingerprint, type Classification } from '../../../src/gateway/pg/classify.js'
import { stopLongClassifier } from '../../../src/gateway/pg/classify-long.js'
import { Prepared } from '../../../src/gateway/pg/prepared.js'
import { StatementCheck } from '../../../src/gateway/pg/statement-check.js'
import type { Target } from '../../../src/gateway/targets.js'

await loadClassifier()
t.teardown(stopLongClassifier)

const claims = { sub: 'ci-nightly', scope: 'db:read', aud: ['db'], lineage: { depth: 1, principals: ['alice', 'ci-nightly'], chain: ['root'] } } as unknown as AccessClaims
const target: Target = { name: 'db', kind: 'postgres', upstream: new URL('postgres://u@127.0.0.1/db'), headers: {}, policy: { rules: [] }, auditStatements: 'fingerprint' }

function checker (stale: string | undefined): { check: StatementCheck, refused: Array<{ text: string, reason: string }> } {
  const refused: Array<{ text: string, reason: string }> = []
  const check = new StatementCheck(claims, {
    target: () => target,
    catalog: () => { throw new Error('no catalog here') },
    stale: () => stale,
    outstanding: () => 0,
    refused: (_c: Classification, text: string, reason: string) => { refused.push({ text, reason }) },
    executed: () => undefined,
    seen: () => false
  })
  return { check, refused }
}

t.test('a statement refused before it is classified is audited by fingerprint, a long one without parsing it on the shared thread', async (t) => {
  const { check, refused } = checker('the live-status view is 40 s old')
  const long = `SELECT * FROM t WHERE id IN (${Array.from({ length: 5000 }, (_, i) => String(i)).join(', ')})`
  const admin: Classification = { class: 'admin', statements: [], tables: [], count: 1 }
  t.equal(check.decide(long, admin), 'the live-status view is 40 s old')
  t.equal(check.decide('SELECT 1 FROM t WHERE id = 7', admin), 'the live-status view is 40 s old')
  t.same(refused.map((r) => r.text), [`fingerprint:${textFingerprint(long)}`, `fingerprint:${fingerprint('SELECT 1 FROM t WHERE id = 7')}`])
  t.not(textFingerprint(long), fingerprint(long), 'the parser\'s fingerprint would be another')
})

t.test('a long statement waits for the worker thread, then is decided like a short one', async (t) => {
  const { check, refused } = checker(undefined)
  const long = `DELETE FROM t WHERE id IN (${Array.from({ length: 5000 }, (_, i) => String(i)).join(', ')})`
  t.equal(check.classified(long), 'wait')
  await check.ready()
  const c = check.classified(long)
  t.not(c, 'wait')
  t.same(c, classify(long))
  t.equal(check.decide(long, c as Classification), 'scope db:write is required')
  t.equal(refused[0].text, `fingerprint:${fingerprint(long)}`, 'with the fingerprint the worker made')
  check.handled()
  t.equal(check.classified(long), 'wait', 'once its message is handled, its classification is let go')
  await check.ready()
})

t.test('a long statement refused because it calls a function that may write is audited with the fingerprint the worker made', async (t) => {
  const refused: string[] = []
  const check = new StatementCheck(claims, {
    target: () => target,
    catalog: () => ({ mayWrite: () => true }) as unknown as Catalog,
    stale: () => undefined,
    outstanding: () => 0,
    refused: (_c: Classification, text: string) => { refused.push(text) },
    executed: () => undefined,
    seen: () => false
  })
  const long = `SELECT wipe() FROM t WHERE a = 1 /* ${'x'.repeat(20_000)} */`
  t.equal(check.classified(long), 'wait')
  await check.ready()
  const c = check.classified(long) as Classification
  t.match(check.decide(long, c), /scope db:write is required \(calls wipe/)
  t.same(refused, [`fingerprint:${fingerprint(long)}`])
})

t.test('SQL EXECUTE is decided with everything its name may hold, and is admin where the gateway cannot tell', async (t) => {
  const prepared = new Prepared()
  const writer = { ...claims, scope: 'db:read db:write' } as unknown as AccessClaims
  const refused: string[] = []
  const check = new StatementCheck(writer, {
    target: () => ({ ...target, auditStatements: 'text' }),
    catalog: () => { throw new Error('no catalog here') },
    stale: () => undefined,
    outstanding: () => 0,
    refused: (_c: Classification, _text: string, reason: string) => { refused.push(reason) },
    executed: (name) => prepared.executed(name),
    seen: (name) => prepared.seen(name)
  })
  const decided = (sql: string): string | undefined => {
    const reason = check.decide(sql, classify(sql))
    t.not(reason, 'wait')
    return reason as string | undefined
  }
  t.match(decided('EXECUTE p'), /scope db:admin is required \(runs prepared statement p, which the gateway did not see prepared\)/)
  t.equal(decided('PREPARE p AS SELECT 1; EXECUTE p'), undefined, 'a name the text itself prepares')
  prepared.sqlPrepare(['p'], classify('PREPARE p AS SELECT 1'))
  t.equal(decided('EXECUTE p'), undefined)
  t.equal(check.decided?.class, 'read')
  // PREPARE of a name held fails upstream, and DEALLOCATE may have failed: the name may hold either.
  prepared.forget({ statements: ['p'], portals: [] })
  prepared.sqlPrepare(['p'], classify('PREPARE p AS INSERT INTO t VALUES (1)'))
  t.equal(decided('EXECUTE p'), undefined)
  t.same([check.decided?.class, check.decided?.tables], ['write', ['t']], 'the strongest class, every table')
  // A statement parsed by the extended protocol shares the names, and one SQL replaced stays possible.
  prepared.parse('q', { sql: 'UPDATE u SET a = 1 WHERE b = 2', c: classify('UPDATE u SET a = 1 WHERE b = 2') }, 0)
  t.equal(decided('EXECUTE q'), undefined)
  t.same(check.decided?.tables, ['u'])
  prepared.forget({ statements: 'all', portals: 'all' })
  t.equal(decided('EXECUTE q'), undefined)
  t.same(check.decided?.tables, ['u'], 'after DEALLOCATE ALL, which may have failed, too')
  t.equal(prepared.statement('q'), undefined, 'but a Bind of it is no longer trusted')
  // Statements whose text runs another.
  prepared.parse('r', { sql: 'EXECUTE p', c: classify('EXECUTE p') }, 0)
  t.match(decided('EXECUTE r'), /runs prepared statement r, which runs another/)
  // Past the bound, a name prepared again holds what the gateway cannot tell.
  for (let i = 0; i < 10_000; i++) prepared.sqlPrepare([`n${i}`], classify(`PREPARE n${i} AS SELECT ${i}`))
  prepared.sqlPrepare(['p'], classify('PREPARE p AS SELECT 2'))
  t.match(decided('EXECUTE p'), /runs prepared statement p, which the gateway did not see prepared/)
  t.match(decided('PREPARE p AS SELECT 2; EXECUTE p'), /runs prepared statement p/, 'even prepared again in the same text')
})

t.test('a masked column added since the catalog was read is not computed on unseen: columns lacking a name the statement computes on are read again', async (t) => {
  // The catalog remembers `people` as it was; the upstream has `ssn` since, which `*.ssn` masks.
  const stored = [{ schema: 'public', table: 'people', column: 'id' }]
  let columns: Array<{ schema: string, table: string, column: string }> | undefined
  let reads = 0
  const catalog = {
    mayWrite: () => false,
    columnsOf: () => columns,
    readColumns: async () => { reads++; columns = [...stored] },
    behind: () => ['public.people'],
    throughViews: () => ({ relations: [], columns: new Set() }),
    routinesNamed: () => []
  } as unknown as Catalog
  const masked: Target = { ...target, policy: { rules: [{ effect: 'mask', columns: ['*.ssn'], with: 'last4' }] } }
  const check = new StatementCheck(claims, {
    target: () => masked,
    catalog: () => catalog,
    stale: () => undefined,
    outstanding: () => 0,
    refused: () => {},
    executed: () => undefined,
    seen: () => false
  })
  const decide = async (sql: string): Promise<string | undefined> => {
    let d = check.decide(sql, classify(sql))
    while (d === 'wait') {
      await check.ready()
      d = check.decide(sql, classify(sql))
    }
    check.handled()
    return d
  }
  t.equal(await decide('SELECT id FROM people'), undefined)
  t.equal(reads, 1)
  stored.push({ schema: 'public', table: 'people', column: 'ssn' })
  t.match(await decide('SELECT upper(ssn) FROM people'), /people\.ssn is masked/, 'read again, and refused')
  t.match(await decide('SELECT row_to_json(p) FROM people p'), /people\.ssn is masked/, 'a whole row too')
  t.equal(await decide('SELECT id FROM people'), undefined, 'a statement computing on nothing is decided from memory')
  t.equal(reads, 3)
})

t.test('LISTEN is refused where a mask rule applies to the token, whatever tables the rest of its text names', async (t) => {
  // The rule masks `customers` only; a notification's payload may carry any table's row, so it applies to LISTEN.
  const masked: Target = { ...target, policy: { rules: [{ effect: 'mask', tables: ['customers'], columns: ['*.ssn'], with: 'redact' }] } }
  const catalog = { mayWrite: () => false, columnsOf: () => [{ schema: 'public', table: 'orders', column: 'id' }] } as unknown as Catalog
  const refused: string[] = []
  const check = new StatementCheck(claims, {
    target: () => masked,
    catalog: () => catalog,
    stale: () => undefined,
    outstanding: () => 0,
    refused: (_c: Classification, _text: string, reason: string) => { refused.push(reason) },
    executed: () => undefined,
    seen: () => false
  })
  t.equal(check.masksNotifications(), true, 'its notifications would be redacted')
  t.match(check.decide('LISTEN jobs', classify('LISTEN jobs')), /LISTEN is not allowed where columns are masked/)
  t.match(check.decide('LISTEN jobs; SELECT id FROM orders', classify('LISTEN jobs; SELECT id FROM orders')), /LISTEN is not allowed where columns are masked/, 'a table the rule does not name beside it spares it nothing')
  t.equal(check.decide('SELECT id FROM orders', classify('SELECT id FROM orders')), undefined, 'that table alone is read unmasked')
  t.equal(refused.length, 2)
})

t.test('notifications are redacted once the target is gone, or is now a target of another kind whose policy says nothing of columns', async (t) => {
  let now: Target | undefined = { ...target, policy: { rules: [{ effect: 'mask', columns: ['*.ssn'], with: 'redact' }] } }
  const check = new StatementCheck(claims, {
    target: () => now,
    catalog: () => { throw new Error('no catalog here') },
    stale: () => undefined,
    outstanding: () => 0,
    refused: () => {},
    executed: () => undefined,
    seen: () => false
  })
  t.equal(check.masksNotifications(), true)
  now = { ...target }
  t.equal(check.masksNotifications(), false, 'a policy that no longer masks lets payloads pass again')
  now = undefined
  t.equal(check.masksNotifications(), true, 'deleted')
  now = { ...target, kind: 'http', upstream: new URL('http://127.0.0.1/') }
  t.equal(check.masksNotifications(), true, 'saved again under the same name as an http target: every statement is refused as the target no longer exists, and so are payloads')
})

t.test('once search_path may name a system schema, creating an object unqualified is admin for the rest of the session: it may land there', async (t) => {
  const builder = { ...claims, scope: 'db:read db:write db:ddl' } as unknown as AccessClaims
  const session = (searchesSystem?: boolean): { check: StatementCheck, refused: string[] } => {
    const refused: string[] = []
    const check = new StatementCheck(builder, {
      target: () => target,
      catalog: () => { throw new Error('no catalog here') },
      stale: () => undefined,
      outstanding: () => 0,
      refused: (_c, _text, reason) => { refused.push(reason) },
      executed: () => undefined,
      seen: () => false,
      searchesSystem
    })
    return { check, refused }
  }
  const decide = (check: StatementCheck, sql: string): string | undefined => check.decide(sql, classify(sql)) as string | undefined
  const create = "CREATE FUNCTION now() RETURNS timestamptz LANGUAGE sql AS 'SELECT NULL::timestamptz'"

  const plain = session()
  t.equal(decide(plain.check, create), undefined, 'under the default search_path it lands in the first schema, public')
  t.equal(decide(plain.check, 'SET search_path = nosuch, pg_catalog'), undefined, 'the SET itself is a read')
  t.match(decide(plain.check, create), /scope db:admin is required \(creates an object by an unqualified name, and search_path was set to name pg_catalog/)
  t.match(decide(plain.check, 'CREATE TABLE t (a int)'), /db:admin/)
  t.equal(decide(plain.check, 'SET search_path = public'), undefined)
  t.match(decide(plain.check, 'SELECT 1 INTO t2'), /db:admin/, 'a SET since does not clear it: the gateway cannot follow every way back')
  t.equal(decide(plain.check, 'CREATE TABLE public.t (a int)'), undefined, 'a schema named is judged by its name')
  t.equal(decide(plain.check, 'CREATE TEMP TABLE t (a int)'), undefined, 'a temporary table goes to pg_temp')

  t.match(decide(session().check, `SELECT set_config('search_path', $1, false); ${create}`), /db:admin/, 'a value known only at run time may name one')
  t.match(decide(session(true).check, create), /db:admin/, 'a startup setting counts')
  const refusedSet = session()
  t.match(decide(refusedSet.check, 'SET search_path = pg_catalog; DO $$ BEGIN END $$'), /db:admin/)
  t.equal(decide(refusedSet.check, create), undefined, 'a SET in a refused text changed nothing')
})

t.test('changing a routine, type or operator by a name pg_catalog holds is admin: PostgreSQL finds the built-in first', async (t) => {
  const builder = { ...claims, scope: 'db:read db:write db:ddl' } as unknown as AccessClaims
  const asked: string[][] = []
  let known = new Map<string, boolean>()
  const catalog = {
    systemNamed: (n: string) => known.get(n),
    readSystemNames: async (names: string[]) => { asked.push(names); known = new Map(names.map((n) => [n, ['upper', 'int4range', '='].includes(n)])) },
    // A support function named (`restrict = eqsel`) counts as a function of the text.
    mayWrite: () => false
  } as unknown as Catalog
  const check = new StatementCheck(builder, {
    target: () => target, catalog: () => catalog, stale: () => undefined, outstanding: () => 0, refused: () => {}, executed: () => undefined, seen: () => false
  })
  const decide = async (sql: string): Promise<string | undefined> => {
    let d = check.decide(sql, classify(sql))
    if (d === 'wait') { await check.ready(); d = check.decide(sql, classify(sql)) }
    return d
  }
  t.match(await decide('ALTER FUNCTION upper(text) RENAME TO upper_orig'), /db:admin is required \(changes upper by a name pg_catalog holds/)
  t.same(asked, [['upper']], 'the catalog was asked for the name')
  t.match(await decide('ALTER TYPE int4range RENAME TO r'), /db:admin/)
  t.match(await decide('ALTER OPERATOR = (int, int) SET (restrict = eqsel)'), /db:admin/)
  t.equal(await decide('ALTER FUNCTION tidy(text) VOLATILE'), undefined, 'a name pg_catalog does not hold is the agent\'s own')
  t.equal(await decide('ALTER FUNCTION public.upper(text) RENAME TO u'), undefined, 'a name with its schema is judged by the schema')
})
