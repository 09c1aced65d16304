import type { Classification } from './classify.js'
import type { Portal, Statement, Undo } from './pending.js'

// What the gateway remembers per session stays bounded, whatever a client prepares.
const maxNamed = 10_000
const maxChars = 64 * 1024 * 1024
const maxSqlTables = 100_000

/**
 * A name as PostgreSQL keys it: statement and portal names keep their first 63 bytes
 * (NAMEDATALEN - 1), so longer names that share those are one, and SQL (`CLOSE`, `DEALLOCATE`)
 * names them by the same 63 bytes. The key holds those bytes one per character: cut inside a
 * character, two names PostgreSQL tells apart would decode alike.
 */
function key (name: string): string {
  // ASCII is its own bytes.
  return name.length <= 63 && Buffer.byteLength(name) === name.length ? name : Buffer.from(name).subarray(0, 63).toString('latin1')
}

/**
 * A session's prepared statements and portals as the upstream holds them. A Parse, Bind or
 * Close is applied at once, since the client may bind or execute in the same packet, and undone
 * if the upstream refuses or skips it. Bounded: at most 10,000 of each and 64 MiB of statement text.
 *
 * For SQL `EXECUTE`, which shares the names, each name also keeps what it may hold: the
 * classification of every text that prepared it (`PREPARE`, or a Parse later dropped by SQL),
 * since PostgreSQL keeps a `PREPARE` whatever the transaction does and refuses one of a name
 * it holds, and the gateway cannot tell which took. Bounded too: past 10,000 kept, or 100,000
 * tables named by them, a name prepared again holds "unknown".
 */
export class Prepared {
  private readonly statements = new Map<string, Statement>()
  private readonly portals = new Map<string, Portal>()
  private chars = 0
  private readonly sqlStatements = new Map<string, Classification[] | 'unknown'>()
  private sqlKept = 0
  private sqlTables = 0
  /** The latest Parse, Bind or Close of each name that the upstream has not answered yet, and the batch it went in. */
  private readonly open = new Map<string, { undo: Undo, batch: number, answered?: Promise<void>, resolve?: () => void }>()

  statement (name: string): Statement | undefined { return this.statements.get(key(name)) }
  portal (name: string): Portal | undefined { return this.portals.get(key(name)) }

  /** Why one more statement `name` of `sql` would be too much, or undefined. */
  statementLimit (name: string, sql: string): string | undefined {
    if (!this.statements.has(key(name)) && this.statements.size >= maxNamed) return `at most ${maxNamed} prepared statements per session; close some first`
    if (this.chars + sql.length > maxChars) return `prepared statements of at most ${maxChars} characters in all per session; close some first`
    return undefined
  }

  /** Why one more portal `name` would be too many, or undefined. */
  portalLimit (name: string): string | undefined {
    return !this.portals.has(key(name)) && this.portals.size >= maxNamed ? `at most ${maxNamed} open portals per session; close some first` : undefined
  }

  /**
   * A Parse of `name` goes upstream, preparing `st` (undefined for a stand-in, which prepares
   * nothing; PostgreSQL still drops the unnamed statement when a Parse of it begins).
   * @returns what undoes it
   */
  parse (name: string, st: Statement | undefined, batch: number): Undo {
    const undo: Undo = { kind: 'statement', name, previous: this.statement(name) }
    if (st !== undefined) this.remember(name, st)
    else if (name === '') this.closeStatement(name)
    return this.opened(undo, batch)
  }

  /** A Bind of portal `name` goes upstream. @returns what undoes it */
  bind (name: string, portal: Portal): Undo {
    const undo: Undo = { kind: 'portal', name, previous: this.portal(name) }
    this.portals.set(key(name), portal)
    return this.opened(undo, portal.batch)
  }

  /**
   * A Close of statement (`S`) or portal (`P`) `name` goes upstream.
   * @returns what undoes it: after an error earlier in the batch the upstream skips it, and the name holds what it held
   */
  close (kind: 'S' | 'P', name: string, batch: number): Undo {
    const undo: Undo = kind === 'S' ? { kind: 'statement', name, previous: this.statement(name) } : { kind: 'portal', name, previous: this.portal(name) }
    if (kind === 'S') this.closeStatement(name)
    else this.closePortal(name)
    return this.opened(undo, batch)
  }

  private opened (undo: Undo, batch: number): Undo {
    this.open.set(undo.kind + key(undo.name), { undo, batch })
    return undo
  }

  /** The upstream answered the Parse, Bind or Close `undo` stands for, or skipped it. */
  settled (undo: Undo): void {
    const k = undo.kind + key(undo.name)
    const o = this.open.get(k)
    if (o?.undo !== undo) return
    this.open.delete(k)
    o.resolve?.()
  }

  /**
   * Resolves once the upstream has answered the latest Parse, Bind or Close of `name`, when that
   * went in a batch before `batch` and is not answered yet: until then what the name holds is
   * unknown, since a failed or skipped one leaves it as it was (undefined: nothing to wait for).
   * One in the same batch needs no wait: should it fail, the upstream skips what follows too.
   */
  unsettled (kind: Undo['kind'], name: string, batch: number): Promise<void> | undefined {
    const o = this.open.get(kind + key(name))
    if (o === undefined || o.batch >= batch) return undefined
    o.answered ??= new Promise<void>((resolve) => { o.resolve = resolve })
    return o.answered
  }

  closeStatement (name: string): void {
    const st = this.statement(name)
    if (st === undefined) return
    this.statements.delete(key(name))
    this.chars -= st.sql.length
  }

  closePortal (name: string): void {
    this.portals.delete(key(name))
  }

  /**
   * A statement goes upstream that changes statements or portals by name in SQL (`PREPARE`,
   * `DEALLOCATE`, `DECLARE`, `CLOSE`): the gateway no longer knows what those names hold, so
   * it forgets them, and an Execute of one counts as a statement it did not see prepared.
   */
  forget (renames: { statements: string[] | 'all', portals: string[] | 'all' }): void {
    for (const [name, st] of this.statements) if (renames.statements === 'all' || renames.statements.some((n) => key(n) === name)) this.mayHold(name, st.c)
    if (renames.statements === 'all') { this.statements.clear(); this.chars = 0 } else renames.statements.forEach((n) => this.closeStatement(n))
    if (renames.portals === 'all') this.portals.clear()
    else renames.portals.forEach((n) => this.closePortal(n))
  }

  /** SQL `PREPARE` of `names` went upstream in a text classified `c`. */
  sqlPrepare (names: readonly string[], c: Classification): void {
    for (const n of names) this.mayHold(key(n), c)
  }

  /**
   * What SQL `EXECUTE name` may run: every classification the name may hold; undefined when
   * the gateway never saw it prepared, or kept too many to know.
   */
  executed (name: string): readonly Classification[] | undefined {
    const sql = this.sqlStatements.get(key(name))
    if (sql === 'unknown') return undefined
    const st = this.statement(name)
    if (st === undefined) return sql
    return sql === undefined ? [st.c] : [...sql, st.c]
  }

  /** Whether the gateway ever saw `name` prepared (by Parse or `PREPARE`) in this session. */
  seen (name: string): boolean {
    return this.sqlStatements.has(key(name)) || this.statement(name) !== undefined
  }

  private mayHold (k: string, c: Classification): void {
    const kept = this.sqlStatements.get(k) ?? []
    if (kept === 'unknown' || kept.includes(c)) return
    if (this.sqlKept >= maxNamed || this.sqlTables + c.tables.length > maxSqlTables) {
      this.sqlStatements.set(k, 'unknown')
      return
    }
    kept.push(c)
    this.sqlStatements.set(k, kept)
    this.sqlKept++
    this.sqlTables += c.tables.length
  }

  /** The upstream refused or skipped a Parse, Bind or Close: the name holds what it held before (the unnamed statement: nothing). */
  undo (step: Undo): void {
    if (step.kind === 'portal') {
      if (step.previous === undefined) this.closePortal(step.name)
      else this.portals.set(key(step.name), step.previous)
    } else if (step.name === '' || step.previous === undefined) this.closeStatement(step.name)
    else this.remember(step.name, step.previous)
  }

  /** Outside a transaction block PostgreSQL has dropped every portal bound before batch `done` ended. */
  endTransaction (done: number): void {
    this.portals.forEach((p, name) => { if (p.batch < done) this.portals.delete(name) })
  }

  private remember (name: string, st: Statement): void {
    this.closeStatement(name)
    this.statements.set(key(name), st)
    this.chars += st.sql.length
  }
}
