/**
 * The URL of `path` (starting with `/`) under the issuer identifier. The identifier itself is
 * kept exactly as configured, a trailing slash included: it is every token's `iss` and the
 * metadata's `issuer`, which relying parties compare as strings (RFC 8414 §3.3, RFC 9068 §4).
 */
export function issuerUrl (issuer: string, path: string): string {
  return `${issuer.replace(/\/+$/, '')}${path}`
}
