import { ScimError } from './errors.js'

export const userSchema = 'urn:ietf:params:scim:schemas:core:2.0:User'
export const listSchema = 'urn:ietf:params:scim:api:messages:2.0:ListResponse'

/** The columns a SCIM User is made of. */
export const userColumns = 'p.id, p.email, p.external_id, p.status, p.status_source, p.ends_at, p.created_at, p.updated_at'

export interface UserRow {
  id: string
  email: string | null
  external_id: string | null
  status: 'active' | 'suspended' | 'offboarded'
  /** Who set the status last: admin, scim, hr, okta, ssf:<issuer>. */
  status_source: string | null
  ends_at: Date | null
  created_at: Date
  updated_at: Date
}

/** RFC 7643 §4.1: a User as Lineage serves it. */
export interface ScimUser {
  schemas: [typeof userSchema]
  id: string
  externalId?: string
  userName: string
  name: { formatted: string }
  emails: Array<{ value: string, type: 'work', primary: true }>
  active: boolean
  meta: { resourceType: 'User', created: string, lastModified: string, location: string }
}

/** The attributes of a User that Lineage acts on; everything else a User carries is accepted and not kept. */
export interface UserChanges {
  userName?: string
  externalId?: string | null
  active?: boolean
}

/** The attribute a body member or PATCH path names: one Lineage keeps, one it ignores, one that is read-only, or none. */
export type Attribute = 'userName' | 'externalId' | 'active' | 'ignored' | 'readOnly' | undefined

const corePrefix = `${userSchema}:`.toLowerCase()

/** RFC 7643 §4.1 and §3.1: the User attributes, lower-cased (attribute names are case-insensitive, §2.1). */
const kept = new Map<string, Attribute>([['username', 'userName'], ['externalid', 'externalId'], ['active', 'active']])
const notKept = new Set(['name', 'displayname', 'nickname', 'profileurl', 'title', 'usertype', 'preferredlanguage', 'locale', 'timezone', 'password', 'emails', 'phonenumbers', 'ims', 'photos', 'addresses', 'entitlements', 'roles', 'x509certificates'])
// RFC 7643 §3: `schemas` belongs to every resource, so an IdP that sends the whole User as a
// path-less PATCH value sends it too; the resource's own schema is not the client's to change.
const readOnly = new Set(['schemas', 'id', 'meta', 'groups'])

/**
 * Which User attribute `name` means. A name in another schema (`urn:…`, e.g. the enterprise
 * extension or an IdP's custom one) is accepted and not kept; a core-schema URN prefix is
 * dropped (RFC 7644 §3.10). `name` may carry a sub-attribute or value filter
 * (`emails[type eq "work"].value`); only attributes Lineage does not keep may.
 */
export function attributeOf (name: string): Attribute {
  let n = name.trim().toLowerCase()
  if (n.startsWith(corePrefix)) n = n.slice(corePrefix.length)
  else if (n.startsWith('urn:')) return 'ignored'
  const top = /^[a-z][a-z0-9_$-]*/.exec(n)?.[0]
  if (top === undefined) return undefined
  const rest = n.slice(top.length)
  const attribute = kept.get(top)
  if (attribute !== undefined) return rest === '' ? attribute : undefined
  if (readOnly.has(top)) return 'readOnly'
  if (notKept.has(top) && (rest === '' || /^(\[.*\])?(\.[a-z][a-z0-9_$-]*)?$/.test(rest))) return 'ignored'
  return undefined
}

const emailShape = /^[^\s@]{1,64}@[^\s@]{1,255}$/

/** `userName`: a non-empty string; it must be an email address wherever it becomes one. @throws ScimError invalidValue */
export function parseUserName (v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '' || v.length > 320) throw new ScimError(400, 'invalidValue', 'userName must be a non-empty string')
  return v.trim()
}

/** @throws ScimError invalidValue when `userName` is not an email address. */
export function checkEmailShape (userName: string): void {
  if (!emailShape.test(userName)) throw new ScimError(400, 'invalidValue', 'userName must be an email address')
}

/** `externalId`: a string, or null to clear it. @throws ScimError invalidValue */
export function parseExternalId (v: unknown): string | null {
  if (v === null) return null
  if (typeof v !== 'string' || v === '' || v.length > 1024) throw new ScimError(400, 'invalidValue', 'externalId must be a string of 1-1024 characters')
  return v
}

/**
 * `active`: a boolean, or the strings "True"/"False" in any case, which Microsoft Entra sends
 * by default. @throws ScimError invalidValue
 */
export function parseActive (v: unknown): boolean {
  if (typeof v === 'boolean') return v
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true'
  throw new ScimError(400, 'invalidValue', 'active must be true or false')
}

/** Reads one kept attribute's value into `into`. @throws ScimError */
export function setAttribute (into: UserChanges, attribute: 'userName' | 'externalId' | 'active', value: unknown): void {
  if (attribute === 'userName') into.userName = parseUserName(value)
  else if (attribute === 'externalId') into.externalId = parseExternalId(value)
  else into.active = parseActive(value)
}

/**
 * The kept attributes of a POST or PUT body (RFC 7644 §3.3, §3.5.1). Members Lineage does not
 * keep are ignored, read-only ones too (§3.5.1: "readOnly" values in a PUT are ignored).
 * `userName` is required (RFC 7643 §4.1.1).
 * @throws ScimError invalidSyntax (not an object), invalidValue
 */
export function parseUserBody (body: unknown): UserChanges & { userName: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ScimError(400, 'invalidSyntax', 'the body must be a JSON object')
  const out: UserChanges = {}
  for (const [key, value] of Object.entries(body)) {
    const a = attributeOf(key)
    if (a === 'userName' || a === 'externalId' || a === 'active') setAttribute(out, a, value)
  }
  if (out.userName === undefined) throw new ScimError(400, 'invalidValue', 'userName is required')
  return { ...out, userName: out.userName }
}

/** A User's `userName`: the principal's email, or its id for a human created without one. */
export function userNameOf (row: UserRow): string {
  return row.email ?? row.id
}

/**
 * The principal id for a new User: its `userName`, lower-cased and reduced to the id alphabet
 * (`[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}`).
 */
export function idFromUserName (userName: string): string {
  const id = userName.toLowerCase().replace(/[^a-z0-9._@+-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 128)
  return id === '' ? 'user' : id
}

/**
 * A principal row as a SCIM User. `active` follows the effective status, as the admin API's
 * does: a human past `ends_at` counts as offboarded.
 */
export function toScimUser (row: UserRow, nowMs: number, baseUrl: string): ScimUser {
  const active = row.status === 'active' && (row.ends_at === null || row.ends_at.getTime() > nowMs)
  const user: ScimUser = {
    schemas: [userSchema],
    id: row.id,
    userName: userNameOf(row),
    // Lineage keeps no personal names; the name it knows the person by is the principal id.
    name: { formatted: row.id },
    emails: row.email === null ? [] : [{ value: row.email, type: 'work', primary: true }],
    active,
    meta: { resourceType: 'User', created: row.created_at.toISOString(), lastModified: row.updated_at.toISOString(), location: `${baseUrl}/Users/${encodeURIComponent(row.id)}` }
  }
  if (row.external_id !== null) user.externalId = row.external_id
  return user
}
