import { NotFound } from '../errors.js'
import type { LineageClaim } from '../lineage/claims.js'
import { principalsOf, type TokenRecord } from '../lineage/ledger.js'
import type { BrokerContext } from './context.js'

/** A row of `tokens`: what the ledger wrote. */
type TokenRow = TokenRecord

/** A node of the lineage tree as the admin API shows it. */
export interface TokenView {
  jti: string
  parent: string | null
  root: string
  depth: number
  sub: string
  actor: string | null
  scope: string
  aud: string[]
  iat: number
  exp: number
  status: 'active' | 'revoked' | 'expired'
  /** Why a token is not active: which ancestor or principal cut it off. */
  status_reason?: string
  client_id: string | null
  context: Record<string, string>
}

export type TokenTree = TokenView & { children: TokenTree[] }

const columns = 'jti, parent, root, depth, sub, sponsor, acting, actor_tokens, client_id, actor, scope, aud, ancestors, iat, exp, rooted_at, context'
/** A tree listing stops here and says so; it is for people, not for enforcement. */
export const maxTreeNodes = 5000

function present (ctx: BrokerContext, r: TokenRow): TokenView {
  const lineage: LineageClaim = { chain: r.ancestors, principals: principalsOf(r), depth: r.depth, rooted_at: r.rooted_at, ...(r.actor_tokens === null ? {} : { actor_tokens: r.actor_tokens }) }
  const now = ctx.clock.now()
  const cut = ctx.view.check(r.jti, lineage, now)
  const status = cut !== undefined && (cut.code === 'token_revoked' || cut.code === 'ancestor_revoked' || r.exp * 1000 > now)
    ? 'revoked'
    : r.exp * 1000 <= now ? 'expired' : 'active'
  return {
    jti: r.jti,
    parent: r.parent,
    root: r.root,
    depth: r.depth,
    sub: r.sub,
    actor: r.actor,
    scope: r.scope,
    aud: r.aud,
    iat: r.iat,
    exp: r.exp,
    status,
    ...(status === 'revoked' && cut !== undefined ? { status_reason: cut.message } : {}),
    client_id: r.client_id,
    context: r.context
  }
}

/** @throws NotFound */
export async function getToken (ctx: BrokerContext, jti: string): Promise<TokenView> {
  const { rows } = await ctx.db.query<TokenRow>(`SELECT ${columns} FROM tokens WHERE jti = $1`, [jti])
  if (rows.length === 0) throw new NotFound(`token ${jti} not found`)
  return present(ctx, rows[0])
}

/**
 * The token and its descendants, nested under `children`, at most `maxTreeNodes` of them
 * (`truncated: true` when there were more).
 * @throws NotFound
 */
export async function getTokenTree (ctx: BrokerContext, jti: string): Promise<TokenTree & { truncated?: true }> {
  const { rows } = await ctx.db.query<TokenRow>(
    `WITH RECURSIVE sub AS (
       SELECT ${columns} FROM tokens WHERE jti = $1
       UNION ALL
       SELECT ${columns.split(', ').map((c) => `t.${c}`).join(', ')} FROM tokens t JOIN sub s ON t.parent = s.jti
     ) SELECT ${columns} FROM sub ORDER BY depth, iat, jti LIMIT $2`, [jti, maxTreeNodes + 1])
  if (rows.length === 0) throw new NotFound(`token ${jti} not found`)
  const truncated = rows.length > maxTreeNodes
  const nodes = new Map<string, TokenTree>()
  for (const r of rows.slice(0, maxTreeNodes)) {
    const node: TokenTree = { ...present(ctx, r), children: [] }
    nodes.set(r.jti, node)
    if (r.parent !== null && r.jti !== jti) nodes.get(r.parent)?.children.push(node)
  }
  const root = nodes.get(jti) as TokenTree
  return truncated ? { ...root, truncated: true } : root
}
