import { LineageError } from '../../errors.js'

export class BadRequest extends LineageError {
  constructor (description: string) { super('ERR_BAD_REQUEST', 'invalid_request', 400, description) }
}

/** Where a gateway request goes: the target's name, the upstream path and the raw query. */
export interface RequestTarget {
  target: string
  /** The path below the target, raw (still percent-encoded), starting with `/`. */
  path: string
  /** The raw query including `?`, or empty. */
  query: string
}

const dotSegment = /^(?:\.|%2e){1,2}$/i

/**
 * Splits `/<target>/<path>?<query>` without normalizing: a normalizing parser would turn
 * `/a/../b/x` into a request for target `b`. Dot segments, encoded slashes and backslashes are
 * refused outright, since the upstream might read them differently from the policy's `paths`.
 * A token in the query is refused (RFC 6750 §5.3: it leaks into logs and history).
 * @returns undefined when the URL names no target.
 * @throws BadRequest
 */
export function parseRequestTarget (url: string): RequestTarget | undefined {
  if (!url.startsWith('/')) throw new BadRequest('the request target must be an absolute path')
  const q = url.indexOf('?')
  const rawPath = q < 0 ? url : url.slice(0, q)
  const query = q < 0 ? '' : url.slice(q)
  // The regular expressions run only when the characters they look for are there at all.
  if ((rawPath.includes('%') || rawPath.includes('\\')) && /%2f|%5c|\\/i.test(rawPath)) throw new BadRequest('encoded slashes and backslashes are refused in paths')
  if ((rawPath.includes('.') || rawPath.includes('%')) && rawPath.split('/').some((s) => dotSegment.test(s))) throw new BadRequest('dot segments (. and ..) are refused in paths')
  if (query.includes('access_token=') && /(?:^|[?&])access_token=/.test(query)) throw new BadRequest('tokens in the query string are refused; send Authorization: Bearer')
  const slash = rawPath.indexOf('/', 1)
  const target = slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash)
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(target)) return undefined
  return { target, path: slash < 0 ? '/' : rawPath.slice(slash), query }
}
