import { actorsOf, rootOf, type AccessClaims } from '../lineage/claims.js'

/** Decodes a JWT without verifying it. @throws Error when it is not a JWT. */
export function decodeToken (token: string): { header: Record<string, unknown>, claims: AccessClaims } {
  const parts = token.trim().split('.')
  if (parts.length !== 3) throw new Error('not a JWT (expected three dot-separated parts)')
  try {
    return {
      header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
      claims: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    }
  } catch {
    throw new Error('not a JWT (header or payload is not base64url JSON)')
  }
}

function duration (seconds: number): string {
  if (seconds <= 0) return 'expired'
  const m = Math.floor(seconds / 60)
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : m > 0 ? `${m}m${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`
}

/**
 * A human-readable account of a token: who it is for, what it may do, and its chain drawn as
 * a tree from the root down to this token, each hop with the actor that asked for it.
 */
export function describeToken (token: string, nowSeconds: number): string {
  const { header, claims } = decodeToken(token)
  const lineage = claims.lineage
  if (lineage === undefined || !Array.isArray(lineage.chain)) throw new Error('not a Lineage token (no lineage claim)')
  const actors = actorsOf(claims.act).reverse()
  // Without actor tokens a chain rests on its subject and, for a service, its sponsor first.
  const names = lineage.principals
  const principals = (lineage.actor_tokens === undefined && names.length === 2 ? [`${names[0]} (sponsor)`, names[1]] : names).join(' → ')
  const lines = [
    `token    ${claims.jti}  (depth ${lineage.depth}, ${duration(claims.exp - nowSeconds)} left)`,
    `subject  ${claims.sub}`,
    `lineage  ${principals}`,
    ...(lineage.actor_tokens === undefined ? [] : [`acted in by actor tokens ${lineage.actor_tokens.join(' ')}`]),
    `scope    ${claims.scope}`,
    `audience ${claims.aud.join(' ')}`,
    `issuer   ${claims.iss}  (key ${String(header.kid)}, ${String(header.alg)})`,
    'chain (root first):'
  ]
  const hops = [...lineage.chain, claims.jti]
  hops.forEach((jti, i) => {
    const label = i === 0 ? `root, client ${claims.client_id}` : `actor ${actors[i - 1] ?? '?'}`
    const mark = i === hops.length - 1 ? '  ← this token' : ''
    lines.push(`${i === 0 ? '  ' : '  ' + '   '.repeat(i - 1) + '└─ '}${jti}  ${label}${mark}`)
  })
  lines.push(`(decoded, not verified: ask the broker, e.g. introspection, whether root ${rootOf(claims)} is still live)`)
  return lines.join('\n')
}
