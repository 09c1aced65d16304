import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Agent } from 'node:http'
import { randomBytes } from 'node:crypto'
import { spawnUntil, type Child } from './child.js'
import { jsonOf, postForm, send } from './http.js'

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
export const tokenExchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token'

export interface LineageProcess {
  /** Base URL of the broker listener. */
  url: string
  /** Every listener the process announced (`broker`, `gateway_http`, `gateway_pg`). */
  listening: Record<string, string>
  adminToken: string
  child: Child
  stop: () => Promise<void>
}

/**
 * Starts `node --import tsx src/main.ts` on `databaseUrl` with a free port, and resolves once it
 * prints its `{"listening":…}` line. `nodeArgs` go before `--import` (e.g. `--cpu-prof`); `env`
 * adds or overrides variables (e.g. `LINEAGE_ROLE`, `REDIS_URL`). A gateway-only process has no
 * broker listener: its `url` is then its HTTP gateway's.
 */
export async function startLineage (databaseUrl: string, nodeArgs: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<LineageProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lineage-bench-'))
  const adminToken = `ladm_bench_${randomBytes(24).toString('hex')}`
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LINEAGE_BROKER_PORT: '0',
    LINEAGE_GATEWAY_HTTP_PORT: '0',
    LINEAGE_GATEWAY_PG_PORT: '0',
    DATABASE_URL: databaseUrl,
    LINEAGE_ADMIN_TOKEN: adminToken,
    LINEAGE_LOG_LEVEL: 'warn',
    LINEAGE_DATA_DIR: dataDir,
    ...extraEnv
  }
  try {
    const { child, value } = await spawnUntil(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/main.ts'], {
      cwd: repoRoot,
      env,
      timeoutMs: 30_000,
      match: listeningLine
    })
    return { url: value.broker, listening: value, adminToken, child, stop: async () => { await child.stop(); await rm(dataDir, { recursive: true, force: true }) } }
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true })
    throw err
  }
}

function listeningLine (line: string): Record<string, string> & { broker: string } | undefined {
  if (!line.startsWith('{"listening"')) return undefined
  const listening = (JSON.parse(line) as { listening: Record<string, string> }).listening
  const base = listening.broker ?? listening.gateway_http
  return typeof base === 'string' ? { ...listening, broker: base } : undefined
}

/** Calls the `/v1` admin API with a JSON body; fails unless the status is `expected`. */
export async function admin<T> (agent: Agent, l: LineageProcess, method: string, path: string, body: unknown, expected: number): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${l.adminToken}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const r = await send(agent, method, new URL(path, l.url), body === undefined ? undefined : JSON.stringify(body), headers)
  return jsonOf<T>(r, expected, `${method} ${path}`)
}

export interface ServiceClient {
  human: string
  service: string
  clientId: string
  clientSecret: string
}

/** Creates a human with `grants`, a service it sponsors with the same grants, and a client for the service. */
export async function seedService (agent: Agent, l: LineageProcess, human: string, service: string, grants: string[]): Promise<ServiceClient> {
  await admin(agent, l, 'POST', '/v1/principals', { id: human, kind: 'human', email: `${human}@example.com`, grants }, 201)
  await admin(agent, l, 'POST', '/v1/principals', { id: service, kind: 'service', sponsor: human, grants }, 201)
  const c = await admin<{ client_id: string, client_secret: string }>(agent, l, 'POST', `/v1/principals/${service}/clients`, undefined, 201)
  return { human, service, clientId: c.client_id, clientSecret: c.client_secret }
}

/** A root token for the service by `client_credentials` (client_secret_basic). */
export async function rootToken (agent: Agent, l: LineageProcess, c: ServiceClient): Promise<string> {
  const basic = Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`).toString('base64')
  const r = await postForm(agent, new URL('/oauth/token', l.url), { grant_type: 'client_credentials' }, { authorization: `Basic ${basic}` })
  return jsonOf<{ access_token: string }>(r, 200, 'client_credentials').access_token
}

/** One RFC 8693 exchange of `subject`; fails unless it answers 200. */
export async function exchange (agent: Agent, l: LineageProcess, subject: string, extra: Record<string, string | string[]> = {}): Promise<string> {
  const r = await postForm(agent, new URL('/oauth/token', l.url), { grant_type: tokenExchangeGrant, subject_token: subject, subject_token_type: accessTokenType, ...extra })
  return jsonOf<{ access_token: string }>(r, 200, 'token exchange').access_token
}

/** RFC 7662 introspection authenticated with the admin bearer token. */
export async function introspectActive (agent: Agent, l: LineageProcess, token: string): Promise<boolean> {
  const r = await postForm(agent, new URL('/oauth/introspect', l.url), { token }, { authorization: `Bearer ${l.adminToken}` })
  return jsonOf<{ active: boolean }>(r, 200, 'introspect').active
}
