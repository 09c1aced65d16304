import express, { type NextFunction, type Request, type Response, type Router } from 'express'
import { receiveSet, SetRefused } from './ssf/receiver.js'
import type { BrokerContext } from '../broker/context.js'
import { InvalidInput, LineageError, Unauthorized } from '../errors.js'
import { handleHrEvent } from './hr-webhook.js'
import { checkOktaAuthorization, handleOktaDelivery } from './okta-hook.js'
import { scimRoutes } from './scim/routes.js'
import { rejectOtherMethods } from '../broker/http/method-not-allowed.js'

/** Secrets the offboarding inputs authenticate their senders with (CONTRACT.md §2). */
export interface InputSecrets {
  scimToken?: string
  webhookSecret?: string
  oktaAuthorization?: string
}

/** `/hooks/hr` and `/hooks/okta`. */
export function hookRoutes (ctx: BrokerContext, secrets: InputSecrets): Router {
  const r = express.Router()
  r.use('/scim/v2', scimRoutes(ctx, secrets.scimToken))
  // The HMAC covers the raw bytes, so the body is read as bytes.
  r.post('/hooks/hr', express.raw({ type: () => true, limit: '64kb' }), async (req, res) => {
    if (secrets.webhookSecret === undefined) throw new Unauthorized('the HR webhook is not configured (LINEAGE_WEBHOOK_SECRET)')
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)
    res.json(await handleHrEvent(ctx, secrets.webhookSecret, req.get('lineage-signature'), raw))
  })
  // RFC 8935: one SET per push, 202 and no body on success, 400 {"err","description"} otherwise.
  r.post('/ssf/events', express.text({ type: () => true, limit: '64kb' }), async (req, res) => {
    await receiveSet(ctx, typeof req.body === 'string' ? req.body.trim() : '', req.get('authorization'))
    res.status(202).end()
  })
  r.use('/ssf/events', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (err instanceof SetRefused) {
      if (err.status === 503) res.set('retry-after', '30')
      res.status(err.status).json({ err: err.err, description: err.message })
      return
    }
    if (err instanceof LineageError && err.status < 500) { res.status(400).json({ err: 'invalid_request', description: err.message }); return }
    const parser = err as { status?: number }
    if (typeof parser?.status === 'number' && parser.status < 500) { res.status(400).json({ err: 'invalid_request', description: 'the body could not be read (at most 64 KiB)' }); return }
    next(err)
  })
  r.get('/hooks/okta', (req, res) => {
    checkOktaAuthorization(secrets.oktaAuthorization, req.get('authorization'))
    const challenge = req.get('x-okta-verification-challenge')
    if (challenge === undefined || challenge.length > 1024) throw new InvalidInput('missing X-Okta-Verification-Challenge')
    res.json({ verification: challenge })
  })
  r.post('/hooks/okta', (req, _res, next) => {
    // Authenticate before reading a byte of the body.
    checkOktaAuthorization(secrets.oktaAuthorization, req.get('authorization'))
    next()
  }, express.json({ limit: '1mb', type: () => true }), async (req, res) => {
    res.json(await handleOktaDelivery(ctx, req.body))
  })
  rejectOtherMethods(r)
  return r
}
