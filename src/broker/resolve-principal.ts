import { Conflict } from '../errors.js'
import type { Queryable } from '../storage/db.js'

// How each kind of reference ranks the principals it may name: lower first.
const ranks = {
  // An address names an email before anything: a SCIM id is a user's first userName, which a rename leaves behind.
  address: 'CASE WHEN email = $1 THEN 0 WHEN lower(email) = lower($1) THEN 1 WHEN external_id = $1 THEN 2 ELSE 3 END',
  name: 'CASE WHEN id = $1 THEN 0 WHEN external_id = $1 THEN 1 WHEN email = $1 THEN 2 ELSE 3 END',
  email: 'CASE WHEN email = $1 THEN 0 WHEN lower(email) = lower($1) THEN 1 END',
  external: 'CASE WHEN external_id = $1 THEN 0 WHEN id = $1 THEN 1 WHEN email = $1 THEN 2 ELSE 3 END'
}

/**
 * The principal an IdP or HR system means by `ref`. `as`: what `ref` is, when the sender says
 * (`email`: only an email; `external`: the IdP's own id for the user, then Lineage's id, then
 * an email); otherwise an address is an email first and anything else an id first. The closest match wins; two alike
 * name no one.
 * @returns the principal's id, or undefined.
 * @throws Conflict when two principals match alike
 */
export async function resolvePrincipal (q: Queryable, ref: string, as?: 'email' | 'external'): Promise<string | undefined> {
  const rank = ranks[as ?? (ref.includes('@') ? 'address' : 'name')]
  const { rows } = await q.query<{ id: string, rank: number | null }>(
    `SELECT id, ${rank} AS rank FROM principals WHERE id = $1 OR lower(email) = lower($1) OR external_id = $1 ORDER BY rank LIMIT 3`, [ref])
  const matches = rows.filter((r) => r.rank !== null)
  if (matches.length > 1 && matches[0].rank === matches[1].rank) throw new Conflict(`${ref.slice(0, 200)} matches more than one principal`)
  return matches[0]?.id
}
