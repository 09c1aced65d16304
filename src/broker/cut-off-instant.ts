import { oldestAcceptedExp } from '../lineage/verify.js'
import type { Queryable } from '../storage/db.js'

/**
 * The `rooted_at` (epoch ms) of the newest unexpired chain the tree holds that names `id`, or 0.
 * Each broker stamps the roots it issues with its own clock, so a cut-off stamped with this
 * broker's clock alone would spare the chains a broker whose clock runs ahead rooted before it.
 * A chain names its root's subject and sponsor, and no token outlives its root: for those, the
 * principal's live root tokens tell, however many tokens descend from them.
 */
export async function newestRoot (q: Queryable, id: string, nowMs: number): Promise<number> {
  const { rows } = await q.query<{ at: number | null }>(
    `SELECT greatest((SELECT max(rooted_at) FROM tokens WHERE sub = $1 AND exp >= $2 AND depth = 0),
                     (SELECT max(rooted_at) FROM tokens WHERE sponsor = $1 AND exp >= $2 AND depth = 0),
                     (SELECT max(rooted_at) FROM tokens WHERE acting @> ARRAY[$1] AND exp >= $2)) AS at`, [id, oldestAcceptedExp(nowMs)])
  return rows[0]?.at ?? 0
}

/** The instant a cut-off of `id` made at `nowMs` takes effect: now, or later if a chain naming it was rooted later. */
export async function cutOffInstant (q: Queryable, id: string, nowMs: number): Promise<Date> {
  return new Date(Math.max(nowMs, await newestRoot(q, id, nowMs)))
}
