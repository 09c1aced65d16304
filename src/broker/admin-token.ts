import type { Db } from '../storage/db.js'
import { hashSecret, newSecret } from '../secrets.js'

/**
 * The admin token's hash. From `configured` (LINEAGE_ADMIN_TOKEN) when given, and stored in
 * place of the one kept before; otherwise the stored hash, or on the very first start a new
 * token whose hash is stored and whose clear text is returned once, for the caller to print.
 * Processes that start together agree: only the one whose insert wins gets a token to print.
 */
export async function loadAdminToken (db: Db, configured: string | undefined): Promise<{ hash: Buffer, firstToken?: string }> {
  if (configured !== undefined) {
    // A token configured to replace the generated one (which leaked, say) must not come back
    // when the variable is later left out: the token configured last is the one kept.
    const hash = hashSecret(configured)
    await db.query("INSERT INTO settings (key, value) VALUES ('admin_token_sha256', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [hash.toString('hex')])
    return { hash }
  }
  const token = newSecret('ladm_')
  const inserted = await db.query("INSERT INTO settings (key, value) VALUES ('admin_token_sha256', $1) ON CONFLICT (key) DO NOTHING",
    [hashSecret(token).toString('hex')])
  if (inserted.rowCount === 1) return { hash: hashSecret(token), firstToken: token }
  const { rows } = await db.query<{ value: string }>("SELECT value FROM settings WHERE key = 'admin_token_sha256'")
  return { hash: Buffer.from(rows[0].value, 'hex') }
}

/**
 * Forgets a first admin token whose clear text was never shown (the start that made it failed
 * before printing it), so that the next start makes and prints another instead of keeping a
 * token nobody holds. Only that token's hash is removed, never one another start stored.
 */
export async function forgetFirstAdminToken (db: Db, firstToken: string): Promise<void> {
  await db.query("DELETE FROM settings WHERE key = 'admin_token_sha256' AND value = $1", [hashSecret(firstToken).toString('hex')])
}
