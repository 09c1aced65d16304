import type { Request, Response, Router } from 'express'
import { MethodNotAllowed } from '../../errors.js'

interface RouteLayer { route?: { path: unknown, methods: Record<string, boolean | undefined> } }

/**
 * Closes `router`: every path it routes answers a method it does not serve with 405 and
 * `Allow` (RFC 9110 §15.5.6) instead of falling through to the 404 for unknown paths. Call it
 * after the last route. OPTIONS is answered here, 200 with `Allow` (RFC 9110 §9.3.7): the
 * router's own answer only comes when nothing after it answers, and the app's 404 does. A GET
 * route serves HEAD as Express does, so HEAD is listed with it.
 */
export function rejectOtherMethods (router: Router): void {
  const allowed = new Map<string, Set<string>>()
  for (const layer of router.stack as RouteLayer[]) {
    if (layer.route === undefined || typeof layer.route.path !== 'string') continue
    const methods = allowed.get(layer.route.path) ?? new Set<string>()
    for (const [m, on] of Object.entries(layer.route.methods)) {
      if (on !== true || m === '_all') continue
      methods.add(m.toUpperCase())
      if (m === 'get') methods.add('HEAD')
    }
    allowed.set(layer.route.path, methods)
  }
  for (const [path, methods] of allowed) {
    if (methods.size === 0) continue
    const allow = [...methods].sort()
    router.all(path, function methodNotAllowed (req: Request, res: Response) {
      if (req.method === 'OPTIONS') { res.set('Allow', allow.join(', ')).type('text/plain').send(allow.join(', ')); return }
      throw new MethodNotAllowed(req.method, allow)
    })
  }
}
