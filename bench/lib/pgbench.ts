import { runMeasured } from './measured-run.js'

export type PgbenchMode = 'simple' | 'extended' | 'prepared'

export interface PgbenchOptions {
  host: string
  port: number
  user: string
  database: string
  /** Sent as PGPASSWORD; undefined for none. */
  password?: string
  clients: number
  threads: number
  seconds: number
  mode: PgbenchMode
  /** The built-in select-only script (`-S`) instead of the TPC-B-like one. */
  selectOnly: boolean
}

export interface PgbenchResult {
  /** Transactions per second, without the initial connection time. */
  tps: number
  latencyMs: number
  transactions: number
  /** Failed transactions (pgbench 15 counts serialization and deadlock failures). */
  failed: number
  /** Clients that aborted, from pgbench's messages on stderr. */
  aborted: number
  /** CPU time pgbench itself used, in ms. */
  cpuMs: number
  stderr: string
  raw: string
}

/** Reads pgbench 15's report. */
export function parsePgbench (raw: string, stderr: string): Omit<PgbenchResult, 'cpuMs'> {
  const need = (re: RegExp, what: string): string => {
    const m = re.exec(raw)
    if (m === null) throw new Error(`pgbench: no ${what} in its output:\n${raw}\n${stderr}`)
    return m[1]
  }
  return {
    tps: Number(need(/^tps = ([\d.]+) \(without initial connection time\)$/m, 'tps')),
    latencyMs: Number(need(/^latency average = ([\d.]+) ms$/m, 'latency average')),
    transactions: Number(need(/^number of transactions actually processed: (\d+)/m, 'transaction count')),
    failed: Number(/^number of failed transactions: (\d+)/m.exec(raw)?.[1] ?? 0),
    aborted: (stderr.match(/^pgbench: error: client \d+ aborted/gm) ?? []).length,
    stderr,
    raw
  }
}

/** The pgbench command line of `o`, without the connection options; for printing. */
export function pgbenchArgs (o: Pick<PgbenchOptions, 'clients' | 'threads' | 'seconds' | 'mode' | 'selectOnly'>): string[] {
  return [...(o.selectOnly ? ['-S'] : []), '-n', '-c', String(o.clients), '-j', String(o.threads), '-T', String(o.seconds), '-M', o.mode]
}

/**
 * Runs pgbench (`-n`, no vacuum: the tables belong to a database this process may not own) in
 * its own process and parses its report. Rejects when pgbench prints no report (it could not
 * connect, or every client aborted); a run in which some clients aborted resolves with
 * `aborted` set, since its numbers are still worth showing next to the error.
 */
export async function runPgbench (pgbench: string, o: PgbenchOptions): Promise<PgbenchResult> {
  const args = ['-h', o.host, '-p', String(o.port), '-U', o.user, ...pgbenchArgs(o), o.database]
  const env: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: o.password, PGSSLMODE: 'disable' }
  if (o.password === undefined) delete env.PGPASSWORD
  const r = await runMeasured(pgbench, args, env)
  if (!/^tps = /m.test(r.stdout)) throw new Error(`pgbench ${args.join(' ')} exited with ${r.code}:\n${r.stderr}${r.stdout}`)
  return { ...parsePgbench(r.stdout, r.stderr), cpuMs: r.cpuMs }
}
