import { appendChange, principalChange } from '../lineage/changes.js'
import type { PrincipalStatus } from '../lineage/live-status.js'
import type { BrokerContext } from './context.js'
import { cutOffInstant, newestRoot } from './cut-off-instant.js'
import { columns, effectiveStatus, mustLoad, present, type FullRow, type PrincipalView } from './principal-view.js'

/**
 * The `inbound_events` source that marks a principal deleted through SCIM (`src/inputs/scim/users.ts`):
 * while the mark stands and the principal is not active, SCIM answers 404 for it. Reinstating it removes the mark.
 */
export const scimDeletedSource = 'scim-delete'

/**
 * Sets a principal's status. Leaving `active` is one row update and one change-log row, however
 * many tokens descend from the principal (DESIGN.md): every chain that names it fails the check.
 * Returning to `active` keeps `cut_off_at`, so chains cut off before stay cut off.
 * @returns the principal and how many live tokens the change cut off; `duplicate` when nothing was
 *   done (a repeated event, or a SCIM reinstatement of a principal another source holds out).
 * @throws NotFound
 */
export async function setStatus (ctx: BrokerContext, id: string, status: PrincipalStatus, opts: StatusOptions = {}): Promise<{ principal: PrincipalView, revoked: number, duplicate: boolean }> {
  const now = ctx.clock.now()
  const reason = opts.reason
  const { row, wasLive, since, duplicate } = await ctx.db.tx(async (q) => {
    const p = await mustLoad(q, id, true)
    if (opts.event !== undefined) {
      const seen = await q.query('INSERT INTO inbound_events (source, event_id, principal) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [opts.event.source, opts.event.id, id])
      if (seen.rowCount === 0) return { row: p, wasLive: false, since: 0, duplicate: true }
    }
    const asked = opts.event?.source ?? opts.source ?? 'admin'
    // SCIM's active:true undoes only what SCIM did (users.ts), checked again here under the row lock:
    // an offboarding by another source that committed after SCIM read the row stands, and nothing is done.
    if (status === 'active' && asked === 'scim' && p.status !== 'active' && p.status_source !== 'scim') return { row: p, wasLive: false, since: 0, duplicate: true }
    const wasLive = effectiveStatus(p, now) === 'active'
    const since = p.cut_off_at?.getTime() ?? 0
    // A principal SCIM made inactive that another source also puts out is held by that source:
    // SCIM's active:true undoes only what SCIM alone did (users.ts).
    const held = status !== 'active' && p.status !== 'active' && p.status_source !== 'scim' && p.status_source !== null
    const source = held ? p.status_source as string : asked
    // A suspension arriving after an offboarding does not soften it.
    if (p.status === status || (p.status === 'offboarded' && status === 'suspended')) {
      if (status !== 'active' && p.status_source === 'scim' && asked !== 'scim') await q.query('UPDATE principals SET status_source = $2 WHERE id = $1', [id, asked])
      return { row: p, wasLive: false, since, duplicate: false }
    }
    // Its services are locked before the change log's head, as a service's own status change or new
    // sponsor locks it before the head: taking them after would deadlock with those (40P01, a 500).
    if (status === 'offboarded' && p.kind === 'human') await q.query("SELECT 1 FROM principals WHERE sponsor = $1 AND kind = 'service' AND NOT sponsor_lapsed FOR UPDATE", [id])
    // Returning to active brings back no chain the tree holds: each was rooted before the cut-off or, racing it, while the principal was out.
    const cutOff = status === 'active'
      ? (p.cut_off_at === null ? null : new Date(Math.max(p.cut_off_at.getTime(), await newestRoot(q, id, now))))
      : await cutOffInstant(q, id, now)
    const { rows } = await q.query<FullRow>(
      `UPDATE principals SET status = $2, cut_off_at = $3, status_source = $4, updated_at = now() WHERE id = $1 RETURNING ${columns}`, [id, status, cutOff, source])
    await appendChange(q, principalChange(rows[0]))
    // A principal that comes back is no longer one SCIM deleted: the identity provider may manage it anew,
    // and a later offboarding (a deactivation, HR's) leaves it a User rather than deleting it again.
    if (status === 'active') await q.query('DELETE FROM inbound_events WHERE source = $1 AND event_id = $2', [scimDeletedSource, id])
    // Its services stay unusable until an admin gives each a sponsor, even if it comes back.
    if (status === 'offboarded' && p.kind === 'human') {
      const { rows: services } = await q.query<FullRow>(
        `UPDATE principals SET sponsor_lapsed = true, updated_at = now() WHERE sponsor = $1 AND kind = 'service' AND NOT sponsor_lapsed RETURNING ${columns}`, [id])
      for (const s of services) await appendChange(q, principalChange(s))
    }
    return { row: rows[0], wasLive, since, duplicate: false }
  })
  if (duplicate) {
    await ctx.sync.afterWrite()
    return { principal: await present(ctx.db, row, now), revoked: 0, duplicate }
  }
  // The change has taken effect: it is recorded whatever happens to the reads that follow
  // (`revoked` null when the count failed).
  let revoked: number | undefined
  try {
    await ctx.sync.afterWrite()
    // Counting is for people and runs after the cut-off has taken effect.
    revoked = status !== 'active' && wasLive && opts.count !== false ? await countLiveNaming(ctx, id, now, since) : 0
  } finally {
    ctx.log.info({ principal: id, status, reason, source: opts.event?.source, revoked }, 'principal status changed')
    ctx.audit.record({ at: now, kind: 'principal.status', principals: [id], detail: { status, reason: reason ?? null, revoked: revoked ?? null, ...(opts.event !== undefined ? { source: opts.event.source, event: opts.event.id } : {}) } })
  }
  return { principal: await present(ctx.db, row, now), revoked, duplicate }
}

export interface StatusOptions {
  reason?: string
  /** Who sets it (default: `admin`; an input event's own source when `event` is given). */
  source?: string
  /** The input event that asked for the change: recorded in the same transaction, acted on once. */
  event?: { source: string, id: string }
  /** Whether to count the live tokens cut off (for people; inputs answer without it). */
  count?: boolean
}

/**
 * Live tokens whose lineage names `id` (as subject, sponsor, or through an actor token), rooted after `since`, with no
 * revoked ancestor or actor token. Reads three index ranges, then walks only the subtrees that were revoked
 * (known from the live-status view): its cost follows revoked tokens, not live ones.
 */
async function countLiveNaming (ctx: BrokerContext, id: string, nowMs: number, since: number): Promise<number> {
  const now = Math.floor(nowMs / 1000)
  const { rows: [all] } = await ctx.db.query<{ n: number }>(
    `SELECT (SELECT count(*) FROM tokens WHERE sub = $1 AND exp > $2 AND rooted_at > $3)
          + (SELECT count(*) FROM tokens WHERE sponsor = $1 AND exp > $2 AND rooted_at > $3)
          + (SELECT count(*) FROM tokens WHERE acting @> ARRAY[$1] AND sub <> $1 AND sponsor IS DISTINCT FROM $1 AND exp > $2 AND rooted_at > $3) AS n`, [id, now, since])
  const revoked = ctx.view.revokedJtis()
  if (revoked.length === 0) return all.n
  // A subject or a sponsor is named by every descendant, so the subtrees below revoked tokens
  // that name it hold every one cut off through an ancestor. A token that names it only through
  // an actor token may descend from one that does not: those, and the tokens a revoked actor
  // token cut off, are found by their own index ranges.
  const { rows: [dead] } = await ctx.db.query<{ n: number }>(
    `WITH RECURSIVE top AS (
       SELECT jti, exp FROM tokens
        WHERE jti = ANY ($4::text[]) AND (sub = $1 OR sponsor = $1) AND rooted_at > $3 AND NOT (ancestors && $4::text[])
     ), sub AS (
       SELECT jti, exp FROM top
       UNION ALL
       SELECT t.jti, t.exp FROM tokens t JOIN sub ON t.parent = sub.jti
     ) SELECT (SELECT count(*) FROM sub WHERE exp > $2)
            + (SELECT count(*) FROM tokens WHERE actor_tokens && $4::text[] AND (sub = $1 OR sponsor = $1) AND exp > $2 AND rooted_at > $3
                 AND NOT (jti = ANY ($4::text[]) OR ancestors && $4::text[]))
            + (SELECT count(*) FROM tokens WHERE acting @> ARRAY[$1] AND sub <> $1 AND sponsor IS DISTINCT FROM $1 AND exp > $2 AND rooted_at > $3
                 AND (jti = ANY ($4::text[]) OR ancestors && $4::text[] OR actor_tokens && $4::text[])) AS n`, [id, now, since, revoked])
  return all.n - dead.n
}
