import { hostname } from 'node:os'

/** What `lineage exchange` and `lineage exec` ask for. */
export interface ExchangeOptions {
  scope?: string
  audience: string[]
  actor?: string
  ttl?: string
}

/** An error answer from the broker, with the contract's `error` code. */
export class BrokerError extends Error {
  constructor (readonly status: number, readonly error: string, description: string) {
    super(`${error}: ${description}`)
    this.name = 'BrokerError'
  }
}

/** The CI run this process belongs to, from the usual CI variables. */
export function ciRun (env: Record<string, string | undefined>): string | undefined {
  for (const name of ['GITHUB_RUN_ID', 'CI_JOB_ID', 'BUILDKITE_BUILD_ID', 'CIRCLE_WORKFLOW_ID', 'BUILD_ID', 'CI_RUN_ID']) {
    const v = env[name]
    if (v !== undefined && v !== '') return `${name}=${v}`.slice(0, 256)
  }
  return undefined
}

/**
 * Exchanges `subjectToken` at `brokerUrl` for a child token (RFC 8693), telling the broker who
 * asks: host, process id and CI run.
 * @throws BrokerError with the broker's error code.
 */
export async function exchangeToken (brokerUrl: string, subjectToken: string, opts: ExchangeOptions, env: Record<string, string | undefined>): Promise<{ access_token: string, scope: string, expires_in: number }> {
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: subjectToken,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    actor_host: hostname().slice(0, 256) || 'unknown',
    actor_pid: String(process.pid)
  })
  if (opts.scope !== undefined) form.set('scope', opts.scope)
  for (const a of opts.audience) form.append('audience', a)
  if (opts.actor !== undefined) form.set('actor', opts.actor)
  if (opts.ttl !== undefined) form.set('ttl', opts.ttl)
  const run = ciRun(env)
  if (run !== undefined) form.set('actor_run', run)
  let res: Response
  try {
    res = await fetch(endpoint(brokerUrl, '/oauth/token'), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })
  } catch (err) {
    throw unreachable(brokerUrl, err)
  }
  const body = await res.json().catch(() => ({})) as Record<string, string>
  if (res.status !== 200) throw new BrokerError(res.status, body.error ?? 'server_error', body.error_description ?? `HTTP ${res.status}`)
  expectFields(brokerUrl, res, body, ['access_token'])
  return body as unknown as { access_token: string, scope: string, expires_in: number }
}

/**
 * Checks that a success answer holds what the broker's would (`fields`). Another server at
 * LINEAGE_URL (a web app answering every path with 200 and a page) would otherwise have the
 * CLI print `undefined` as a token, run a command with none, or report the audit trail broken.
 * @throws BrokerError
 */
function expectFields (brokerUrl: string, res: Response, body: unknown, fields: string[]): void {
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && fields.every((f) => (body as Record<string, unknown>)[f] !== undefined)) return
  const type = res.headers.get('content-type') ?? 'no content type'
  throw new BrokerError(res.status, 'unexpected_answer', `${brokerUrl} answered HTTP ${res.status} (${type.slice(0, 100)}) without the broker's ${fields.join(', ')}: is LINEAGE_URL the broker?`)
}

/** `path` below the broker's URL, which may itself have a path (a broker behind a prefix: `https://host/lineage`). */
export function endpoint (brokerUrl: string, path: string): URL {
  const base = new URL(brokerUrl)
  const q = path.indexOf('?')
  base.pathname = base.pathname.replace(/\/+$/, '') + (q < 0 ? path : path.slice(0, q))
  base.search = q < 0 ? '' : path.slice(q)
  return base
}

/**
 * Calls an admin endpoint with the admin token; its answer must hold `fields`.
 * @throws BrokerError
 */
export async function adminCall (brokerUrl: string, adminToken: string, method: string, path: string, fields: string[], body?: Record<string, unknown>): Promise<unknown> {
  let res: Response
  try {
    const headers: Record<string, string> = { authorization: `Bearer ${adminToken}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    res = await fetch(endpoint(brokerUrl, path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  } catch (err) {
    throw unreachable(brokerUrl, err)
  }
  const answer = await res.json().catch(() => ({})) as Record<string, string>
  if (res.status >= 300) throw new BrokerError(res.status, answer.error ?? 'server_error', answer.error_description ?? `HTTP ${res.status}`)
  expectFields(brokerUrl, res, answer, fields)
  return answer
}

/**
 * Revokes `token` with itself as the caller (RFC 7009 §2.1: a token may revoke itself), and
 * with it every token below it. Best effort: resolves false when the broker did not confirm.
 */
export async function revokeOwn (brokerUrl: string, token: string): Promise<boolean> {
  try {
    const res = await fetch(endpoint(brokerUrl, '/oauth/revoke'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString()
    })
    return res.status === 200
  } catch {
    return false
  }
}

/**
 * The error for a broker that did not answer. fetch says only "fetch failed"; the system's
 * reason (ECONNREFUSED, ENOTFOUND, a port fetch refuses) is in its `cause`.
 */
function unreachable (brokerUrl: string, err: unknown): BrokerError {
  const cause = (err as { cause?: { code?: unknown, message?: unknown } }).cause
  const reason = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : (err as Error).message
  return new BrokerError(0, 'unreachable', `cannot reach the broker at ${brokerUrl}: ${reason}`)
}
