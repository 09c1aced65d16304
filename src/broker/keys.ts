import { createPrivateKey, type KeyObject } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose'
import type { Clock } from '../clock.js'
import { LockKeys, type Db, type Queryable } from '../storage/db.js'
import { appendChange } from '../lineage/changes.js'

/** The signature algorithm of every key Lineage makes: Ed25519 (RFC 8037). */
export const signingAlg = 'EdDSA'

export interface SigningKey {
  kid: string
  privateKey: KeyObject
  /** The base64url JWS protected header every token signed with this key carries. */
  header: string
}

export interface KeyRing {
  /** The key new tokens are signed with. */
  active: SigningKey
  /** Public keys by `kid`: the active one and every retired one whose tokens may still be live. */
  verifiers: Map<string, CryptoKey>
  jwks: { keys: JWK[] }
}

interface KeyRow { kid: string, private_pkcs8: string, public_jwk: JWK, retired_at: Date | null }

async function createKey (q: Queryable): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair(signingAlg, { crv: 'Ed25519', extractable: true })
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  await q.query('INSERT INTO signing_keys (kid, alg, private_pkcs8, public_jwk) VALUES ($1, $2, $3, $4)',
    [kid, signingAlg, await exportPKCS8(privateKey), JSON.stringify({ ...jwk, kid, alg: signingAlg, use: 'sig' })])
  return kid
}

/**
 * Loads the signing keys, generating the first one when there is none (under an advisory lock,
 * so processes that start together agree on one). Keys retired longer ago than `maxTtl`
 * seconds are left out: no token they signed can still be live.
 */
export async function loadKeyRing (db: Db, clock: Clock, maxTtl: number): Promise<KeyRing> {
  const read = async (q: Queryable): Promise<KeyRow[]> => (await q.query<KeyRow>(
    `SELECT kid, private_pkcs8, public_jwk, retired_at FROM signing_keys
      WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC`, [new Date(clock.now() - maxTtl * 1000)])).rows
  let rows = await read(db)
  if (!rows.some((r) => r.retired_at === null)) {
    rows = await db.withLock(LockKeys.keys, async (q) => {
      const again = await read(q)
      if (again.some((r) => r.retired_at === null)) return again
      await createKey(q)
      return await read(q)
    })
  }
  const current = rows.find((r) => r.retired_at === null)
  if (current === undefined) throw new Error('no active signing key')
  const verifiers = new Map<string, CryptoKey>()
  for (const r of rows) verifiers.set(r.kid, await importJWK(r.public_jwk, signingAlg) as CryptoKey)
  return {
    active: {
      kid: current.kid,
      privateKey: createPrivateKey(current.private_pkcs8),
      header: Buffer.from(JSON.stringify({ alg: signingAlg, typ: 'at+jwt', kid: current.kid })).toString('base64url')
    },
    verifiers,
    jwks: { keys: rows.map((r) => r.public_jwk) }
  }
}

/**
 * Adds a new signing key and retires the active one: new tokens use the new key, while the
 * old one stays published until every token it signed has expired.
 * @param clock the clock tokens take `iat`/`exp` from: `loadKeyRing` keeps a retired key by
 *   it, so the retirement is stamped by it too, not by the database's (a database clock behind
 *   the broker's dropped the key while tokens it signed were still live).
 * @returns the new key's `kid`.
 */
export async function rotateKeys (db: Db, clock: Clock): Promise<string> {
  return await db.tx(async (q) => {
    // One rotation at a time across processes: two at once would each leave a key active.
    await q.query('SELECT pg_advisory_xact_lock($1)', [LockKeys.keys])
    await q.query('UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL', [new Date(clock.now())])
    const kid = await createKey(q)
    await appendChange(q, { kind: 'keys', data: {} })
    return kid
  })
}
