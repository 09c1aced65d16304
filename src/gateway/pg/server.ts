import { randomInt, type KeyObject } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { TLSSocket, type SecureContext } from 'node:tls'
import type { AuditLog } from '../../audit/audit-log.js'
import { Unavailable } from '../../errors.js'
import type { Logger } from '../../log.js'
import { currentActor, type AccessClaims } from '../../lineage/claims.js'
import { auditLineage } from '../../audit/record.js'
import type { Metrics } from '../../metrics.js'
import { authenticate, authorize, genuineClaims, staleness, type CheckDeps } from '../check.js'
import type { TargetDirectory } from '../targets.js'
import { Catalog } from './catalog.js'
import { classify, loadClassifier } from './classify.js'
import { authenticationCleartextPassword, authenticationOk, backendKeyData, errorResponse, negotiateProtocolVersion, readyForQuery } from './protocol/backend.js'
import { FrontendCode, StartupCode } from './protocol/codes.js'
import { encodeFrame, Framer, type Frame } from './protocol/framer.js'
import { parsePassword, parseStartup } from './protocol/frontend.js'
import { PgSession } from './session.js'
import { SessionIndex } from './sessions.js'
import { setStatement, startupSettings, UnsupportedStartup, type Setting } from './startup-settings.js'
import { cancelUpstream, connectUpstream, makeReadOnly, UpstreamError } from './upstream.js'

/** PostgreSQL's own bound on an authentication message (PG_MAX_AUTH_TOKEN_LENGTH); a token is far shorter. */
const maxLoginMessage = 65535

export interface PgGatewayOptions extends CheckDeps {
  targets: TargetDirectory
  log: Logger
  audit: AuditLog
  metrics: Metrics
  /** TLS for clients that send SSLRequest; without it the gateway answers `N`. */
  tls?: SecureContext
  /** Largest message a client may send (a statement, a CopyData); default 16 MiB. */
  maxMessageBytes?: number
  /** How long a client has to finish TLS, startup and login; default 15 s. */
  loginTimeoutMs?: number
  /** How long what the upstream catalogs tell is kept; default 30 s. */
  catalogTtlMs?: number
  /** The deployment's key for the `hash` mask (`loadMaskKey`). */
  maskKey: KeyObject
}

export interface PgGateway {
  server: Server
  sessions: SessionIndex<PgSession>
  stop: () => Promise<void>
}

type Outcome = { ok: true } | { ok: false, code: string, message: string }

/**
 * The PostgreSQL gateway's listener (CONTRACT.md §6 "PostgreSQL gateway"): protocol 3.0 with
 * SSLRequest (TLS), GSSENCRequest answered `N`, CancelRequest forwarded to the session's own
 * upstream backend, a cleartext password exchange whose password is the agent's token, and
 * the database name naming the target. After login each session is a `PgSession` on its own
 * upstream session opened with the target's credentials.
 */
export async function createPgGateway (opts: PgGatewayOptions): Promise<PgGateway> {
  await loadClassifier()
  const sessions = new SessionIndex<PgSession>(opts.view, opts.clock, 1000, () => staleness(opts, opts.clock.now()))
  const catalogs = new Map<string, Catalog>()
  // The cancel key the gateway gave a client → the upstream backend it stands for.
  const cancelKeys = new Map<string, { target: URL, key: { pid: number, secret: number } }>()
  const live = new Set<Socket>()
  // Logins being decided (the token checked, the upstream logged in to): a stop waits for them.
  const logins = new Set<Promise<void>>()
  const maxMessage = opts.maxMessageBytes ?? 16 * 1024 * 1024
  const loginTimeout = opts.loginTimeoutMs ?? 15_000

  // By upstream URL: a session reads the catalog of the database it is connected to, even
  // when its target has since been saved with another upstream.
  function catalogFor (upstream: URL): Catalog {
    const key = upstream.toString()
    let c = catalogs.get(key)
    if (c === undefined) catalogs.set(key, c = new Catalog(upstream, opts.catalogTtlMs))
    return c
  }

  function fatal (socket: Socket, code: string, message: string): void {
    // Nothing more is read from a client that is being turned away.
    socket.pause()
    if (socket.writable) socket.end(errorResponse({ severity: 'FATAL', code, message: `lineage: ${message}` }))
    setTimeout(() => socket.destroy(), 1000).unref()
  }

  /** Reads the startup phase and login on `socket`; hands over to a session on success. */
  function startup (socket: Socket, tls: boolean): void {
    // Until its password arrives a client is unknown: at most what PostgreSQL allows an authentication message.
    const framer = new Framer({ mode: 'startup', maxLength: Math.min(maxMessage, maxLoginMessage) })
    let params: Record<string, string> | undefined
    let busy = false
    const early: Frame[] = []
    const timer = setTimeout(() => fatal(socket, '08006', 'login not completed in time'), loginTimeout)
    timer.unref()
    socket.on('close', () => clearTimeout(timer))
    const onData = (chunk: Buffer): void => {
      try {
        for (const f of framer.push(chunk)) {
          if (busy) { early.push({ tag: f.tag, body: Buffer.from(f.body) }); continue }
          if (framer.mode === 'startup' || f.tag === 0) {
            const r = parseStartup(f.body)
            if (r.kind === 'ssl' || r.kind === 'gssenc') {
              // Bytes sent before our answer cannot be trusted to belong to the encrypted stream (CVE-2021-23214).
              if (framer.buffered() !== 0) return fatal(socket, '08P01', 'data after an encryption request')
              if (r.kind === 'ssl' && opts.tls !== undefined && !tls) {
                socket.off('data', onData)
                socket.write('S')
                const secure = new TLSSocket(socket, { isServer: true, secureContext: opts.tls })
                secure.on('error', () => socket.destroy())
                clearTimeout(timer)
                startup(secure, true)
                return
              }
              socket.write('N')
              continue
            }
            if (r.kind === 'cancel') {
              const c = cancelKeys.get(`${r.pid}:${r.secret}`)
              if (c !== undefined) cancelUpstream(c.target, c.key)
              socket.destroy()
              return
            }
            params = r.params
            // Protocol 3.x newer than 3.0, or `_pq_.` options: say what we speak (protocol docs, NegotiateProtocolVersion).
            const unknown = Object.keys(params).filter((k) => k.startsWith('_pq_.'))
            if ((r.version & 0xffff) !== 0 || unknown.length > 0) socket.write(negotiateProtocolVersion(0, unknown))
            if (r.version >>> 16 !== StartupCode.Protocol30 >>> 16) return fatal(socket, '0A000', 'unsupported protocol version')
            framer.mode = 'tagged'
            socket.write(authenticationCleartextPassword())
            continue
          }
          if (f.tag !== FrontendCode.PasswordMessage || params === undefined) return fatal(socket, '08P01', 'expected a password message')
          busy = true
          framer.maxLength = maxMessage
          // Nothing more is read until the login is decided: what the client pipelined behind
          // its password waits in the socket (and the framer), not in memory without bound.
          socket.pause()
          socket.off('data', onData)
          const token = parsePassword(f.body)
          const deciding = login(socket, framer, params, token, early).then((out) => {
            clearTimeout(timer)
            if (!out.ok) fatal(socket, out.code, out.message)
          }, (err) => {
            opts.log.error({ err }, 'postgres login failed')
            fatal(socket, 'XX000', 'internal error')
          })
          logins.add(deciding)
          void deciding.finally(() => logins.delete(deciding))
        }
      } catch (err) {
        fatal(socket, (err as { sqlstate?: string }).sqlstate ?? '08P01', (err as Error).message)
      }
    }
    socket.on('data', onData)
  }

  /** Why a login allowed before its upstream login ran is refused now that it has, if it is. */
  function loginRefusedSince (claims: AccessClaims): { code: string, message: string } | undefined {
    const now = opts.clock.now()
    const stale = staleness(opts, now)
    if (stale !== undefined) return { code: '57P03', message: stale }
    const cut = opts.view.check(claims.jti, claims.lineage, now)
    return cut === undefined ? undefined : { code: '28000', message: `chain cut off: ${cut.message}` }
  }

  async function login (socket: Socket, framer: Framer, params: Record<string, string>, token: string, early: Frame[]): Promise<Outcome> {
    const name = params.database ?? params.user ?? ''
    const target = opts.targets.get(name)
    if (target === undefined || target.kind !== 'postgres') {
      // The record names who asked when the password is a genuine token: a probe of databases
      // that are no targets is traced to its chain.
      const asker = await genuineClaims(opts, token).catch(() => undefined)
      // Unknown names share one label, as the HTTP gateway's do: a scan cannot grow the metrics.
      opts.metrics.gatewayRequests.labels('(none)', 'deny').inc()
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'deny', target: name.slice(0, 63), ...(asker === undefined ? {} : auditLineage(asker)), detail: { event: 'login', reason: 'no such target' } })
      return { ok: false, code: '3D000', message: `no such target "${name.slice(0, 63)}"` }
    }
    let decision
    try {
      decision = await authenticate(opts, token, target)
    } catch (err) {
      if (!(err instanceof Unavailable)) throw err
      const asker = await genuineClaims(opts, token).catch(() => undefined)
      opts.metrics.gatewayRequests.labels(target.name, 'deny').inc()
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'deny', target: target.name, ...(asker === undefined ? {} : auditLineage(asker)), detail: { event: 'login', reason: err.message } })
      return { ok: false, code: '57P03', message: err.message }
    }
    const claims = decision.claims
    const lineage = claims === undefined ? {} : auditLineage(claims)
    if (!decision.allowed) {
      opts.metrics.gatewayRequests.labels(target.name, 'deny').inc()
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'deny', target: target.name, ...lineage, detail: { event: 'login', reason: decision.refusal.message } })
      return { ok: false, code: '28000', message: decision.refusal.message }
    }
    // The settings the client gave at startup are checked as the SET statements they amount to.
    let settings: Setting[]
    try {
      settings = startupSettings(params)
    } catch (err) {
      if (!(err instanceof UnsupportedStartup)) throw err
      opts.metrics.gatewayRequests.labels(target.name, 'deny').inc()
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'deny', target: target.name, ...lineage, detail: { event: 'login', reason: err.message } })
      return { ok: false, code: '0A000', message: err.message }
    }
    const classes: string[] = []
    let searchesSystem = false
    for (const s of settings) {
      const c = classify(setStatement(s))
      const refused = authorize(decision.claims, target, { action: c.class, statements: c.statements, tables: c.tables })
      classes.push(c.class)
      if (c.searchesSystem === true) searchesSystem = true
      if (refused === undefined) continue
      const reason = `startup parameter ${s.name}: ${refused.message}${c.reason === undefined ? '' : ` (${c.reason})`}`
      opts.metrics.gatewayRequests.labels(target.name, 'deny').inc()
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'deny', target: target.name, method: c.class, path: setStatement(s).slice(0, 4096), ...lineage, detail: { event: 'login', reason } })
      return { ok: false, code: '42501', message: reason }
    }
    let up
    try {
      up = await connectUpstream(target.upstream, { timeoutMs: 10_000, settings, applicationName: `lineage:${currentActor(decision.claims)}`.slice(0, 63) })
      // A token that may neither write nor change schema gets a read-only session: PostgreSQL
      // then refuses any write the statement's text does not show. (What an admin statement
      // may do, `RESET ALL` included, is not bounded by it.)
      if (['write', 'ddl'].every((action) => authorize(decision.claims, target, { action }) !== undefined)) await makeReadOnly(up, 10_000)
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err
      opts.log.warn({ target: target.name, detail: err.detail }, 'postgres upstream login failed')
      opts.metrics.gatewayRequests.labels(target.name, 'deny').inc()
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'deny', target: target.name, ...lineage, detail: { event: 'login', reason: err.message } })
      return { ok: false, code: '08006', message: `target ${target.name}: ${err.message}` }
    }
    if (socket.destroyed) { up.socket.destroy(); return { ok: true } }
    // The chain may have been cut off while the upstream login ran (up to seconds), or the view
    // may have stopped being provably current, so that a cut-off made meanwhile is unknown here.
    const refusal = loginRefusedSince(decision.claims)
    if (refusal !== undefined) {
      up.socket.destroy()
      opts.metrics.gatewayRequests.labels(target.name, 'deny').inc()
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'deny', target: target.name, ...lineage, detail: { event: 'login', reason: refusal.message } })
      return { ok: false, ...refusal }
    }
    opts.metrics.gatewayRequests.labels(target.name, 'allow').inc()
    // Each setting was a decision too, and the session's statements run under it (a search_path names what they read).
    settings.forEach((s, i) => {
      opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'allow', target: target.name, method: classes[i], path: setStatement(s).slice(0, 4096), ...lineage, detail: { event: 'login' } })
    })
    opts.audit.record({ at: opts.clock.now(), kind: 'gateway.pg', decision: 'allow', target: target.name, ...lineage, detail: { event: 'login' } })
    // The process id is the upstream backend's (what pg_backend_pid() and a NotificationResponse
    // name, by which a client tells its own notifications); the secret is the gateway's own, so
    // that the upstream's key stays here. Fresh until it names no other session.
    const ours = { pid: up.key.pid > 0 ? up.key.pid : randomInt(1, 0x7fffffff), secret: 0 }
    let cancelKey
    do {
      ours.secret = randomInt(0, 0x7fffffff)
      cancelKey = `${ours.pid}:${ours.secret}`
    } while (cancelKeys.has(cancelKey))
    cancelKeys.set(cancelKey, { target: target.upstream, key: up.key })
    socket.cork()
    socket.write(authenticationOk())
    for (const p of up.parameters) for (const b of encodeFrame(p)) socket.write(b)
    socket.write(backendKeyData(ours.pid, ours.secret))
    socket.write(readyForQuery('I'))
    socket.uncork()
    let remove = (): void => {}
    const statements = { allow: opts.metrics.pgStatements.labels(target.name, 'allow'), deny: opts.metrics.pgStatements.labels(target.name, 'deny') }
    const open = opts.metrics.pgSessions.labels(target.name)
    const session = new PgSession(socket, framer, up, decision.claims, target.name, {
      audit: opts.audit,
      log: opts.log,
      target: () => opts.targets.get(target.name),
      catalog: () => catalogFor(target.upstream),
      maskKey: opts.maskKey,
      now: () => opts.clock.now(),
      stale: () => staleness(opts, opts.clock.now()),
      cutOff: () => {
        const ended = opts.view.endedAt(decision.claims.jti, decision.claims.exp, decision.claims.lineage, opts.clock.now())
        return ended === undefined ? undefined : `chain cut off: ${ended}`
      },
      counted: (decision) => { statements[decision].inc() },
      searchesSystem
    }, () => {
      cancelKeys.delete(cancelKey)
      open.dec()
      remove()
    })
    remove = sessions.add(session)
    open.inc()
    session.start(early)
    return { ok: true }
  }

  const server = createServer({ noDelay: true }, (socket) => {
    live.add(socket)
    socket.on('close', () => live.delete(socket))
    socket.on('error', () => socket.destroy())
    startup(socket, false)
  })
  return {
    server,
    sessions,
    stop: async () => {
      const closed = new Promise<void>((resolve) => { server.close(() => resolve()) })
      // A login under way records how it ended (and may open a session): it is waited for, up to
      // 5 s, so that its record comes before the audit log's final write.
      let waited: NodeJS.Timeout | undefined
      await Promise.race([Promise.allSettled([...logins]), new Promise((resolve) => { waited = setTimeout(resolve, 5000) })])
      clearTimeout(waited)
      // A socket's close event comes after the listener's: a session left to it would record
      // its last statements after the audit log's final write.
      for (const s of sessions.close()) s.shutDown()
      for (const s of live) s.destroy()
      await closed
      await Promise.all([...catalogs.values()].map(async (c) => await c.close()))
    }
  }
}
