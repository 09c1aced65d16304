import { currentActor, type AccessClaims } from '../../lineage/claims.js'
import { authorize } from '../check.js'
import { maskRules } from '../policy.js'
import type { Target } from '../targets.js'
import { behindMasks, behindToCheck } from './behind-masks.js'
import { readRoutineTables, routineMasks } from './routine-reads.js'
import { reachedTables, readReachedTables } from './reached-tables.js'
import { firstKnown, type Catalog } from './catalog.js'
import { classify, fingerprint, longStatementChars, textFingerprint, withRuns, type Classification } from './classify.js'
import { classifyLong, type Classified } from './classify-long.js'
import type { Exposure } from './exposure.js'
import { exposedMask, maskFor, type ColumnName, type MaskRule } from './mask.js'
import { systemSchemaClass } from './system-schema-class.js'

export interface StatementCheckDeps {
  /** The target as it is now: a policy saved mid-session applies to the next statement. */
  target: () => Target | undefined
  catalog: () => Catalog
  /** Why the live-status view cannot be trusted now (too old), or undefined when it can. */
  stale: () => string | undefined
  /** Answers the session still awaits: many of them, and audit texts are kept short. */
  outstanding: () => number
  /** Records a refusal: the statement's class, its audit text, the reason. */
  refused: (c: Classification, text: string, reason: string) => void
  /** What SQL `EXECUTE name` may run (see `Prepared.executed`), and whether the session ever saw `name` prepared. */
  executed: (name: string) => readonly Classification[] | undefined
  seen: (name: string) => boolean
  /** Whether a startup setting made search_path name a system schema (`Classification.searchesSystem`). */
  searchesSystem?: boolean
}

/** Statements longer than this are refused unclassified: parsing takes time in proportion to the text. */
const maxStatementChars = 1024 * 1024
/** A statement no mask rule applies to (most of them) shares this one. */
export const noMasks: readonly MaskRule[] = Object.freeze([])
const noTables: readonly string[] = Object.freeze([])
const tooLong: Classification = { class: 'admin', statements: [], tables: [], count: 1, reason: 'too long to classify' }
const maxChecks = 1000
// A statement may name tens of thousands of tables: the decisions kept hold their classifications, tables and all.
const maxCheckedTables = 100_000
const maxMaskedTables = 256
/** Why replacing a function is refused where columns are masked (see row-code.ts). */
const replacedFunction = 'a function may not be replaced (CREATE OR REPLACE) where columns are masked: a trigger, constraint, index or default on a table with masked columns may call it, and it sees their values unmasked; CREATE FUNCTION makes a new one'
/** Why defining an operator or function by a comparison's name is refused where columns are masked (see shadowed-comparison.ts). */
const shadowed = (name: string): string => `an operator or function named ${name.slice(0, 63)} may not be defined where columns are masked: a comparison of a masked column may call it in place of PostgreSQL's, with the value unmasked`
/** Why making an operator class or adding to a family is refused where columns are masked (see index-code.ts). */
const indexCode = 'an operator class or family may not be made or added to where columns are masked: an index, sort or constraint using it calls its functions with the values unmasked'
/** Why adding or validating a domain's constraint is refused where columns are masked (see domain-checks.ts). */
const domainCheck = 'a domain\'s constraint may not be added or validated where columns are masked: its check runs on every stored value of the type, a masked column\'s too, unmasked'
/** Why LISTEN is refused where columns are masked. */
const unmaskedNotifications = 'LISTEN is not allowed where columns are masked: a notification\'s payload arrives as the notifying statement wrote it, where masking cannot see it'

/** Whether a target's policy has deny or approve rules on tables, which must see the tables behind views and parents. */
function tableRules (t: Target): boolean {
  return t.policy.rules.some((r) => r.effect !== 'mask' && r.tables !== undefined)
}

/** Whether an exposure names a column none of `columns` has (a name given in the text, or a column added since they were read). */
function unknownColumns (e: Exposure, columns: readonly ColumnName[]): boolean {
  const known = new Set(columns.map((c) => c.column))
  return [...e.columns, ...e.qualified, ...e.ofTables.map((q) => q.name), ...e.columnsOf.map((q) => q.name)].some((n) => !known.has(n))
}

/** What scope and policy say of a classification on one version of the target. */
interface Checked {
  target: Target
  /** The relations behind the statement's tables the answer counted (`Catalog.behind`). */
  behind: readonly string[]
  refusal: string | undefined
  masking: readonly MaskRule[]
  /** For the columns the catalog gave: whether the statement's tables have masked columns, and why masking cannot hold. */
  masked?: { columns: readonly ColumnName[], any: boolean, refusal: string | undefined }
}

/**
 * Decides, for one session, whether each statement may run: its classification (long texts on
 * the worker thread), its real class once the catalog has said which functions may write, the
 * token's scope and the target's policy on it and on the relations behind its tables, and the
 * mask rules that apply to its rows. A decision that needs the worker or the catalog answers
 * 'wait'; `ready` then resolves once asking again will not wait for the same thing.
 */
export class StatementCheck {
  // The statement decided last (set by `decide`): its mask rules, and its class once the catalog had its say.
  masking: readonly MaskRule[] = noMasks
  /** Whether the statement decided last touches a table with masked columns. */
  touchesMasked = false
  decided: Classification | undefined
  /** The statement whose catalog facts `decide` last waited for. */
  private waiting: Classification | undefined
  /** A long statement's classification from the worker thread, until its message is handled. */
  private long: Classified & { sql: string } | undefined
  /** Set when `classified` waits for the worker thread. */
  private pending: Promise<void> | undefined
  /** Fingerprints the worker thread made of long statements, for their audit records. */
  private readonly fingerprints = new WeakMap<Classification, string>()
  private readonly checks = new Map<Classification, Checked>()
  /**
   * The columns the catalog gave for the statement lack a name it computes on, or it computes on
   * whole rows: they are read again (`rereading`) before they are trusted, once for each message
   * (`reread`), since a column added since the catalog was read would be missed.
   */
  private rereading = false
  private reread = false
  /** Tables named by the classifications `checks` holds. */
  private checkedTables = 0
  private notifications: { target: Target, masked: boolean } | undefined
  /** Set once a statement allowed may have made search_path name a system schema; never cleared, as a SET may outlive what the gateway can follow. */
  private searchesSystem: boolean

  constructor (private readonly claims: AccessClaims, private readonly deps: StatementCheckDeps) {
    this.searchesSystem = deps.searchesSystem === true
  }

  /** What the last 'wait' waits for: the worker thread's classification, or the catalog's facts. */
  async ready (): Promise<void> {
    const pending = this.pending
    this.pending = undefined
    await (pending ?? this.lookUp(this.waiting))
  }

  /** The message that carried a statement was handled: a long statement's classification is let go. */
  handled (): void {
    this.long = undefined
    this.reread = false
  }

  /**
   * Reads from the catalog what deciding a statement needs: the volatility of functions it
   * calls, the relations behind its tables for the policy's `tables` rules, the columns of its
   * tables for masking. `c`: the statement `decide` waited for, whatever message carried it
   * (a Query, a Parse, or the Execute of a statement parsed long before).
   */
  private async lookUp (c: Classification | undefined): Promise<void> {
    if (c === undefined) return
    const catalog = this.deps.catalog()
    const unknown = (c.functions ?? []).filter((n) => catalog.mayWrite(n) === undefined)
    if (unknown.length > 0) await catalog.readFunctions(unknown)
    const unnamed = (c.changesUnqualified ?? []).filter((n) => catalog.systemNamed(n) === undefined)
    if (unnamed.length > 0) await catalog.readSystemNames(unnamed)
    const t = this.deps.target()
    if (t !== undefined && tableRules(t)) await readReachedTables(c, catalog)
    if (this.masking.length > 0 && (catalog.columnsOf(c.tables) === undefined || this.rereading)) {
      await catalog.readColumns(c.tables)
      this.reread = this.rereading
      this.rereading = false
    }
    if (this.masking.length > 0 && c.returnedCalls !== undefined) await readRoutineTables(c.returnedCalls, catalog)
    // Masked columns behind a view or in a parent or child are reported as another relation's (`behindMasks`).
    if (this.masking.length > 0 && c.tables.length > 0) {
      if (catalog.behind(c.tables) === undefined) await catalog.readBehind(c.tables)
      const others = behindToCheck(c.tables, catalog.columnsOf(c.tables) ?? [], catalog)
      if (others !== undefined && others.length > 0 && catalog.columnsOf(others) === undefined) await catalog.readColumns(others)
    }
  }

  /**
   * A text that runs prepared statements (SQL `EXECUTE`) with what they may hold: their class,
   * tables and exposures count as the text's. A name the text itself prepares, and the session
   * never saw before, holds what the text does; one the gateway cannot tell makes it admin.
   */
  private withExecuted (c: Classification): Classification {
    if (c.executes === undefined) return c
    const runs: Classification[] = []
    for (const name of c.executes) {
      const held = this.deps.executed(name)
      if (held === undefined && !this.deps.seen(name) && c.prepares?.includes(name) === true) continue
      const shown = name.slice(0, 63)
      if (held === undefined) return { ...c, class: 'admin', reason: `runs prepared statement ${shown}, which the gateway did not see prepared` }
      if (held.some((h) => h.executes !== undefined)) return { ...c, class: 'admin', reason: `runs prepared statement ${shown}, which runs another` }
      runs.push(...held)
    }
    return withRuns(c, runs)
  }

  /** The class a statement really has: a read that calls a volatile user-defined function may write. */
  private classOf (c: Classification): Classification | 'wait' {
    if (c.class !== 'read' || c.functions === undefined) return c
    const catalog = this.deps.catalog()
    const writer = firstKnown(c.functions, (n) => catalog.mayWrite(n))
    if (writer === 'wait') return writer
    if (writer === undefined) return c
    return { ...c, class: 'write', reason: `calls ${writer}, a volatile function that may write` }
  }

  /**
   * Why masking cannot hold for a statement, by the columns of its tables: a masked column it
   * would return computed or whole (`exposedMask`), or a COPY … TO that would copy one.
   * Undefined when it holds; 'wait' until the catalog has the columns. Sets `touchesMasked`.
   */
  private maskCheck (c: Classification, checked: Checked): string | 'wait' | undefined {
    this.touchesMasked = false
    if (this.masking.length > 0 && c.replacesFunction === true) return `denied by policy: ${replacedFunction}`
    if (this.masking.length > 0 && c.shadowsComparison !== undefined) return `denied by policy: ${shadowed(c.shadowsComparison)}`
    if (this.masking.length > 0 && c.definesIndexCode === true) return `denied by policy: ${indexCode}`
    if (this.masking.length > 0 && c.checksDomainValues === true) return `denied by policy: ${domainCheck}`
    if (this.masking.length > 0 && c.returnedCalls !== undefined) {
      const called = routineMasks(this.masking, c.returnedCalls, this.deps.catalog())
      if (called !== undefined) return called === 'wait' ? called : `denied by policy: ${called}`
    }
    if (this.masking.length === 0 || c.tables.length === 0) return undefined
    // Each new set of tables is one catalog query on a pool every session of the target shares.
    if (c.tables.length > maxMaskedTables) return `statements naming more than ${maxMaskedTables} tables are not accepted where columns are masked`
    const columns = this.deps.catalog().columnsOf(c.tables)
    if (columns === undefined) return 'wait'
    if (!this.reread && c.exposes !== undefined && (c.exposes.all || unknownColumns(c.exposes, columns))) {
      this.rereading = true
      return 'wait'
    }
    const behind = behindMasks(this.masking, c.tables, columns, this.deps.catalog())
    if (behind === 'wait') return 'wait'
    if (behind !== undefined) return `denied by policy: ${behind}`
    let m = checked.masked
    if (m?.columns !== columns) {
      const any = columns.some((col) => maskFor(this.masking, col) !== undefined)
      const why = !any || c.exposes === undefined ? undefined : exposedMask(this.masking, columns, c.exposes)
      const refusal = why === undefined ? undefined : c.copy?.toClient === true ? 'COPY of masked columns is not allowed; select the rows instead' : `denied by policy: ${why}`
      m = checked.masked = { columns, any, refusal }
    }
    this.touchesMasked = m.any
    return m.refusal
  }

  /**
   * A statement's classification: from the cache or the classifier for short text, from the
   * worker thread for long text ('wait' until it answers), admin for text too long to classify.
   */
  classified (sql: string): Classification | 'wait' {
    if (sql.length > maxStatementChars) return tooLong
    if (sql.length <= longStatementChars) return classify(sql)
    if (this.long?.sql === sql) return this.long.c
    this.pending = classifyLong(sql, this.deps.target()?.auditStatements === 'fingerprint').then((r) => {
      if (r.fingerprint !== undefined) this.fingerprints.set(r.c, r.fingerprint)
      this.long = { sql, ...r }
    })
    return 'wait'
  }

  /** The refusal of a statement, recorded; undefined when it may run; 'wait' for the catalog. Sets `masking` for it. */
  decide (sql: string, text: Classification): string | 'wait' | undefined {
    this.masking = noMasks
    this.decided = undefined
    // Fail closed: a view that cannot be proven current might be missing a cut-off.
    const stale = this.deps.stale()
    if (stale !== undefined) return this.deny(sql, text, stale)
    const classified = this.withExecuted(text)
    this.waiting = classified
    const c = systemSchemaClass(this.classOf(classified), this.searchesSystem, this.deps.catalog)
    if (c === 'wait') return 'wait'
    // The same statement, whatever the steps above made of its class: its audit record keeps the fingerprint the worker made of it.
    const fp = c === text ? undefined : this.fingerprints.get(text)
    if (fp !== undefined) this.fingerprints.set(c, fp)
    // Classifying takes time in proportion to the text, on the thread every session shares.
    if (sql.length > maxStatementChars) return this.deny(sql.slice(0, 200), c, `statements longer than ${maxStatementChars} characters are not accepted; use COPY for bulk data`)
    const t = this.deps.target()
    if (t === undefined || t.kind !== 'postgres') return this.deny(sql, c, 'the target no longer exists')
    // A `tables` rule covers the rows a statement reaches through a function, a view, a parent or a partitioned table too.
    const reached = tableRules(t) ? reachedTables(c, this.deps.catalog()) : noTables
    if (reached === 'wait') return 'wait'
    const behind = reached.length > 0 ? this.deps.catalog().behind(reached) : noTables
    if (behind === undefined) return 'wait'
    const checked = this.checked(c, t, behind)
    if (checked.refusal !== undefined) return this.deny(sql, c, checked.refusal)
    this.masking = checked.masking
    // Whether mask rules apply to a LISTEN is asked as `masksNotifications` asks it, not by the
    // text's own tables: a payload may carry a row of any table, whatever the text beside it names.
    if (c.listens === true && (this.masking.length > 0 || this.masksNotifications())) return this.deny(sql, c, `denied by policy: ${unmaskedNotifications}`)
    const unmaskable = this.maskCheck(c, checked)
    if (unmaskable === 'wait') return 'wait'
    if (unmaskable !== undefined) return this.deny(sql, c, unmaskable)
    this.decided = c
    if (c.searchesSystem === true) this.searchesSystem = true
    return undefined
  }

  /**
   * Scope and policy for a class of statement. The answer depends only on the token (fixed for
   * the session), the classification and the target, so it is kept per classification (the
   * classifier hands out one object per statement text) until the target is saved again.
   */
  private checked (c: Classification, t: Target, behind: readonly string[]): Checked {
    const kept = this.checks.get(c)
    if (kept !== undefined && kept.target === t && kept.behind === behind) return kept
    const refusal = authorize(this.claims, t, { action: c.class, statements: c.statements, tables: behind.length === 0 ? c.tables : [...c.tables, ...behind] })
    let out: Checked
    if (refusal !== undefined) {
      out = { target: t, behind, refusal: c.reason === undefined ? refusal.message : `${refusal.message} (${c.reason})`, masking: noMasks }
    } else {
      // A cursor's rows may be of any table: a text with a FETCH is masked as if it named none.
      const rules = maskRules(t.policy, { action: c.class, statements: c.statements, tables: c.cursor === true ? [] : c.tables, depth: this.claims.lineage.depth, principals: this.claims.lineage.principals, actor: currentActor(this.claims) })
      out = { target: t, behind, refusal: undefined, masking: rules.length === 0 ? noMasks : rules.map((r) => ({ columns: r.columns, with: r.with })) }
    }
    if (this.checks.size >= maxChecks || this.checkedTables + c.tables.length > maxCheckedTables) {
      this.checks.clear()
      this.checkedTables = 0
    }
    this.checks.set(c, out)
    this.checkedTables += c.tables.length
    return out
  }

  /**
   * Whether notifications must reach this session with their payloads masked: mask rules apply
   * to it now (a policy saved since its LISTEN). Kept per version of the target.
   */
  masksNotifications (): boolean {
    const t = this.deps.target()
    // As `decide` holds: a target gone, or saved again as another kind, is no longer this session's.
    if (t === undefined || t.kind !== 'postgres') return true
    if (this.notifications?.target !== t) {
      const rules = maskRules(t.policy, { action: 'read', statements: [], tables: [], depth: this.claims.lineage.depth, principals: this.claims.lineage.principals, actor: currentActor(this.claims) })
      this.notifications = { target: t, masked: rules.length > 0 }
    }
    return this.notifications.masked
  }

  /** Records the refusal of a statement and returns its reason. */
  deny (sql: string, c: Classification, reason: string): string {
    this.deps.refused(c, this.statementText(sql, c), reason)
    return reason
  }

  /**
   * A statement as its audit record holds it, worked out when the statement is sent: an answer
   * may wait long (a client that pipelines and does not read), and what waits is this, not the
   * statement. A copy, and a short one while many answers wait, so that holds little memory.
   */
  statementText (sql: string, c: Classification): string {
    if (this.deps.target()?.auditStatements === 'fingerprint') {
      // A long text the worker did not fingerprint (refused before it was classified) is not parsed here, on the shared thread.
      return `fingerprint:${this.fingerprints.get(c) ?? (sql.length > longStatementChars ? textFingerprint(sql) : fingerprint(sql))}`
    }
    const limit = this.deps.outstanding() > 1000 ? 256 : 4096
    return sql.length <= limit ? sql : Buffer.from(sql.slice(0, limit)).toString()
  }
}
