/**
 * Every error Lineage raises on purpose. Each class fixes a stable `code`, the OAuth/JSON
 * `error` string and the HTTP status; one serializer (`toErrorBody`) turns any of them into a
 * response body, and anything else into an opaque 500 that never shows its message.
 */

import type { AccessClaims } from './lineage/claims.js'

export class LineageError extends Error {
  /** Stable machine-readable code, the same across transports. */
  readonly code: string
  /** The OAuth / JSON `error` member. */
  readonly error: string
  readonly status: number
  /** Extra headers a transport should send with this error. */
  readonly headers: Record<string, string>

  constructor (code: string, error: string, status: number, description: string, headers: Record<string, string> = {}) {
    super(description)
    this.name = new.target.name
    this.code = code
    this.error = error
    this.status = status
    this.headers = headers
  }
}

/** RFC 6749 §5.2 / RFC 8693 §2.2.2: malformed request or unusable subject/actor token. */
export class InvalidRequest extends LineageError {
  constructor (description: string, code = 'ERR_INVALID_REQUEST') { super(code, 'invalid_request', 400, description) }
}

export class InvalidScope extends LineageError {
  constructor (description: string) { super('ERR_INVALID_SCOPE', 'invalid_scope', 400, description) }
}

/** RFC 8693 §2.2.2: a requested audience or resource the parent does not hold. */
export class InvalidTarget extends LineageError {
  constructor (description: string) { super('ERR_INVALID_TARGET', 'invalid_target', 400, description) }
}

export class UnsupportedGrantType extends LineageError {
  constructor (description: string) { super('ERR_UNSUPPORTED_GRANT_TYPE', 'unsupported_grant_type', 400, description) }
}

export class UnauthorizedClient extends LineageError {
  constructor (description: string) { super('ERR_UNAUTHORIZED_CLIENT', 'unauthorized_client', 400, description) }
}

/** RFC 6749 §5.2: client authentication failed; 401 with a challenge. */
export class InvalidClient extends LineageError {
  constructor (description = 'client authentication failed') {
    super('ERR_INVALID_CLIENT', 'invalid_client', 401, description, { 'WWW-Authenticate': 'Basic realm="lineage"' })
  }
}

/** RFC 6750 §3.1: the bearer token a caller authenticates with is not (or no longer) acceptable. */
export class InvalidBearer extends LineageError {
  constructor (description: string) {
    super('ERR_INVALID_TOKEN', 'invalid_token', 401, description, { 'WWW-Authenticate': 'Bearer realm="lineage", error="invalid_token"' })
  }
}

/** Missing or wrong bearer credential on a protected endpoint. */
export class Unauthorized extends LineageError {
  constructor (description = 'a valid bearer token is required') {
    super('ERR_UNAUTHORIZED', 'unauthorized', 401, description, { 'WWW-Authenticate': 'Bearer realm="lineage"' })
  }
}

/**
 * A token that is not (or no longer) acceptable; `reason` tells an operator why. `claims`:
 * those of a token whose signature was good but which is refused all the same (expired), so
 * that the refusal is recorded with its lineage.
 */
export class InvalidToken extends LineageError {
  constructor (description: string, code = 'ERR_INVALID_TOKEN', readonly claims?: AccessClaims) { super(code, 'invalid_token', 401, description) }
}

export class NotFound extends LineageError {
  constructor (description: string) { super('ERR_NOT_FOUND', 'not_found', 404, description) }
}

/** RFC 9110 §15.5.6: a known path, a method it does not serve; `Allow` lists the ones it does. */
export class MethodNotAllowed extends LineageError {
  constructor (method: string, allow: string[]) {
    super('ERR_METHOD_NOT_ALLOWED', 'invalid_request', 405, `${method.slice(0, 20)} is not allowed here; use ${allow.join(' or ')}`, { Allow: allow.join(', ') })
  }
}

export class Conflict extends LineageError {
  constructor (description: string) { super('ERR_CONFLICT', 'conflict', 409, description) }
}

/** Well-formed admin request that breaks a rule of the model (e.g. a sponsor that is not an active human). */
export class InvalidInput extends LineageError {
  constructor (description: string, code = 'ERR_INVALID_INPUT') { super(code, 'invalid_request', 400, description) }
}

export class PayloadTooLarge extends LineageError {
  constructor (description = 'request body too large') { super('ERR_TOO_LARGE', 'invalid_request', 413, description) }
}

/** The process cannot prove its view is current; fail closed. */
export class Unavailable extends LineageError {
  constructor (description: string) { super('ERR_UNAVAILABLE', 'temporarily_unavailable', 503, description) }
}

/** Bad configuration: names the variable. Thrown once at start. */
export class ConfigError extends Error {
  constructor (readonly variable: string, message: string) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

/**
 * Names `items` in an error description: the first ten, each cut to 100 characters, then how
 * many more. A refusal names what it refused without sending back whatever a form could hold.
 */
export function listed (items: readonly string[]): string {
  const shown = items.slice(0, 10).map((s) => s.length > 100 ? `${s.slice(0, 100)}…` : s).join(' ')
  return items.length > 10 ? `${shown} and ${items.length - 10} more` : shown
}

/** The JSON body and status for any thrown value; a 5xx never shows its message. */
export function toErrorBody (err: unknown): { status: number, body: { error: string, error_description: string }, headers: Record<string, string> } {
  if (err instanceof LineageError) {
    return { status: err.status, body: { error: err.error, error_description: err.message }, headers: err.headers }
  }
  return { status: 500, body: { error: 'server_error', error_description: 'internal error' }, headers: {} }
}
