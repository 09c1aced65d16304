import { fork, spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface Child {
  proc: ChildProcess
  pid: number
  /** The last lines the child wrote on stderr, for error messages. */
  stderrTail: () => string
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop: (graceMs?: number) => Promise<void>
}

function exited (proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null
}

function wrap (proc: ChildProcess): Child {
  const tail: string[] = []
  proc.stderr?.setEncoding('utf8')
  proc.stderr?.on('data', (chunk: string) => {
    tail.push(chunk)
    if (tail.length > 40) tail.shift()
  })
  return {
    proc,
    pid: proc.pid ?? -1,
    stderrTail: () => tail.join('').slice(-4000),
    stop: async (graceMs = 5000) => {
      if (exited(proc)) return
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
      proc.kill('SIGTERM')
      const timer = setTimeout(() => { if (!exited(proc)) proc.kill('SIGKILL') }, graceMs)
      await gone
      clearTimeout(timer)
    }
  }
}

/** Spawns `command` (stdout ignored, stderr kept for error messages); the caller decides when it is ready. */
export function spawnChild (command: string, args: string[], opts: { cwd: string, env?: NodeJS.ProcessEnv }): Child {
  return wrap(spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] }))
}

/**
 * Spawns `command` and resolves once a stdout line makes `match` return a value; rejects when
 * the child exits first or `timeoutMs` passes (and then kills it).
 */
export async function spawnUntil<T> (command: string, args: string[], opts: { cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number, match: (line: string) => T | undefined }): Promise<{ child: Child, value: T }> {
  const proc = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] })
  const child = wrap(proc)
  const lines = createInterface({ input: proc.stdout! })
  try {
    const value = await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${command} ${args.join(' ')}: no ready line within ${opts.timeoutMs} ms`)), opts.timeoutMs)
      lines.on('line', (line) => {
        const v = opts.match(line)
        if (v !== undefined) { clearTimeout(timer); resolve(v) }
      })
      proc.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${command} exited (${code ?? signal}) before it was ready`)) })
      proc.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
    return { child, value }
  } catch (err) {
    await child.stop()
    throw new Error(`${(err as Error).message}\n${child.stderrTail()}`)
  }
}

/**
 * Forks a TypeScript module (through tsx) with an IPC channel, sends it `message`, and resolves
 * with the first message it sends back. The child is left running; stop it with `stop`.
 */
export async function forkAndAsk<T> (modulePath: string, message: unknown, timeoutMs: number): Promise<{ child: Child, reply: T }> {
  const proc = fork(modulePath, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  const child = wrap(proc)
  try {
    const reply = await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${modulePath}: no reply within ${timeoutMs} ms`)), timeoutMs)
      proc.once('message', (m) => { clearTimeout(timer); resolve(m as T) })
      proc.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${modulePath} exited (${code ?? signal}) without replying`)) })
      proc.once('error', (err) => { clearTimeout(timer); reject(err) })
      proc.send(message as object)
    })
    return { child, reply }
  } catch (err) {
    await child.stop()
    throw new Error(`${(err as Error).message}\n${child.stderrTail()}`)
  }
}
