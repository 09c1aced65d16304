import { resolve } from 'node:path'
import { ConfigError } from './errors.js'

export type Role = 'broker' | 'gateway' | 'all'

/** Everything Lineage reads from the environment, checked once at start. */
export interface Config {
  databaseUrl: string | undefined
  redisUrl: string | undefined
  dataDir: string
  /** PEM files of the PostgreSQL gateway's TLS certificate and key; generated in `dataDir` when unset. */
  tlsCertFile?: string
  tlsKeyFile?: string
  host: string
  brokerPort: number
  gatewayHttpPort: number
  gatewayPgPort: number
  gatewaySshPort: number
  /** `iss` of every token; undefined until the broker knows its bound port. */
  issuer: string | undefined
  adminToken: string | undefined
  scimToken: string | undefined
  webhookSecret: string | undefined
  oktaAuthorization: string | undefined
  role: Role
  maxDepth: number
  maxStalenessMs: number
  /** Lifetime of a root token in seconds. */
  rootTtl: number
  logLevel: string
  /** Run by `npm start` (npm sets `npm_lifecycle_event`): npm's exit ends the process too. */
  underNpmStart: boolean
}

type Env = Record<string, string | undefined>

function port (env: Env, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw) || Number(raw) > 65535) throw new ConfigError(name, `must be a port number 0-65535, got "${raw}"`)
  return Number(raw)
}

function positiveInt (env: Env, name: string, fallback: number, max: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new ConfigError(name, `must be an integer from 1 to ${max}, got "${raw}"`)
  return Number(raw)
}

function url (env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  let parsed: URL
  try { parsed = new URL(raw) } catch { throw new ConfigError(name, 'is not a URL') }
  if (!protocols.includes(parsed.protocol)) throw new ConfigError(name, `must use ${protocols.join(' or ')}`)
  return raw
}

/**
 * REDIS_URL: its path (or a `db` in its query) names a database by number. ioredis reads any other
 * as NaN, which Redis refuses with an error nothing can catch: the process would die at start.
 */
function redisUrl (env: Env): string | undefined {
  const raw = url(env, 'REDIS_URL', ['redis:', 'rediss:'])
  if (raw === undefined) return undefined
  const u = new URL(raw)
  const db = u.pathname.length > 1 ? u.pathname.slice(1) : u.searchParams.get('db')
  if (db !== null && !/^\d{1,9}$/.test(db)) throw new ConfigError('REDIS_URL', 'its path must be a database number (redis://host:6379/0)')
  return raw
}

/** A variable's value, or `fallback` when it is unset or empty (an empty value never means "nothing"). */
function text (env: Env, name: string, fallback: string): string {
  const raw = env[name]
  return raw === undefined || raw === '' ? fallback : raw
}

function role (env: Env): Role {
  const raw = text(env, 'LINEAGE_ROLE', 'all')
  if (raw !== 'broker' && raw !== 'gateway' && raw !== 'all') throw new ConfigError('LINEAGE_ROLE', `must be broker, gateway or all, got "${raw}"`)
  // A gateway serves what a broker writes; the embedded database is one process's own, so a
  // gateway on it would start empty and refuse everything for ever.
  if (raw === 'gateway' && (env.DATABASE_URL ?? '') === '') throw new ConfigError('LINEAGE_ROLE', 'gateway needs DATABASE_URL, the database a broker process writes: the embedded one is no other process\'s')
  return raw
}

/**
 * The issuer identifier: a URL with no query or fragment (RFC 8414 §2). The metadata and JWKS
 * URLs are built by appending to it, so either would end up inside them, and relying parties
 * that check `iss` against the identifier would each read it differently.
 */
function issuerId (env: Env): string | undefined {
  const raw = url(env, 'LINEAGE_ISSUER', ['http:', 'https:'])
  if (raw !== undefined && /[?#]/.test(raw)) throw new ConfigError('LINEAGE_ISSUER', `must have no query or fragment (RFC 8414 §2), got "${raw}"`)
  return raw
}

/**
 * A gateway process checks tokens against the broker's issuer and fetches its keys there: with
 * no LINEAGE_ISSUER that is `http://<host>:<LINEAGE_BROKER_PORT>`, and a port of 0 names no
 * broker (it binds a free port in the broker's own process), so every token would be refused.
 */
function brokerKnown (config: Config): void {
  if (config.role === 'gateway' && config.issuer === undefined && config.brokerPort === 0) {
    throw new ConfigError('LINEAGE_ISSUER', 'a gateway process needs the broker\'s URL: LINEAGE_BROKER_PORT=0 names no broker to find it at')
  }
}

function secret (env: Env, name: string): string | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  if (raw.length < 16) throw new ConfigError(name, 'must be at least 16 characters')
  return raw
}

/**
 * A bearer token the API checks: `Authorization: Bearer <token>` carries visible ASCII without
 * spaces (RFC 6750 §2.1), so a token with anything else (the newline a secret file ends with)
 * could never be presented, and every caller would be refused.
 */
function bearerSecret (env: Env, name: string): string | undefined {
  const raw = secret(env, name)
  if (raw !== undefined && !/^[\x21-\x7e]+$/.test(raw)) throw new ConfigError(name, 'must be visible ASCII without spaces or line breaks: no request could present it (check for a trailing newline)')
  return raw
}

/**
 * The exact `Authorization` value Okta sends: a header value arrives without leading or trailing
 * whitespace and holds no control character (RFC 9110 §5.5), so one with them would never match.
 */
function headerValue (env: Env, name: string): string | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(raw)) throw new ConfigError(name, 'must be visible ASCII, spaces only inside: no request could carry it otherwise (check for a trailing newline)')
  return raw
}

function tlsFiles (env: Env): { tlsCertFile?: string, tlsKeyFile?: string } {
  const cert = env.LINEAGE_TLS_CERT === '' ? undefined : env.LINEAGE_TLS_CERT
  const key = env.LINEAGE_TLS_KEY === '' ? undefined : env.LINEAGE_TLS_KEY
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError(cert === undefined ? 'LINEAGE_TLS_CERT' : 'LINEAGE_TLS_KEY', 'must be set together with ' + (cert === undefined ? 'LINEAGE_TLS_KEY' : 'LINEAGE_TLS_CERT'))
  return cert === undefined || key === undefined ? {} : { tlsCertFile: resolve(cert), tlsKeyFile: resolve(key) }
}

function logLevel (env: Env): string {
  const raw = text(env, 'LINEAGE_LOG_LEVEL', 'info')
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(raw)) throw new ConfigError('LINEAGE_LOG_LEVEL', `unknown level "${raw}"`)
  return raw
}

/**
 * Reads and checks the configuration (CONTRACT.md §2). Nothing else reads `process.env`.
 * @throws ConfigError naming the variable at fault.
 */
export function loadConfig (env: Env): Config {
  const issuer = issuerId(env)
  const config: Config = {
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl: redisUrl(env),
    dataDir: resolve(text(env, 'LINEAGE_DATA_DIR', './.lineage')),
    ...tlsFiles(env),
    // An empty host would bind every interface.
    host: text(env, 'LINEAGE_HOST', '127.0.0.1'),
    brokerPort: port(env, 'LINEAGE_BROKER_PORT', 7400),
    gatewayHttpPort: port(env, 'LINEAGE_GATEWAY_HTTP_PORT', 7401),
    gatewayPgPort: port(env, 'LINEAGE_GATEWAY_PG_PORT', 7432),
    gatewaySshPort: port(env, 'LINEAGE_GATEWAY_SSH_PORT', 7422),
    issuer,
    adminToken: bearerSecret(env, 'LINEAGE_ADMIN_TOKEN'),
    scimToken: bearerSecret(env, 'LINEAGE_SCIM_TOKEN'),
    webhookSecret: secret(env, 'LINEAGE_WEBHOOK_SECRET'),
    oktaAuthorization: headerValue(env, 'LINEAGE_OKTA_AUTHORIZATION'),
    role: role(env),
    maxDepth: positiveInt(env, 'LINEAGE_MAX_DEPTH', 8, 64),
    maxStalenessMs: positiveInt(env, 'LINEAGE_MAX_STALENESS_MS', 5000, 3_600_000),
    rootTtl: positiveInt(env, 'LINEAGE_ROOT_TTL', 3600, 86_400),
    logLevel: logLevel(env),
    underNpmStart: env.npm_lifecycle_event === 'start'
  }
  brokerKnown(config)
  return config
}
