/** A step back of the clock smaller than this is taken as jitter between two reads of it. */
export const clockStepMs = 1000

/**
 * Why a live-status view last proven current at `freshAt` cannot be trusted at `now` (both
 * epoch ms), or undefined when it can: older than `maxStalenessMs`, or read "in the future",
 * which means the clock went back and its age cannot be told until the next read.
 */
export function viewStaleness (freshAt: number, maxStalenessMs: number, now: number): string | undefined {
  const age = now - freshAt
  if (age < -clockStepMs) return `the clock went back ${-age} ms since the live-status view was read; refusing until it is read again`
  return age > maxStalenessMs ? `the live-status view is ${age} ms old (limit ${maxStalenessMs} ms); refusing until it catches up` : undefined
}
