import type { AccessClaims } from './claims.js'

/** The signature segment of a compact JWS: short, and unique to the token for practical purposes. */
function keyOf (token: string): string {
  return token.slice(token.lastIndexOf('.') + 1)
}

/**
 * Tokens whose signature is already known good, by their exact text: the ones this process
 * signed and the ones it verified. A token whose bytes equal one of these carries the same
 * valid signature, so a hit skips only the signature check; expiry and the chain's liveness
 * are still checked on every use. Bounded: the oldest entries go first.
 *
 * Entries are found by the signature segment (hashing it is a tenth of hashing the whole
 * token on every request) and then the whole text must match.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, { token: string, claims: AccessClaims }>()

  constructor (private readonly max = 10_000) {}

  /** The claims of `token` if its signature is known good and it has not expired at `nowSeconds`. */
  get (token: string, nowSeconds: number): AccessClaims | undefined {
    const key = keyOf(token)
    const entry = this.entries.get(key)
    if (entry === undefined || entry.token !== token) return undefined
    if (entry.claims.exp <= nowSeconds) {
      this.entries.delete(key)
      return undefined
    }
    return entry.claims
  }

  add (token: string, claims: AccessClaims): void {
    // A token with a not-before time would need that checked too; Lineage issues none.
    if (claims.nbf !== undefined) return
    const key = keyOf(token)
    if (!this.entries.has(key) && this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string)
    this.entries.set(key, { token, claims })
  }

  get size (): number {
    return this.entries.size
  }
}
