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

t.test('reading a setting that may hold a password or a command is admin: by SHOW, by current_setting, or through every setting at once', async (t) => {
  const sqls = [
    'SHOW primary_conninfo',
    'SHOW Archive_Command',
    'SHOW "restore_command"',
    'SHOW archive_cleanup_command',
    'SHOW recovery_end_command',
    'SHOW ssl_passphrase_command',
    'SHOW ALL',
    "SELECT current_setting('primary_conninfo')",
    "SELECT pg_catalog.current_setting('ARCHIVE_COMMAND', true)",
    'SELECT * FROM pg_show_all_settings()',
    'SELECT setting FROM pg_settings WHERE name = $1',
    'SELECT name, reset_val FROM pg_catalog.pg_settings',
    'SELECT * FROM pg_settings',
    'TABLE pg_settings',
    'SELECT row_to_json(s) FROM pg_settings s',
    'SELECT s.text FROM pg_settings s',
    'SELECT s FROM pg_settings s',
    'SELECT l FROM pg_settings s (a, b, c, d, e, f, g, h, i, j, k, l)'
  ]
  t.same(classes(sqls), all(sqls, 'admin'))
  t.match(classify('SHOW primary_conninfo').reason, /primary_conninfo, which may hold a password or a command/)
  t.match(classify('SELECT * FROM pg_settings').reason, /pg_settings\.setting/)
})

t.test("other settings stay read, and so do pg_settings' other columns (psql's completion of SET and SHOW reads its names)", async (t) => {
  const sqls = [
    'SHOW work_mem',
    "SELECT current_setting('server_version_num')::int",
    "SELECT pg_catalog.lower(name) FROM pg_catalog.pg_settings WHERE context != 'internal' AND pg_catalog.lower(name) LIKE pg_catalog.lower('w%')",
    'SELECT s.name, s.unit, s.context FROM pg_settings s',
    'SELECT x.name FROM (pg_settings CROSS JOIN t) AS x'
  ]
  t.same(classes(sqls), all(sqls, 'read'))
})
