import t from 'tap'
import { classify, loadClassifier } from '../../../src/gateway/pg/classify.js'

await loadClassifier()

function classes (sqls: string[]): Record<string, string> {
  return Object.fromEntries(sqls.map((s) => [s, classify(s).class]))
}
const all = (sqls: string[], c: string): Record<string, string> => Object.fromEntries(sqls.map((s) => [s, c]))

t.test("pg_cron's functions called as cron.* are admin: they store SQL that runs later as the target's role, unseen", async (t) => {
  const sqls = [
    "SELECT cron.schedule('0 * * * *', 'DROP TABLE accounts')",
    "SELECT cron.schedule('tidy', '* * * * *', 'UPDATE pg_authid SET rolsuper = true')",
    "SELECT * FROM cron.schedule('a', '* * * * *', 'SELECT 1')",
    "SELECT cron.schedule_in_database('j', '* * * * *', 'SELECT 1', 'postgres')",
    "SELECT \"cron\".alter_job(1, command := 'DROP TABLE t')",
    'SELECT CRON.ALTER_JOB(1, schedule := $1)',
    'SELECT cron.unschedule(1)',
    "SELECT 1 WHERE cron.schedule('x', '* * * * *', 'SELECT 1') > 0"
  ]
  t.same(classes(sqls), all(sqls, 'admin'))
  t.match(classify(sqls[0]).reason, /cron\.schedule/)
})

t.test('an unqualified schedule(...) or another schema\'s is left to the catalog, as any function', async (t) => {
  const sqls = ["SELECT schedule('a', 'b')", "SELECT app.schedule('a')", 'SELECT alter_job(1)', 'SELECT jobid, schedule FROM cron.job']
  t.same(classes(sqls), all(sqls, 'read'))
  t.same(classify("SELECT schedule('a', 'b')").functions, ['schedule'])
})
