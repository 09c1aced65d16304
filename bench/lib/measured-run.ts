import { spawn } from 'node:child_process'

export interface MeasuredRun {
  code: number | null
  stdout: string
  stderr: string
  /** CPU time (user + system) the command used, in ms; NaN without /proc. */
  cpuMs: number
}

// The command runs under a shell that, once it has exited, prints the shell's own /proc stat:
// fields 16 and 17 (cutime, cstime) are the CPU time of the children it waited for, that is
// the command's (proc(5)).
const wrapper = 'cmd="$1"; shift; "$cmd" "$@"; s=$?; echo; cat /proc/$$/stat 2>/dev/null; exit $s'

function childCpuMs (out: string): { stdout: string, cpuMs: number } {
  const trimmed = out.trimEnd()
  const cut = trimmed.lastIndexOf('\n')
  const last = trimmed.slice(cut + 1)
  const close = last.lastIndexOf(')')
  if (!/^\d+ \(/.test(last) || close < 0) return { stdout: out, cpuMs: Number.NaN }
  const fields = last.slice(close + 2).split(' ')
  return { stdout: trimmed.slice(0, Math.max(0, cut)), cpuMs: (Number(fields[13]) + Number(fields[14])) * 10 }
}

/**
 * Runs `command` with `args` in its own process group (so that it goes with the shell if this
 * process exits mid-run, e.g. on Ctrl-C) and resolves when it exits, with what it printed and
 * the CPU time it used. A non-zero exit is returned, not thrown.
 */
export async function runMeasured (command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<MeasuredRun> {
  const proc = spawn('sh', ['-c', wrapper, 'sh', command, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env })
  const killGroup = (): void => { if (proc.pid !== undefined) try { process.kill(-proc.pid, 'SIGTERM') } catch {} }
  process.once('exit', killGroup)
  let out = ''
  let err = ''
  proc.stdout.setEncoding('utf8').on('data', (c: string) => { out += c })
  proc.stderr.setEncoding('utf8').on('data', (c: string) => { err += c })
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('close', (c) => resolve(c))
  }).finally(() => process.off('exit', killGroup))
  const { stdout, cpuMs } = childCpuMs(out)
  return { code, stdout, stderr: err, cpuMs }
}
