import t from 'tap'
import { fingerprintSync, loadModule, parseSync, scanSync } from 'libpg-query'
import { classify, loadClassifier } from '../../../src/gateway/pg/classify.js'
import { fingerprint, loadParser, parse, ParserUnavailable, parserReplacements, scan, SqlSyntaxError } from '../../../src/gateway/pg/parser.js'

await Promise.all([loadParser(), loadModule(), loadClassifier()])

// Deep enough to overflow the parser's stack wherever it is called from.
const overflowing = 'SELECT 1' + '+1'.repeat(20_000)

/** Calls `fn` from `depth` frames further down the JavaScript stack, which moves where the parser's own stack runs out. */
function below (depth: number, fn: () => void): void {
  if (depth > 0) { below(depth - 1, fn); return }
  fn()
}

t.test('the parser, the fingerprint and the scanner answer as the package built from the same WebAssembly does', async (t) => {
  const texts = [
    'SELECT a, b FROM t WHERE c = $1',
    "WITH d AS (DELETE FROM t RETURNING *) SELECT 'é' || x FROM d; COPY t TO STDOUT",
    'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql'
  ]
  for (const sql of texts) {
    t.same(parse(sql), parseSync(sql), `parse: ${sql.slice(0, 30)}`)
    t.equal(fingerprint(sql), fingerprintSync(sql), `fingerprint: ${sql.slice(0, 30)}`)
    t.same(scan(sql), scanSync(sql), `scan: ${sql.slice(0, 30)}`)
  }
})

t.test("a syntax error is PostgreSQL's own message, and the instance stays", async (t) => {
  const before = parserReplacements()
  t.throws(() => parse('SELEC 1'), new SqlSyntaxError('syntax error at or near "SELEC"'))
  t.throws(() => fingerprint('SELECT FROM WHERE ('), SqlSyntaxError)
  t.equal(parserReplacements(), before)
  t.same(parse('SELECT 1').stmts?.length, 1)
})

t.test('a parser that traps is replaced at once by its spare, wherever on the stack the trap lands', async (t) => {
  // Where the overflow lands depends on the stack the parser was called on; some landings
  // leave an instance failing every later call ("table index is out of bounds").
  for (let depth = 0; depth < 600; depth += 7) {
    const before = parserReplacements()
    below(depth, () => { t.throws(() => parse(overflowing), `depth ${depth}: trapped`) })
    t.equal(parserReplacements(), before + 1, `depth ${depth}: the instance is retired`)
    t.same(parse('SELECT 1 + 2 FROM t').stmts?.length, 1, `depth ${depth}: the spare parses at once`)
    await loadParser()
  }
})

t.test('while no spare is loaded the parser refuses to answer, the classifier refuses without remembering it, and both come back', async (t) => {
  t.throws(() => parse(overflowing))
  t.throws(() => parse(overflowing))
  t.throws(() => parse('SELECT 1'), ParserUnavailable, 'both instances trapped')
  t.throws(() => scan('SELECT 1'), ParserUnavailable)
  const sql = 'SELECT parser_restart_probe FROM t'
  t.match(classify(sql), { class: 'admin', reason: 'the parser is restarting' })
  await loadParser()
  t.match(classify(sql), { class: 'read', tables: ['t'] }, 'the refusal was not cached')
})

t.test('an instance grown past its memory bound by a huge statement is replaced after that statement', async (t) => {
  const before = parserReplacements()
  const rows = Array.from({ length: 1_300_000 }, (_, i) => `(${i}, 'x')`).join(',')
  t.equal(parse(`INSERT INTO t VALUES ${rows}`).stmts?.length, 1, 'the statement is parsed')
  t.equal(parserReplacements(), before + 1)
  t.same(parse('SELECT 1').stmts?.length, 1)
})
