import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** A new high-entropy secret: `prefix` + 32 random bytes, base64url. */
export function newSecret (prefix: string): string {
  return prefix + randomBytes(32).toString('base64url')
}

/**
 * SHA-256 of a secret. Lineage's secrets are 256 random bits, not passwords, so a fast hash
 * is enough: nothing about them can be guessed, and a slow KDF would only cost every request.
 */
export function hashSecret (secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest()
}

/** Compares a presented secret with a stored hash in constant time. */
export function secretMatches (presented: string, storedHash: Buffer): boolean {
  const h = hashSecret(presented)
  return h.length === storedHash.length && timingSafeEqual(h, storedHash)
}
