import { createSecretKey, type KeyObject } from 'node:crypto'
import type { Queryable } from '../../storage/db.js'

/**
 * The deployment's key for the `hash` mask (migration 010), from `settings`. Held as a
 * KeyObject, which neither `util.inspect` nor `JSON.stringify` opens, so a log line or an
 * error that happens to carry it shows no key material.
 * @throws Error when the key is missing or not 32 bytes of hex (migrations not applied, or edited).
 */
export async function loadMaskKey (db: Queryable): Promise<KeyObject> {
  const { rows } = await db.query<{ value: string }>("SELECT value FROM settings WHERE key = 'mask_key'")
  const hex = rows[0]?.value
  if (hex === undefined || !/^[0-9a-f]{64}$/.test(hex)) throw new Error('settings.mask_key is missing or not 64 hex digits: the database is not migrated, or the key was edited')
  return createSecretKey(Buffer.from(hex, 'hex'))
}
