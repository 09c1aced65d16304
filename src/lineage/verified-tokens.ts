import type { AccessClaims } from './claims.js'

/**
 * Tokens whose signature is already known good, by their exact text: the ones this process
 * signed and the ones it verified. A token whose bytes equal one of these carries the same
 * valid signature, so a hit skips only the signature check; expiry and the chain's liveness
 * are still checked on every use. Bounded: the oldest entries go first.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, AccessClaims>()

  constructor (private readonly max = 10_000) {}

  /** The claims of `token` if its signature is known good and it has not expired at `nowSeconds`. */
  get (token: string, nowSeconds: number): AccessClaims | undefined {
    const claims = this.entries.get(token)
    if (claims === undefined) return undefined
    if (claims.exp <= nowSeconds) {
      this.entries.delete(token)
      return undefined
    }
    return claims
  }

  add (token: string, claims: AccessClaims): void {
    // A token with a not-before time would need that checked too; Lineage issues none.
    if (claims.nbf !== undefined) return
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string)
    this.entries.set(token, claims)
  }

  get size (): number {
    return this.entries.size
  }
}
