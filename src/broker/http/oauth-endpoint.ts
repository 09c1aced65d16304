import type { IncomingMessage, ServerResponse } from 'node:http'
import { toErrorBody } from '../../errors.js'
import type { Logger } from '../../log.js'
import { readForm } from './form-body.js'
import type { Form } from '../form-params.js'

/** What an OAuth endpoint answers: a JSON body, or an empty 200 (RFC 7009). */
export type OAuthHandler = (form: Form, authorization: string | undefined) => Promise<unknown>

// RFC 6749 §5.1: responses that carry tokens must not be cached.
const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' }

function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined) {
    res.writeHead(status, { ...noStore, ...headers, 'content-length': '0' }).end()
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { ...noStore, ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text)
}

/** The path of a request target, without its query string. */
export function pathOf (url: string | undefined): string {
  const target = url ?? '/'
  const q = target.indexOf('?')
  return (q < 0 ? target : target.slice(0, q)).slice(0, 200)
}

/**
 * Serves one form-encoded OAuth endpoint straight on node:http: read the form, call the
 * transport-free handler, write JSON. Every error becomes the contract's body; a 5xx never
 * shows its message. `refused`: told the `error` code of each refusal.
 */
export function oauthEndpoint (log: Logger, handler: OAuthHandler, refused?: (error: string) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    readForm(req)
      .then(async (form) => await handler(form, req.headers.authorization))
      .then((body) => send(res, 200, body), (err: unknown) => {
        const { status, body, headers } = toErrorBody(err)
        refused?.(body.error)
        // The path only: clients do put credentials in the query string (`?client_secret=`).
        if (status >= 500) log.error({ err, method: req.method, path: pathOf(req.url) }, 'request failed')
        // A body we stopped reading must not be parsed as the next request on this connection.
        if (!req.complete) res.setHeader('connection', 'close')
        send(res, status, body, headers)
      })
  }
}
