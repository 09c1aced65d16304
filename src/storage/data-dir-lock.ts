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

/** The process id a lock file names, or undefined when it names none (a write cut short). */
async function holder (file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
}

/**
 * Claims `dir` for this process until the returned function releases it. PGlite is one process's
 * database and does nothing to stop a second process from opening the same files, which then
 * corrupts them; so the claim is a file, holding this process's id, that only one process can create. A file
 * left by a process that no longer runs (killed, crashed) is taken over; like PostgreSQL's
 * postmaster.pid, one naming this process or its parent is taken as left over from an earlier
 * run whose ids were reused (a container restarted).
 * @throws ConfigError naming LINEAGE_DATA_DIR when another running process holds `dir`.
 */
export async function lockDataDir (dir: string): Promise<() => Promise<void>> {
  const file = join(dir, lockFileName)
  // Written aside, then linked into place: the lock file never exists without its process id.
  const mine = `${file}.${process.pid}`
  await writeFile(mine, `${process.pid}\n`, { mode: 0o600 })
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(mine, file)
        return async () => { await rm(file, { force: true }) }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const pid = await holder(file)
      if (pid !== undefined && pid !== process.pid && pid !== process.ppid && running(pid)) {
        throw new ConfigError('LINEAGE_DATA_DIR', `${dir} is in use by process ${pid} (${file}): the embedded database is one process's; stop that process or give this one another LINEAGE_DATA_DIR`)
      }
      if (attempt > 0) throw new ConfigError('LINEAGE_DATA_DIR', `${dir}: cannot take over ${file}, left by a process that no longer runs`)
      await rm(file, { force: true })
    }
  } finally {
    await rm(mine, { force: true })
  }
}
