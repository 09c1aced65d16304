/**
 * The floor of a Node.js proxy for `bench:gateway-http`: no HTTP library at all, only `node:net`
 * sockets and a few lines of header handling, enough for the benchmark's bodiless GET and its
 * upstream's `Content-Length` answers and nothing more (no chunked bodies, no request bodies, no
 * checks). Each client connection gets its own upstream connection; requests on it go one at a
 * time. It shows how far from nginx Node.js itself is before any HTTP parser or check runs.
 * Receives a `RawProxyConfig` over IPC; replies with the URL it listens on.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { serveForParent } from './forked.js'

export interface RawProxyConfig {
  /** Base URL of the upstream, e.g. `http://127.0.0.1:8080/api`. */
  upstream: string
  /** Path prefix the proxy strips, e.g. `/bench`. */
  prefix: string
  /** Headers set on every upstream request (the upstream credential). */
  headers: Record<string, string>
}

const dropped = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'authorization'])
const headEnd = Buffer.from('\r\n\r\n')

/** The length of the response whose head ends at `end` in `buf`, head included; -1 when it has no Content-Length. */
function responseLength (buf: Buffer, end: number): number {
  const head = buf.toString('latin1', 0, end).toLowerCase()
  const at = head.indexOf('\r\ncontent-length:')
  if (at < 0) return -1
  return end + 4 + Number.parseInt(head.slice(at + 17, head.indexOf('\r\n', at + 17)).trim(), 10)
}

function serve (client: Socket, c: RawProxyConfig, up: URL, base: string, extra: string): void {
  const upstream = connect(Number(up.port), up.hostname)
  upstream.setNoDelay(true)
  client.setNoDelay(true)
  let pending: Buffer = Buffer.alloc(0)
  let answer: Buffer = Buffer.alloc(0)
  let busy = false
  const fail = (): void => { client.destroy(); upstream.destroy() }
  client.on('error', fail).on('close', fail)
  upstream.on('error', fail).on('close', fail)

  const next = (): void => {
    if (busy) return
    const end = pending.indexOf(headEnd)
    if (end < 0) return
    const lines = pending.toString('latin1', 0, end).split('\r\n')
    pending = pending.subarray(end + 4)
    const [method, target, version] = (lines[0] ?? '').split(' ')
    if (method === undefined || target === undefined || version !== 'HTTP/1.1') { fail(); return }
    let out = `${method} ${base}${target.startsWith(`${c.prefix}/`) ? target.slice(c.prefix.length) : target} HTTP/1.1\r\nhost: ${up.host}\r\n${extra}`
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string
      const colon = line.indexOf(':')
      if (colon > 0 && !dropped.has(line.slice(0, colon).trim().toLowerCase())) out += `${line}\r\n`
    }
    busy = true
    upstream.write(`${out}\r\n`, 'latin1')
  }

  client.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    next()
  })
  upstream.on('data', (chunk: Buffer) => {
    answer = answer.length === 0 ? chunk : Buffer.concat([answer, chunk])
    const end = answer.indexOf(headEnd)
    if (end < 0) return
    const length = responseLength(answer, end)
    if (length < 0) { fail(); return }
    if (answer.length < length) return
    client.write(answer.subarray(0, length))
    answer = answer.subarray(length)
    busy = false
    next()
  })
}

async function start (c: RawProxyConfig): Promise<string> {
  const up = new URL(c.upstream)
  const base = up.pathname.replace(/\/$/, '')
  const extra = Object.entries(c.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  const server = createServer((client) => { serve(client, c, up, base, extra) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

serveForParent('raw proxy', async (c: RawProxyConfig) => ({ url: await start(c) }))
