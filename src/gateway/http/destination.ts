import type { IncomingHttpHeaders } from 'node:http'
import { BadRequest, originForm, parseRequestTarget } from './request-target.js'

/**
 * The paths below target `name` that a request's `Destination` (RFC 4918 §10.3: where a COPY or
 * MOVE writes) may name to its upstream, for the policy to judge as it judges the request's own
 * path: the header goes up as it came, so without this `MOVE /<name>/drafts/x` with
 * `Destination: /admin/x` would write where a rule on `/admin/*` refuses to. It is read below
 * `/<name>` (the gateway's URL, as a client writes it), below the upstream URL's path `base`, and
 * as it is, each as a request path is read (escapes normalized, dot segments refused).
 * @returns no path when there is no `Destination`.
 * @throws BadRequest for one that is not a single absolute URI or absolute path, or whose path a request would be refused.
 */
export function destinationPaths (headers: IncomingHttpHeaders, name: string, base: string): string[] {
  const value = headers.destination
  if (value === undefined) return []
  const text = String(value).trim()
  // node:http joins two Destination lines with `, `; an upstream may take either. A URI holds no space.
  if (/\s/.test(text)) throw new BadRequest('Destination must be one URI')
  const raw = originForm(text)
  if (!raw.startsWith('/')) throw new BadRequest('Destination must be an absolute URI or an absolute path')
  const out = new Set<string>()
  for (const prefix of [`/${name}`, base, '']) {
    const rest = raw.slice(prefix.length)
    if (prefix !== '' && (!raw.startsWith(prefix) || !['', '/', '?'].includes(rest.slice(0, 1)))) continue
    out.add((parseRequestTarget(`/${name}${rest}`) as { path: string }).path)
  }
  return [...out]
}
