/**
 * The one narrow query interface every part of Lineage uses. Served by `pg.Pool`
 * (PostgreSQL) and by PGlite (embedded); the storage contract suite runs against both.
 */
export interface Queryable {
  /** Runs one statement with `$n` parameters; rows come back with column names as keys. */
  query: <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<{ rows: T[], rowCount: number }>
  /** Runs `COPY <table> (<columns>) FROM STDIN` with `rows` in COPY text format (`copy-text.ts`). */
  copyIn: (table: string, columns: string, rows: string) => Promise<void>
}

export interface Db extends Queryable {
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  tx: <T>(fn: (q: Queryable) => Promise<T>) => Promise<T>
  /** Runs `fn` while holding a session-level advisory lock shared by every process on this database. */
  withLock: <T>(key: number, fn: (q: Queryable) => Promise<T>) => Promise<T>
  /** Subscribes to NOTIFY on `channels` over one connection; undefined where the backend has no other process to hear from. */
  listen?: (channels: string[], onNotify: (channel: string, payload: string) => void, onError: (err: Error) => void) => Promise<() => Promise<void>>
  readonly kind: 'postgres' | 'pglite'
  close: () => Promise<void>
}

/** Advisory lock keys, one per critical section that spans processes. */
export const LockKeys = {
  migrate: 7_400_001,
  keys: 7_400_002
} as const
