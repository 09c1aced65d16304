import { METHODS, type IncomingHttpHeaders } from 'node:http'

/**
 * Strict readers of HTTP/1.1 heads (RFC 9112 §2–§7) for the gateway's bare-socket data path:
 * the agents' requests in `lane.ts`, the upstreams' responses in `raw-connection.ts`. Strict means
 * they take a narrow, unambiguous subset and say no to the rest. A request they do not take is
 * not refused: its connection goes to node:http, which answers it as it answers any other. A
 * response they do not take fails its exchange (502), as one undici could not read would.
 * Written by hand because no library parses a head from a buffer without owning the socket
 * (llhttp, as Node and undici ship it, comes only with their own servers and clients).
 */

/** The most a head may take, as node:http's `maxHeaderSize` in the gateway (16 KiB). */
export const maxHeadBytes = 16 * 1024
/**
 * The most header lines a request head the lane reads may have (one with more goes to node:http,
 * which takes 2000). A response's are bounded by `maxHeadBytes` alone, as undici bounds them: an
 * upstream that sets many cookies is answered through either client alike.
 */
const maxRequestLines = 100

const headEnd = Buffer.from('\r\n\r\n')
const httpPrefix = Buffer.from('HTTP/1.')
// RFC 9110 §5.1 field names: tokens.
const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Field values: visible ASCII, space and tab only for requests (obs-text goes to node:http);
// responses may hold obs-text (RFC 9110 §5.5), which node:http also passes on.
const requestValue = /^[\t\x20-\x7e]*$/
const responseValue = /^[\t\x20-\x7e\x80-\xff]*$/
// Request targets in origin form whose characters no parser reads two ways: no space, no
// control character, none that RFC 3986 excludes (", <, >, \, ^, `, {, |, }), no fragment.
const originTarget = /^\/[!$%&'()*+,\-./0-9:;=?@A-Z[\]_a-z~]*$/
// The methods node:http reads as requests: it refuses any other (400), and CONNECT, even in
// origin form, goes to its 'connect' listener, never to the upstream.
const methods = new Set(METHODS.filter((m) => m !== 'CONNECT'))

/**
 * Where the head in `buf` ends, past its blank line; -1 while it is incomplete, -2 when it is
 * past `maxHeadBytes`. `searched`: bytes at its start already known to hold no end.
 */
export function headLength (buf: Buffer, searched = 0): number {
  const at = buf.indexOf(headEnd, Math.max(0, searched - 3))
  if (at >= 0) return at + 4 <= maxHeadBytes ? at + 4 : -2
  return buf.length >= maxHeadBytes ? -2 : -1
}

/**
 * Whether `buf`, a response head not yet whole, can never become one `readResponseHead` takes,
 * however much follows: it does not start as a status line does (another protocol's banner, an
 * SSH or a Redis server's), its first line is whole and no status line, or it ends a line with LF
 * alone (its lines end in CRLF). Refused at once, as undici refuses it, not awaited until the
 * headers time. A CR that ends `buf` may be half a CRLF.
 */
export function neverResponseHead (buf: Buffer): boolean {
  const n = Math.min(buf.length, httpPrefix.length)
  if (buf.compare(httpPrefix, 0, n, 0, n) !== 0) return true
  const eol = buf.indexOf('\r\n')
  if (eol >= 0 && !statusLine.test(buf.toString('latin1', 0, eol))) return true
  for (let at = buf.indexOf(10); at >= 0; at = buf.indexOf(10, at + 1)) if (at === 0 || buf[at - 1] !== 13) return true
  return false
}

/** `s` without the OWS (spaces, tabs) at either end; a loop, as a regular expression for the end takes time quadratic in a run of spaces. */
function trimOws (s: string): string {
  let start = 0
  let end = s.length
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--
  return s.slice(start, end)
}

/**
 * The header lines of a head (after its first line), lower-cased names, as node:http and
 * undici hand them over: a name seen twice becomes an array. `undefined` for a line that is
 * not `name: value` (obs-fold included) or a value `valid` refuses.
 */
function headerLines (lines: string[], valid: RegExp, repeats: boolean): IncomingHttpHeaders | undefined {
  const headers: Record<string, string | string[]> = {}
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const colon = line.indexOf(':')
    if (colon <= 0) return undefined
    const name = line.slice(0, colon)
    if (!token.test(name)) return undefined
    // Only OWS (space, tab) is trimmed (RFC 9110 §5.5): String#trim would also drop a bare LF,
    // a vertical tab or a form feed at either end, which node:http refuses.
    const raw = line.slice(colon + 1)
    const value = trimOws(raw)
    if (!valid.test(value)) return undefined
    const key = name.toLowerCase()
    // llhttp, node:http's parser and undici's, refuses a tab after the digits of a Content-Length.
    if (key === 'content-length' && raw.includes('\t', raw.lastIndexOf(value) + value.length)) return undefined
    const seen = headers[key]
    if (seen === undefined) headers[key] = value
    else if (!repeats) return undefined
    else if (Array.isArray(seen)) seen.push(value)
    else headers[key] = [seen, value]
  }
  return headers
}

/** An agent's request head the bare-socket path takes. */
export interface RequestHead {
  method: string
  url: string
  headers: IncomingHttpHeaders
}

/**
 * The request head `buf` starts with, `length` bytes long (`headLength`), or `undefined` when
 * it is not one the bare-socket path takes: anything but an HTTP/1.1 request in origin form
 * with a method node:http serves as a request, a header named twice (node:http's rules for
 * joining them differ by name), a value outside visible ASCII. Framing and the headers that
 * change how the connection is used are the caller's to judge.
 */
export function readRequestHead (buf: Buffer, length: number): RequestHead | undefined {
  const lines = buf.toString('latin1', 0, length - 4).split('\r\n')
  const first = lines[0] as string
  const sp1 = first.indexOf(' ')
  const sp2 = first.indexOf(' ', sp1 + 1)
  if (sp1 < 0 || sp2 < 0 || first.slice(sp2 + 1) !== 'HTTP/1.1') return undefined
  const m = first.slice(0, sp1)
  const url = first.slice(sp1 + 1, sp2)
  if (!methods.has(m) || !originTarget.test(url)) return undefined
  if (lines.length > maxRequestLines + 1) return undefined
  const headers = headerLines(lines, requestValue, false)
  return headers === undefined ? undefined : { method: m, url, headers }
}

/** An upstream's response head. */
export interface ResponseHead {
  status: number
  /** HTTP/1.0: the connection closes after the response unless it says keep-alive. */
  http10: boolean
  headers: IncomingHttpHeaders
}

const statusLine = /^HTTP\/1\.([01]) ([1-9][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?$/

/** The response head `buf` starts with, `length` bytes long, or `undefined` when it is malformed. */
export function readResponseHead (buf: Buffer, length: number): ResponseHead | undefined {
  const lines = buf.toString('latin1', 0, length - 4).split('\r\n')
  const m = statusLine.exec(lines[0] as string)
  if (m === null) return undefined
  const headers = headerLines(lines, responseValue, true)
  return headers === undefined ? undefined : { status: Number(m[2]), http10: m[1] === '0', headers }
}

/** A Content-Length value: digits only, every copy the same (RFC 9110 §8.6); -1 when absent, NaN when invalid. */
export function contentLength (value: string | string[] | undefined): number {
  if (value === undefined) return -1
  const values = Array.isArray(value) ? value : [value]
  const first = values[0] as string
  if (!/^[0-9]{1,15}$/.test(first) || values.some((v) => v !== first)) return Number.NaN
  return Number(first)
}

/**
 * Reads a chunked body (RFC 9112 §7.1) as it arrives, handing over the data of its chunks and
 * saying where it ends; extensions are ignored, trailers read and dropped. Throws on a framing
 * error: the connection it came on cannot be trusted for another response.
 */
export class ChunkedReader {
  private state: 'size' | 'data' | 'data-end' | 'trailers' = 'size'
  private remaining = 0
  private line = ''
  /** Where in its `buf` the last `read` stopped short because `data` asked it to; -1 when it did not. */
  stoppedAt = -1

  /**
   * Reads `buf` from `start`, calling `data` with each piece of chunk data; `data` returning
   * false stops the read after that piece (`stoppedAt`), for the reader paused on it. Returns
   * where the body ended in `buf` (past its last trailer line), or -1 when it goes on.
   */
  read (buf: Buffer, start: number, data: (piece: Buffer) => unknown): number {
    let i = start
    this.stoppedAt = -1
    while (i < buf.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - i)
        const more = data(buf.subarray(i, i + n))
        i += n
        this.remaining -= n
        if (this.remaining === 0) this.state = 'data-end'
        if (more === false && i < buf.length) {
          this.stoppedAt = i
          return -1
        }
        continue
      }
      const nl = buf.indexOf(10, i)
      const end = nl < 0 ? buf.length : nl + 1
      this.line += buf.toString('latin1', i, end)
      i = end
      if (this.line.length > 4096) throw new Error('chunk framing line too long')
      if (nl < 0) break
      const line = this.line
      this.line = ''
      if (!line.endsWith('\r\n')) throw new Error('bare LF in chunk framing')
      const text = line.slice(0, -2)
      if (this.state === 'data-end') {
        if (text !== '') throw new Error('chunk data longer than its size')
        this.state = 'size'
      } else if (this.state === 'size') {
        const semi = text.indexOf(';')
        const size = (semi < 0 ? text : text.slice(0, semi)).trimEnd()
        if (!/^[0-9A-Fa-f]{1,12}$/.test(size)) throw new Error('invalid chunk size')
        this.remaining = Number.parseInt(size, 16)
        this.state = this.remaining === 0 ? 'trailers' : 'data'
      } else if (text === '') {
        return i
      }
    }
    return -1
  }
}
