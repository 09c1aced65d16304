import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRemoteJWKSet, type CryptoKey } from 'jose'
import { systemClock, type Clock } from './clock.js'
import type { Config } from './config.js'
import type { Logger } from './log.js'
import { createBroker, type Broker } from './broker/broker.js'
import { createBrokerHandler } from './broker/http/app.js'
import { createGateway, type Gateway } from './gateway/gateway.js'
import type { CheckDeps } from './gateway/check.js'
import { LiveStatus } from './lineage/live-status.js'
import { createViewSync, type ViewSync } from './lineage/sync.js'
import { VerifiedTokens } from './lineage/verified-tokens.js'
import { openDb } from './storage/open.js'
import type { Db } from './storage/db.js'

export interface Running {
  /** Listener name → URL (`broker`, `gateway_http`) or host:port (`gateway_pg`). */
  listening: Record<string, string>
  broker?: Broker
  gateway?: Gateway
  db: Db
  stop: () => Promise<void>
}

async function listen (server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return (server.address() as AddressInfo).port
}

async function close (server: Server): Promise<void> {
  if (!server.listening) return
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
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
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`), { cooldownDuration: 1000, cacheMaxAge: 10 * 60_000 })
  const view = new LiveStatus()
  const sync = createViewSync({ db, view, clock, log })
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
  const brokerServer = createServer({ keepAliveTimeout: 65_000, requestTimeout: 30_000, headersTimeout: 20_000, maxHeaderSize: 16 * 1024 })
  let broker: Broker | undefined
  let gateway: Gateway | undefined
  let ownSync: ViewSync | undefined
  const stop = async (): Promise<void> => {
    await Promise.all([close(brokerServer), gateway === undefined ? undefined : close(gateway.httpServer)])
    gateway?.stop()
    await ownSync?.stop()
    await broker?.stop()
    await db.close()
  }
  try {
    let deps: CheckDeps | undefined
    if (config.role !== 'gateway') {
      const port = await listen(brokerServer, config.host, config.brokerPort)
      const base = `http://${urlHost(config.host)}:${port}`
      broker = await createBroker({ db, clock, log, issuer: config.issuer ?? base, maxDepth: config.maxDepth, rootTtl: config.rootTtl, adminToken: config.adminToken })
      const ctx = broker.ctx
      brokerServer.on('request', createBrokerHandler(ctx, {
        ready: () => {
          const age = clock.now() - ctx.sync.freshAt()
          return { ready: age <= config.maxStalenessMs, detail: { view_seq: ctx.view.seq, view_age_ms: age, ledger_backlog: ctx.ledger.backlog() } }
        }
      }))
      listening.broker = base
      deps = { view: ctx.view, verified: ctx.verified, issuer: ctx.issuer, clock, maxDepth: ctx.maxDepth, keys: (kid) => ctx.keys().verifiers.get(kid) }
    }
    if (config.role !== 'broker') {
      if (deps === undefined) {
        const standalone = await standaloneCheckDeps(config, db, clock, log)
        deps = standalone.deps
        ownSync = standalone.sync
      }
      gateway = await createGateway({ ...deps, db, log })
      const port = await listen(gateway.httpServer, config.host, config.gatewayHttpPort)
      listening.gateway_http = `http://${urlHost(config.host)}:${port}`
    }
  } catch (err) {
    await stop().catch(() => {})
    throw err
  }
  return { listening, broker, gateway, db, stop }
}
