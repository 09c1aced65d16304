import type { ConnectionOptions } from 'node:tls'

/**
 * The TLS an upstream URL's `sslmode` asks for, with libpq's meanings (PostgreSQL docs, "SSL
 * Support", table "SSL Mode Descriptions"): `disable` and `allow` connect without TLS (`allow`
 * would try TLS only if the server refused plain, which a server configured to need TLS does by
 * refusing the login); `prefer`, libpq's default and so the default here, uses TLS when the
 * server offers it; `require` insists on it without checking the certificate; `verify-ca` checks
 * the certificate's chain; `verify-full` the chain and the host name too.
 */
export interface UpstreamTls {
  /** Ask for TLS (SSLRequest). */
  attempt: boolean
  /** Refuse to go on without it. */
  required: boolean
  /** How to check the server's certificate, for `tls.connect` (the host name given as `servername`). */
  options: Pick<ConnectionOptions, 'rejectUnauthorized' | 'checkServerIdentity'>
}

const modes = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']

/** What is wrong with the URL's `sslmode` (one libpq does not know), or undefined; a target is checked with it when saved. */
export function sslModeProblem (u: URL): string | undefined {
  const mode = u.searchParams.get('sslmode')
  return mode === null || modes.includes(mode) ? undefined : `sslmode must be one of ${modes.join(', ')}`
}

/** The TLS of an upstream; an `sslmode` libpq does not know (saved before it was checked) means `require`, TLS or nothing. */
export function upstreamTls (u: URL): UpstreamTls {
  const given = u.searchParams.get('sslmode') ?? 'prefer'
  const mode = modes.includes(given) ? given : 'require'
  const verify = mode === 'verify-ca' || mode === 'verify-full'
  return {
    attempt: mode !== 'disable' && mode !== 'allow',
    required: mode === 'require' || verify,
    // verify-ca: the chain only; Node checks the host name too unless told not to.
    options: { rejectUnauthorized: verify, ...(mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}) }
  }
}
