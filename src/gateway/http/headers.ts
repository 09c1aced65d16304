import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { Target } from '../targets.js'
import { originForm } from './request-target.js'
import { scopedCookies, scopedWorkerScope, targetLocation, type TargetPaths } from './target-paths.js'

// RFC 9110 §7.6.1: connection-specific headers never cross a proxy.
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/**
 * `headers` without hop-by-hop headers, the ones `Connection` names, and `drop` (lower-case
 * names with `-`), which is matched with every `_` in a name read as `-`: CGI, WSGI and Rack
 * servers turn both `Lineage-Subject` and `Lineage_Subject` into `HTTP_LINEAGE_SUBJECT`.
 */
export function forwardable (headers: IncomingHttpHeaders, drop: Set<string>): OutgoingHttpHeaders {
  // Headers the Connection header names are hop-by-hop too; it usually names none. An upstream's
  // may come in several lines (RFC 9110 §5.3), which undici hands over as an array.
  const connection: string | string[] | undefined = headers.connection
  const listed = connection === undefined || connection === 'keep-alive' || connection === 'close'
    ? undefined
    : new Set(String(connection).toLowerCase().split(',').map((s) => s.trim()))
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || hopByHop.has(name) || drop.has(name.includes('_') ? name.replace(/_/g, '-') : name) || listed?.has(name) === true) continue
    out[name] = value
  }
  return out
}

// Shorter target header values are labels (`X-Team: data`), not credentials, and would strike ordinary response headers.
const minSecretLength = 8

/**
 * What of a target's headers is a credential an upstream might send back: each value, the
 * credentials of an `Authorization`-style `<scheme> <credentials>` value on their own, and the
 * value of each `name=value` pair of a `Cookie`-style one (`session=…; theme=dark`) on its own,
 * each as it is and percent-encoded (RFC 3986 §2.1), as a redirect's `Location` carries it in a query.
 */
export function secretsOf (t: Target): string[] {
  const out = new Set<string>()
  for (const v of Object.values(t.headers)) {
    const value = v.trim()
    const space = value.indexOf(' ')
    const parts = space > 0 ? [value, value.slice(space + 1).trim()] : [value]
    for (const pair of value.split(';')) {
      const eq = pair.indexOf('=')
      if (eq > 0) parts.push(pair.slice(eq + 1).trim())
    }
    for (const s of parts) {
      out.add(s)
      out.add(encodeURIComponent(s))
    }
  }
  return [...out].filter((s) => s.length >= minSecretLength)
}

/**
 * `text` with each escape `%XX`, in either case, read as the byte it stands for (as Latin-1): what
 * an upstream encoded its own way (Python's `quote` keeps `/`, URLSearchParams and Java escape
 * `!'()`, some write `%2f`) is read as the same characters whatever the way.
 */
function unescaped (text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}

/**
 * `headers` without those whose value holds one of `secrets`, as it is or percent-encoded in any
 * way: an upstream that reflects the request's headers (a debug header, a redirect's `Location`
 * carrying them) would otherwise hand the agent the target's credential.
 */
function withoutSecrets (headers: OutgoingHttpHeaders, secrets: string[]): OutgoingHttpHeaders {
  if (secrets.length === 0) return headers
  const holds = (v: string): boolean => {
    if (secrets.some((s) => v.includes(s))) return true
    const plain = v.includes('%') ? unescaped(v) : v
    return plain !== v && secrets.some((s) => plain.includes(s))
  }
  for (const name in headers) {
    const value = headers[name]
    if (Array.isArray(value)) {
      const kept = value.filter((v) => !holds(v))
      if (kept.length === value.length) continue
      if (kept.length > 0) headers[name] = kept
      else delete headers[name]
    } else if (value !== undefined && holds(String(value))) {
      delete headers[name]
    }
  }
  return headers
}

const none = new Set<string>()

/**
 * What of an upstream's response headers reaches the agent, for a request to `requestUrl`:
 * no hop-by-hop header, none holding the target's credential (`secrets`), cookies and a service
 * worker's scope kept below the target, a redirect to the upstream itself pointed below it and one
 * to another target at the gateway (whose name the agent used: `host`) dropped (`paths`).
 */
export function answerHeaders (headers: IncomingHttpHeaders, secrets: string[], paths: TargetPaths, requestUrl: string, host: string | undefined): OutgoingHttpHeaders {
  const out = withoutSecrets(forwardable(headers, none), secrets)
  // A length the upstream gave in several lines, every one the same (`wire.ts` refuses others),
  // goes on once (RFC 9110 §8.6): Node's clients, fetch among them, refuse a second line.
  const length = out['content-length']
  if (Array.isArray(length)) out['content-length'] = length[0]
  const cookies = out['set-cookie']
  const worker = out['service-worker-allowed']
  if (cookies !== undefined || worker !== undefined) {
    const requestPath = originForm(requestUrl).split('?')[0]
    if (cookies !== undefined) out['set-cookie'] = scopedCookies(cookies as string | string[], paths, requestPath)
    if (worker !== undefined) out['service-worker-allowed'] = scopedWorkerScope(String(worker), paths, requestPath)
  }
  for (const name of ['location', 'content-location']) {
    const v = out[name]
    if (v === undefined) continue
    // Each is one URI (RFC 9110 §10.2.2, §8.7): several lines are read as one, joined with `, `, which names no place checked here.
    const at = typeof v === 'string' ? targetLocation(v, paths, originForm(requestUrl).split('?')[0] as string, host) : undefined
    if (at === undefined) delete out[name]
    else out[name] = at
  }
  return out
}
