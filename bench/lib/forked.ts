/**
 * The child side of `forkAndAsk` (child.ts) for a server: runs `start` with the parent's first
 * message and sends back what it resolves to; on failure writes the stack, named `name`, and
 * exits 1. SIGTERM ends the process.
 */
export function serveForParent<C, R extends object> (name: string, start: (config: C) => Promise<R>): void {
  process.once('message', (m) => {
    start(m as C).then(
      (reply) => { process.send?.(reply) },
      (err) => { process.stderr.write(`${name}: ${(err as Error).stack ?? String(err)}\n`); process.exit(1) }
    )
  })
  process.once('SIGTERM', () => process.exit(0))
}
