import type { Portal, Statement, Undo } from './responses.js'

// What the gateway remembers per session stays bounded, whatever a client prepares.
const maxNamed = 10_000
const maxChars = 64 * 1024 * 1024

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
 * A session's prepared statements and portals as the upstream holds them. A Parse or Bind is
 * kept at once, since the client may bind or execute it in the same packet, and undone if the
 * upstream refuses or skips it. Bounded: at most 10,000 of each and 64 MiB of statement text.
 */
export class Prepared {
  private readonly statements = new Map<string, Statement>()
  private readonly portals = new Map<string, Portal>()
  private chars = 0

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
  parse (name: string, st: Statement | undefined): Undo {
    const undo: Undo = { kind: 'statement', name, previous: this.statement(name) }
    if (st !== undefined) this.remember(name, st)
    else if (name === '') this.closeStatement(name)
    return undo
  }

  /** A Bind of portal `name` goes upstream. @returns what undoes it */
  bind (name: string, portal: Portal): Undo {
    const undo: Undo = { kind: 'portal', name, previous: this.portal(name) }
    this.portals.set(key(name), portal)
    return undo
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
    if (renames.statements === 'all') { this.statements.clear(); this.chars = 0 } else renames.statements.forEach((n) => this.closeStatement(n))
    if (renames.portals === 'all') this.portals.clear()
    else renames.portals.forEach((n) => this.closePortal(n))
  }

  /** The upstream refused or skipped a Parse or Bind: the name holds what it held before (the unnamed statement: nothing). */
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
