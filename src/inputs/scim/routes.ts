import { createHash, timingSafeEqual } from 'node:crypto'
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express'
import type { BrokerContext } from '../../broker/context.js'
import { scimNotFound, scimUnauthorized, toScimErrorBody } from './errors.js'
import { parseListQuery } from './filter.js'
import { serviceProviderConfig } from './service-provider.js'
import { createUser, deleteUser, getUser, listUsers, patchUser, replaceUser } from './users.js'

/** RFC 7644 §3.1: the media type of every SCIM response. */
export const scimContentType = 'application/scim+json'

/** The largest request body; a larger one is a 413 SCIM error. */
const bodyLimit = '64kb'

/**
 * Checks `Authorization: Bearer <LINEAGE_SCIM_TOKEN>`. Both sides are hashed first, so the
 * constant-time compare runs on equal lengths and leaks neither the token nor its length.
 * Without a configured token every request is refused.
 */
export function requireScimToken (token: string | undefined): RequestHandler {
  const expected = token === undefined || token === '' ? undefined : createHash('sha256').update(token).digest()
  return function scimBearer (req, _res, next) {
    if (expected === undefined) throw scimUnauthorized('SCIM is not configured (LINEAGE_SCIM_TOKEN)')
    const m = /^Bearer +(\S+) *$/i.exec(req.get('authorization') ?? '')
    const given = createHash('sha256').update(m?.[1] ?? '').digest()
    if (m === null || !timingSafeEqual(given, expected)) throw scimUnauthorized('a valid SCIM bearer token is required')
    next()
  }
}

function send (res: Response, status: number, body: unknown): void {
  res.status(status).type(scimContentType).json(body)
}

/**
 * SCIM 2.0 `Users` (RFC 7643, RFC 7644), mounted at `/scim/v2`: a User is a human principal.
 * Authentication comes before a byte of the body is read. Bodies are JSON whatever their
 * declared type (IdPs send `application/scim+json` or `application/json`), at most 64 kB.
 * Every error, including unknown paths under the mount, is a SCIM error body.
 */
export function scimRoutes (ctx: BrokerContext, token: string | undefined): Router {
  const r = express.Router()
  r.use(requireScimToken(token))
  r.use(express.json({ limit: bodyLimit, type: () => true }))
  r.get('/ServiceProviderConfig', (_req, res) => { send(res, 200, serviceProviderConfig()) })
  r.post('/Users', async (req, res) => {
    const user = await createUser(ctx, req.body)
    res.location(user.meta.location)
    send(res, 201, user)
  })
  r.get('/Users', async (req, res) => { send(res, 200, await listUsers(ctx, parseListQuery(req.query as Record<string, unknown>))) })
  r.get('/Users/:id', async (req, res) => { send(res, 200, await getUser(ctx, req.params.id)) })
  r.put('/Users/:id', async (req, res) => { send(res, 200, await replaceUser(ctx, req.params.id, req.body)) })
  r.patch('/Users/:id', async (req, res) => { send(res, 200, await patchUser(ctx, req.params.id, req.body)) })
  r.delete('/Users/:id', async (req, res) => {
    await deleteUser(ctx, req.params.id)
    res.status(204).end()
  })
  r.use(function scimNoRoute (req: Request) { throw scimNotFound(`no SCIM endpoint ${req.method} ${req.path.slice(0, 200)}`) })
  r.use(function scimError (err: unknown, req: Request, res: Response, _next: NextFunction) {
    const { status, body, headers } = toScimErrorBody(err)
    if (status >= 500) ctx.log.error({ err, method: req.method, path: req.path }, 'SCIM request failed')
    res.set(headers)
    send(res, status, body)
  })
  return r
}
