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

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/

/**
 * An RFC 3339 date-time (`2026-11-30T17:00:00Z`, with an offset, or a space for the T) as a
 * Date; undefined for any other text, an impossible date or time (hour 24 among them), or a
 * year before 0001. A leap second (RFC 3339 §5.6, `23:59:60Z` at the end of a month, §5.7),
 * which Date cannot hold, is the second before it (`23:59:59Z`), where clocks that repeat or
 * smear it stamp what happens during it: a lower bound then leaves none of that out, and an end
 * comes no later than asked.
 */
export function parseRfc3339 (v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined
  const m = rfc3339.exec(v)
  if (m === null || m[1] === '0000') return undefined
  // Date takes a day the month lacks (February 30th) as one in the next month.
  if (new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`).getUTCDate() !== Number(m[3])) return undefined
  // And 24:00 as the next day's midnight, which RFC 3339 spells only as 00:00.
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 60 || (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59))) return undefined
  const leap = m[6] === '60'
  const d = new Date((leap ? `${v.slice(0, 17)}59${v.slice(19)}` : v).replace(' ', 'T'))
  if (Number.isNaN(d.getTime())) return undefined
  if (leap && !(d.getUTCHours() === 23 && d.getUTCMinutes() === 59 && new Date(d.getTime() + 1000).getUTCDate() === 1)) return undefined
  return d
}
