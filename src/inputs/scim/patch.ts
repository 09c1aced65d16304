import { ScimError } from './errors.js'
import { attributeOf, setAttribute, userSchema, type UserChanges } from './resource.js'

export const patchSchema = 'urn:ietf:params:scim:api:messages:2.0:PatchOp'

/** Operations per request; 64 kB of body holds fewer anyway. */
const maxOperations = 1000

interface Operation { op?: unknown, path?: unknown, value?: unknown }

/**
 * A PatchOp body (RFC 7644 §3.5.2) as the User changes it asks for, in the forms IdPs send:
 * `{"op":"replace","path":"active","value":false}`; Microsoft Entra's `"op":"Replace"` with
 * `"value":"False"`; Okta's path-less `{"op":"replace","value":{"active":false}}`. Operations
 * apply in order (a later one wins). Attributes Lineage does not keep (`displayName`,
 * `name.givenName`, `emails[type eq "work"].value`, extension schemas…) are accepted and
 * ignored, so that a deactivation sent together with profile changes still takes effect.
 * The whole body is checked before anything is applied (§3.5.2: all or nothing).
 * @throws ScimError invalidSyntax (not a PatchOp), invalidValue (unknown op, wrong value type),
 *   invalidPath (unknown attribute), noTarget (`remove` without a path), mutability (read-only attribute)
 */
export function parsePatch (body: unknown): UserChanges {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ScimError(400, 'invalidSyntax', 'the body must be a JSON object')
  const schemas = member(body as Record<string, unknown>, 'schemas')
  if (!Array.isArray(schemas) || !schemas.includes(patchSchema)) throw new ScimError(400, 'invalidSyntax', `schemas must contain ${patchSchema}`)
  const ops = member(body as Record<string, unknown>, 'Operations')
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > maxOperations) throw new ScimError(400, 'invalidSyntax', `Operations must be an array of 1-${maxOperations} operations`)
  const out: UserChanges = {}
  for (const raw of ops as unknown[]) applyOperation(out, raw)
  return out
}

/**
 * The member of a PatchOp body or operation named `name` in any case: RFC 7643 §2.1 makes
 * attribute names case-insensitive, the PatchOp message's (`schemas`, `Operations`, and an
 * operation's `op`, `path`, `value`) too. The same name given
 * twice in two cases is refused rather than one of them picked.
 * @throws ScimError invalidSyntax
 */
function member (body: Record<string, unknown>, name: string): unknown {
  const keys = Object.keys(body).filter((k) => k.toLowerCase() === name.toLowerCase())
  if (keys.length > 1) throw new ScimError(400, 'invalidSyntax', `${name} is given more than once`)
  return keys.length === 0 ? undefined : body[keys[0]]
}

function applyOperation (out: UserChanges, sent: unknown): void {
  if (typeof sent !== 'object' || sent === null || Array.isArray(sent)) throw new ScimError(400, 'invalidSyntax', 'each operation must be a JSON object')
  const o = sent as Record<string, unknown>
  const raw: Operation = { op: member(o, 'op'), path: member(o, 'path'), value: member(o, 'value') }
  // §3.5.2: "op" values are case-insensitive (Entra sends "Replace", "Add").
  const op = typeof raw.op === 'string' ? raw.op.toLowerCase() : undefined
  if (op !== 'add' && op !== 'replace' && op !== 'remove') throw new ScimError(400, 'invalidValue', 'op must be "add", "replace" or "remove"')
  // RFC 7643 §2.5: a null value is an unassigned one, so `"path": null` is no path (as serializers that keep nulls send it).
  const path = raw.path ?? undefined
  if (path !== undefined && (typeof path !== 'string' || path.length > 1024)) throw new ScimError(400, 'invalidPath', 'path must be a string')
  if (op === 'remove') {
    // §3.5.2.2: a remove without a path is a 400 noTarget.
    if (path === undefined) throw new ScimError(400, 'noTarget', 'remove needs a path')
    const a = known(path)
    if (a === 'externalId') out.externalId = null
    else if (a === 'userName' || a === 'active') throw new ScimError(400, 'invalidValue', `${a} cannot be removed`)
    return
  }
  if (path !== undefined) {
    const a = known(path)
    if (a !== 'ignored') setAttribute(out, a, raw.value)
    return
  }
  // §3.5.2.1 / §3.5.2.3: without a path, the value is an object of attributes to set.
  if (typeof raw.value !== 'object' || raw.value === null || Array.isArray(raw.value)) throw new ScimError(400, 'invalidValue', `${op} without a path needs an object value`)
  for (const [key, value] of pathlessMembers(raw.value as Record<string, unknown>)) {
    // Read-only members (an echoed `id`, `meta`) are ignored here, as in a PUT body.
    const a = attributeOf(key)
    if (a === undefined) throw new ScimError(400, 'invalidPath', `unknown attribute ${key.slice(0, 100)}`)
    if (a !== 'ignored' && a !== 'readOnly') setAttribute(out, a, value)
  }
}

/**
 * The members of a path-less value, with those nested under the core User schema's URN
 * (`{"urn:ietf:params:scim:schemas:core:2.0:User":{"active":false}}`, RFC 7644 §3.5.2)
 * brought up beside the others, so that such a deactivation is acted on, not skipped as an
 * extension.
 */
function pathlessMembers (value: Record<string, unknown>): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = []
  for (const [key, v] of Object.entries(value)) {
    if (key.toLowerCase() === userSchema.toLowerCase() && typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(...Object.entries(v))
    else out.push([key, v])
  }
  return out
}

/** The attribute `path` names, refusing unknown and read-only ones. */
function known (path: string): 'userName' | 'externalId' | 'active' | 'ignored' {
  const a = attributeOf(path)
  if (a === undefined) throw new ScimError(400, 'invalidPath', `unknown attribute path ${path.slice(0, 100)}`)
  if (a === 'readOnly') throw new ScimError(400, 'mutability', `${path.slice(0, 100)} is read-only`)
  return a
}
