import { link, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'

/** The lock file in the data directory: the id of the one process whose database it is. */
export const lockFileName = 'lineage.pid'

/** Whether process `pid` runs: signal 0 checks without sending anything (EPERM: it runs as another user). */
function running (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A lock file's text, or undefined when there is no such file. */
async function contents (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** The process id a lock file's text names, or undefined when it names none (a write cut short). */
function holder (text: string | undefined): number | undefined {
  const pid = Number(text?.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/** Links `mine` into place as `file`: false when `file` exists already. */
async function claim (mine: string, file: string): Promise<boolean> {
  try {
    await link(mine, file)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  }
}

/** Whether `pid` is a process other than this one and its parent, and runs. */
function other (pid: number | undefined): pid is number {
  return pid !== undefined && pid !== process.pid && pid !== process.ppid && running(pid)
}

/**
 * Claims `dir` for this process until the returned function releases it. PGlite is one process's
 * database and does nothing to stop a second process from opening the same files, which then
 * corrupts them; so the claim is a file, holding this process's id, that only one process can create. A file
 * left by a process that no longer runs (killed, crashed) is taken over; like PostgreSQL's
 * postmaster.pid, one naming this process or its parent is taken as left over from an earlier
 * run whose ids were reused (a container restarted).
 *
 * Taking over is claimed too (`lineage.pid.takeover`): of two processes that find the same
 * left-over file, the second would otherwise remove the file the first had just put in its place,
 * and both would run on the same files. A takeover claim left by a process that died taking over
 * is removed; two processes doing that at the same instant are not told apart.
 * @throws ConfigError naming LINEAGE_DATA_DIR when another running process holds `dir`.
 */
export async function lockDataDir (dir: string): Promise<() => Promise<void>> {
  const file = join(dir, lockFileName)
  const takeover = `${file}.takeover`
  // Written aside, then linked into place: the lock file never exists without its process id.
  const mine = `${file}.${process.pid}`
  await writeFile(mine, `${process.pid}\n`, { mode: 0o600 })
  const inUse = (pid: number): ConfigError => new ConfigError('LINEAGE_DATA_DIR', `${dir} is in use by process ${pid} (${file}): the embedded database is one process's; stop that process or give this one another LINEAGE_DATA_DIR`)
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      if (await claim(mine, file)) return async () => { await rm(file, { force: true }) }
      const left = await contents(file)
      // Released meanwhile: claimed again.
      if (left === undefined) continue
      const pid = holder(left)
      if (other(pid)) throw inUse(pid)
      if (await claim(mine, takeover)) {
        try {
          // Removed only while it is still the file found left over: no one else can replace an
          // existing file or remove it (that takes this claim) before this does.
          if (await contents(file) === left) await rm(file, { force: true })
        } finally {
          await rm(takeover, { force: true })
        }
        continue
      }
      const taking = holder(await contents(takeover))
      if (other(taking)) throw inUse(taking)
      // Not released (gone now, which says nothing) but left by a process that no longer runs.
      if (taking !== undefined) await rm(takeover, { force: true })
    }
    throw new ConfigError('LINEAGE_DATA_DIR', `${dir}: cannot take over ${file}, left by a process that no longer runs`)
  } finally {
    await rm(mine, { force: true })
  }
}
