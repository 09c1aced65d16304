import { readdir, readFile } from 'node:fs/promises'

// proc(5): utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
const msPerTick = 10

/** A process's command name and CPU time (user + system) so far, in ms; undefined once it is gone. */
export async function statOf (pid: string): Promise<{ comm: string, cpuMs: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const close = stat.lastIndexOf(')')
    const fields = stat.slice(close + 2).split(' ')
    return { comm: stat.slice(stat.indexOf('(') + 1, close), cpuMs: (Number(fields[11]) + Number(fields[12])) * msPerTick }
  } catch {
    return undefined
  }
}

/** CPU time (user + system) process `pid` has used so far, in ms; undefined without /proc. */
export async function cpuMsOf (pid: number): Promise<number | undefined> {
  return (await statOf(String(pid)))?.cpuMs
}

/**
 * CPU time used so far by every live process named `comm` (e.g. all PostgreSQL backends), in ms.
 * Processes that exit in between are not counted, so compare runs whose connections stay open.
 */
export async function cpuMsOfCommand (comm: string): Promise<number> {
  let total = 0
  for (const pid of (await readdir('/proc').catch(() => [] as string[])).filter((d) => /^\d+$/.test(d))) {
    const s = await statOf(pid)
    if (s?.comm === comm) total += s.cpuMs
  }
  return total
}

/** Busy CPU time of the whole machine so far (every state of /proc/stat but idle and iowait), in ms. */
export async function machineBusyMs (): Promise<number> {
  try {
    const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal (guest time is already inside user).
    return (cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7]) * msPerTick
  } catch {
    return Number.NaN
  }
}

/**
 * CPU time the machine's processes have spent so far (user, nice and system of /proc/stat), in
 * ms: interrupts and steal left out, so it compares with the sum of processes' own CPU time.
 */
export async function machineProcessMs (): Promise<number> {
  try {
    const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    return (cpu[0] + cpu[1] + cpu[2]) * msPerTick
  } catch {
    return Number.NaN
  }
}

export interface CpuSpent<T> {
  result: T
  /** CPU ms of process `pid`. */
  processMs: number
  /** CPU ms of every process named `comm`. */
  commMs: number
  /** Busy CPU ms of the whole machine, everything included. */
  machineMs: number
  wallMs: number
}

/** Measures the CPU time `pid`, every process named `comm` and the whole machine spend while `fn` runs. */
export async function cpuDuring<T> (pid: number, comm: string, fn: () => Promise<T>): Promise<CpuSpent<T>> {
  const p0 = await cpuMsOf(pid) ?? Number.NaN
  const c0 = await cpuMsOfCommand(comm)
  const m0 = await machineBusyMs()
  const t0 = Date.now()
  const result = await fn()
  const wallMs = Date.now() - t0
  const p1 = await cpuMsOf(pid) ?? Number.NaN
  const c1 = await cpuMsOfCommand(comm)
  const m1 = await machineBusyMs()
  return { result, processMs: p1 - p0, commMs: c1 - c0, machineMs: m1 - m0, wallMs }
}

/** Direct children of `pid` (Linux `/proc/<pid>/task/<pid>/children`); empty without it. */
async function childrenOf (pid: number): Promise<number[]> {
  try {
    return (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter((s) => s !== '').map(Number)
  } catch {
    return []
  }
}

/** CPU time used so far by `pid` and every live descendant (e.g. nginx's master and worker), in ms. */
export async function cpuMsOfTree (pid: number): Promise<number> {
  let total = await cpuMsOf(pid) ?? Number.NaN
  for (const c of await childrenOf(pid)) total += await cpuMsOfTree(c)
  return total
}

/**
 * Scheduler times of the main thread of `pid` so far, in ms (Linux `/proc/<pid>/task/<pid>/schedstat`):
 * time it ran on a CPU, and time it was runnable but waited on a run queue. NaN without it.
 */
export async function mainThreadSchedMs (pid: number): Promise<{ runMs: number, waitMs: number }> {
  try {
    const [run, wait] = (await readFile(`/proc/${pid}/task/${pid}/schedstat`, 'utf8')).trim().split(/\s+/).map(Number)
    return { runMs: run / 1e6, waitMs: wait / 1e6 }
  } catch {
    return { runMs: Number.NaN, waitMs: Number.NaN }
  }
}
