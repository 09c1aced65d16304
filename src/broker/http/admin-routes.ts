import express, { type NextFunction, type Request, type Response, type Router } from 'express'
import { InvalidInput, Unauthorized } from '../../errors.js'
import { bearerOf, isAdminToken } from '../caller.js'
import { createClient } from '../clients.js'
import type { BrokerContext } from '../context.js'
import { createPrincipal, getPrincipal, setGrants, setSponsor } from '../principals.js'
import { setStatus } from '../set-status.js'
import { createTarget, deleteTarget, getTarget, replaceTarget, type TargetView } from '../../gateway/targets.js'
import { rotateKeys } from '../keys.js'
import { queryAudit, type AuditFilter } from '../../audit/query.js'
import { parseAnchor, verifyAudit, type Anchor } from '../../audit/verify.js'
import { createTransmitter, deleteTransmitter, getTransmitter } from '../../inputs/ssf/transmitters.js'
import { revokeByJti } from '../revoke.js'
import { getToken, getTokenTree } from '../tokens.js'
import { rejectOtherMethods } from './method-not-allowed.js'
import { recordAdminChange } from '../admin-change.js'
import { storable } from '../../storage/db.js'

/**
 * Whether any string in `v`, key or value, cannot be stored: a policy or key set saved as jsonb
 * would fail in the database, a 500, and text would be saved altered (U+FFFD). Walked without
 * recursion, as a body may nest as deep as its size allows.
 */
function holdsUnstorable (v: unknown): boolean {
  const stack = [v]
  while (stack.length > 0) {
    const x = stack.pop()
    if (typeof x === 'string') {
      if (!storable(x)) return true
    } else if (typeof x === 'object' && x !== null) {
      for (const [k, y] of Object.entries(x)) {
        if (!storable(k)) return true
        stack.push(y)
      }
    }
  }
  return false
}

function body (req: Request): Record<string, unknown> {
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
    if (req.body === undefined && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0')) return {}
    throw new InvalidInput('the body must be a JSON object')
  }
  if (holdsUnstorable(req.body)) throw new InvalidInput('text may not contain NUL (U+0000) characters or unpaired surrogates (\\uD800-\\uDFFF)')
  return req.body as Record<string, unknown>
}

/** What a target's record shows: its view without timestamps (no header value, no password). */
function targetDetail (t: TargetView): Record<string, unknown> {
  return { kind: t.kind, upstream: t.upstream, header_names: t.header_names, policy: t.policy, audit_statements: t.audit_statements }
}

function reason (b: Record<string, unknown>): string | undefined {
  if (b.reason === undefined) return undefined
  if (typeof b.reason !== 'string' || b.reason.length > 500) throw new InvalidInput('reason must be a string of at most 500 characters')
  return b.reason
}

/** `/v1` admin API: bearer admin token on every route. */
export function adminRoutes (ctx: BrokerContext): Router {
  const r = express.Router()
  r.use((req: Request, _res: Response, next: NextFunction) => {
    const token = bearerOf(req.headers.authorization)
    if (token === undefined || !isAdminToken(ctx, token)) throw new Unauthorized('the admin API needs Authorization: Bearer <admin token>')
    next()
  })
  r.use(express.json({ limit: '256kb', strict: true }))

  r.post('/principals', async (req, res) => {
    const p = await createPrincipal(ctx, body(req) as never)
    recordAdminChange(ctx, 'principal.created', { principals: [p.id] }, { kind: p.kind, email: p.email, sponsor: p.sponsor, ends_at: p.ends_at, grants: p.grants })
    res.status(201).json(p)
  })
  r.get('/principals/:id', async (req, res) => {
    res.json(await getPrincipal(ctx, req.params.id))
  })
  r.put('/principals/:id/grants', async (req, res) => {
    const p = await setGrants(ctx, req.params.id, body(req).grants)
    recordAdminChange(ctx, 'principal.grants', { principals: [p.id] }, { grants: p.grants })
    res.json(p)
  })
  r.put('/principals/:id/sponsor', async (req, res) => {
    res.json(await setSponsor(ctx, req.params.id, body(req).sponsor))
  })
  r.post('/principals/:id/offboard', async (req, res) => {
    const out = await setStatus(ctx, req.params.id, 'offboarded', { reason: reason(body(req)) })
    res.json({ id: out.principal.id, status: out.principal.status, revoked: out.revoked })
  })
  r.post('/principals/:id/reinstate', async (req, res) => {
    res.json((await setStatus(ctx, req.params.id, 'active')).principal)
  })
  r.post('/principals/:id/clients', async (req, res) => {
    const c = await createClient(ctx, req.params.id)
    recordAdminChange(ctx, 'client.created', { principals: [req.params.id] }, { client_id: c.client_id })
    res.status(201).set('Cache-Control', 'no-store').json(c)
  })
  r.get('/tokens/:jti', async (req, res) => {
    res.json(await getToken(ctx, req.params.jti))
  })
  r.get('/tokens/:jti/tree', async (req, res) => {
    res.json(await getTokenTree(ctx, req.params.jti))
  })
  r.post('/tokens/:jti/revoke', async (req, res) => {
    res.json(await revokeByJti(ctx, req.params.jti, reason(body(req))))
  })
  r.post('/targets', async (req, res) => {
    const out = await createTarget(ctx.db, body(req))
    recordAdminChange(ctx, 'target.created', { target: out.name }, targetDetail(out))
    await ctx.sync.afterWrite()
    res.status(201).json(out)
  })
  r.get('/targets/:name', async (req, res) => {
    res.json(await getTarget(ctx.db, req.params.name))
  })
  r.put('/targets/:name', async (req, res) => {
    const out = await replaceTarget(ctx.db, req.params.name, body(req))
    recordAdminChange(ctx, 'target.replaced', { target: out.name }, targetDetail(out))
    await ctx.sync.afterWrite()
    res.json(out)
  })
  r.delete('/targets/:name', async (req, res) => {
    await deleteTarget(ctx.db, req.params.name)
    recordAdminChange(ctx, 'target.deleted', { target: req.params.name })
    await ctx.sync.afterWrite()
    res.status(204).end()
  })
  r.get('/audit', async (req, res) => {
    // What was recorded a moment ago should be there to read.
    await ctx.audit.flush().catch(() => {})
    const q = req.query as Record<string, unknown>
    const filter: AuditFilter = {}
    for (const k of ['principal', 'root', 'jti', 'target', 'since', 'before', 'limit'] as const) {
      if (q[k] === undefined) continue
      if (typeof q[k] !== 'string') throw new InvalidInput(`${k} must be given once`)
      filter[k] = q[k]
    }
    res.json(await queryAudit(ctx.db, filter))
  })
  r.post('/audit/verify', async (req, res) => {
    const b = body(req)
    let anchor: Anchor | undefined
    if (b.anchor !== undefined) {
      if (typeof b.anchor !== 'string') throw new InvalidInput('anchor must be a string SEQ:HASH')
      try { anchor = parseAnchor(b.anchor) } catch (err) { throw new InvalidInput((err as Error).message) }
    }
    const unwritten = await ctx.audit.flush().then(() => 0, () => ctx.audit.backlog().queued)
    const result = await verifyAudit(ctx.db, { anchor })
    res.json(unwritten > 0 ? { ...result, unwritten } : result)
  })
  r.post('/transmitters', async (req, res) => {
    const tx = await createTransmitter(ctx.db, body(req))
    recordAdminChange(ctx, 'transmitter.created', {}, { id: tx.id, issuer: tx.issuer, audience: tx.audience, jwks_uri: tx.jwks_uri ?? null })
    res.status(201).json(tx)
  })
  r.get('/transmitters/:id', async (req, res) => {
    res.json(await getTransmitter(ctx.db, req.params.id))
  })
  r.delete('/transmitters/:id', async (req, res) => {
    await deleteTransmitter(ctx.db, req.params.id)
    recordAdminChange(ctx, 'transmitter.deleted', {}, { id: req.params.id })
    res.status(204).end()
  })
  r.post('/keys/rotate', async (_req, res) => {
    const kid = await rotateKeys(ctx.db, ctx.clock)
    recordAdminChange(ctx, 'keys.rotated', {}, { kid })
    await ctx.sync.afterWrite()
    await ctx.reloadKeys()
    res.status(201).json({ kid })
  })
  rejectOtherMethods(r)
  return r
}
