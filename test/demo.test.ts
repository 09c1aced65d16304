import t from 'tap'
import { run } from './helpers/process.js'

t.test('npm run demo tells the contractor story: a tree of live agents, one offboarding, every agent cut off', async (t) => {
  const r = await run('npm', ['run', '--silent', 'demo'], { HOME: process.env.HOME ?? '/root' })
  t.equal(r.code, 0, r.stderr)
  const before = r.stdout.slice(r.stdout.indexOf('The lineage tree, before'), r.stdout.indexOf("HR: alice's contract is over"))
  const after = r.stdout.slice(r.stdout.indexOf('The lineage tree, after'))
  t.equal(before.match(/● /g)?.length, 6, 'six live tokens before')
  t.match(r.stdout, 'status offboarded, 6 live tokens cut off')
  t.match(r.stdout, /bulk-writer +POST \/warehouse\/rows +→ 403 denied by policy: agents two hops down only read/)
  t.match(r.stdout, /data-loader's open stream was closed \d+ ms after the offboarding/)
  t.match(r.stdout, /psql-helper +GET +\/warehouse\/rows\?day=1 +→ 401 chain cut off: principal alice is offboarded/)
  t.match(r.stdout, /hash chain intact/)
  t.equal(r.stdout.match(/introspection active:false/g)?.length, 6, 'every agent inactive')
  t.equal(after.match(/✕ /g)?.length, 6, 'six cut-off tokens after')
  t.notMatch(after, '● ')
})
