import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { lockDataDir, lockFileName } from '../../src/storage/data-dir-lock.js'

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-lock-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** The id of a process that has exited. */
function deadPid (): number {
  return spawnSync(process.execPath, ['-e', '']).pid as number
}

t.test('the lock file names this process while it holds the directory, and is gone once released', async (t) => {
  const dir = await tempDir(t)
  const unlock = await lockDataDir(dir)
  t.equal(await readFile(join(dir, lockFileName), 'utf8'), `${process.pid}\n`)
  t.same(await readdir(dir), [lockFileName], 'nothing else is left in the directory')
  await unlock()
  t.same(await readdir(dir), [])
})

t.test('a directory held by another running process is refused with an error naming LINEAGE_DATA_DIR', async (t) => {
  const dir = await tempDir(t)
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  t.teardown(async () => { other.kill(); if (other.exitCode === null) await once(other, 'exit') })
  await writeFile(join(dir, lockFileName), `${other.pid as number}\n`)
  await t.rejects(lockDataDir(dir), { name: 'ConfigError', message: `LINEAGE_DATA_DIR: ${dir} is in use by process ${other.pid as number}` })
  t.equal(await readFile(join(dir, lockFileName), 'utf8'), `${other.pid as number}\n`, 'its lock stays')
  t.same((await readdir(dir)).sort(), [lockFileName], 'and nothing else is left')
})

t.test('a lock left by a process that no longer runs, or by none, is taken over', async (t) => {
  const dir = await tempDir(t)
  for (const left of [`${deadPid()}\n`, '', 'not a pid\n']) {
    await writeFile(join(dir, lockFileName), left)
    const unlock = await lockDataDir(dir)
    t.equal(await readFile(join(dir, lockFileName), 'utf8'), `${process.pid}\n`, JSON.stringify(left))
    await unlock()
  }
})

t.test('a takeover claim left by a process that died taking over is removed, one held by a running process is respected', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, lockFileName), `${deadPid()}\n`)
  await writeFile(join(dir, `${lockFileName}.takeover`), `${deadPid()}\n`)
  const unlock = await lockDataDir(dir)
  t.same(await readdir(dir), [lockFileName], 'taken over, the dead claim removed')
  await unlock()
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  t.teardown(async () => { other.kill(); if (other.exitCode === null) await once(other, 'exit') })
  await writeFile(join(dir, lockFileName), `${deadPid()}\n`)
  await writeFile(join(dir, `${lockFileName}.takeover`), `${other.pid as number}\n`)
  await t.rejects(lockDataDir(dir), { name: 'ConfigError', message: `LINEAGE_DATA_DIR: ${dir} is in use by process ${other.pid as number}` })
})

t.test('of processes finding the same left-over lock at once, one takes the directory over', async (t) => {
  const dir = await tempDir(t)
  const module = new URL('../../src/storage/data-dir-lock.ts', import.meta.url).href
  for (let round = 0; round < 5; round++) {
    await writeFile(join(dir, lockFileName), `${deadPid()}\n`)
    // Each contender loads the module, waits for the same instant, tries, and holds what it won until killed.
    const at = Date.now() + 2000
    const script = `const { lockDataDir } = await import(${JSON.stringify(module)})
      await new Promise((resolve) => setTimeout(resolve, ${at} - Date.now()))
      try { await lockDataDir(${JSON.stringify(dir)}); process.stdout.write('won'); setInterval(() => {}, 1000) } catch (err) { process.stdout.write(err.name) }`
    const contenders = Array.from({ length: 6 }, () => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }))
    const outcomes = await Promise.all(contenders.map(async (p) => {
      const [out] = await once(p.stdout, 'data') as [Buffer]
      return out.toString()
    }))
    for (const p of contenders) p.kill('SIGKILL')
    await Promise.all(contenders.map(async (p) => { if (p.exitCode === null && p.signalCode === null) await once(p, 'close') }))
    t.same(outcomes.filter((o) => o === 'won').length, 1, `round ${round}: one won (${outcomes.join(', ')})`)
    t.same(outcomes.filter((o) => o !== 'won'), Array(5).fill('ConfigError'), 'the others were told the directory is in use')
    await rm(join(dir, lockFileName), { force: true })
  }
})
