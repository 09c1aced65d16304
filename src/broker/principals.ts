import { parseRfc3339 } from '../clock.js'
import { Conflict, InvalidInput, NotFound } from '../errors.js'
import { appendChange, principalChange, type PrincipalRow } from '../lineage/changes.js'
import type { PrincipalStatus } from '../lineage/live-status.js'
import { intersect, scopeProblem } from '../lineage/scopes.js'
import { oldestAcceptedExp } from '../lineage/verify.js'
import { LockKeys, type Queryable } from '../storage/db.js'
import type { BrokerContext } from './context.js'

interface FullRow extends PrincipalRow {
  email: string | null
  status_source: string | null
  grants: string[]
  created_at: Date
  updated_at: Date
}

/** A principal as the admin API shows it. */
export interface PrincipalView {
  id: string
  kind: 'human' | 'service'
  email: string | null
  sponsor: string | null
  /** Effective status: a human past `ends_at` counts as offboarded. */
  status: PrincipalStatus
  ends_at: string | null
  grants: string[]
  /** Grants intersected with the sponsor's, and empty while the sponsor is not active. */
  usable_scopes: string[]
  created_at: string
  updated_at: string
}

export interface NewPrincipal {
  id: string
  kind: 'human' | 'service'
  email?: string | null
  sponsor?: string | null
  ends_at?: string | null
  grants?: string[]
}

/**
 * The `inbound_events` source that marks a principal deleted through SCIM (`src/inputs/scim/users.ts`):
 * while the mark stands and the principal is not active, SCIM answers 404 for it. Reinstating it removes the mark.
 */
export const scimDeletedSource = 'scim-delete'

const columns = 'id, kind, email, sponsor, status, ends_at, cut_off_at, sponsor_lapsed, status_source, grants, created_at, updated_at'
const idShape = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/

function effectiveStatus (p: PrincipalRow, nowMs: number): PrincipalStatus {
  if (p.status === 'active' && p.ends_at !== null && p.ends_at.getTime() <= nowMs) return 'offboarded'
  return p.status
}

async function load (q: Queryable, id: string, lock = false): Promise<FullRow | undefined> {
  const { rows } = await q.query<FullRow>(`SELECT ${columns} FROM principals WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])
  return rows[0]
}

async function mustLoad (q: Queryable, id: string, lock = false): Promise<FullRow> {
  const p = await load(q, id, lock)
  if (p === undefined) throw new NotFound(`principal ${id} not found`)
  return p
}

/**
 * The `rooted_at` (epoch ms) of the newest unexpired chain the tree holds that names `id`, or 0.
 * Each broker stamps the roots it issues with its own clock, so a cut-off stamped with this
 * broker's clock alone would spare the chains a broker whose clock runs ahead rooted before it.
 * A chain names its root's subject and sponsor, and no token outlives its root: for those, the
 * principal's live root tokens tell, however many tokens descend from them.
 */
async function newestRoot (q: Queryable, id: string, nowMs: number): Promise<number> {
  const { rows } = await q.query<{ at: number | null }>(
    `SELECT greatest((SELECT max(rooted_at) FROM tokens WHERE sub = $1 AND exp >= $2 AND depth = 0),
                     (SELECT max(rooted_at) FROM tokens WHERE sponsor = $1 AND exp >= $2 AND depth = 0),
                     (SELECT max(rooted_at) FROM tokens WHERE acting @> ARRAY[$1] AND exp >= $2)) AS at`, [id, oldestAcceptedExp(nowMs)])
  return rows[0]?.at ?? 0
}

/** The instant a cut-off of `id` made at `nowMs` takes effect: now, or later if a chain naming it was rooted later. */
async function cutOffInstant (q: Queryable, id: string, nowMs: number): Promise<Date> {
  return new Date(Math.max(nowMs, await newestRoot(q, id, nowMs)))
}

/**
 * The sponsor row of a service, checked to be an active human, and locked until the caller's
 * transaction ends: an offboarding that commits meanwhile waits for the new service (and lapses
 * its sponsor), or the check waits for it and sees the sponsor offboarded.
 * @throws InvalidInput
 */
async function activeHuman (q: Queryable, id: string, nowMs: number): Promise<FullRow> {
  const s = await load(q, id, true)
  if (s === undefined) throw new InvalidInput(`sponsor ${id} does not exist`)
  if (s.kind !== 'human') throw new InvalidInput(`sponsor ${id} is not a human`)
  if (effectiveStatus(s, nowMs) !== 'active') throw new InvalidInput(`sponsor ${id} is not active`)
  return s
}

function checkGrants (grants: unknown): string[] {
  if (!Array.isArray(grants) || grants.some((g) => typeof g !== 'string')) throw new InvalidInput('grants must be an array of scopes')
  for (const g of grants as string[]) {
    const problem = scopeProblem(g)
    if (problem !== undefined) throw new InvalidInput(`grants: ${problem}`)
  }
  return [...new Set(grants as string[])].sort()
}

/** What a principal may put in a root token now: grants ∩ the sponsor's, nothing while either is not active. */
export async function usableScopes (q: Queryable, p: FullRow, nowMs: number): Promise<string[]> {
  if (effectiveStatus(p, nowMs) !== 'active') return []
  if (p.kind === 'human') return p.grants
  if (p.sponsor_lapsed) return []
  const s = p.sponsor === null ? undefined : await load(q, p.sponsor)
  if (s === undefined || effectiveStatus(s, nowMs) !== 'active') return []
  return intersect(p.grants, s.grants)
}

async function present (q: Queryable, p: FullRow, nowMs: number): Promise<PrincipalView> {
  return {
    id: p.id,
    kind: p.kind,
    email: p.email,
    sponsor: p.sponsor,
    status: effectiveStatus(p, nowMs),
    ends_at: p.ends_at?.toISOString() ?? null,
    grants: p.grants,
    usable_scopes: await usableScopes(q, p, nowMs),
    created_at: p.created_at.toISOString(),
    updated_at: p.updated_at.toISOString()
  }
}

/**
 * Creates a principal. A service needs an active human sponsor; a human may carry `ends_at`.
 * @throws InvalidInput for a malformed body or a bad sponsor; Conflict when the id or email exists.
 */
export async function createPrincipal (ctx: BrokerContext, input: NewPrincipal): Promise<PrincipalView> {
  if (typeof input.id !== 'string' || !idShape.test(input.id)) throw new InvalidInput('id must be 1-128 characters of letters, digits and ._@+-')
  if (input.kind !== 'human' && input.kind !== 'service') throw new InvalidInput('kind must be "human" or "service"')
  // JSON null and an absent member mean the same: a principal read back can be sent again.
  const email = input.email ?? undefined
  const sponsor = input.sponsor ?? undefined
  if (email !== undefined && (typeof email !== 'string' || !/^[^\s@]{1,64}@[^\s@]{1,255}$/.test(email))) throw new InvalidInput('email is not an address')
  const grants = checkGrants(input.grants ?? [])
  let endsAt: Date | null = null
  if (input.ends_at !== undefined && input.ends_at !== null) {
    endsAt = parseRfc3339(input.ends_at) ?? null
    if (endsAt === null) throw new InvalidInput('ends_at must be an RFC 3339 date-time')
  }
  if (input.kind === 'service' && sponsor === undefined) throw new InvalidInput('a service needs a sponsor: an active human')
  if (input.kind === 'service' && endsAt !== null) throw new InvalidInput('ends_at is a human\'s contract end; a service ends with its sponsor')
  if (input.kind === 'human' && sponsor !== undefined) throw new InvalidInput('a human has no sponsor')
  if (sponsor !== undefined && typeof sponsor !== 'string') throw new InvalidInput('sponsor must be a principal id')
  const now = ctx.clock.now()
  const row = await ctx.db.tx(async (q) => {
    if (sponsor !== undefined) await activeHuman(q, sponsor, now)
    // One creation at a time, so that the email check below cannot be raced.
    await q.query('SELECT pg_advisory_xact_lock($1)', [LockKeys.principals])
    // Inputs find people by email whatever its case: two that differ only in case would be one person to them.
    if (email !== undefined && (await q.query('SELECT 1 FROM principals WHERE lower(email) = lower($1)', [email])).rows.length > 0) {
      throw new Conflict(`a principal with email ${email} (in some case) already exists`)
    }
    const { rows } = await q.query<FullRow>(
      `INSERT INTO principals (id, kind, email, sponsor, ends_at, grants) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT DO NOTHING RETURNING ${columns}`,
      [input.id, input.kind, email ?? null, sponsor ?? null, endsAt, grants])
    if (rows.length === 0) throw new Conflict(`principal ${input.id} (or its email) already exists`)
    await appendChange(q, principalChange(rows[0]))
    return rows[0]
  })
  await ctx.sync.afterWrite()
  return await present(ctx.db, row, now)
}

/** @throws NotFound */
export async function getPrincipal (ctx: BrokerContext, id: string): Promise<PrincipalView> {
  return await present(ctx.db, await mustLoad(ctx.db, id), ctx.clock.now())
}

/** Replaces a principal's grants. @throws NotFound, InvalidInput */
export async function setGrants (ctx: BrokerContext, id: string, grants: unknown): Promise<PrincipalView> {
  const list = checkGrants(grants)
  const { rows } = await ctx.db.query<FullRow>(`UPDATE principals SET grants = $2, updated_at = now() WHERE id = $1 RETURNING ${columns}`, [id, list])
  if (rows.length === 0) throw new NotFound(`principal ${id} not found`)
  return await present(ctx.db, rows[0], ctx.clock.now())
}

/**
 * Gives a service a new sponsor. Chains that rested on the old sponsor stay cut off.
 * @throws NotFound, InvalidInput (not a service, sponsor not an active human)
 */
export async function setSponsor (ctx: BrokerContext, id: string, sponsor: unknown): Promise<PrincipalView> {
  if (typeof sponsor !== 'string') throw new InvalidInput('sponsor must be a principal id')
  const now = ctx.clock.now()
  const { row, previous } = await ctx.db.tx(async (q) => {
    // The sponsor's row first, the service's second: the order an offboarding locks them in.
    await activeHuman(q, sponsor, now)
    const p = await mustLoad(q, id, true)
    if (p.kind !== 'service') throw new InvalidInput(`${id} is a human; only services have sponsors`)
    // The same sponsor again changes nothing, unless it was lost to an offboarding: then this is the new assignment.
    if (p.sponsor === sponsor && !p.sponsor_lapsed) return { row: p, previous: undefined }
    const { rows } = await q.query<FullRow>(
      `UPDATE principals SET sponsor = $2, sponsor_lapsed = false, cut_off_at = $3, updated_at = now() WHERE id = $1 RETURNING ${columns}`, [id, sponsor, await cutOffInstant(q, id, now)])
    await appendChange(q, principalChange(rows[0]))
    return { row: rows[0], previous: { sponsor: p.sponsor } }
  })
  // The new cut-off ends every chain the service held, as a session cut-off does: recorded alike, before anything that could fail after the commit.
  if (previous !== undefined) {
    ctx.log.info({ principal: id, sponsor, previous_sponsor: previous.sponsor }, 'sponsor assigned; live chains cut off')
    ctx.audit.record({ at: now, kind: 'principal.status', principals: [id], detail: { status: 'cut_off', reason: `sponsor ${sponsor} assigned`, sponsor, previous_sponsor: previous.sponsor } })
  }
  await ctx.sync.afterWrite()
  return await present(ctx.db, row, now)
}

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

/**
 * Cuts off every live chain that names principal `id` without changing its status (CAEP
 * session-revoked, credential-change): one row, like an offboarding, but new tokens may follow.
 * @returns whether the event was new (a repeated event id changes nothing).
 * @throws NotFound
 */
export async function cutOffChains (ctx: BrokerContext, id: string, opts: Pick<StatusOptions, 'reason' | 'event'> = {}): Promise<{ duplicate: boolean }> {
  const now = ctx.clock.now()
  const duplicate = await ctx.db.tx(async (q) => {
    await mustLoad(q, id, true)
    if (opts.event !== undefined) {
      const seen = await q.query('INSERT INTO inbound_events (source, event_id, principal) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [opts.event.source, opts.event.id, id])
      if (seen.rowCount === 0) return true
    }
    const { rows } = await q.query<FullRow>(`UPDATE principals SET cut_off_at = $2, updated_at = now() WHERE id = $1 RETURNING ${columns}`, [id, await cutOffInstant(q, id, now)])
    await appendChange(q, principalChange(rows[0]))
    return false
  })
  if (!duplicate) {
    // Recorded before anything that could fail after the commit.
    ctx.log.info({ principal: id, reason: opts.reason, source: opts.event?.source }, 'live chains cut off')
    ctx.audit.record({ at: now, kind: 'principal.status', principals: [id], detail: { status: 'cut_off', reason: opts.reason ?? null, ...(opts.event !== undefined ? { source: opts.event.source, event: opts.event.id } : {}) } })
  }
  await ctx.sync.afterWrite()
  return { duplicate }
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

/** True for a service whose sponsor is still its own (not lapsed) and active now. */
async function sponsorActive (q: Queryable, p: FullRow, nowMs: number): Promise<boolean> {
  if (p.sponsor === null || p.sponsor_lapsed) return false
  const s = await load(q, p.sponsor)
  return s !== undefined && effectiveStatus(s, nowMs) === 'active'
}

/**
 * Loads a principal and its sponsor for issuing a root token. `sponsorLost`: a service with no
 * usable scope because its sponsor is not active or was lost to an offboarding (rather than
 * because its grants and its sponsor's do not meet).
 */
export async function principalForIssue (q: Queryable, id: string, nowMs: number): Promise<{ row: FullRow, status: PrincipalStatus, usable: string[], sponsorLost: boolean }> {
  const row = await mustLoad(q, id)
  const usable = await usableScopes(q, row, nowMs)
  const sponsorLost = row.kind === 'service' && usable.length === 0 && !(await sponsorActive(q, row, nowMs))
  return { row, status: effectiveStatus(row, nowMs), usable, sponsorLost }
}
