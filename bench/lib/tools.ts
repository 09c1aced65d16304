import { spawnSync } from 'node:child_process'
import { createServer } from 'node:net'

/**
 * The path of each tool in `names` (looked up on PATH, then in /usr/sbin and /usr/bin, where
 * Debian puts nginx); exits the process with status 2 and an install hint when one is missing.
 */
export function requireTools (names: string[], hint: string): Record<string, string> {
  const found: Record<string, string> = {}
  const missing: string[] = []
  for (const name of names) {
    const path = [name, `/usr/sbin/${name}`, `/usr/bin/${name}`].find((p) => spawnSync(p, ['-v'], { stdio: 'ignore' }).error === undefined)
    if (path === undefined) missing.push(name)
    else found[name] = path
  }
  if (missing.length > 0) {
    process.stderr.write(`This benchmark needs ${names.join(' and ')}; not found: ${missing.join(', ')}. Install with\n  ${hint}\n`)
    process.exit(2)
  }
  return found
}

/** The first line a tool prints for `-v` (nginx writes it on stderr, wrk on stdout). */
export function toolVersion (path: string): string {
  const r = spawnSync(path, ['-v'], { encoding: 'utf8' })
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
