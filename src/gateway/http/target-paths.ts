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

/**
 * A redirect's `Location` (or a `Content-Location`) that names the upstream itself, by its URL
 * or a path from its root, as the agent reaches it: `/<target>/…` (as nginx's `proxy_redirect
 * default` does). Without this an agent following `Location: /login` would ask the gateway for
 * a target named `login`, and a redirect to `http://10.0.0.7:8080/…` would name an address the
 * agent cannot reach. A relative reference, or one to anywhere else (an identity provider),
 * is left as it is.
 */
export function targetLocation (location: string, paths: TargetPaths): string {
  if (location.startsWith('/') && !location.startsWith('//')) {
    const end = location.search(/[?#]/)
    const path = end < 0 ? location : location.slice(0, end)
    const at = mapped(paths, path)
    return at === undefined ? location : at + (end < 0 ? '' : location.slice(end))
  }
  if (!URL.canParse(location)) return location
  const url = new URL(location)
  if (url.origin !== paths.origin) return location
  const at = mapped(paths, url.pathname)
  return at === undefined ? location : at + url.search + url.hash
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
