import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { systemClock, type Clock } from './clock.js'
import type { Config } from './config.js'
import type { Logger } from './log.js'
import { createBroker, type Broker } from './broker/broker.js'
import { createBrokerHandler } from './broker/http/app.js'
import { openDb } from './storage/open.js'
import type { Db } from './storage/db.js'

export interface Running {
  /** Listener name → URL (`broker`, `gateway_http`) or host:port (`gateway_pg`). */
  listening: Record<string, string>
  broker?: Broker
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

function urlHost (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/**
 * Starts the listeners `config.role` asks for on one database. The one place that builds real
 * pools and servers; everything below it takes its dependencies as arguments.
 */
export async function start (config: Config, log: Logger, clock: Clock = systemClock): Promise<Running> {
  if (config.role === 'gateway') throw new Error('LINEAGE_ROLE: the gateway listeners are not built yet; use broker or all')
  const db = await openDb({ databaseUrl: config.databaseUrl, dataDir: config.dataDir })
  const listening: Record<string, string> = {}
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 30_000, headersTimeout: 20_000, maxHeaderSize: 16 * 1024 })
  let broker: Broker | undefined
  try {
    const port = await listen(server, config.host, config.brokerPort)
    const base = `http://${urlHost(config.host)}:${port}`
    broker = await createBroker({ db, clock, log, issuer: config.issuer ?? base, maxDepth: config.maxDepth, rootTtl: config.rootTtl, adminToken: config.adminToken })
    const ctx = broker.ctx
    server.on('request', createBrokerHandler(ctx, {
      ready: () => {
        const age = clock.now() - ctx.sync.freshAt()
        return { ready: age <= config.maxStalenessMs, detail: { view_seq: ctx.view.seq, view_age_ms: age, ledger_backlog: ctx.ledger.backlog() } }
      }
    }))
    listening.broker = base
  } catch (err) {
    server.close()
    await broker?.stop()
    await db.close()
    throw err
  }
  return {
    listening,
    broker,
    db,
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      await broker?.stop()
      await db.close()
    }
  }
}
