import { InvalidRequest, InvalidScope } from '../errors.js'

/** A parsed `application/x-www-form-urlencoded` body: repeated names become arrays. */
export type Form = Record<string, string | string[] | undefined>

/**
 * The single value of `name`, or undefined. RFC 6749 §3.1: a parameter sent without a value is
 * treated as omitted; §3.2: parameters must not repeat.
 * @throws InvalidRequest when repeated.
 */
export function single (form: Form, name: string): string | undefined {
  const v = form[name]
  if (Array.isArray(v)) throw new InvalidRequest(`parameter ${name} is repeated`)
  return v === '' ? undefined : v
}

/** @throws InvalidRequest when missing. */
export function required (form: Form, name: string): string {
  const v = single(form, name)
  if (v === undefined) throw new InvalidRequest(`missing parameter ${name}`)
  return v
}

/** Every value of a repeatable parameter (RFC 8693 `audience`, `resource`); empty ones count as not sent (RFC 6749 §3.1). */
export function multi (form: Form, name: string): string[] {
  const v = form[name]
  if (v === undefined) return []
  return (Array.isArray(v) ? v : [v]).filter((x) => x !== '')
}

/**
 * A space-separated `scope` (RFC 6749 §3.3), or undefined when absent.
 * @throws InvalidScope when malformed: RFC 6749 §5.2 names a malformed scope `invalid_scope`.
 */
export function scopeParam (form: Form): string[] | undefined {
  const s = single(form, 'scope')
  if (s === undefined) return undefined
  if (!/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/.test(s)) throw new InvalidScope('scope is malformed')
  return [...new Set(s.split(' '))]
}

/** A positive integer number of seconds, or undefined. */
export function ttlParam (form: Form): number | undefined {
  const s = single(form, 'ttl')
  if (s === undefined) return undefined
  if (!/^[1-9]\d{0,6}$/.test(s)) throw new InvalidRequest('ttl must be a positive whole number of seconds')
  return Number(s)
}

const printable = /^[\x20-\x7E]{1,256}$/

/** What the caller says about itself (`actor_host`, `actor_pid`, `actor_run`), kept in the lineage tree. */
export function contextParams (form: Form): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [param, key] of [['actor_host', 'host'], ['actor_pid', 'pid'], ['actor_run', 'run']] as const) {
    const v = single(form, param)
    if (v === undefined) continue
    if (!printable.test(v)) throw new InvalidRequest(`${param} must be 1-256 printable characters`)
    out[key] = v
  }
  return out
}

/** The `actor` extension: a name for the new process. */
export function actorParam (form: Form): string | undefined {
  const v = single(form, 'actor')
  if (v !== undefined && !/^[\x21-\x7E]([\x20-\x7E]{0,126}[\x21-\x7E])?$/.test(v)) throw new InvalidRequest('actor must be 1-128 printable characters')
  return v
}
