import { hash } from 'node:crypto'
import { actorsOf, rootOf, type AccessClaims } from '../lineage/claims.js'

/** One audit event, as the code that decides records it. */
export interface AuditEvent {
  at: number
  kind: 'token.issued' | 'token.refused' | 'token.revoked' | 'principal.status' | 'admin.change' | 'gateway.http' | 'gateway.pg' | 'audit.dropped'
  decision?: 'allow' | 'deny'
  status?: number
  target?: string
  method?: string
  path?: string
  jti?: string
  root?: string
  principals?: string[]
  actors?: string[]
  detail?: Record<string, unknown>
}

/** What an audit record names of a token's lineage. */
export interface AuditLineage { jti: string, root: string, principals: string[], actors: string[] }

// Worked out once per verified token (the verified-token cache hands out the same claims object).
const lineages = new WeakMap<AccessClaims, AuditLineage>()

/** The token's `jti`, its chain's root, every principal and every actor, as audit records name them. */
export function auditLineage (claims: AccessClaims): AuditLineage {
  let l = lineages.get(claims)
  if (l === undefined) {
    l = { jti: claims.jti, root: rootOf(claims), principals: claims.lineage.principals, actors: actorsOf(claims.act) }
    lineages.set(claims, l)
  }
  return l
}

// NUL, which PostgreSQL text and jsonb cannot hold, and surrogate code units (paired or lone).
const suspect = /[\0\ud800-\udfff]/
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const loneSurrogates = new RegExp(loneSurrogate.source, 'g')

function unstorableText (s: string): boolean {
  return suspect.test(s) && (s.includes('\0') || loneSurrogate.test(s))
}

/** Whether any string in `v`, key or value, cannot be stored. Allocates nothing: it runs for every record. */
function unstorable (v: unknown): boolean {
  if (typeof v === 'string') return unstorableText(v)
  if (typeof v !== 'object' || v === null) return false
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (unstorable(v[i])) return true
    return false
  }
  for (const k in v) if (unstorableText(k) || unstorable((v as Record<string, unknown>)[k])) return true
  return false
}

function clean (v: unknown): unknown {
  if (typeof v === 'string') return v.replaceAll('\0', '\ufffd').replace(loneSurrogates, '\ufffd')
  if (Array.isArray(v)) return v.map(clean)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [clean(k), clean(x)]))
  return v
}

/**
 * The event as it can be stored: NUL and lone surrogates (which PostgreSQL refuses, and which
 * would stop every later record behind this one) become U+FFFD. The same event when there are
 * none, as there almost never are.
 */
export function storable (e: AuditEvent): AuditEvent {
  return unstorable(e) ? clean(e) as AuditEvent : e
}

/** An event with its place in the chain. */
export interface AuditRecord extends AuditEvent {
  seq: number
  hash: string
}

/** JSON with object keys sorted, so a value reads back from jsonb to the same text. */
function sorted (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted)
  if (typeof v !== 'object' || v === null) return v
  const keys = Object.keys(v)
  // Most details are small flat objects whose keys are already in order: nothing to rebuild.
  let flatAndOrdered = true
  for (let i = 0; i < keys.length && flatAndOrdered; i++) {
    const x = (v as Record<string, unknown>)[keys[i]]
    flatAndOrdered = (i === 0 || keys[i - 1] < keys[i]) && (typeof x !== 'object' || x === null)
  }
  if (flatAndOrdered) return v
  return Object.fromEntries(keys.sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]))
}

// The last second formatted, `YYYY-MM-DDTHH:MM:SS.`: events come in bursts within one second.
let isoSecond = Number.NaN
let isoPrefix = ''

/** `new Date(ms).toISOString()`, without formatting the date again for each event of the same second. */
export function isoTime (ms: number): string {
  const t = Math.floor(ms)
  // Four-digit years only; anything else takes the long way (and throws as it does).
  if (!(t >= 0 && t < 253402300800000)) return new Date(ms).toISOString()
  const second = Math.floor(t / 1000)
  if (second !== isoSecond) {
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20)
    isoSecond = second
  }
  const milli = t - second * 1000
  return `${isoPrefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`
}

/**
 * The fields a record's hash covers (`at`: `isoTime(e.at)`), as the JSON text of the array that
 * follows its number and the previous hash, without that array's `[`: worked out before a batch's
 * writer takes the chain's lock, so that holding it the writer only joins and hashes.
 */
export function hashedFields (e: AuditEvent, at: string): string {
  return JSON.stringify([at, e.kind, e.decision ?? null, e.status ?? null, e.target ?? null, e.method ?? null,
    e.path ?? null, e.jti ?? null, e.root ?? null, e.principals ?? [], e.actors ?? [], sorted(e.detail ?? {})]).slice(1)
}

/** SHA-256 over `[seq, prev, ...fields]` as JSON text: the record's number, the previous record's hash and `hashedFields`. */
export function chainHashOf (seq: number, prev: string, fields: string): string {
  return hash('sha256', `[${seq},${JSON.stringify(prev)},${fields}`, 'hex')
}

/** SHA-256 over the previous record's hash and this record's fields. */
export function chainHash (seq: number, e: AuditEvent, prev: string, at = isoTime(e.at)): string {
  return chainHashOf(seq, prev, hashedFields(e, at))
}

export const genesisHash = '0'.repeat(64)
