import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import type { Test } from 'tap'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
export const cliPath = fileURLToPath(new URL('../../bin/lineage.js', import.meta.url))

export interface LineageProcess {
  proc: ChildProcess
  listening: Record<string, string>
  /** Printed on a database's first start only. */
  adminToken?: string
  stdout: () => string
  stderr: () => string
  stop: () => Promise<number | null>
}

/** Runs `node --import tsx src/main.ts` (what `npm start` runs) and waits for its `{"listening":…}` line. */
export async function startLineage (env: Record<string, string>, timeoutMs = 60_000): Promise<LineageProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const listening = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line in ${timeoutMs} ms; stderr: ${err}`)), timeoutMs)
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('{"listening"'))
      if (line !== undefined) { clearTimeout(timer); resolve(JSON.parse(line).listening) }
    })
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${err}`)) })
  })
  const admin = /Admin token \(shown once, store it now\): (\S+)/.exec(out)
  return {
    proc,
    listening,
    adminToken: admin?.[1],
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      if (proc.exitCode !== null) return proc.exitCode
      proc.kill('SIGTERM')
      const [code] = await once(proc, 'exit') as [number | null]
      return code
    }
  }
}

/** Runs a command to completion (or until `opts.timeoutMs`, then SIGTERM) and returns its exit code and output. */
export async function run (cmd: string, args: string[], env: Record<string, string>, opts: { cwd?: string, timeoutMs?: number } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const proc = spawn(cmd, args, { cwd: opts.cwd ?? repoRoot, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => proc.kill('SIGTERM'), opts.timeoutMs)
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(proc, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** A fresh directory, removed when `t` ends. */
export async function tempDir (t: Test, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}
