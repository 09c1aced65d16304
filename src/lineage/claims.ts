/**
 * The claims of a Lineage access token (RFC 9068 plus RFC 8693 `act` and the private
 * `lineage` claim documented in README.md, "Token format").
 */
export interface Act {
  sub: string
  act?: Act
}

/** The private claim that lets a gateway check a whole chain without a database. */
export interface LineageClaim {
  /** Every ancestor's `jti`, root first, parent last; empty for a root token. */
  chain: string[]
  /** Every principal the chain rests on, sponsor first, the `sub` last. */
  principals: string[]
  /** Steps below the root: 0 for a root token. */
  depth: number
  /** When the root token was issued, in epoch milliseconds; cut-offs compare against it. */
  rooted_at: number
  /**
   * The `jti` of every actor token that acted in the chain (RFC 8693 `actor_token`), each with
   * its own ancestors and actor tokens: revoking any of them cuts the chain off, as revoking an
   * ancestor does. Absent when no actor token acted in it.
   */
  actor_tokens?: string[]
}

export interface AccessClaims {
  iss: string
  sub: string
  aud: string[]
  exp: number
  iat: number
  nbf?: number
  jti: string
  client_id: string
  scope: string
  act?: Act
  lineage: LineageClaim
}

/** The actors of `act`, newest first (RFC 8693 §4.1: the outermost is the current actor). */
export function actorsOf (act: Act | undefined): string[] {
  const out: string[] = []
  for (let a = act; a !== undefined; a = a.act) out.push(a.sub)
  return out
}

/**
 * Who acts with a token, as the gateways name it upstream (`Lineage-Actor`, the application
 * name) and a policy's `actors` judge it: the current actor (the outermost `act`), or for a root
 * token, which has none, its subject acting for itself.
 */
export function currentActor (claims: Pick<AccessClaims, 'sub' | 'act'>): string {
  return claims.act?.sub ?? claims.sub
}

/** Wraps `parent` so that `actor` becomes the outermost, current actor. */
export function nestAct (actor: string, parent: Act | undefined): Act {
  return parent === undefined ? { sub: actor } : { sub: actor, act: parent }
}

/** The root token's `jti` of a chain. */
export function rootOf (claims: Pick<AccessClaims, 'jti' | 'lineage'>): string {
  return claims.lineage.chain[0] ?? claims.jti
}

/**
 * What a live connection or session of `claims` is indexed by, so that a cut-off finds it: every
 * token whose revocation cuts the chain (ancestors, the token itself, actor tokens) and every
 * principal it rests on (`p:<id>`).
 */
export function cutOffKeys (claims: AccessClaims): string[] {
  const l = claims.lineage
  return [...l.chain, claims.jti, ...(l.actor_tokens ?? []), ...l.principals.map((p) => `p:${p}`)]
}
