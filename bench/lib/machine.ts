import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'

/** What a reader needs to compare this run with another: cores, CPU model, Node. */
export async function machineFacts (): Promise<string> {
  let model = 'unknown'
  try {
    const cpuinfo = await readFile('/proc/cpuinfo', 'utf8')
    model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? model
  } catch {}
  return `machine: ${availableParallelism()} CPUs (nproc), ${model}, node ${process.version}, ${process.platform}/${process.arch}`
}

/** The PostgreSQL server's version line. */
export function serverVersion (row: { version: string }): string {
  return row.version.split(',')[0] ?? row.version
}
