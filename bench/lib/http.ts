import { Agent, request } from 'node:http'

export interface HttpResult {
  status: number
  body: string
}

/** A keep-alive agent holding up to `sockets` connections, so no request pays for a handshake. */
export function keepAliveAgent (sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'fifo' })
}

/** One HTTP/1.1 request over `agent`; resolves with the status and the whole body as text. */
export async function send (agent: Agent, method: string, url: URL, body: string | undefined, headers: Record<string, string>): Promise<HttpResult> {
  return await new Promise<HttpResult>((resolve, reject) => {
    const req = request({
      agent,
      method,
      host: url.hostname,
      port: url.port,
      path: url.pathname + url.search,
      headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** POSTs an `application/x-www-form-urlencoded` body. */
export async function postForm (agent: Agent, url: URL, fields: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<HttpResult> {
  return await send(agent, 'POST', url, formBody(fields), { 'content-type': 'application/x-www-form-urlencoded', ...headers })
}

/** Encodes form fields; an array repeats the name (RFC 8693 `audience`). */
export function formBody (fields: Record<string, string | string[]>): string {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x)
  return p.toString()
}

/** Parses a JSON body, failing with the status and the text when it is not what was expected. */
export function jsonOf<T> (r: HttpResult, expected: number, what: string): T {
  if (r.status !== expected) throw new Error(`${what}: HTTP ${r.status} ${r.body.slice(0, 300)}`)
  return JSON.parse(r.body) as T
}

/** Decodes a JWT's protected header and payload without verifying anything. */
export function decodeJwt (jwt: string): { header: Record<string, unknown>, payload: Record<string, unknown> } {
  const [h, p] = jwt.split('.')
  if (h === undefined || p === undefined) throw new Error('not a JWT')
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
  }
}
