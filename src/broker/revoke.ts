import { InvalidToken, NotFound, UnauthorizedClient } from '../errors.js'
import { appendChange } from '../lineage/changes.js'
import type { AccessClaims } from '../lineage/claims.js'
import { principalsOf } from '../lineage/ledger.js'
import { verifyAccessToken } from '../lineage/verify.js'
import type { Caller } from './caller.js'
import type { BrokerContext } from './context.js'

/**
 * Revokes `jti` and so its whole subtree, and the tokens it acted in as an actor token: one row
 * in `revocations` and one in the change log, however many there are. Idempotent.
 * @returns how many live tokens (it, its descendants, those it acted in) this cut off; 0 when it was revoked already.
 */
export async function revokeSubtree (ctx: BrokerContext, jti: string, exp: number, by: string, reason?: string): Promise<number> {
  const node = await ctx.db.tx(async (q) => {
    const r = await q.query<{ at: string }>('INSERT INTO revocations (jti, exp, reason, revoked_by) VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING RETURNING revoked_at::text AS at',
      [jti, exp, reason ?? null, by])
    if (r.rowCount !== 1) return undefined
    await appendChange(q, { kind: 'token.revoked', data: { jti, exp } })
    // Read before the commit, so that the record of a revocation that committed never waits on another read.
    // Every actor of the chain, the current one first as `act` nests them (RFC 8693 §4.1): each token's own is its outermost.
    const { rows } = await q.query<{ root: string, sub: string, sponsor: string | null, acting: string[] | null, actors: string[] }>(
      `SELECT t.root, t.sub, t.sponsor, t.acting,
              ARRAY(SELECT a.actor FROM unnest(t.ancestors || t.jti) WITH ORDINALITY AS c (jti, n) JOIN tokens a ON a.jti = c.jti
                     WHERE a.actor IS NOT NULL ORDER BY c.n DESC) AS actors
         FROM tokens t WHERE t.jti = $1`, [jti])
    return { found: rows[0], at: r.rows[0].at }
  })
  if (node === undefined) {
    await ctx.sync.afterWrite()
    return 0
  }
  // The revocation has taken effect: it is recorded whatever happens to the reads that follow
  // (`revoked` null when the count failed).
  let revoked: number | undefined
  try {
    await ctx.sync.afterWrite()
    revoked = await countCutOff(ctx, jti, node.at)
  } finally {
    const t = node.found
    ctx.audit.record({
      at: ctx.clock.now(),
      kind: 'token.revoked',
      jti,
      root: t?.root ?? jti,
      principals: t === undefined ? [] : principalsOf(t),
      actors: t?.actors ?? [],
      detail: { by, reason: reason ?? null, revoked: revoked ?? null }
    })
  }
  return revoked
}

/**
 * The live tokens a revocation of `jti` cut off. Counting is for people and runs after the
 * cut-off has taken effect. The walk stops at subtrees that were already revoked: those were not
 * live. The tokens it acted in as an actor token, with theirs (they list it, and inherit the
 * list), count too. A token another revoked actor token acted in was not live either: an
 * earlier revocation counted it. Nor was anything below a revoked ancestor. "Already" and
 * "earlier" are by `revoked_at` (`at`, this revocation's, as text: a Date drops microseconds),
 * so of two revocations of overlapping subtrees, the earlier counts the tokens both cut off.
 */
async function countCutOff (ctx: BrokerContext, jti: string, at: string): Promise<number> {
  const { rows } = await ctx.db.query<{ n: number }>(
    `WITH RECURSIVE sub AS (
       SELECT jti, exp, actor_tokens FROM tokens
        WHERE jti = $1 AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.jti = ANY (ancestors) AND r.revoked_at < $3::timestamptz)
       UNION ALL
       SELECT t.jti, t.exp, t.actor_tokens FROM tokens t JOIN sub ON t.parent = sub.jti
        WHERE NOT EXISTS (SELECT 1 FROM revocations r WHERE r.jti = t.jti AND r.revoked_at < $3::timestamptz)
     ), acted AS (
       SELECT t.jti, t.exp, t.actor_tokens FROM tokens t
        WHERE t.actor_tokens @> ARRAY[$1] AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.jti = ANY (t.ancestors || t.jti) AND r.revoked_at < $3::timestamptz)
     ) SELECT count(*) AS n FROM (SELECT jti, actor_tokens FROM sub WHERE exp > $2 UNION SELECT jti, actor_tokens FROM acted WHERE exp > $2) live
        WHERE NOT EXISTS (SELECT 1 FROM revocations r WHERE r.jti = ANY (live.actor_tokens) AND r.jti <> $1 AND r.revoked_at < $3::timestamptz)`, [jti, Math.floor(ctx.clock.now() / 1000), at])
  return rows[0].n
}

/** Admin revocation by `jti`. @throws NotFound */
export async function revokeByJti (ctx: BrokerContext, jti: string, reason?: string): Promise<{ revoked: number }> {
  const { rows } = await ctx.db.query<{ exp: number }>('SELECT exp FROM tokens WHERE jti = $1', [jti])
  if (rows.length === 0) throw new NotFound(`token ${jti} not found`)
  return { revoked: await revokeSubtree(ctx, jti, rows[0].exp, 'admin', reason) }
}

/**
 * RFC 7009: revokes `token` and its subtree. Allowed to the admin, to the client that owns
 * the root, and to a bearer token that is the token itself or one of its ancestors. An
 * unknown, malformed or expired token is answered like a revoked one (§2.2): nothing to do.
 * @throws UnauthorizedClient when the caller may not revoke this token.
 */
export async function revokeToken (ctx: BrokerContext, caller: Caller, token: string): Promise<void> {
  let claims
  try {
    claims = await verifyAccessToken(token, { keys: ctx.verifier, issuer: ctx.issuer, clock: ctx.clock, maxDepth: ctx.maxDepth })
  } catch {
    return
  }
  const chain = [...claims.lineage.chain, claims.jti]
  const allowed = caller.kind === 'admin' ||
    (caller.kind === 'client' && caller.clientId === claims.client_id) ||
    (caller.kind === 'bearer' && chain.includes(caller.claims.jti))
  if (!allowed) throw new UnauthorizedClient('the caller may not revoke this token')
  const by = caller.kind === 'admin' ? 'admin' : caller.kind === 'client' ? `client:${caller.clientId}` : `token:${caller.claims.jti}`
  await revokeSubtree(ctx, claims.jti, claims.exp, by)
}

/** The claims of `token` when the broker signed it, expired or not; undefined for anything else. */
async function genuineClaims (ctx: BrokerContext, token: string): Promise<AccessClaims | undefined> {
  try {
    return await verifyAccessToken(token, { keys: ctx.verifier, issuer: ctx.issuer, clock: ctx.clock, maxDepth: ctx.maxDepth })
  } catch (err) {
    return err instanceof InvalidToken ? err.claims : undefined
  }
}

/**
 * A bearer caller refused as not live (revoked, cut off, expired) that asks to revoke itself or
 * a token below it: RFC 7009 §2.2 answers 200 for a token already invalid, since the revocation
 * has nothing left to achieve, and a dead ancestor's descendants are dead too (each lists it, and
 * rests on its principals). Such a caller is taken as the bearer it was, for that token alone.
 * @returns the bearer's claims when the broker signed it and it is `token` or one of its ancestors.
 */
export async function endedCaller (ctx: BrokerContext, bearer: string, token: string): Promise<Caller | undefined> {
  const [own, target] = await Promise.all([genuineClaims(ctx, bearer), genuineClaims(ctx, token)])
  if (own === undefined || target === undefined) return undefined
  return [...target.lineage.chain, target.jti].includes(own.jti) ? { kind: 'bearer', claims: own } : undefined
}
