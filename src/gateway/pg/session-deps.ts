import type { KeyObject } from 'node:crypto'
import type { AuditLog } from '../../audit/audit-log.js'
import type { Logger } from '../../log.js'
import type { Target } from '../targets.js'
import type { Catalog } from './catalog.js'

/** What a `PgSession` needs from the gateway around it. */
export interface SessionDeps {
  audit: AuditLog
  log: Logger
  /** The target as it is now: a policy saved mid-session applies to the next statement. */
  target: () => Target | undefined
  catalog: () => Catalog
  /** The deployment's key for the `hash` mask. */
  maskKey: KeyObject
  now: () => number
  /** Why the live-status view cannot be trusted now (too old), or undefined when it can. */
  stale: () => string | undefined
  /** Why the session's chain is not live now by the clock (cut off, past an end date or `exp`), or undefined while it is. */
  cutOff: () => string | undefined
  /** Counts a statement relayed (`allow`) or refused (`deny`). */
  counted: (decision: 'allow' | 'deny') => void
  /** Whether a startup setting made search_path name a system schema. */
  searchesSystem?: boolean
}
