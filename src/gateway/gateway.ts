import { createServer, type Server } from 'node:http'
import type { Logger } from '../log.js'
import type { Db } from '../storage/db.js'
import type { CheckDeps } from './check.js'
import { createHttpGateway } from './http/proxy.js'
import { TargetDirectory } from './targets.js'

export interface GatewayOptions extends CheckDeps {
  db: Db
  log: Logger
  upstreamTimeoutMs?: number
}

export interface Gateway {
  httpServer: Server
  targets: TargetDirectory
  stop: () => void
}

const badRequest = (message: string): string => {
  const body = JSON.stringify({ error: 'invalid_request', error_description: message })
  return `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
}

/**
 * Builds the gateway's listeners on a live-status view (its own, or the broker's in the same
 * process). Targets are loaded once and kept current from the change log.
 */
export async function createGateway (opts: GatewayOptions): Promise<Gateway> {
  const targets = new TargetDirectory(opts.db)
  await targets.load()
  const offChange = opts.view.onChange((c) => {
    if (c.kind === 'target') targets.reload(c.data.name).catch((err) => opts.log.error({ err }, 'reloading a target failed'))
  })
  const offReset = opts.view.onReset(() => { targets.load().catch((err) => opts.log.error({ err }, 'reloading targets failed')) })
  const http = createHttpGateway({ ...opts, targets })
  const httpServer = createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 0, headersTimeout: 20_000, keepAliveTimeout: 65_000 }, http.handler)
  // Malformed requests (bad framing, conflicting Content-Length and Transfer-Encoding, oversized
  // headers) never reach the handler; answer them plainly and drop the connection.
  httpServer.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy()
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : undefined
    socket.end(status === undefined ? badRequest('malformed HTTP request') : badRequest('request headers too large').replace('400 Bad Request', status))
  })
  return {
    httpServer,
    targets,
    stop: () => {
      offChange()
      offReset()
      http.close()
    }
  }
}
