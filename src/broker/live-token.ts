import { InvalidToken } from '../errors.js'
import type { AccessClaims } from '../lineage/claims.js'
import { verifyAccessToken } from '../lineage/verify.js'
import type { BrokerContext } from './context.js'

/**
 * Verifies `token` and checks its whole chain against the live-status view.
 * @throws InvalidToken saying which check failed (which ancestor, which principal).
 */
export async function liveClaims (ctx: BrokerContext, token: string): Promise<AccessClaims> {
  let claims = ctx.verified.get(token, Math.floor(ctx.clock.now() / 1000))
  if (claims === undefined) {
    claims = await verifyAccessToken(token, {
      keys: ctx.verifier,
      issuer: ctx.issuer,
      clock: ctx.clock,
      maxDepth: ctx.maxDepth
    })
    ctx.verified.add(token, claims)
  }
  let cut = ctx.view.check(claims.jti, claims.lineage, ctx.clock.now())
  if (cut?.code === 'principal_unknown') {
    // A principal created a moment ago in another process: read the log once, then decide.
    await ctx.sync.catchUp()
    cut = ctx.view.check(claims.jti, claims.lineage, ctx.clock.now())
  }
  if (cut !== undefined) throw new InvalidToken(`chain cut off: ${cut.message}`, 'ERR_TOKEN_CUT_OFF')
  return claims
}
