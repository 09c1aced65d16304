import { Conflict, InvalidInput, NotFound } from '../errors.js'
import { appendChange } from '../lineage/changes.js'
import { isTargetName } from '../lineage/scopes.js'
import type { Db, Queryable } from '../storage/db.js'
import { parsePolicy, type Policy } from './policy.js'
import { sslModeProblem } from './pg/upstream-tls.js'

export type TargetKind = 'http' | 'postgres' | 'ssh'

/** A target as the gateway uses it, credentials included. Never serialized to a caller. */
export interface Target {
  name: string
  kind: TargetKind
  upstream: URL
  /** Headers added to every upstream request: the upstream credential lives here. */
  headers: Record<string, string>
  policy: Policy
  /** postgres: record each statement's text, or only its fingerprint. */
  auditStatements: 'text' | 'fingerprint'
}

/** A target as the admin API shows it: no header values, no password in the upstream. */
export interface TargetView {
  name: string
  kind: TargetKind
  upstream: string
  header_names: string[]
  policy: Policy
  audit_statements: 'text' | 'fingerprint'
  created_at: string
  updated_at: string
}

interface TargetRow { name: string, kind: TargetKind, upstream: string, headers: Record<string, string>, policy: Policy, audit_statements: 'text' | 'fingerprint', created_at: Date, updated_at: Date }

const protocols: Record<TargetKind, string[]> = { http: ['http:', 'https:'], postgres: ['postgres:', 'postgresql:'], ssh: ['ssh:'] }
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/
// Headers the gateway owns: a target may not set them. (`expect`: the gateway answers 100-continue
// itself, and its upstream client refuses to send one.)
const reserved = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-connection', 'expect', 'lineage-subject', 'lineage-actor'])

function checkUpstream (kind: TargetKind, raw: unknown): URL {
  if (typeof raw !== 'string' || raw.length > 2048) throw new InvalidInput('upstream must be a URL')
  let u: URL
  try { u = new URL(raw) } catch { throw new InvalidInput('upstream must be a URL') }
  if (!protocols[kind].includes(u.protocol)) throw new InvalidInput(`a ${kind} target's upstream must use ${protocols[kind].join(' or ')}`)
  if (u.hash !== '') throw new InvalidInput('upstream must not have a fragment')
  if (kind === 'postgres') {
    // The gateway logs in with the user, password and database decoded: one not valid percent-encoding
    // (a bare `%` in a password) would fail every login as an internal error.
    for (const [part, text] of [['user', u.username], ['password', u.password], ['database', u.pathname]]) {
      try { decodeURIComponent(text) } catch { throw new InvalidInput(`upstream: the ${part} is not valid percent-encoding: write % as %25`) }
    }
    const tls = sslModeProblem(u)
    if (tls !== undefined) throw new InvalidInput(`upstream: ${tls}`)
    // The query is shown with the target (only the URL's own password is hidden).
    const secret = ['password', 'sslpassword'].find((p) => u.searchParams.has(p))
    if (secret !== undefined) throw new InvalidInput(`upstream: put the password in the URL (postgres://user:password@host/db), not in its query as ${secret}: the query is shown`)
  }
  if (kind === 'http' && (u.username !== '' || u.password !== '')) throw new InvalidInput('put http credentials in headers, not in the upstream URL')
  // The gateway sends each request with the agent's own query: an upstream's would never be sent.
  if (kind === 'http' && u.search !== '') throw new InvalidInput('an http upstream must not have a query: put credentials in headers')
  return u
}

function checkHeaders (kind: TargetKind, raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidInput('headers must be an object of name: value')
  if (kind !== 'http' && Object.keys(raw).length > 0) throw new InvalidInput('headers are for http targets')
  const out = new Map<string, string>()
  for (const [name, value] of Object.entries(raw)) {
    const key = name.toLowerCase()
    if (!headerName.test(name) || key === '__proto__') throw new InvalidInput(`header name ${name.slice(0, 64)} is not a token`)
    if (reserved.has(key)) throw new InvalidInput(`header ${name} is set by the gateway`)
    if (out.has(key)) throw new InvalidInput(`header ${name} is given twice`)
    // RFC 9110 §5.5: field-vchar, SP and HTAB; the upstream client sends nothing else (a control
    // character, a character past Latin-1), so such a value would fail every request with a 502.
    if (typeof value !== 'string' || value.length > 8192 || /[^\t\x20-\x7e\x80-\xff]/.test(value)) throw new InvalidInput(`header ${name} must be a single-line string of visible Latin-1 characters, spaces and tabs`)
    out.set(key, value)
  }
  return Object.fromEntries(out)
}

/** Parses and checks a target body. @throws InvalidInput */
export function parseTarget (name: string, body: Record<string, unknown>): Omit<Target, 'upstream'> & { upstream: URL } {
  if (!isTargetName(name)) throw new InvalidInput('name must be 1-63 characters: lowercase letters, digits, _ . -')
  const kind = body.kind
  if (kind !== 'http' && kind !== 'postgres' && kind !== 'ssh') throw new InvalidInput('kind must be http, postgres or ssh')
  return { name, kind, upstream: checkUpstream(kind, body.upstream), headers: checkHeaders(kind, body.headers), policy: parsePolicy(body.policy, kind), auditStatements: checkAuditStatements(kind, body.audit_statements) }
}

function checkAuditStatements (kind: TargetKind, raw: unknown): 'text' | 'fingerprint' {
  if (raw === undefined || raw === null) return 'text'
  if (raw !== 'text' && raw !== 'fingerprint') throw new InvalidInput('audit_statements must be text or fingerprint')
  if (kind !== 'postgres' && raw !== 'text') throw new InvalidInput('audit_statements is for postgres targets')
  return raw
}

function withoutPassword (upstream: string): string {
  const u = new URL(upstream)
  if (u.password !== '') u.password = ''
  return u.toString()
}

function present (r: TargetRow): TargetView {
  return {
    name: r.name,
    kind: r.kind,
    upstream: withoutPassword(r.upstream),
    header_names: Object.keys(r.headers).sort(),
    policy: r.policy,
    audit_statements: r.audit_statements,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString()
  }
}

export function toTarget (r: Pick<TargetRow, 'name' | 'kind' | 'upstream' | 'headers' | 'policy' | 'audit_statements'>): Target {
  return { name: r.name, kind: r.kind, upstream: new URL(r.upstream), headers: r.headers, policy: r.policy, auditStatements: r.audit_statements }
}

const columns = 'name, kind, upstream, headers, policy, audit_statements, created_at, updated_at'

async function write (db: Db, sql: string, params: unknown[], name: string): Promise<TargetRow | undefined> {
  return await db.tx(async (q) => {
    const { rows } = await q.query<TargetRow>(sql, params)
    if (rows.length > 0) await appendChange(q, { kind: 'target', data: { name } })
    return rows[0]
  })
}

/** @throws InvalidInput, Conflict */
export async function createTarget (db: Db, body: Record<string, unknown>): Promise<TargetView> {
  if (typeof body.name !== 'string') throw new InvalidInput('name is required')
  const t = parseTarget(body.name, body)
  const row = await write(db, `INSERT INTO targets (name, kind, upstream, headers, policy, audit_statements) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (name) DO NOTHING RETURNING ${columns}`, [t.name, t.kind, t.upstream.toString(), JSON.stringify(t.headers), JSON.stringify(t.policy), t.auditStatements], t.name)
  if (row === undefined) throw new Conflict(`target ${t.name} already exists`)
  return present(row)
}

/** Replaces a target's definition. @throws InvalidInput, NotFound */
export async function replaceTarget (db: Db, name: string, body: Record<string, unknown>): Promise<TargetView> {
  if (body.name !== undefined && body.name !== name) throw new InvalidInput('name cannot be changed')
  const t = parseTarget(name, body)
  const row = await write(db, `UPDATE targets SET kind = $2, upstream = $3, headers = $4, policy = $5, audit_statements = $6, updated_at = now() WHERE name = $1 RETURNING ${columns}`,
    [name, t.kind, t.upstream.toString(), JSON.stringify(t.headers), JSON.stringify(t.policy), t.auditStatements], name)
  if (row === undefined) throw new NotFound(`target ${name} not found`)
  return present(row)
}

/** @throws NotFound */
export async function getTarget (db: Queryable, name: string): Promise<TargetView> {
  const { rows } = await db.query<TargetRow>(`SELECT ${columns} FROM targets WHERE name = $1`, [name])
  if (rows.length === 0) throw new NotFound(`target ${name} not found`)
  return present(rows[0])
}

/** @throws NotFound */
export async function deleteTarget (db: Db, name: string): Promise<void> {
  const row = await write(db, `DELETE FROM targets WHERE name = $1 RETURNING ${columns}`, [name], name)
  if (row === undefined) throw new NotFound(`target ${name} not found`)
}

/**
 * Every target, in memory, for the gateway's request path. Reloads one target when the change
 * log says it changed; never reads per request.
 *
 * Reads run on a pool and may answer out of order: two saves in quick succession start two
 * reloads, and the first one's answer, the older definition, can come last. Each read takes a
 * ticket when it starts, and a name keeps the answer of the latest read that covered it.
 */
export class TargetDirectory {
  private readonly targets = new Map<string, Target>()
  private tickets = 0
  /** By name, the ticket of the read whose answer the name holds. */
  private readonly applied = new Map<string, number>()
  /** The ticket of the last whole load applied: a name it did not find, and no later read did, is gone. */
  private loaded = 0

  constructor (private readonly db: Queryable) {}

  async load (): Promise<void> {
    const ticket = ++this.tickets
    const { rows } = await this.db.query<TargetRow>(`SELECT ${columns} FROM targets`)
    if (ticket < this.loaded) return
    this.loaded = ticket
    const found = new Set<string>()
    for (const r of rows) {
      found.add(r.name)
      this.apply(r.name, ticket, toTarget(r))
    }
    for (const name of [...this.targets.keys()]) if (!found.has(name)) this.apply(name, ticket, undefined)
    // The load covers every name, the ones it did not find included: tickets it supersedes need no keeping.
    for (const [name, applied] of this.applied) if (applied <= ticket) this.applied.delete(name)
  }

  async reload (name: string): Promise<void> {
    const ticket = ++this.tickets
    const { rows } = await this.db.query<TargetRow>(`SELECT ${columns} FROM targets WHERE name = $1`, [name])
    this.apply(name, ticket, rows.length === 0 ? undefined : toTarget(rows[0]))
  }

  /**
   * Keeps `t` (undefined: no such target) under `name` unless a later read's answer is there
   * already, a whole load's included: one that did not find the name answered for it too.
   */
  private apply (name: string, ticket: number, t: Target | undefined): void {
    if (ticket < Math.max(this.applied.get(name) ?? 0, this.loaded)) return
    if (t === undefined) this.targets.delete(name)
    else this.targets.set(name, t)
    this.applied.set(name, ticket)
  }

  get (name: string): Target | undefined {
    return this.targets.get(name)
  }
}
