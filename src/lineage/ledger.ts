import type { Db } from '../storage/db.js'

/** One node of the lineage tree, written before its token is handed out. */
export interface TokenRecord {
  jti: string
  parent: string | null
  root: string
  depth: number
  sub: string
  sponsor: string | null
  /** The principals the chain rests on through actor tokens, before the sponsor and `sub`; null when none. */
  acting: string[] | null
  /** The lineage claim's `actor_tokens`; null when none. */
  actor_tokens: string[] | null
  client_id: string
  actor: string | null
  scope: string
  aud: string[]
  ancestors: string[]
  iat: number
  exp: number
  rooted_at: number
  /** What the caller said about itself: host, process id, CI run. */
  context: Record<string, string>
}

/** The principals a recorded token rests on, as its lineage claim lists them. */
export function principalsOf (r: { acting: string[] | null, sponsor: string | null, sub: string }): string[] {
  return [...(r.acting ?? []), ...(r.sponsor === null ? [] : [r.sponsor]), r.sub]
}

export interface TokenLedger {
  /** Resolves once `r` is committed. */
  record: (r: TokenRecord) => Promise<void>
  /** Records waiting or being written. */
  backlog: () => number
}

const columns = `jti text, parent text, root text, depth integer, sub text, sponsor text, acting text[], actor_tokens text[], client_id text,
  actor text, scope text, aud text[], ancestors text[], iat bigint, exp bigint, rooted_at bigint, context jsonb`
const names = 'jti, parent, root, depth, sub, sponsor, acting, actor_tokens, client_id, actor, scope, aud, ancestors, iat, exp, rooted_at, context'

/**
 * Writes lineage records in batches: records that arrive in the same event-loop turn, or while
 * `maxInFlight` inserts are running, go together in one multi-row INSERT. Each caller still
 * waits for its own commit, so every token is durably recorded before it is returned, and
 * concurrent exchanges share a commit.
 */
export function createTokenLedger (db: Db, opts: { maxBatch?: number, maxInFlight?: number } = {}): TokenLedger {
  const maxBatch = opts.maxBatch ?? 500
  const maxInFlight = opts.maxInFlight ?? (db.kind === 'pglite' ? 1 : 2)
  let queue: Array<{ r: TokenRecord, resolve: () => void, reject: (e: unknown) => void }> = []
  let inFlight = 0
  let writing = 0
  let scheduled = false

  function schedule (): void {
    if (scheduled) return
    scheduled = true
    setImmediate(() => { scheduled = false; pump() })
  }

  function pump (): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch)
      queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch)
      inFlight++
      writing += batch.length
      db.query(`INSERT INTO tokens (${names}) SELECT ${names} FROM jsonb_to_recordset($1::jsonb) AS x(${columns})`,
        [JSON.stringify(batch.map((b) => b.r))])
        .then(() => { for (const b of batch) b.resolve() }, (err) => { for (const b of batch) b.reject(err) })
        .finally(() => { inFlight--; writing -= batch.length; schedule() })
    }
  }

  return {
    record: async (r) => await new Promise<void>((resolve, reject) => {
      queue.push({ r, resolve, reject })
      schedule()
    }),
    backlog: () => queue.length + writing
  }
}
