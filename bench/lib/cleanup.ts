/** Undo steps run last-in first-out, on success, on error and on Ctrl-C alike. */
export type Defer = (what: string, fn: () => Promise<void>) => void

/**
 * Runs `main` with a `defer` that registers cleanup steps (stop a child, drop a database).
 * Every step runs even when another fails; SIGINT/SIGTERM run them too and exit 130.
 */
export async function withCleanup (main: (defer: Defer) => Promise<void>): Promise<void> {
  const steps: Array<{ what: string, fn: () => Promise<void> }> = []
  let ran: Promise<void> | undefined
  const cleanup = async (): Promise<void> => {
    ran ??= (async () => {
      for (const s of steps.reverse()) {
        try { await s.fn() } catch (err) { process.stderr.write(`cleanup: ${s.what} failed: ${(err as Error).message}\n`) }
      }
    })()
    await ran
  }
  const onSignal = (): void => { cleanup().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await main((what, fn) => { steps.push({ what, fn }) })
  } finally {
    await cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
