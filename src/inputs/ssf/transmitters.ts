import { randomBytes } from 'node:crypto'
import type { JWK } from 'jose'
import { Conflict, InvalidInput, NotFound } from '../../errors.js'
import { hashSecret } from '../../secrets.js'
import type { Queryable } from '../../storage/db.js'

/** A configured Shared Signals transmitter, as the receiver uses it. */
export interface Transmitter {
  id: string
  issuer: string
  audience: string
  jwks: { keys: JWK[] } | null
  jwks_uri: string | null
  authorization_sha256: Buffer | null
}

/** As the admin API shows it: the expected Authorization header is never returned. */
export interface TransmitterView {
  id: string
  issuer: string
  audience: string
  jwks: { keys: JWK[] } | null
  jwks_uri: string | null
  authorization: boolean
  created_at: string
}

const columns = 'id, issuer, audience, jwks, jwks_uri, authorization_sha256, created_at'

function present (r: Transmitter & { created_at: Date }): TransmitterView {
  return { id: r.id, issuer: r.issuer, audience: r.audience, jwks: r.jwks, jwks_uri: r.jwks_uri, authorization: r.authorization_sha256 !== null, created_at: r.created_at.toISOString() }
}

function httpsOrLocal (raw: unknown, what: string): string {
  if (typeof raw !== 'string' || raw.length > 2048) throw new InvalidInput(`${what} must be a URL`)
  let u: URL
  try { u = new URL(raw) } catch { throw new InvalidInput(`${what} must be a URL`) }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname))) throw new InvalidInput(`${what} must use https (http only on loopback)`)
  return raw
}

/** @throws InvalidInput, Conflict */
export async function createTransmitter (q: Queryable, body: Record<string, unknown>): Promise<TransmitterView> {
  if (typeof body.issuer !== 'string' || body.issuer.length === 0 || body.issuer.length > 2048) throw new InvalidInput('issuer is required')
  if (typeof body.audience !== 'string' || body.audience.length === 0 || body.audience.length > 2048) throw new InvalidInput('audience is required')
  const jwks = body.jwks
  const uri = body.jwks_uri === undefined ? undefined : httpsOrLocal(body.jwks_uri, 'jwks_uri')
  if ((jwks === undefined) === (uri === undefined)) throw new InvalidInput('give exactly one of jwks and jwks_uri')
  if (jwks !== undefined) {
    const keys = (jwks as { keys?: unknown })?.keys
    // A private key's `d`, or a shared secret's `k` (kty oct: SETs are verified with asymmetric keys only), would be shown by every GET.
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > 20 || keys.some((k) => typeof k !== 'object' || k === null || typeof (k as JWK).kty !== 'string' || (k as JWK).kty === 'oct' || 'd' in (k as object) || 'k' in (k as object))) {
      throw new InvalidInput('jwks must be {"keys":[…]} of 1-20 public JWKs')
    }
  }
  if (body.authorization !== undefined && (typeof body.authorization !== 'string' || body.authorization.length < 16 || body.authorization.length > 4096)) {
    throw new InvalidInput('authorization must be the exact header value, at least 16 characters')
  }
  const id = `tx_${randomBytes(8).toString('hex')}`
  const { rows } = await q.query<Transmitter & { created_at: Date }>(
    `INSERT INTO transmitters (id, issuer, audience, jwks, jwks_uri, authorization_sha256) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (issuer) DO NOTHING RETURNING ${columns}`,
    [id, body.issuer, body.audience, jwks === undefined ? null : JSON.stringify(jwks), uri ?? null, typeof body.authorization === 'string' ? hashSecret(body.authorization) : null])
  if (rows.length === 0) throw new Conflict(`a transmitter for issuer ${body.issuer.slice(0, 200)} exists`)
  return present(rows[0])
}

/** @throws NotFound */
export async function getTransmitter (q: Queryable, id: string): Promise<TransmitterView> {
  const { rows } = await q.query<Transmitter & { created_at: Date }>(`SELECT ${columns} FROM transmitters WHERE id = $1`, [id])
  if (rows.length === 0) throw new NotFound(`transmitter ${id.slice(0, 100)} not found`)
  return present(rows[0])
}

/** @throws NotFound */
export async function deleteTransmitter (q: Queryable, id: string): Promise<void> {
  const r = await q.query('DELETE FROM transmitters WHERE id = $1', [id])
  if (r.rowCount === 0) throw new NotFound(`transmitter ${id.slice(0, 100)} not found`)
}

export async function transmitterByIssuer (q: Queryable, issuer: string): Promise<Transmitter | undefined> {
  const { rows } = await q.query<Transmitter>(`SELECT ${columns} FROM transmitters WHERE issuer = $1`, [issuer])
  return rows[0]
}
