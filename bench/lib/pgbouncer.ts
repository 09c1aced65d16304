import { spawnSync } from 'node:child_process'
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnChild, type Child } from './child.js'
import { accepting } from './tools.js'

export interface PgBouncerDatabase {
  /** The name clients connect to. */
  name: string
  /** The real database: `postgres://user@host:port/db` (no password: the server trusts it). */
  url: string
  poolMode: 'session' | 'transaction'
  poolSize: number
}

export interface PgBouncer {
  port: number
  /** The pgbouncer process itself (setpriv execs it), for its CPU time. */
  pid: number
  child: Child
  stop: () => Promise<void>
}

// PgBouncer refuses to run as root; Debian runs it as postgres.
const runAs = 'postgres'

function idsOf (user: string): { uid: number, gid: number } {
  const uid = Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim())
  const gid = Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim())
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0) throw new Error(`pgbouncer runs as ${user} when started by root, and there is no such user`)
  return { uid, gid }
}

function ini (dir: string, port: number, databases: PgBouncerDatabase[], users: string[]): string {
  const dbs = databases.map((d) => {
    const u = new URL(d.url)
    return `${d.name} = host=${u.hostname} port=${u.port || '5432'} dbname=${u.pathname.slice(1)} user=${decodeURIComponent(u.username)} pool_mode=${d.poolMode} pool_size=${d.poolSize}`
  })
  return `[databases]
${dbs.join('\n')}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, 'userlist.txt')}
pool_mode = session
max_client_conn = 500
default_pool_size = 20
server_idle_timeout = 5
server_tls_sslmode = disable
client_tls_sslmode = disable
logfile = ${join(dir, 'pgbouncer.log')}
pidfile = ${join(dir, 'pgbouncer.pid')}
`
}

/**
 * Starts Debian's pgbouncer in the foreground on 127.0.0.1:`port` with `databases` (trust
 * authentication for `users`, no TLS), its config and log in a temp dir of its own, and
 * resolves once it accepts connections. Started by root, it runs as `postgres` (through
 * `setpriv`, which execs it, so the pid is pgbouncer's).
 */
export async function startPgBouncer (pgbouncer: string, port: number, databases: PgBouncerDatabase[], users: string[]): Promise<PgBouncer> {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-bench-pgbouncer-'))
  const asRoot = process.getuid?.() === 0
  try {
    await writeFile(join(dir, 'pgbouncer.ini'), ini(dir, port, databases, users))
    await writeFile(join(dir, 'userlist.txt'), users.map((u) => `"${u}" ""\n`).join(''))
    let command = pgbouncer
    let args = [join(dir, 'pgbouncer.ini')]
    if (asRoot) {
      const { uid, gid } = idsOf(runAs)
      await chmod(dir, 0o755)
      for (const f of ['', 'pgbouncer.ini', 'userlist.txt']) await chown(join(dir, f), uid, gid)
      command = 'setpriv'
      args = [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', pgbouncer, ...args]
    }
    const child = spawnChild(command, args, { cwd: dir })
    const deadline = Date.now() + 10_000
    while (!(await accepting(port))) {
      if (child.proc.exitCode !== null || Date.now() > deadline) {
        await child.stop()
        throw new Error(`pgbouncer did not start listening on ${port}:\n${child.stderrTail()}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return { port, pid: child.pid, child, stop: async () => { await child.stop(); await rm(dir, { recursive: true, force: true }) } }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}
