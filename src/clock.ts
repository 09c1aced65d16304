/** Where time comes from; tests pass their own so nothing sleeps to make time pass. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now: () => number
}

export const systemClock: Clock = { now: () => Date.now() }

/** Whole seconds since the epoch, as JWT `iat`/`exp` use. */
export function epochSeconds (clock: Clock): number {
  return Math.floor(clock.now() / 1000)
}

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/

/**
 * An RFC 3339 date-time (`2026-11-30T17:00:00Z`, with an offset, or a space for the T) as a
 * Date; undefined for any other text, an impossible date, or a year before 0001.
 */
export function parseRfc3339 (v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined
  const m = rfc3339.exec(v)
  if (m === null || m[1] === '0000') return undefined
  // Date takes a day the month lacks (February 30th) as one in the next month.
  if (new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`).getUTCDate() !== Number(m[3])) return undefined
  const d = new Date(v.replace(' ', 'T'))
  return Number.isNaN(d.getTime()) ? undefined : d
}
