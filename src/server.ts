import { createServer, type Server } from 'node:http'
import type { AddressInfo, Server as NetServer } from 'node:net'
import { createRemoteJWKSet, type CryptoKey } from 'jose'
import { systemClock, type Clock } from './clock.js'
import type { Config } from './config.js'
import { before } from './deadline.js'
import { ConfigError } from './errors.js'
import type { Logger } from './log.js'
import { createBroker, type Broker } from './broker/broker.js'
import { forgetFirstAdminToken } from './broker/admin-token.js'
import { createBrokerHandler, type BrokerHandler } from './broker/http/app.js'
import { clientError } from './broker/http/client-error.js'
import { createGateway, type Gateway } from './gateway/gateway.js'
import type { CheckDeps } from './gateway/check.js'
import { LiveStatus } from './lineage/live-status.js'
import { createViewSync, type ViewSync } from './lineage/sync.js'
import { VerifiedTokens } from './lineage/verified-tokens.js'
import { openDb } from './storage/open.js'
import { createAuditLog } from './audit/audit-log.js'
import { createMetrics } from './metrics.js'
import { createRedisFeed } from './lineage/feed.js'
import { viewStaleness } from './lineage/view-staleness.js'
import { loadTlsContext } from './gateway/pg/tls.js'
import { parserReplacements } from './gateway/pg/parser.js'
import type { Db } from './storage/db.js'
import { issuerUrl } from './broker/issuer-url.js'

export interface Running {
  /** Listener name → URL (`broker`, `gateway_http`) or host:port (`gateway_pg`). */
  listening: Record<string, string>
  broker?: Broker
  gateway?: Gateway
  db: Db
  stop: () => Promise<void>
}

// Bind failures that say the host names no address of this machine; any other is the port's.
const hostErrors = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EADDRNOTAVAIL'])

/**
 * Binds `server`; returns the port it got.
 * @param portVariable the variable `port` came from, named by the error.
 * @throws ConfigError naming LINEAGE_HOST or `portVariable` when the bind fails (CONTRACT.md §2).
 */
async function listen (server: Server | NetServer, host: string, port: number, portVariable: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => {
      const variable = hostErrors.has(err.code ?? '') ? 'LINEAGE_HOST' : portVariable
      reject(new ConfigError(variable, `cannot listen on ${host}:${port}: ${err.code ?? err.message}`))
    }
    server.once('error', failed)
    server.listen(port, host, () => { server.off('error', failed); resolve() })
  })
  return (server.address() as AddressInfo).port
}

/** How long a stop waits for the requests in flight before it cuts the connections left (a stream may never end). */
const stopGraceMs = 5000

async function close (server: Server): Promise<void> {
  if (!server.listening) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), stopGraceMs)
    server.close(() => { clearTimeout(timer); resolve() })
    server.closeIdleConnections()
  })
}

function urlHost (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** A gateway in its own process: its own view of the change log, keys from the broker's JWKS. */
async function standaloneCheckDeps (config: Config, db: Db, clock: Clock, log: Logger): Promise<{ deps: CheckDeps, sync: ViewSync }> {
  const issuer = config.issuer ?? `http://${urlHost(config.host)}:${config.brokerPort}`
  // jose refetches the key set when a `kid` is unknown, at most once a second.
  const jwks = createRemoteJWKSet(new URL(issuerUrl(issuer, '/.well-known/jwks.json')), { cooldownDuration: 1000, cacheMaxAge: 10 * 60_000 })
  const view = new LiveStatus()
  const sync = createViewSync({ db, view, clock, log, maxStalenessMs: config.maxStalenessMs, feed: config.redisUrl === undefined ? undefined : createRedisFeed(config.redisUrl, log) })
  await sync.start()
  return {
    sync,
    deps: {
      view,
      verified: new VerifiedTokens(),
      issuer,
      clock,
      maxDepth: config.maxDepth,
      keys: async (kid) => await jwks({ alg: 'EdDSA', kid }).then((k) => k as CryptoKey, () => undefined)
    }
  }
}

/**
 * Starts the listeners `config.role` asks for on one database. The one place that builds real
 * pools and servers; everything below it takes its dependencies as arguments.
 */
export async function start (config: Config, log: Logger, clock: Clock = systemClock): Promise<Running> {
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
  const listening: Record<string, string> = {}
  const audit = createAuditLog(db, log)
  // Set once the view exists; read by readiness and by the gauges at scrape time.
  let view: LiveStatus | undefined
  let sync: ViewSync | undefined
  const viewAge = (): number => sync === undefined ? Infinity : clock.now() - sync.freshAt()
  const metrics = createMetrics({
    lineage_audit_backlog: { help: 'Audit events waiting to be written', read: () => audit.backlog().queued },
    lineage_ledger_backlog: { help: 'Lineage records waiting to be written', read: () => broker?.ctx.ledger.backlog() ?? 0 },
    lineage_view_seq: { help: 'Last change-log sequence number applied', read: () => view?.seq ?? 0 },
    lineage_view_age_seconds: { help: 'Age of the live-status view', read: () => viewAge() / 1000 },
    lineage_peer_processes: { help: 'Other live processes that confirm the changes they apply', read: () => sync?.peers().size ?? 0 }
  }, {
    lineage_audit_dropped_total: { help: 'Audit events dropped because the buffer was full', read: () => audit.backlog().dropped },
    lineage_pg_parser_replacements_total: { help: 'PostgreSQL parser instances replaced after a trap or after growing past their memory bound', read: parserReplacements }
  })
  const ready = (): { ready: boolean, detail: Record<string, unknown> } => {
    const age = viewAge()
    const a = audit.backlog()
    return {
      // Dropped events stay counted (metric and detail); readiness follows whether writes work now.
      ready: sync !== undefined && viewStaleness(sync.freshAt(), config.maxStalenessMs, clock.now()) === undefined && !a.failing,
      detail: { view_seq: view?.seq ?? 0, view_age_ms: age, audit_backlog: a.queued, audit_dropped: a.dropped, audit_failing: a.failing }
    }
  }
  // Node looks for requests past these limits only every `connectionsCheckingInterval` (30 s by
  // default): a sender a byte a second would hold a connection up to 30 s past them. Every second.
  const brokerServer = createServer({ keepAliveTimeout: 65_000, requestTimeout: 30_000, headersTimeout: 20_000, connectionsCheckingInterval: 1000, maxHeaderSize: 16 * 1024 })
  brokerServer.on('clientError', clientError)
  let broker: Broker | undefined
  let gateway: Gateway | undefined
  let ownSync: ViewSync | undefined
  let brokerHandler: BrokerHandler | undefined
  const stop = async (): Promise<void> => {
    await Promise.all([close(brokerServer), gateway === undefined ? undefined : close(gateway.httpServer)])
    // Requests whose connections the grace cut may still run: their records are written below.
    await brokerHandler?.settled(stopGraceMs)
    await gateway?.stop()
    await ownSync?.stop()
    await broker?.stop()
    // Every request has finished: what they recorded is written before the database closes.
    await audit.stop()
    // Closing a PostgreSQL pool waits for the connections in use: one the server never answers
    // would hold the stop for ever. The embedded database's close writes its files, and is waited for.
    if (db.kind === 'postgres') await before(db.close(), performance.now() + stopGraceMs).catch(() => { log.warn('the database did not answer; stopping without closing its connections') })
    else await db.close()
  }
  try {
    let deps: CheckDeps | undefined
    if (config.role !== 'gateway') {
      const port = await listen(brokerServer, config.host, config.brokerPort, 'LINEAGE_BROKER_PORT')
      const base = `http://${urlHost(config.host)}:${port}`
      broker = await createBroker({ db, clock, log, issuer: config.issuer ?? base, maxDepth: config.maxDepth, rootTtl: config.rootTtl, adminToken: config.adminToken, audit, metrics, maxStalenessMs: config.maxStalenessMs, feed: config.redisUrl === undefined ? undefined : createRedisFeed(config.redisUrl, log) })
      const ctx = broker.ctx
      view = ctx.view
      sync = ctx.sync
      brokerHandler = createBrokerHandler(ctx, { ready, inputs: { scimToken: config.scimToken, webhookSecret: config.webhookSecret, oktaAuthorization: config.oktaAuthorization } })
      brokerServer.on('request', brokerHandler)
      listening.broker = base
      // The broker's own lookup: a `kid` another broker rotated in a moment ago waits for the keys to be read, as an exchange does.
      deps = { view: ctx.view, verified: ctx.verified, issuer: ctx.issuer, clock, maxDepth: ctx.maxDepth, keys: ctx.verifier }
    }
    if (config.role !== 'broker') {
      if (deps === undefined) {
        const standalone = await standaloneCheckDeps(config, db, clock, log)
        deps = standalone.deps
        ownSync = standalone.sync
        view = deps.view
        sync = ownSync
      }
      const viewSync = sync as ViewSync
      const tls = await loadTlsContext({ certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, dataDir: config.dataDir })
      gateway = await createGateway({ ...deps, freshness: { freshAt: () => viewSync.freshAt(), maxStalenessMs: config.maxStalenessMs }, db, log, audit, metrics, ready, tls })
      const port = await listen(gateway.httpServer, config.host, config.gatewayHttpPort, 'LINEAGE_GATEWAY_HTTP_PORT')
      listening.gateway_http = `http://${urlHost(config.host)}:${port}`
      const pgPort = await listen(gateway.pgServer, config.host, config.gatewayPgPort, 'LINEAGE_GATEWAY_PG_PORT')
      listening.gateway_pg = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${pgPort}`
    }
  } catch (err) {
    // The caller prints a first admin token only once the start succeeds: one made here is
    // forgotten, or the next start would find a token stored that nobody was ever shown.
    const first = broker?.firstAdminToken
    if (first !== undefined) await forgetFirstAdminToken(db, first).catch((e) => { log.error({ err: e }, 'forgetting the unshown admin token failed') })
    await stop().catch(() => {})
    throw err
  }
  return { listening, broker, gateway, db, stop }
}
