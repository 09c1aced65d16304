import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'

/** node:http's own refusals, by its error code; anything else is a malformed request (400). */
const refusals: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers too large'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'chunk extensions too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request not received in time']
}

/**
 * The broker listener's `clientError`: a request node:http's parser refuses before any handler
 * sees it (bad framing, headers over 16 KiB, headers or body not received in time) is answered
 * with the contract's JSON error body (CONTRACT.md §5), where node:http sends a status line
 * alone. As node:http does, only a connection that has been sent nothing yet is answered (on
 * one that has, the answer could be read as part of an earlier response), and then closed.
 */
export function clientError (err: NodeJS.ErrnoException, socket: Duplex): void {
  const written = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0
  if (err.code === 'ECONNRESET' || !socket.writable || written > 0) {
    socket.destroy()
    return
  }
  const [status, message] = refusals[err.code ?? ''] ?? [400, 'malformed HTTP request']
  const body = JSON.stringify({ error: 'invalid_request', error_description: message })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy())
  // A client that reads nothing would keep the write, hence the connection, for ever.
  setTimeout(() => socket.destroy(), 1000).unref()
}
