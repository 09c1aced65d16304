/**
 * A positive integer from the environment variable `name`, or `fallback` when unset.
 * @throws TypeError naming the variable when it is set to anything else.
 */
export function envInt (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^[1-9]\d*$/.test(raw)) throw new TypeError(`${name} must be a positive integer, got "${raw}"`)
  return Number(raw)
}

/** Node options that make the Lineage process write a CPU profile into `BENCH_CPU_PROF` (a directory). */
export function profileArgs (): string[] {
  const dir = process.env.BENCH_CPU_PROF
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`]
}
