import { before } from '../deadline.js'
import { InvalidToken, Unavailable } from '../errors.js'
import type { AccessClaims } from '../lineage/claims.js'
import { verifyAccessToken } from '../lineage/verify.js'
import { viewStaleness } from '../lineage/view-staleness.js'
import type { BrokerContext } from './context.js'

/**
 * Fails closed, as a gateway does, when the live-status view cannot be proven current: a
 * revocation or offboarding another process committed since might be missing from it. A view
 * merely not read for a while (an idle process, a clock moved on) is read again first.
 * @throws Unavailable
 */
async function mustBeFresh (ctx: BrokerContext): Promise<void> {
  if (viewStaleness(ctx.sync.freshAt(), ctx.maxStalenessMs, ctx.clock.now()) === undefined) return
  // Debug only: the poll logs an outage once when it begins and once when it ends; a line here
  // would come with every request that finds the view stale for as long as the outage lasts.
  // A read the database does not answer (every pooled connection held by requests waiting on a
  // lock) is waited for no longer than the staleness limit: the request is refused, not held.
  await before(ctx.sync.catchUp(), performance.now() + ctx.maxStalenessMs).catch((err) => ctx.log.debug({ err: (err as Error).message }, 'catch-up failed'))
  const stale = viewStaleness(ctx.sync.freshAt(), ctx.maxStalenessMs, ctx.clock.now())
  if (stale !== undefined) throw new Unavailable(stale)
}

/**
 * Verifies `token`, unexpired by this broker's clock, and checks its whole chain against the live-status view.
 * @throws InvalidToken saying which check failed (which ancestor, which principal); Unavailable
 * when the view cannot be proven current.
 */
export async function liveClaims (ctx: BrokerContext, token: string): Promise<AccessClaims> {
  await mustBeFresh(ctx)
  let claims = ctx.verified.get(token, Math.floor(ctx.clock.now() / 1000))
  if (claims === undefined) {
    claims = await verifyAccessToken(token, {
      keys: ctx.verifier,
      issuer: ctx.issuer,
      clock: ctx.clock,
      maxDepth: ctx.maxDepth
    })
    ctx.verified.add(token, claims)
    // Reading the keys for it can take seconds (a database that stops answering): the view
    // may no longer be provably current by the time the chain is judged on it.
    await mustBeFresh(ctx)
  }
  // The issuer judges its own tokens by its own clock: the tolerance verifiers allow for clocks
  // that differ from the issuer's (RFC 9068 §4) gives none past `exp` here, to a subject, actor
  // or bearer token alike (introspection answers the same: RFC 7662 §2.2).
  if (claims.exp * 1000 <= ctx.clock.now()) throw new InvalidToken('token expired', 'ERR_TOKEN_EXPIRED', claims)
  let cut = ctx.view.check(claims.jti, claims.lineage, ctx.clock.now())
  if (cut?.code === 'principal_unknown') {
    // A principal created a moment ago in another process: read the log once, then decide. A
    // read that fails leaves the chain unknown: refused as unavailable, as a stale view is.
    await ctx.sync.catchUp().catch((err) => {
      ctx.log.debug({ err: (err as Error).message }, 'catch-up failed')
      throw new Unavailable('the live-status view could not be read to find a principal of this token\'s chain; refusing until it can')
    })
    cut = ctx.view.check(claims.jti, claims.lineage, ctx.clock.now())
  }
  if (cut !== undefined) throw new InvalidToken(`chain cut off: ${cut.message}`, 'ERR_TOKEN_CUT_OFF', claims)
  return claims
}
