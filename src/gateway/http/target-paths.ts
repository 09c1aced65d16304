/**
 * Where an upstream's answer points, put in its target's part of the gateway (`/<target>`):
 * the upstream knows its own URLs, the agent reaches them through the gateway.
 */

/** What an upstream's paths map to: its target's prefix (`/<target>`), the upstream URL's origin and its path (no trailing slash). */
export interface TargetPaths { prefix: string, origin: string, base: string }

/** `path` (an upstream path) below `/<target>` when it lies below the upstream URL's path; otherwise undefined. */
function mapped (paths: TargetPaths, path: string): string | undefined {
  if (path !== paths.base && !path.startsWith(`${paths.base}/`)) return undefined
  return paths.prefix + path.slice(paths.base.length).replace(/^\/$/, '')
}

// What relative references are resolved against: the gateway, by a name no agent uses.
const here = 'gateway.invalid'

/**
 * A redirect's `Location` (or a `Content-Location`) that names the upstream itself, by its URL
 * or a path from its root, as the agent reaches it: `/<target>/…` (as nginx's `proxy_redirect
 * default` does). Without this an agent following `Location: /login` would ask the gateway for
 * a target named `login`, and a redirect to `http://10.0.0.7:8080/…` would name an address the
 * agent cannot reach. A reference to anywhere else (an identity provider) is left as it is, and
 * so is a relative one that stays below `/<target>`; one that does not is read as the upstream
 * read it, against its own URL, and mapped as a path from its root is.
 *
 * One that lands elsewhere on the gateway (`requestPath`: where the agent asked; `host`: the
 * name it used) is dropped (undefined): a path from the upstream's root outside the upstream
 * URL's path, a relative one that climbs out of the target, a URL naming the gateway. Every
 * target shares the gateway's origin, and a client that follows a 307 there sends the agent's
 * token, method and body on to another target. References are read as a WHATWG URL parser,
 * fetch's, reads them: dot segments (`%2e` too) resolved, a backslash as a slash.
 */
export function targetLocation (location: string, paths: TargetPaths, requestPath: string, host: string | undefined): string | undefined {
  const base = `http://${here}${requestPath}`
  if (!URL.canParse(location, base)) return location
  const url = new URL(location, base)
  if (url.host === here) {
    // From the upstream's root: mapped below the target; one outside the upstream URL's path is
    // nowhere the gateway shows, unless it names the target's own part of the gateway already
    // (an upstream that knows where it is served).
    if (location.startsWith('/') || location.startsWith('\\')) {
      const at = mapped(paths, url.pathname)
      if (at === undefined) return within(paths, url.pathname) ? location : undefined
      return at + url.search + url.hash
    }
    if (within(paths, url.pathname)) return location
    // The upstream resolved it against its own URL: `login` sent for `/<target>` (its `/`) is its
    // `/login`, which the agent, resolving against `/<target>`, would read as the gateway's.
    const upstream = new URL(location, `http://${here}${paths.base}${requestPath.slice(paths.prefix.length) || '/'}`)
    const at = mapped(paths, upstream.pathname)
    return at === undefined ? undefined : at + upstream.search + upstream.hash
  }
  if (url.origin === paths.origin) {
    const at = mapped(paths, url.pathname)
    return at === undefined ? location : at + url.search + url.hash
  }
  const gateway = host !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && url.host === hostOf(host)
  return !gateway || within(paths, url.pathname) ? location : undefined
}

/** Whether a gateway path is its target's, `/<target>` or below it. */
function within (paths: TargetPaths, path: string): boolean {
  return path === paths.prefix || path.startsWith(`${paths.prefix}/`)
}

/** A `Host` value as a URL's `host` spells it (lower case, no default port); empty when it is none. */
function hostOf (host: string): string {
  return URL.canParse(`http://${host}`) ? new URL(`http://${host}`).host : ''
}

/**
 * Cookies an upstream sets, scoped to its target's part of the gateway (`/<target>`). Every
 * target shares the gateway's origin: a cookie one upstream scoped to `/` would go, from any
 * agent that keeps cookies (a browser, a scripted session), to every other target's upstream.
 *
 * A `Path` below the upstream URL's own path maps to the same place below `/<target>`; one above
 * it (`/`) or beside it becomes `/<target>`, all of what the gateway shows of that upstream. A
 * cookie with no `Path` (or one not starting with `/`, which RFC 6265 §5.2.4 ignores) keeps the
 * default path its request gives (§5.1.4), already below `/<target>`, unless that request was
 * for `/<target>` itself, whose default path is `/`: that one is given `Path=/<target>`.
 */
export function scopedCookies (values: string | string[], paths: TargetPaths, requestPath: string): string[] {
  return (Array.isArray(values) ? values : [values]).map((value) => {
    const parts = value.split(';')
    let path: string | undefined
    const kept = [parts[0]]
    for (const part of parts.slice(1)) {
      const eq = part.indexOf('=')
      const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase()
      if (name !== 'path') { kept.push(part); continue }
      const v = eq < 0 ? '' : part.slice(eq + 1).trim()
      // The last Path attribute counts (§5.3 step 6); one not starting with `/` means the default.
      path = v.startsWith('/') ? v : undefined
    }
    if (path === undefined && requestPath.indexOf('/', 1) > 0) return kept.join(';')
    return `${kept.join(';')}; Path=${(path === undefined ? undefined : mapped(paths, path)) ?? paths.prefix}`
  })
}

/**
 * An upstream's `Service-Worker-Allowed` (the widest scope a service worker its script starts may
 * control), kept within its target's part of the gateway as its cookies are: a worker one
 * upstream's script registered for `/` would see, and could answer, every target's requests from
 * a browser. A path from the upstream's root maps below `/<target>` as a cookie's `Path` does; any
 * other reference is resolved against `requestPath` (the gateway path its script was fetched at),
 * as the browser resolves it, and one that lands outside the target becomes `/<target>`.
 */
export function scopedWorkerScope (value: string, paths: TargetPaths, requestPath: string): string {
  if (value.startsWith('/') && !value.startsWith('//')) return mapped(paths, value.split(/[?#]/)[0] as string) ?? paths.prefix
  const base = `http://gateway${requestPath}`
  const url = URL.canParse(value, base) ? new URL(value, base) : undefined
  const inside = url !== undefined && url.origin === 'http://gateway' && (url.pathname === paths.prefix || url.pathname.startsWith(`${paths.prefix}/`))
  return inside ? url.pathname : paths.prefix
}
