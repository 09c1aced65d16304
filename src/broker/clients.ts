import { randomBytes } from 'node:crypto'
import { InvalidClient, NotFound } from '../errors.js'
import { hashSecret, newSecret, secretMatches } from '../secrets.js'
import type { BrokerContext } from './context.js'

// Compared against when the client id is unknown, so both paths cost one hash and one compare.
const decoy = hashSecret(newSecret(''))

/**
 * Creates a client for principal `principal`. The secret is returned once; only its hash is kept.
 * @throws NotFound when the principal does not exist.
 */
export async function createClient (ctx: BrokerContext, principal: string): Promise<{ client_id: string, client_secret: string }> {
  const exists = await ctx.db.query('SELECT 1 FROM principals WHERE id = $1', [principal])
  if (exists.rowCount === 0) throw new NotFound(`principal ${principal} not found`)
  const clientId = `lc_${randomBytes(12).toString('hex')}`
  const secret = newSecret('lsec_')
  await ctx.db.query('INSERT INTO clients (client_id, principal, secret_hash) VALUES ($1, $2, $3)', [clientId, principal, hashSecret(secret)])
  return { client_id: clientId, client_secret: secret }
}

/**
 * Checks a client's credentials.
 * @returns the client id and the principal it acts for.
 * @throws InvalidClient for an unknown client or a wrong secret (the same answer for both).
 */
export async function authenticateClient (ctx: BrokerContext, clientId: string, secret: string): Promise<{ client_id: string, principal: string }> {
  // An id that cannot be one (too long, or a NUL PostgreSQL would refuse) still costs a decoy compare.
  const { rows } = clientId.length > 128 || clientId.includes('\0')
    ? { rows: [] }
    : await ctx.db.query<{ principal: string, secret_hash: Buffer }>('SELECT principal, secret_hash FROM clients WHERE client_id = $1', [clientId])
  const ok = secretMatches(secret, rows[0]?.secret_hash ?? decoy)
  if (rows.length === 0 || !ok) throw new InvalidClient()
  return { client_id: clientId, principal: rows[0].principal }
}
