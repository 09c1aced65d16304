/** Latency summary of one measured phase, in milliseconds. */
export interface Latency {
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

/** Nearest-rank percentile of an ascending array (`q` in 0..1). */
export function percentile (sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

/** Summarizes the first `n` samples of `samples`. */
export function summarize (samples: Float64Array, n: number): Latency {
  const sorted = samples.slice(0, n).sort()
  let sum = 0
  for (const x of sorted) sum += x
  return { p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted[n - 1] ?? Number.NaN, mean: sum / n }
}

/** The median of a few numbers. */
export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
