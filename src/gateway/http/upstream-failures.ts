import { LineageError } from '../../errors.js'
import type { Logger } from '../../log.js'

// What an upstream's failure is called, as the agent is told it, and how it is logged.

export class BadGateway extends LineageError {
  constructor (description: string) { super('ERR_BAD_GATEWAY', 'bad_gateway', 502, description) }
}
export class GatewayTimeout extends LineageError {
  constructor (description: string) { super('ERR_GATEWAY_TIMEOUT', 'gateway_timeout', 504, description) }
}

export class ServiceUnavailable extends LineageError {
  constructor (description: string) { super('ERR_UPSTREAM_BUSY', 'temporarily_unavailable', 503, description) }
}

// Node's codes for a failed TLS handshake (ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_WRONG_VERSION_NUMBER)
// and OpenSSL's verify codes (DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, UNABLE_TO_GET_ISSUER_CERT_LOCALLY…).
const tlsFailure = /^ERR_(TLS|SSL)_[A-Z0-9_]+$|^[A-Z_]*(CERT|CRL|SELF_SIGNED|UNABLE_TO)[A-Z0-9_]*$/

/** Why an upstream exchange failed, as the agent is told (502 or 504), without the upstream's own words. */
export function upstreamError (target: string, err: Error, timeoutMs: number): LineageError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return new GatewayTimeout(`upstream ${target} sent no response within ${timeoutMs} ms`)
  // System errors (ECONNREFUSED, ECONNRESET…) and a TLS handshake's (a certificate not trusted,
  // no TLS spoken) say what happened; anything else is a response the gateway would not pass on.
  const why = code === 'UND_ERR_SOCKET' ? 'connection closed' : code !== undefined && (/^E[A-Z]+$/.test(code) || tlsFailure.test(code)) ? code : 'invalid response'
  return new BadGateway(`upstream ${target} failed: ${why}`)
}

/**
 * Which targets' upstreams are failing now: a failure is logged when a target's upstream
 * starts failing and when it answers again, not once per request it fails (an upstream down
 * under load would flood the log).
 */
export class UpstreamHealth {
  private readonly failing = new Set<string>()
  constructor (private readonly log: Logger) {}

  failed (target: string, err: LineageError): void {
    if (this.failing.has(target)) return
    this.failing.add(target)
    this.log.warn({ target, reason: err.message }, 'upstream failing')
  }

  answered (target: string): void {
    if (this.failing.delete(target)) this.log.info({ target }, 'upstream answering again')
  }
}
