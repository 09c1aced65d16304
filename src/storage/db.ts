import { InvalidRequest } from '../errors.js'

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
  keys: 7_400_002,
  principals: 7_400_003
} as const

// U+0000, and unpaired surrogates, which the drivers send as U+FFFD: the text stored or looked up would not be the text given.
const unstorable = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
// The same in JSON text, which writes both as escapes: one not itself escaped (after an even run of backslashes).
const unstorableJson = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i

/** Whether PostgreSQL's text can hold `s` as it is. */
export function storable (s: string): boolean {
  return !unstorable.test(s)
}

/** Whether a query parameter holds U+0000 or an unpaired surrogate: a string, an array of them, or an object sent as JSON. */
function holdsNul (p: unknown): boolean {
  if (typeof p === 'string') return !storable(p)
  if (Array.isArray(p)) return p.some(holdsNul)
  if (typeof p === 'object' && p !== null && !(p instanceof Date) && !Buffer.isBuffer(p)) return unstorableJson.test(JSON.stringify(p))
  return false
}

/**
 * PostgreSQL's text and jsonb cannot hold U+0000, and a parameter carrying one fails in the
 * server; an unpaired surrogate reaches it as U+FFFD, so that text is stored altered and a
 * reference matches what another reference was stored as. Whatever the caller sent (a client
 * id, a SCIM filter, a webhook's principal) is refused here as bad input, before the query, on
 * both backends alike.
 * @throws InvalidRequest
 */
export function refuseNul (params: unknown[] | undefined): void {
  if (params !== undefined && params.some(holdsNul)) throw new InvalidRequest('text may not contain NUL (U+0000) characters or unpaired surrogates (\\uD800-\\uDFFF)')
}
