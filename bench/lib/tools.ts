import { spawnSync } from 'node:child_process'
import { connect, createServer } from 'node:net'

/**
 * The path of each tool in `names` (looked up on PATH, then in /usr/sbin and /usr/bin, where
 * Debian puts nginx); exits the process with status 2 and an install hint when one is missing.
 * Each is probed by running it with `versionFlag` (`-V` for tools whose `-v` does work).
 */
export function requireTools (names: string[], hint: string, versionFlag = '-v'): Record<string, string> {
  const found: Record<string, string> = {}
  const missing: string[] = []
  for (const name of names) {
    const path = [name, `/usr/sbin/${name}`, `/usr/bin/${name}`].find((p) => spawnSync(p, [versionFlag], { stdio: 'ignore' }).error === undefined)
    if (path === undefined) missing.push(name)
    else found[name] = path
  }
  if (missing.length > 0) {
    process.stderr.write(`This benchmark needs ${names.join(' and ')}; not found: ${missing.join(', ')}. Install with\n  ${hint}\n`)
    process.exit(2)
  }
  return found
}

/** The first line a tool prints for `versionFlag` (nginx writes it on stderr, wrk on stdout). */
export function toolVersion (path: string, versionFlag = '-v'): string {
  const r = spawnSync(path, [versionFlag], { encoding: 'utf8' })
  return `${r.stdout}${r.stderr}`.split('\n')[0].trim()
}

/** A TCP port free on 127.0.0.1 right now, for a server that cannot listen on port 0 (nginx). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` right now. */
export async function accepting (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}
