import type { RequestListener } from 'node:http'
import express, { type NextFunction, type Request, type Response } from 'express'
import { InvalidRequest, LineageError, NotFound, PayloadTooLarge, toErrorBody } from '../../errors.js'
import type { BrokerContext } from '../context.js'
import { adminRoutes } from './admin-routes.js'
import { oauthRoutes, tokenEndpoint } from './oauth-routes.js'
import { rejectOtherMethods } from './method-not-allowed.js'
import { hookRoutes, type InputSecrets } from '../../inputs/routes.js'

/** Body-parser and router failures (too large, malformed JSON, bad charset, bad path encoding) as contract errors. */
function parserError (err: unknown): LineageError | undefined {
  const e = err as { type?: string, status?: number, expose?: boolean }
  // The router's own 400: a path parameter that is not valid percent-encoding (`/v1/principals/%C0`).
  if (err instanceof URIError && e.status === 400) return new InvalidRequest('the path is not valid percent-encoding')
  // A body that does not inflate (`Content-Encoding: gzip` over other bytes) is the parser's 400 without a `type`.
  if ((typeof e?.type !== 'string' && e?.expose !== true) || typeof e.status !== 'number' || e.status >= 500) return undefined
  if (e.type === 'entity.too.large') return new PayloadTooLarge()
  if (e.type === 'entity.parse.failed') return new InvalidRequest('the body is not valid JSON')
  if (e.type === 'parameters.too.many') return new InvalidRequest('too many parameters')
  return new InvalidRequest('the body could not be read')
}

export interface BrokerAppOptions {
  /** What `/readyz` reports. */
  ready: () => { ready: boolean, detail: Record<string, unknown> }
  /** Secrets of the offboarding inputs; an input without its secret answers 401. */
  inputs?: InputSecrets
}

/** The broker's request listener, and a wait for the requests it is still handling. */
export type BrokerHandler = RequestListener & {
  /**
   * Resolves once every request has been answered, or after `limitMs`. A stop that cut a
   * connection leaves its request running (an offboarding waiting on a lock, say): what it
   * records comes only when it ends, and must come before the audit log's last write.
   */
  settled: (limitMs: number) => Promise<void>
}

/**
 * The broker's request listener: the app below, with `POST /oauth/token` (the hot path) served
 * by the same handler the app routes to, but ahead of the router, which costs more per request
 * than everything else a token exchange does outside cryptography.
 */
export function createBrokerHandler (ctx: BrokerContext, opts: BrokerAppOptions): BrokerHandler {
  const app = createBrokerApp(ctx, opts)
  const token = tokenEndpoint(ctx)
  let handling = 0
  let onSettled: (() => void) | undefined
  const listener: RequestListener = (req, res) => {
    handling++
    // A handler's work, its audit record included, is done when it ends the response: 'finish'
    // and 'close' come with the connection instead, which a stop may have cut long before.
    const end = res.end
    res.end = function (this: typeof res, ...args: Parameters<typeof end>) {
      res.end = end
      if (--handling === 0) onSettled?.()
      return end.apply(this, args)
    } as typeof end
    if (req.method === 'POST' && req.url === '/oauth/token') token(req, res)
    else app(req, res)
  }
  return Object.assign(listener, {
    settled: async (limitMs: number) => {
      if (handling === 0) return
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, limitMs)
        onSettled = () => { clearTimeout(timer); resolve() }
      })
      onSettled = undefined
    }
  })
}

/**
 * The broker's HTTP app: OAuth endpoints, the admin API under `/v1`, health. One error
 * handler turns every error into the contract's JSON body; a 5xx never shows its message.
 */
export function createBrokerApp (ctx: BrokerContext, opts: BrokerAppOptions): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')
  app.use(oauthRoutes(ctx))
  app.use('/v1', adminRoutes(ctx))
  app.use(hookRoutes(ctx, opts.inputs ?? {}))
  app.get('/healthz', (_req, res) => { res.json({ ok: true }) })
  app.get('/metrics', async (_req, res) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics())
  })
  app.get('/readyz', (_req, res) => {
    const r = opts.ready()
    res.status(r.ready ? 200 : 503).json({ ready: r.ready, ...r.detail })
  })
  rejectOtherMethods(app.router)
  app.use((req: Request) => { throw new NotFound(`no route ${req.method} ${req.path.slice(0, 200)}`) })
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const known = err instanceof LineageError ? err : parserError(err)
    const { status, body, headers } = toErrorBody(known ?? err)
    if (status >= 500) ctx.log.error({ err, method: req.method, path: req.path }, 'request failed')
    res.status(status).set(headers)
    // The router matches paths case-insensitively, so `/OAuth/Token` is the token endpoint too.
    if (req.path.toLowerCase().startsWith('/oauth/')) res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' })
    res.json(body)
  })
  return app
}
