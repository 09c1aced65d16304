import { InvalidTarget, listed } from '../errors.js'

/**
 * The target a `resource` URI names: `urn:lineage:target:<name>`, or the first path segment
 * of a gateway URL (`https://gw/<target>/…`, `postgresql://gw/<target>`).
 */
export function targetOfResource (resource: string): string | undefined {
  const urn = /^urn:lineage:target:([a-z0-9][a-z0-9_.-]{0,62})$/.exec(resource)
  if (urn !== null) return urn[1]
  try {
    const u = new URL(resource)
    // RFC 8707 §2: a resource indicator carries no fragment.
    if (u.hash !== '' || resource.includes('#')) return undefined
    const first = u.pathname.split('/')[1]
    return first === undefined || first === '' ? undefined : decodeURIComponent(first)
  } catch {
    return undefined
  }
}

/**
 * The targets a token request asks for: `audience` names (RFC 8693) and the targets `resource`
 * URIs (RFC 8707) point at, each of which must be in `held`; undefined when it asks for none.
 * @param heldBy what `held` is, for the error description.
 * @throws InvalidTarget for a resource that names no target or a target not held.
 */
export function requestedTargets (req: { audience: readonly string[], resource: readonly string[] }, held: readonly string[], heldBy: string): string[] | undefined {
  if (req.audience.length === 0 && req.resource.length === 0) return undefined
  const out: string[] = []
  for (const r of req.resource) {
    const t = targetOfResource(r)
    if (t === undefined) throw new InvalidTarget(`resource ${r.slice(0, 200)} names no target`)
    out.push(t)
  }
  out.push(...req.audience)
  const foreign = out.filter((t) => !held.includes(t))
  if (foreign.length > 0) throw new InvalidTarget(`not in ${heldBy}: ${listed(foreign)}`)
  return [...new Set(out)]
}
