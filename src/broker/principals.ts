import { parseRfc3339 } from '../clock.js'
import { Conflict, InvalidInput, NotFound } from '../errors.js'
import { appendChange, principalChange } from '../lineage/changes.js'
import type { PrincipalStatus } from '../lineage/live-status.js'
import { scopeProblem } from '../lineage/scopes.js'
import { LockKeys, type Queryable } from '../storage/db.js'
import type { BrokerContext } from './context.js'
import { cutOffInstant } from './cut-off-instant.js'
import { columns, effectiveStatus, load, mustLoad, present, usableScopes, type FullRow, type PrincipalView } from './principal-view.js'

export interface NewPrincipal {
  id: string
  kind: 'human' | 'service'
  email?: string | null
  sponsor?: string | null
  ends_at?: string | null
  grants?: string[]
}

const idShape = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/

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
