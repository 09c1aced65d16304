import { readdir, readFile } from 'node:fs/promises'
import { statOf } from './cpu.js'

interface Seen {
  /** The database the backend serves, '' for the server's own processes (walwriter, …). */
  database: string | undefined
  first: number
  last: number
}

/**
 * PostgreSQL's CPU time by database while something runs, for backends that come and go (a
 * pgbench run's connections end before it can be read once more). It polls /proc every
 * `intervalMs` and keeps, per backend, the CPU time at the first and the last poll that saw it;
 * a backend born after the start counts from 0. A backend that exits between two polls loses
 * at most one interval of its time. Backends are told apart by their process title
 * (`postgres: 15/main: <user> <database> <client> <state>`); the server's own processes
 * (checkpointer, walwriter, background writer, autovacuum launcher) are counted under ''.
 */
export class PostgresCpu {
  private readonly seen = new Map<string, Seen>()
  private readonly timer: NodeJS.Timeout
  private polling: Promise<void> = Promise.resolve()

  private constructor (private readonly databases: string[], intervalMs: number) {
    this.timer = setInterval(() => { this.polling = this.polling.then(async () => await this.poll(false)) }, intervalMs)
  }

  /** Starts sampling the backends of `databases` (and the server's own processes). */
  static async start (databases: string[], intervalMs = 250): Promise<PostgresCpu> {
    const s = new PostgresCpu(databases, intervalMs)
    await s.poll(true)
    return s
  }

  /** Stops and returns the CPU ms spent since the start by database ('' for the server's own processes). */
  async stop (): Promise<Map<string, number>> {
    clearInterval(this.timer)
    await this.polling
    await this.poll(false)
    const out = new Map<string, number>()
    for (const s of this.seen.values()) {
      if (s.database === undefined) continue
      out.set(s.database, (out.get(s.database) ?? 0) + s.last - s.first)
    }
    return out
  }

  private async databaseOf (pid: string): Promise<string | undefined> {
    let title: string
    try { title = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ') } catch { return undefined }
    if (!title.startsWith('postgres: ')) return undefined
    for (const d of this.databases) if (title.includes(` ${d} `)) return d
    // A client backend names a database and a client address; the server's own processes do not.
    return /\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]/.test(title) ? undefined : ''
  }

  private async poll (initial: boolean): Promise<void> {
    const pids = (await readdir('/proc').catch(() => [] as string[])).filter((d) => /^\d+$/.test(d))
    for (const pid of pids) {
      const known = this.seen.get(pid)
      if (known !== undefined && known.database === undefined) continue
      const c = await statOf(pid)
      if (c === undefined || c.comm !== 'postgres') continue
      if (known !== undefined) { known.last = c.cpuMs; continue }
      const database = await this.databaseOf(pid)
      // A backend just forked may not have set its title yet: look again at the next poll.
      if (database === undefined && !initial) continue
      this.seen.set(pid, { database, first: initial ? c.cpuMs : 0, last: c.cpuMs })
    }
  }
}
