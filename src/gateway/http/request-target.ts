import type { IncomingHttpHeaders } from 'node:http'
import { LineageError } from '../../errors.js'

export class BadRequest extends LineageError {
  constructor (description: string) { super('ERR_BAD_REQUEST', 'invalid_request', 400, description) }
}

export class MethodNotAllowed extends LineageError {
  constructor (description: string) { super('ERR_METHOD_NOT_ALLOWED', 'invalid_request', 405, description) }
}

/** An `Expect` other than 100-continue (RFC 9110 §10.1.1). */
export class ExpectationFailed extends LineageError {
  constructor (description: string) { super('ERR_EXPECTATION_FAILED', 'invalid_request', 417, description) }
}

/** A transfer coding the gateway does not pass on (RFC 9112 §6.1). */
export class NotImplemented extends LineageError {
  constructor (description: string) { super('ERR_NOT_IMPLEMENTED', 'invalid_request', 501, description) }
}

/**
 * Refuses a request body in a transfer coding other than chunked alone (RFC 9112 §6.1: 501).
 * Node reads the chunks of `gzip, chunked` and hands over what they hold, still gzip: passed on
 * as the content, the upstream would read compressed bytes as the body.
 * @throws NotImplemented
 */
export function checkTransferCoding (headers: IncomingHttpHeaders): void {
  const coding = headers['transfer-encoding']
  if (coding !== undefined && coding.trim().toLowerCase() !== 'chunked') throw new NotImplemented(`Transfer-Encoding ${coding.slice(0, 100)} is not supported; only chunked is`)
}

/**
 * What a 405 names in `Allow` (RFC 9110 §15.5.6 requires the field): the methods the gateway
 * forwards. An upstream may serve others too; they are forwarded as well, unlisted.
 */
export const allowedMethods = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

// RFC 9110 §9.3.8: TRACE has the final recipient echo the request it received, headers
// included; forwarded, that is the target's credential. TRACK is IIS's TRACE.
const echoes = new Set(['TRACE', 'TRACK'])

/** A request as the Host checks read it; `rawHeaders` (name, value, …) where node:http read it. */
interface HostedRequest { httpVersionMajor: number, httpVersionMinor: number, headers: IncomingHttpHeaders, rawHeaders?: string[] }

/** Whether the request's head names Host more than once: node:http keeps the first and drops the others unseen. */
function hostRepeated (rawHeaders: string[] | undefined): boolean {
  let seen = 0
  for (let i = 0; rawHeaders !== undefined && i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).length === 4 && (rawHeaders[i] as string).toLowerCase() === 'host' && ++seen > 1) return true
  return false
}

/**
 * Whether a request lacks the one Host field that RFC 9112 §3.2 requires of it: an HTTP/1.1
 * request without one, or any with more than one (a server MUST answer either 400; node:http
 * would keep the first Host, where a proxy in front may have read the last). Node's own check
 * is off so that the refusal is the gateway's, and recorded. The lane reads no head that names a header twice.
 */
export function lacksHost (req: HostedRequest): boolean {
  return (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) || hostRepeated(req.rawHeaders)
}

/** @throws BadRequest for an HTTP/1.1 request without Host, or one with more than one (RFC 9112 §3.2). */
export function checkHost (req: HostedRequest): void {
  if (hostRepeated(req.rawHeaders)) throw new BadRequest('a request with more than one Host header is refused (RFC 9112 §3.2)')
  if (lacksHost(req)) throw new BadRequest('an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)')
}

/**
 * Refuses the methods the gateway never forwards (CONNECT is answered by the listener).
 * @throws MethodNotAllowed for TRACE and TRACK, in any case.
 */
export function checkMethod (method: string): void {
  if (echoes.has(method.toUpperCase())) throw new MethodNotAllowed(`${method.toUpperCase()} is not served: the upstream would echo the target's credential`)
}

// Headers with which servers take another method or path than the request line's (method-override
// middleware, Symfony, ASP.NET; IIS URL rewriting): the policy would judge one request and the
// upstream run another.
const methodOverrides = ['x-http-method-override', 'x-http-method', 'x-method-override']
const pathOverrides = ['x-original-url', 'x-rewrite-url']

/**
 * Refuses a request whose headers or query (`query`, with its `?`) ask the upstream for another
 * method or path than the ones the gateway checks, the headers in their `_` spellings too (CGI,
 * WSGI and Rack servers read `X_HTTP_Method_Override` as `HTTP_X_HTTP_METHOD_OVERRIDE`, as they
 * read `X-HTTP-Method-Override`). An override naming the request's own method changes nothing and passes.
 * @throws BadRequest for such a header or query parameter.
 */
export function checkOverrides (method: string, headers: IncomingHttpHeaders, query = ''): void {
  for (const name in headers) {
    if (!name.startsWith('x')) continue
    const h = name.includes('_') ? name.replace(/_/g, '-') : name
    const v = headers[name]
    if (methodOverrides.includes(h) && v !== undefined && String(v).trim().toUpperCase() !== method) throw new BadRequest(`${name} is refused: the upstream would run another method than the one checked`)
    if (pathOverrides.includes(h)) throw new BadRequest(`${name} is refused: the upstream would serve another path than the one checked`)
  }
  // Laravel (Symfony's method parameter override, on by default) and Express's method-override
  // set to `_method` take the method of a POST from its query.
  if (query.length > 1 && mayNameMethod.test(query) && queryValues(query, '_method').some((v) => v.trim().toUpperCase() !== method)) {
    throw new BadRequest('the _method query parameter is refused: the upstream would run another method than the one checked')
  }
}

/** `text` with every occurrence of `token` (as written or percent-encoded) made `[token]`: for what is recorded of a request. */
export function withoutToken (text: string, token: string): string {
  if (text.includes(token)) return text.replaceAll(token, '[token]')
  let decoded: string
  try { decoded = decodeURIComponent(text) } catch { return text }
  return decoded.includes(token) ? decoded.replaceAll(token, '[token]') : text
}

/** Where the run of base64url characters (RFC 4648 §5) in `text` from `at` ends. */
function base64urlEnd (text: string, at: number): number {
  let i = at
  for (let c = text.charCodeAt(i); (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95; c = text.charCodeAt(++i));
  return i
}

/**
 * `text` with each JWS in compact form (RFC 7515 §7.1) whose header is a JSON object (`{"` is
 * `eyJ` in base64url), the shape of every token the broker issues, as `[token]`: header `.`
 * payload (not empty) `.` signature. In one pass: no token starts at a later `eyJ` in the run of
 * a header that starts none, as its header would end at the same place. (A regular expression
 * tried each `eyJ` of such a run to its end: time quadratic in the path.)
 */
function withoutTokenShapes (text: string): string {
  let out = ''
  let copied = 0
  let at = text.indexOf('eyJ')
  while (at >= 0) {
    const header = base64urlEnd(text, at + 3)
    const payload = text.charCodeAt(header) === 46 ? base64urlEnd(text, header + 1) : header
    if (payload > header + 1 && text.charCodeAt(payload) === 46) {
      // A token ends where its run of base64url and `.` does: one put right after text shaped
      // like a token's start (`eyJa.b.`) would have its header read as that text's signature,
      // and its claims and signature recorded as they are.
      let end = base64urlEnd(text, payload + 1)
      while (text.charCodeAt(end) === 46) end = base64urlEnd(text, end + 1)
      out += `${text.slice(copied, at)}[token]`
      copied = end
      at = text.indexOf('eyJ', end)
    } else at = text.indexOf('eyJ', header)
  }
  return copied === 0 ? text : out + text.slice(copied)
}

/**
 * `path` (normalized: the characters of a token are never left escaped) as the audit trail
 * records it: anything shaped like a token (the request's own, one sent in the path with no
 * `Authorization`, or beside another) as `[token]`. Every token the broker issues has that shape;
 * the request's bearer is not looked for as given, as a made-up one (`Bearer e`, `Bearer /`)
 * would have the path recorded with every place it occurs replaced.
 */
export function recordedPath (path: string): string {
  return path.includes('eyJ') ? withoutTokenShapes(path) : path
}

/**
 * Refuses a request that carries its bearer token `token` anywhere but `Authorization`: in the
 * path (as written or percent-encoded), in the query under another name than `access_token`,
 * or in another header (a cookie, `X-Api-Key`). The gateway passes those on, and the upstream
 * would get a token it could use at the gateway.
 * @throws BadRequest
 */
export function checkTokenElsewhere (token: string, query: string, headers: IncomingHttpHeaders, path = ''): void {
  if (withoutToken(path, token) !== path) throw new BadRequest('the bearer token is refused in the path: the upstream would get it; send it in Authorization only')
  if (query.includes(token)) throw new BadRequest('tokens in the query string are refused; send Authorization: Bearer')
  for (const name in headers) {
    if (name !== 'authorization' && String(headers[name]).includes(token)) throw new BadRequest(`the bearer token is refused in ${name}: the upstream would get it; send it in Authorization only`)
  }
}

const absoluteForm = /^https?:\/\/[^/?#]*/i

/**
 * The origin-form of a request target (RFC 9112 §3.2.1): an absolute-form one
 * (`http://host/api/x?y`, as a client set to use a proxy sends it) loses its scheme and
 * authority, which a server must accept (§3.2.2) and which name the gateway itself here. The
 * path is taken as written, dot segments and all, for `parseRequestTarget` to judge.
 * Anything else is returned as it is.
 */
export function originForm (url: string): string {
  const m = absoluteForm.exec(url)
  if (m === null) return url
  const rest = url.slice(m[0].length)
  return rest.startsWith('/') ? rest : `/${rest}`
}

/** Where a gateway request goes: the target's name, the upstream path and the raw query. */
export interface RequestTarget {
  target: string
  /**
   * The path below the target, starting with `/`, still percent-encoded but normalized (RFC
   * 3986 §6.2.2): unreserved characters decoded, other escapes in upper case. The policy
   * judges this path and the upstream is sent this path.
   */
  path: string
  /** The raw query including `?`, or empty. */
  query: string
}

// RFC 3986 §2.3: percent-encoding these changes nothing, so they are decoded.
const unreserved = /^[A-Za-z0-9._~-]$/
const escape = /%(..?)?/g
const hex2 = /^[0-9A-Fa-f]{2}$/

/** `path` with unreserved characters decoded and other escapes upper-cased. @throws BadRequest on a malformed escape */
function normalizeEscapes (path: string): string {
  return path.replace(escape, (_m, hex: string | undefined) => {
    if (hex === undefined || !hex2.test(hex)) throw new BadRequest('malformed percent-encoding in the path')
    const ch = String.fromCharCode(parseInt(hex, 16))
    return unreserved.test(ch) ? ch : `%${hex.toUpperCase()}`
  })
}

/** Whether a path segment is `.` or `..`, also with `;parameters` (which some servers strip). */
function isDotSegment (segment: string): boolean {
  const semi = segment.indexOf(';')
  const bare = semi < 0 ? segment : segment.slice(0, semi)
  return bare === '.' || bare === '..'
}

const mayNameToken = /token|%/i
const mayNameMethod = /method|%/i

/** Decodes a query name or value as a form does (`+` a space); left as it is when malformed. */
function formDecoded (text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    return text
  }
}

/**
 * The values of the query's parameters named `name`, in any case, encoded or not, after `&` or
 * `;`, also as PHP reads a name: a `.` or a space in it is `_` (`.method` is `$_GET['_method']`).
 */
function queryValues (query: string, name: string): string[] {
  const out: string[] = []
  for (const part of query.slice(1).split(/[&;]/)) {
    const eq = part.indexOf('=')
    if (formDecoded(eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase().replace(/[. ]/g, '_') === name) out.push(eq < 0 ? '' : formDecoded(part.slice(eq + 1)))
  }
  return out
}

/** Whether the query names a parameter `access_token`, in any case, encoded or not, after `&` or `;`. */
function carriesToken (query: string): boolean {
  return mayNameToken.test(query) && queryValues(query, 'access_token').length > 0
}

/**
 * Splits `/<target>/<path>?<query>` without resolving dot segments: a resolving parser would
 * turn `/a/../b/x` into a request for target `b`. Dot segments, encoded slashes and
 * backslashes are refused outright, since the upstream might read them differently from the
 * policy's `paths`, and so is a `#` anywhere; escapes of unreserved characters are decoded, so `/%61dmin` is `/admin`
 * to the policy and to the upstream alike. A token in the query is refused (RFC 6750 §5.3: it
 * leaks into logs and history).
 * @returns undefined when the URL names no target.
 * @throws BadRequest
 */
export function parseRequestTarget (url: string): RequestTarget | undefined {
  if (!url.startsWith('/')) throw new BadRequest('the request target must be an absolute path')
  // RFC 9112 §3.2.1: origin-form is a path and a query, never a fragment. A server that cuts
  // the target at `#` would read `/x#/admin` as `/x` where the policy judged the whole.
  if (url.includes('#')) throw new BadRequest('a fragment (#) is refused in the request target')
  const q = url.indexOf('?')
  let rawPath = q < 0 ? url : url.slice(0, q)
  const query = q < 0 ? '' : url.slice(q)
  // The checks below run only when the characters they look for are there at all.
  if (rawPath.includes('%')) rawPath = normalizeEscapes(rawPath)
  if ((rawPath.includes('%') || rawPath.includes('\\')) && /%2F|%5C|\\/.test(rawPath)) throw new BadRequest('encoded slashes and backslashes are refused in paths')
  if (rawPath.includes('.') && rawPath.split('/').some(isDotSegment)) throw new BadRequest('dot segments (. and ..) are refused in paths')
  if (query.length > 1 && carriesToken(query)) throw new BadRequest('tokens in the query string are refused; send Authorization: Bearer')
  const slash = rawPath.indexOf('/', 1)
  const target = slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash)
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(target)) return undefined
  return { target, path: slash < 0 ? '/' : rawPath.slice(slash), query }
}
