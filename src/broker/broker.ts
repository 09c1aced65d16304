import type { Clock } from '../clock.js'
import type { Logger } from '../log.js'
import { createTokenLedger } from '../lineage/ledger.js'
import { LiveStatus } from '../lineage/live-status.js'
import type { KeyLookup } from '../lineage/verify.js'
import { VerifiedTokens } from '../lineage/verified-tokens.js'
import { createViewSync } from '../lineage/sync.js'
import type { ChangeFeed } from '../lineage/feed.js'
import type { Db } from '../storage/db.js'
import { createAuditLog, type AuditLog } from '../audit/audit-log.js'
import { createMetrics, type Metrics } from '../metrics.js'
import { loadAdminToken } from './admin-token.js'
import type { BrokerContext } from './context.js'
import { loadKeyRing, type KeyRing } from './keys.js'
import { watchContractEnds } from './contract-ends.js'

export interface BrokerOptions {
  db: Db
  clock: Clock
  log: Logger
  issuer: string
  maxDepth: number
  rootTtl: number
  adminToken?: string
  /** The process's audit log; the broker makes its own when none is given. */
  audit?: AuditLog
  metrics?: Metrics
  /** How often the view re-reads the change log when no notification arrives. */
  pollMs?: number
  /** Redis pub/sub in place of PostgreSQL NOTIFY, when configured. */
  feed?: ChangeFeed
  /** `LINEAGE_MAX_STALENESS_MS`: the longest a cut-off waits for other processes to confirm it (default 5000). */
  maxStalenessMs?: number
  /** How often to look for humans whose `ends_at` has passed, to record their offboarding (default 1000). */
  contractEndsMs?: number
}

export interface Broker {
  ctx: BrokerContext
  /** The admin token in clear, only on the very first start of a database. */
  firstAdminToken?: string
  stop: () => Promise<void>
}

/**
 * Builds the broker core: keys, admin token, the live-status view kept current from the
 * change log, and the batched lineage ledger. Transport-free; the HTTP app wraps it.
 */
export async function createBroker (opts: BrokerOptions): Promise<Broker> {
  const { db, clock, log } = opts
  let ring: KeyRing = await loadKeyRing(db, clock, opts.rootTtl)
  const view = new LiveStatus()
  const audit = opts.audit ?? createAuditLog(db, log)
  const sync = createViewSync({ db, view, clock, log, pollMs: opts.pollMs, feed: opts.feed, maxStalenessMs: opts.maxStalenessMs ?? 5000 })
  let reloading: Promise<void> | undefined
  let reloadedAt = 0
  // One reload at a time; callers that come meanwhile share it.
  const reloadKeys = async (): Promise<void> => {
    reloading ??= loadKeyRing(db, clock, opts.rootTtl).then((r) => { ring = r }).finally(() => { reloading = undefined; reloadedAt = Date.now() })
    await reloading
  }
  view.onChange((c) => {
    if (c.kind === 'keys') reloadKeys().catch((err) => log.error({ err }, 'reloading signing keys failed'))
  })
  /**
   * The verification key `kid`. One this process does not know may have been made a moment ago
   * by a rotation in another process, whose change can be applied here before the reload it
   * starts has ended: wait for that reload, or start one (at most one a second, so made-up
   * kids cannot make every request read the database).
   */
  const verifier: KeyLookup = async (kid) => {
    const known = ring.verifiers.get(kid)
    if (known !== undefined) return known
    if (reloading === undefined && Date.now() - reloadedAt < 1000) return undefined
    await reloadKeys().catch((err) => log.error({ err }, 'reloading signing keys failed'))
    return ring.verifiers.get(kid)
  }
  await sync.start()
  // Last, so that nothing here fails between making a first admin token and returning it.
  const admin = await loadAdminToken(db, opts.adminToken)
  const ctx: BrokerContext = {
    db,
    view,
    sync,
    ledger: createTokenLedger(db),
    verified: new VerifiedTokens(),
    clock,
    log,
    issuer: opts.issuer,
    maxDepth: opts.maxDepth,
    rootTtl: opts.rootTtl,
    maxStalenessMs: opts.maxStalenessMs ?? 5000,
    keys: () => ring,
    verifier,
    reloadKeys,
    adminTokenHash: admin.hash,
    audit,
    metrics: opts.metrics ?? createMetrics()
  }
  const ends = watchContractEnds(ctx, opts.contractEndsMs ?? 1000)
  return {
    ctx,
    firstAdminToken: admin.firstToken,
    stop: async () => {
      await ends.stop()
      await sync.stop()
      if (opts.audit === undefined) await audit.stop()
    }
  }
}
