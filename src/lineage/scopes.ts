/**
 * Scopes are `<target>:<action>` or `<target>:*` (CONTRACT.md §3). A wildcard covers every
 * action on its target; nothing covers another target.
 */
export const actions = ['read', 'write', 'ddl', 'admin', 'exec', 'shell', 'tunnel'] as const

const targetName = /^[a-z0-9][a-z0-9_.-]{0,62}$/
const scopeShape = /^([a-z0-9][a-z0-9_.-]{0,62}):([a-z]+|\*)$/

/** True when `name` is a valid target name (lowercase, digits, `_ . -`, up to 63 characters). */
export function isTargetName (name: string): boolean {
  return targetName.test(name)
}

/** The problem with `scope`, or undefined when it is well formed. */
export function scopeProblem (scope: string): string | undefined {
  const m = scopeShape.exec(scope)
  // The scope is the caller's own text, of any length: it is named, not sent back whole.
  const named = scope.length > 100 ? `${scope.slice(0, 100)}…` : scope
  if (m === null) return `"${named}" is not <target>:<action>`
  if (m[2] !== '*' && !(actions as readonly string[]).includes(m[2])) return `"${named}" names unknown action "${m[2].slice(0, 40)}"`
  return undefined
}

export function targetOf (scope: string): string {
  return scope.slice(0, scope.indexOf(':'))
}

/** Splits a space-separated scope string (RFC 6749 §3.3), dropping duplicates. */
export function splitScope (s: string): string[] {
  return [...new Set(s.split(' ').filter((x) => x !== ''))]
}

/** True when one of `held` grants `wanted` (exactly, or by a wildcard on the same target). */
export function covers (held: readonly string[], wanted: string): boolean {
  if (held.includes(wanted)) return true
  return held.includes(`${targetOf(wanted)}:*`)
}

/** The scopes in `wanted` that `held` does not cover. */
export function uncovered (held: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((w) => !covers(held, w))
}

/**
 * What a holder of `a` may do that a holder of `b` may also do: a service's usable scopes are
 * its grants intersected with its sponsor's (CONTRACT.md §3). `t:*` ∩ `t:read` = `t:read`.
 */
export function intersect (a: readonly string[], b: readonly string[]): string[] {
  const out = new Set<string>()
  for (const s of a) {
    if (covers(b, s)) out.add(s)
    else if (s.endsWith(':*')) for (const t of b) if (targetOf(t) === targetOf(s)) out.add(t)
  }
  return [...out].sort()
}

/** The distinct targets that `scopes` name, in order of first mention. */
export function targetsOf (scopes: readonly string[]): string[] {
  return [...new Set(scopes.map(targetOf))]
}
