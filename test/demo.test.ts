import t from 'tap'
import { run } from './helpers/process.js'

t.test('npm run demo tells the contractor story: a tree of live agents, one offboarding, every agent cut off', async (t) => {
  const r = await run('npm', ['run', '--silent', 'demo'], { HOME: process.env.HOME ?? '/root' })
  t.equal(r.code, 0, r.stderr)
  const before = r.stdout.slice(r.stdout.indexOf('The lineage tree, before'), r.stdout.indexOf("HR: alice's contract is over"))
  const after = r.stdout.slice(r.stdout.indexOf('The lineage tree, after'))
  t.equal(before.match(/● /g)?.length, 5, 'five live tokens before')
  t.match(r.stdout, 'status offboarded, 5 live tokens cut off')
  t.equal(r.stdout.match(/introspection active:false/g)?.length, 5, 'every agent inactive')
  t.equal(after.match(/✕ /g)?.length, 5, 'five cut-off tokens after')
  t.notMatch(after, '● ')
})
