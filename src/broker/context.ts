import type { Clock } from '../clock.js'
import type { Logger } from '../log.js'
import type { LiveStatus } from '../lineage/live-status.js'
import type { KeyLookup } from '../lineage/verify.js'
import type { ViewSync } from '../lineage/sync.js'
import type { TokenLedger } from '../lineage/ledger.js'
import type { VerifiedTokens } from '../lineage/verified-tokens.js'
import type { Db } from '../storage/db.js'
import type { AuditLog } from '../audit/audit-log.js'
import type { Metrics } from '../metrics.js'
import type { KeyRing } from './keys.js'

/** What every broker operation needs; built once in `createBroker`. */
export interface BrokerContext {
  db: Db
  view: LiveStatus
  sync: ViewSync
  ledger: TokenLedger
  /** Tokens this process signed or verified, so a chain step skips re-checking a signature. */
  verified: VerifiedTokens
  clock: Clock
  log: Logger
  issuer: string
  maxDepth: number
  rootTtl: number
  /** `LINEAGE_MAX_STALENESS_MS`: past this age the live-status view is not trusted (fail closed). */
  maxStalenessMs: number
  /** The current key ring (replaced when keys rotate). */
  keys: () => KeyRing
  /** Re-reads the signing keys (after a rotation here or in another process). */
  reloadKeys: () => Promise<void>
  /** The verification key `kid`, reading the keys again (at most once a second) when it is not known here yet. */
  verifier: KeyLookup
  audit: AuditLog
  metrics: Metrics
  /** Hash of the admin bearer token. */
  adminTokenHash: Buffer
}
