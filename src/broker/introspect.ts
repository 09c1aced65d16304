import type { Act, LineageClaim } from '../lineage/claims.js'
import type { BrokerContext } from './context.js'
import { liveClaims } from './live-token.js'

export type Introspection =
  | { active: false }
  | { active: true, iss: string, sub: string, scope: string, aud: string[], exp: number, iat: number, jti: string, client_id: string, token_type: 'Bearer', act?: Act, lineage: LineageClaim }

/**
 * RFC 7662: whether `token` is live now, and if so what it carries. Anything else (unknown,
 * forged, expired, revoked, cut off) is `{active:false}` and nothing more (§2.2).
 */
export async function introspect (ctx: BrokerContext, token: string): Promise<Introspection> {
  try {
    const c = await liveClaims(ctx, token)
    // The issuer judges its own tokens by its own clock: no tolerance past `exp` here.
    if (c.exp * 1000 <= ctx.clock.now()) return { active: false }
    return {
      active: true,
      iss: c.iss,
      sub: c.sub,
      scope: c.scope,
      aud: c.aud,
      exp: c.exp,
      iat: c.iat,
      jti: c.jti,
      client_id: c.client_id,
      token_type: 'Bearer',
      ...(c.act !== undefined ? { act: c.act } : {}),
      lineage: c.lineage
    }
  } catch {
    return { active: false }
  }
}
