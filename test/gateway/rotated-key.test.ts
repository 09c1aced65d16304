import { createPrivateKey, sign } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair } from 'jose'
import { loadConfig } from '../../src/config.js'
import { silentLogger } from '../../src/log.js'
import { start } from '../../src/server.js'
import { createTestDatabase, databaseUrl } from '../helpers/db.js'
import { startUpstream } from '../helpers/gateway.js'
import { tempDir } from '../helpers/process.js'

t.test('a gateway beside a broker verifies a token signed with a key another broker rotated in a moment ago, waiting for its keys to be read', { skip: databaseUrl === undefined ? 'DATABASE_URL is not set: one process alone rotates its own keys' : false }, async (t) => {
  const fresh = await createTestDatabase()
  t.teardown(fresh.drop)
  const dir = await tempDir(t, 'lineage-rotated-')
  const up = await startUpstream()
  t.teardown(up.close)
  const adminToken = 'ladm_rotated-key-admin-token-0123456789'
  const running = await start(loadConfig({ DATABASE_URL: fresh.url, LINEAGE_DATA_DIR: dir, LINEAGE_BROKER_PORT: '0', LINEAGE_GATEWAY_HTTP_PORT: '0', LINEAGE_GATEWAY_PG_PORT: '0', LINEAGE_ADMIN_TOKEN: adminToken }), silentLogger())
  t.teardown(running.stop)
  const b = running.listening.broker
  const admin = async (path: string, body?: unknown): Promise<any> => await (await fetch(b + path, { method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) })).json()
  await admin('/v1/principals', { id: 'alice', kind: 'human', grants: ['api:read'] })
  const c = await admin('/v1/principals/alice/clients')
  await admin('/v1/targets', { name: 'api', kind: 'http', upstream: up.url })
  const root = (await (await fetch(`${b}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'client_credentials', client_id: c.client_id, client_secret: c.client_secret }) })).json() as { access_token: string }).access_token

  // Another broker process rotates the keys, as POST /v1/keys/rotate does. This process's read
  // of the new key is held up behind a lock taken as the rotation commits, so that it has not
  // read it yet when a token that key signed comes to its gateway.
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  const jwk = await exportJWK(publicKey)
  const kid = await calculateJwkThumbprint(jwk)
  const other = new pg.Client({ connectionString: fresh.url })
  const holder = new pg.Client({ connectionString: fresh.url })
  await other.connect()
  await holder.connect()
  t.teardown(async () => { await other.end(); await holder.end() })
  await other.query('BEGIN')
  await other.query('UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL')
  await other.query('INSERT INTO signing_keys (kid, alg, private_pkcs8, public_jwk) VALUES ($1, $2, $3, $4)', [kid, 'EdDSA', await exportPKCS8(privateKey), JSON.stringify({ ...jwk, kid, alg: 'EdDSA', use: 'sig' })])
  const { rows } = await other.query<{ seq: number }>('UPDATE change_head SET seq = seq + 1 WHERE id = 1 RETURNING seq')
  await other.query('INSERT INTO changes (seq, kind, data) VALUES ($1, $2, $3)', [rows[0].seq, 'keys', '{}'])
  await holder.query('BEGIN')
  const locked = holder.query('LOCK TABLE signing_keys IN ACCESS EXCLUSIVE MODE')
  while ((await other.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 20))
  await other.query('COMMIT')
  await locked

  const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid })).toString('base64url')
  const input = `${header}.${root.split('.')[1]}`
  const token = `${input}.${sign(null, Buffer.from(input), createPrivateKey(await exportPKCS8(privateKey))).toString('base64url')}`
  const answer = fetch(`${running.listening.gateway_http}/api/hello`, { headers: { authorization: `Bearer ${token}` } })
  await new Promise((resolve) => setTimeout(resolve, 500))
  await holder.query('COMMIT')
  const r = await answer
  t.equal(r.status, 200, await r.clone().text())
})
