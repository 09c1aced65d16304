import { LineageError } from '../../errors.js'

/** RFC 7644 §3.12: the schema of every SCIM error body. */
export const errorSchema = 'urn:ietf:params:scim:api:messages:2.0:Error'

/** RFC 7644 §3.12 Table 9: the detail keywords of a 400. */
export type ScimType = 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath' | 'noTarget' | 'invalidValue' | 'invalidVers' | 'sensitive'

/** The SCIM error body: RFC 7644 §3.12 wants `status` as a string. */
export interface ScimErrorBody {
  schemas: [typeof errorSchema]
  status: string
  scimType?: ScimType
  detail: string
}

/**
 * An error the SCIM endpoint raises on purpose. `code` is `ERR_SCIM_<scimType>` (or
 * `ERR_SCIM_<status>` without one), stable across releases.
 */
export class ScimError extends LineageError {
  readonly scimType: ScimType | undefined

  constructor (status: number, scimType: ScimType | undefined, detail: string, headers: Record<string, string> = {}) {
    super(`ERR_SCIM_${scimType ?? String(status)}`, scimType ?? 'scim_error', status, detail, headers)
    this.scimType = scimType
  }
}

/** 401: no, a wrong, or an unconfigured bearer token. */
export function scimUnauthorized (detail: string): ScimError {
  return new ScimError(401, undefined, detail, { 'WWW-Authenticate': 'Bearer realm="lineage-scim"' })
}

/** 404 for a resource that does not exist (RFC 7644 §3.12: no `scimType` outside 400s). */
export function scimNotFound (detail: string): ScimError {
  return new ScimError(404, undefined, detail)
}

/** Body-parser and router failures (too large, malformed JSON, bad charset or encoding, bad path encoding) as SCIM errors. */
function parserError (err: unknown): ScimError | undefined {
  const e = err as { type?: string, status?: number, expose?: boolean }
  // The router's own 400: an id that is not valid percent-encoding (`/Users/%C0`).
  if (err instanceof URIError && e.status === 400) return new ScimError(400, 'invalidValue', 'the path is not valid percent-encoding')
  // A body that does not inflate (`Content-Encoding: gzip` over other bytes) is the parser's 400 without a `type`.
  if ((typeof e?.type !== 'string' && e?.expose !== true) || typeof e.status !== 'number' || e.status >= 500) return undefined
  if (e.type === 'entity.too.large') return new ScimError(413, undefined, 'the request body is larger than 64 kB')
  if (e.type === 'entity.parse.failed') return new ScimError(400, 'invalidSyntax', 'the body is not valid JSON')
  return new ScimError(e.status === 415 ? 415 : 400, e.status === 415 ? undefined : 'invalidSyntax', 'the body could not be read')
}

/** A Lineage error from shared code (createPrincipal, setStatus) in SCIM terms. */
function fromLineage (err: LineageError): ScimError {
  if (err.status === 409) return new ScimError(409, 'uniqueness', err.message)
  if (err.status === 400) return new ScimError(400, 'invalidValue', err.message)
  return new ScimError(err.status, undefined, err.message, err.headers)
}

/**
 * The status, SCIM error body and headers for any thrown value; a 5xx never shows its
 * message, and anything that is not a known error is a 500.
 */
export function toScimErrorBody (err: unknown): { status: number, body: ScimErrorBody, headers: Record<string, string> } {
  const known = err instanceof ScimError ? err : err instanceof LineageError ? fromLineage(err) : parserError(err)
  if (known === undefined || known.status >= 500) {
    const status = known?.status ?? 500
    return { status, body: { schemas: [errorSchema], status: String(status), detail: 'internal error' }, headers: {} }
  }
  const body: ScimErrorBody = { schemas: [errorSchema], status: String(known.status), detail: known.message }
  if (known.scimType !== undefined) body.scimType = known.scimType
  return { status: known.status, body, headers: known.headers }
}
