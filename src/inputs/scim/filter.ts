import { ScimError } from './errors.js'

/** The one filter form Lineage answers: equality on `userName` or `externalId`. */
export interface UserFilter {
  attribute: 'userName' | 'externalId'
  value: string
}

/** A `GET /Users` query: an optional filter and a page. */
export interface ListQuery {
  filter?: UserFilter
  /** 1-based. */
  startIndex: number
  count: number
}

/** Most Users one page holds (ServiceProviderConfig `filter.maxResults`). */
export const maxResults = 200
const defaultCount = 100

const eqFilter = /^\s*((?:urn:ietf:params:scim:schemas:core:2\.0:User:)?[A-Za-z]+)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$/i

/**
 * `attr eq "value"` for `userName` (what Entra's test connection and Okta's import send) and
 * `externalId`. Attribute names and operators are case-insensitive (RFC 7644 §3.4.2.2).
 * @throws ScimError invalidFilter for any other filter
 */
export function parseFilter (filter: string): UserFilter {
  const m = filter.length <= 1024 ? eqFilter.exec(filter) : null
  if (m === null) throw new ScimError(400, 'invalidFilter', 'only userName eq "…" and externalId eq "…" filters are supported')
  const attribute = m[1].toLowerCase().split(':').pop()
  let value: unknown
  try { value = JSON.parse(m[2]) } catch { throw new ScimError(400, 'invalidFilter', 'the filter value is not a valid string') }
  if (attribute === 'username') return { attribute: 'userName', value: value as string }
  if (attribute === 'externalid') return { attribute: 'externalId', value: value as string }
  throw new ScimError(400, 'invalidFilter', 'only userName eq "…" and externalId eq "…" filters are supported')
}

/** An integer of any size, held to what an OFFSET can take: past the last page is past it, however far. */
function integer (name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !/^-?\d{1,1000}$/.test(v)) throw new ScimError(400, 'invalidValue', `${name} must be an integer`)
  return Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, Number(v)))
}

/**
 * The query of `GET /Users`. RFC 7644 §3.4.2.4: a `startIndex` below 1 means 1, a negative
 * `count` means 0; Lineage caps `count` at 200. `attributes` and sorting are not supported
 * and are ignored.
 * @throws ScimError invalidFilter, invalidValue
 */
export function parseListQuery (query: Record<string, unknown>): ListQuery {
  const f = query.filter
  if (f !== undefined && typeof f !== 'string') throw new ScimError(400, 'invalidFilter', 'give one filter')
  const startIndex = Math.max(1, integer('startIndex', query.startIndex) ?? 1)
  const count = Math.min(maxResults, Math.max(0, integer('count', query.count) ?? defaultCount))
  return { ...(f === undefined ? {} : { filter: parseFilter(f) }), startIndex, count }
}
