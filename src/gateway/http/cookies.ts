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
export function scopedCookies (values: string | string[], target: string, base: string, requestPath: string): string[] {
  const prefix = `/${target}`
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
    let scoped: string
    if (path === undefined) {
      if (requestPath.indexOf('/', 1) > 0) return kept.join(';')
      scoped = prefix
    } else if (path === base || path.startsWith(`${base}/`)) {
      scoped = prefix + path.slice(base.length).replace(/^\/$/, '')
    } else {
      scoped = prefix
    }
    return `${kept.join(';')}; Path=${scoped}`
  })
}
