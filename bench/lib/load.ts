import { fileURLToPath } from 'node:url'
import { forkAndAsk } from './child.js'
import type { LoadResult, LoadSpec } from './load-spec.js'

const generator = fileURLToPath(new URL('./load-generator.ts', import.meta.url))

/** Runs `spec` in a separate load-generator process and returns what it measured. */
export async function runLoad (spec: LoadSpec): Promise<LoadResult> {
  const timeoutMs = spec.warmupMs + 600_000
  const { child, reply } = await forkAndAsk<LoadResult>(generator, spec, timeoutMs)
  await child.stop()
  return reply
}
