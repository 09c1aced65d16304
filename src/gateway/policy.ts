import { InvalidInput } from '../errors.js'
import { actions as actionNames } from '../lineage/scopes.js'
import type { TargetKind } from './targets.js'

/** Conditions a rule may carry (CONTRACT.md "Target policy"); every given one must hold. */
export interface RuleConditions {
  actions?: string[]
  min_depth?: number
  max_depth?: number
  principals?: string[]
  actors?: string[]
  methods?: string[]
  paths?: string[]
  tables?: string[]
  statements?: string[]
  commands?: string[]
}

export type Rule =
  | (RuleConditions & { effect: 'deny', reason?: string })
  | (RuleConditions & { effect: 'approve', reason?: string })
  | (RuleConditions & { effect: 'mask', columns: string[], with: 'redact' | 'hash' | 'email' | 'last4', reason?: string })

export interface Policy { rules: Rule[] }

/** What a request looks like to the policy. */
export interface PolicyRequest {
  action: string
  depth: number
  principals: string[]
  actor: string | undefined
  method?: string
  path?: string
  tables?: string[]
  statements?: string[]
  command?: string
}

const statementShapes = ['delete_without_where', 'update_without_where', 'truncate', 'drop']
const maskKinds = ['redact', 'hash', 'email', 'last4']
const listKeys = ['actions', 'principals', 'actors', 'methods', 'paths', 'tables', 'statements', 'commands'] as const
// The conditions only one kind of target's requests have (CONTRACT.md "Target policy").
const kindOfCondition: Partial<Record<string, TargetKind>> = { methods: 'http', paths: 'http', tables: 'postgres', statements: 'postgres', commands: 'ssh' }
// The actions each kind of target's requests have (CONTRACT.md "Identities").
const kindActions: Record<TargetKind, readonly string[]> = { http: ['read', 'write'], postgres: ['read', 'write', 'ddl', 'admin'], ssh: ['exec', 'shell', 'tunnel'] }
const maxRules = 200

// Patterns in one letter case, by pattern; patterns come from saved policies, so the set stays small.
const folded = new Map<string, string>()

/**
 * `text` in one letter case, one UTF-16 unit for one, as a case-insensitive regular expression
 * compares characters (ECMA-262 Canonicalize): upper-cased, unless that takes more than one unit
 * or takes a character past ASCII into it (`ſ` stays `ſ`, not `S`).
 */
function fold (text: string): string {
  if (!/[^\x00-\x7f]/.test(text)) return text.toUpperCase()
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    const u = c.toUpperCase()
    out += u.length === 1 && !(c.charCodeAt(0) >= 128 && u.charCodeAt(0) < 128) ? u : c
  }
  return out
}

/**
 * `*` matches any run of characters (including `/`), `?` one character; everything else is literal. `caseless`: in any letter case.
 * Matched by walking both strings, going back only to the last `*` on a mismatch: time in
 * proportion to their lengths' product at worst. A regular expression would backtrack to every
 * `*`, and an agent's path built against a pattern with several held the event loop for seconds.
 */
export function globMatch (pattern: string, value: string, caseless = false): boolean {
  let p = pattern
  let v = value
  if (caseless) {
    let f = folded.get(pattern)
    if (f === undefined) folded.set(pattern, f = fold(pattern))
    p = f
    v = fold(value)
  }
  let pi = 0
  let vi = 0
  let star = -1
  let resume = 0
  while (vi < v.length) {
    // Past the pattern's end, charCodeAt is NaN: no character, no wildcard.
    const c = p.charCodeAt(pi)
    if (c !== 42 && (c === 63 || c === v.charCodeAt(vi))) {
      pi++
      vi++
    } else if (c === 42) {
      star = pi++
      resume = vi
    } else if (star >= 0) {
      pi = star + 1
      vi = ++resume
    } else return false
  }
  while (p.charCodeAt(pi) === 42) pi++
  return pi === p.length
}

/**
 * A `paths` pattern against a request path as the upstream may read it: as sent; with its
 * leading `//host` dropped; with `//` collapsed and `;parameters` removed; without a trailing
 * `/` (Express, unless strict, and Rails route `/admin/` to `/admin`); with every escape
 * decoded (`%3A` as `:`, as WSGI and Go servers route); and in any letter case, as
 * case-insensitive routers (Express, IIS) match. Rules only refuse, so a rule that matches any
 * reading applies.
 */
function pathMatch (pattern: string, path: string): boolean {
  for (const whole of path.startsWith('//') ? [path, withoutAuthority(path)] : [path]) {
    const collapsed = whole.includes(';') || whole.includes('//') ? whole.replace(/;[^/]*/g, '').replace(/\/{2,}/g, '/') : whole
    const readings = collapsed === whole ? [whole] : [whole, collapsed]
    for (const r of [...readings]) if (r.length > 1 && r.endsWith('/')) readings.push(withoutTrailingSlashes(r))
    for (const reading of readings) {
      if (globMatch(pattern, reading, true)) return true
      const decoded = reading.includes('%') ? decodedPath(reading) : undefined
      if (decoded !== undefined && globMatch(pattern, decoded, true)) return true
    }
  }
  return false
}

/** `path` without the `/`s it ends with (`/` itself for a path of them only): a loop, as /\/+$/ takes time quadratic in a run of `/`. */
function withoutTrailingSlashes (path: string): string {
  let end = path.length
  while (end > 1 && path.charCodeAt(end - 1) === 47) end--
  return end === 1 ? '/' : path.slice(0, end)
}

/**
 * A path starting with `//` as a WHATWG URL parser reads it against a base, the way Node's
 * documentation has a server read `req.url` (`new URL(req.url, base)`): a scheme-relative
 * reference whose first segment is a host (WHATWG URL, "special authority ignore slashes
 * state"), so `//x/admin/users` is `/admin/users` and `//x` is `/`.
 */
function withoutAuthority (path: string): string {
  const rest = path.replace(/^\/{2,}[^/]*/, '')
  return rest === '' ? '/' : rest
}

/** A path with every escape decoded; undefined when an escape is malformed. (`%2F` and `%5C` never get this far.) */
function decodedPath (path: string): string | undefined {
  try {
    return decodeURIComponent(path)
  } catch {
    return undefined
  }
}

/**
 * A `methods` pattern against a request method, both upper-cased (methods are upper-case
 * tokens; a rule written `delete` means DELETE). A pattern that matches GET matches HEAD too:
 * most servers answer HEAD with their GET handler, running whatever it does.
 */
function methodMatch (pattern: string, method: string): boolean {
  const p = pattern.toUpperCase()
  return globMatch(p, method) || (method === 'HEAD' && globMatch(p, 'GET'))
}

/**
 * A `tables` pattern against a table as a statement names it: `payroll` also matches
 * `public.payroll`. An unqualified name resolves in whichever schema of the search path has it
 * (a session may set its own), so `app.secret` matches `secret` too; a whole schema (`app.*`)
 * matches only names qualified with it, and `public.*` unqualified ones.
 */
function tableMatch (pattern: string, table: string): boolean {
  if (globMatch(pattern, table)) return true
  const dot = table.lastIndexOf('.')
  if (dot >= 0) return !pattern.includes('.') && globMatch(pattern, table.slice(dot + 1))
  const last = pattern.slice(pattern.lastIndexOf('.') + 1)
  return pattern.includes('.') && (globMatch(pattern, `public.${table}`) || (last !== '*' && globMatch(last, table)))
}

function stringList (v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 256)) {
    throw new InvalidInput(`${where} must be a non-empty array of strings`)
  }
  return v as string[]
}

/**
 * Checks a policy as a whole: a bad one is refused when the target is saved, never half-applied.
 * `kind`: the target's, whose requests a rule's conditions must be able to match.
 * @throws InvalidInput naming the rule and field at fault.
 */
export function parsePolicy (raw: unknown, kind?: TargetKind): Policy {
  if (raw === undefined || raw === null) return { rules: [] }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidInput('policy must be an object with "rules"')
  const extra = Object.keys(raw).filter((k) => k !== 'rules')
  if (extra.length > 0) throw new InvalidInput(`policy has unknown member ${extra[0]}`)
  const rules = (raw as { rules?: unknown }).rules ?? []
  if (!Array.isArray(rules) || rules.length > maxRules) throw new InvalidInput(`policy.rules must be an array of at most ${maxRules} rules`)
  return { rules: rules.map((r, i) => parseRule(r, `policy.rules[${i}]`, kind)) }
}

function parseRule (raw: unknown, where: string, kind: TargetKind | undefined): Rule {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidInput(`${where} must be an object`)
  const r = raw as Record<string, unknown>
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(r)) {
    if (!['effect', 'reason', 'columns', 'with', 'min_depth', 'max_depth', ...listKeys].includes(key)) throw new InvalidInput(`${where} has unknown member ${key}`)
  }
  if (r.effect !== 'deny' && r.effect !== 'approve' && r.effect !== 'mask') throw new InvalidInput(`${where}.effect must be deny, approve or mask`)
  out.effect = r.effect
  for (const key of listKeys) if (r[key] !== undefined) out[key] = stringList(r[key], `${where}.${key}`)
  for (const key of ['min_depth', 'max_depth'] as const) {
    if (r[key] === undefined) continue
    if (!Number.isInteger(r[key]) || (r[key] as number) < 0 || (r[key] as number) > 64) throw new InvalidInput(`${where}.${key} must be an integer from 0 to 64`)
    out[key] = r[key]
  }
  if (typeof out.min_depth === 'number' && typeof out.max_depth === 'number' && out.min_depth > out.max_depth) throw new InvalidInput(`${where}: min_depth ${out.min_depth} is above max_depth ${out.max_depth}, so the rule would match no token`)
  // An action no request has (a typo, another letter case) would leave its rule matching nothing, unseen.
  const action = (out.actions as string[] | undefined)?.find((a) => !(actionNames as readonly string[]).includes(a))
  if (action !== undefined) throw new InvalidInput(`${where}.actions: unknown action ${action}`)
  const actions = out.actions as string[] | undefined
  if (kind !== undefined && actions !== undefined && !actions.some((a) => kindActions[kind].includes(a))) throw new InvalidInput(`${where}.actions: no request to a ${kind} target is ${actions.join(' or ')} (its actions: ${kindActions[kind].join(', ')}), so the rule would match none`)
  // A method is a token (RFC 9110 §9.1): a pattern holding anything else (`GET, POST`, a space) would match none, unseen.
  const methodless = (out.methods as string[] | undefined)?.find((m) => !/^[!#$%&'*+\-.^_`|~0-9A-Za-z?]+$/.test(m))
  if (methodless !== undefined) throw new InvalidInput(`${where}.methods: ${methodless} matches no method; give each method (or glob) as its own string`)
  // Every request path starts with `/`: a pattern that starts with neither it nor a wildcard (`admin/*`) would match none, unseen.
  const pathless = (out.paths as string[] | undefined)?.find((p) => !/^[/*?]/.test(p))
  if (pathless !== undefined) throw new InvalidInput(`${where}.paths: ${pathless} matches no path, as every path starts with /; write /${pathless}`)
  // A condition no request to this kind of target has (`tables` on an http target) would leave a
  // deny rule matching nothing, unseen; a mask rule reads result columns, which only postgres targets return.
  const foreign = kind === undefined ? undefined : Object.keys(kindOfCondition).find((key) => out[key] !== undefined && kindOfCondition[key] !== kind)
  if (foreign !== undefined) throw new InvalidInput(`${where}.${foreign} is a condition of ${kindOfCondition[foreign] as string} targets: no request to this ${kind as string} target has it, so the rule would match none`)
  if (kind !== undefined && kind !== 'postgres' && r.effect === 'mask') throw new InvalidInput(`${where}: mask rules are for postgres targets, whose answers have columns`)
  const statements = out.statements as string[] | undefined
  const unknown = statements?.find((s) => !statementShapes.includes(s))
  if (unknown !== undefined) throw new InvalidInput(`${where}.statements: unknown shape ${unknown}`)
  if (r.reason !== undefined) {
    if (typeof r.reason !== 'string' || r.reason.length > 500) throw new InvalidInput(`${where}.reason must be a string of at most 500 characters`)
    out.reason = r.reason
  }
  if (r.effect === 'mask') {
    out.columns = stringList(r.columns, `${where}.columns`)
    // A column is matched as `table.column` or `schema.table.column`: a bare `email` would mask nothing, unseen.
    const bare = (out.columns as string[]).find((c) => !/[.*?]/.test(c))
    if (bare !== undefined) throw new InvalidInput(`${where}.columns: ${bare} names no table; write table.column, schema.table.column or *.${bare}`)
    if (!maskKinds.includes(r.with as string)) throw new InvalidInput(`${where}.with must be one of ${maskKinds.join(', ')}`)
    out.with = r.with
  } else if (r.columns !== undefined || r.with !== undefined) {
    throw new InvalidInput(`${where}: columns and with belong to mask rules`)
  }
  return out as unknown as Rule
}

function matches (rule: Rule, q: PolicyRequest): boolean {
  if (rule.actions !== undefined && !rule.actions.includes(q.action)) return false
  if (rule.min_depth !== undefined && q.depth < rule.min_depth) return false
  if (rule.max_depth !== undefined && q.depth > rule.max_depth) return false
  if (rule.principals !== undefined && !q.principals.some((p) => rule.principals?.includes(p))) return false
  if (rule.actors !== undefined && (q.actor === undefined || !rule.actors.some((g) => globMatch(g, q.actor as string)))) return false
  if (rule.methods !== undefined && (q.method === undefined || !rule.methods.some((g) => methodMatch(g, (q.method as string).toUpperCase())))) return false
  if (rule.paths !== undefined && (q.path === undefined || !rule.paths.some((g) => pathMatch(g, q.path as string)))) return false
  if (rule.tables !== undefined && (q.tables === undefined || !q.tables.some((t) => rule.tables?.some((g) => tableMatch(g, t))))) return false
  if (rule.statements !== undefined && (q.statements === undefined || !q.statements.some((s) => rule.statements?.includes(s)))) return false
  if (rule.commands !== undefined && (q.command === undefined || !rule.commands.some((g) => globMatch(g, q.command as string)))) return false
  return true
}

/** The refusal a policy makes of a request, or undefined when no deny or approve rule matches. */
export function policyRefusal (policy: Policy, q: PolicyRequest): string | undefined {
  for (const rule of policy.rules) {
    if (rule.effect === 'mask' || !matches(rule, q)) continue
    if (rule.effect === 'approve') return `approval required${rule.reason !== undefined ? `: ${rule.reason}` : ''}`
    return `denied by policy${rule.reason !== undefined ? `: ${rule.reason}` : ''}`
  }
  return undefined
}

/**
 * The mask rules (postgres) whose conditions hold for `q`, in policy order. A mask acts on the
 * rows a statement returns, and returning rows is reading them: a rule whose `actions` list
 * `read` holds for a write's `RETURNING` and `SELECT … FOR UPDATE` too.
 */
export function maskRules (policy: Policy, q: PolicyRequest): Array<Extract<Rule, { effect: 'mask' }>> {
  const out: Array<Extract<Rule, { effect: 'mask' }>> = []
  // A statement that names no table (FETCH from a cursor, EXECUTE of a prepared statement) may
  // still return a table's columns: a rule's `tables` condition does not spare it.
  const tableless = q.tables !== undefined && q.tables.length === 0
  for (const rule of policy.rules) {
    if (rule.effect !== 'mask') continue
    const reads = rule.actions?.includes('read') === true
    if (matches(tableless || reads ? { ...rule, tables: tableless ? undefined : rule.tables, actions: reads ? undefined : rule.actions } : rule, q)) out.push(rule)
  }
  return out
}
