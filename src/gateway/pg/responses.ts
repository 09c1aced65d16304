import type { KeyObject } from 'node:crypto'
import { Fifo } from '../../fifo.js'
import type { MaskRule } from './mask.js'
import { maskedRow, mayQuoteMasked, resolveMask } from './execution-masks.js'
import type { Catalog } from './catalog.js'
import { BackendCode } from './protocol/codes.js'
import type { Frame } from './protocol/framer.js'
import { commandRows, errorFromFields, parseErrorFields, parseNotification, parseReadyForQuery, parseRowDescription } from './protocol/backend.js'
import { Writer } from './protocol/writer.js'
import type { Refusals } from './refusals.js'
import { errorForAgent, noticeForAgent } from './error-for-agent.js'
import { OutOfStep } from './out-of-step.js'
import { countReturned, type Execution, type Pending, type Undo } from './pending.js'

/**
 * The upstream half of a session: what each upstream message answers (a Describe, an
 * Execute, a simple query, a Sync), so that executions are audited with their rows and
 * errors, refusals' stand-in errors are rewritten, Describe answers the gateway asked for
 * itself are kept from the client, and DataRows of masked columns are rewritten.
 *
 * The queue mirrors PostgreSQL's own bookkeeping exactly, or the session ends: after an
 * error in an extended batch the upstream skips every message up to the client's Sync
 * (`skipping` tells the client half to expect no answers until then), and during COPY FROM
 * STDIN it ignores Sync. A DataRow that answers no execution ends the session, since its
 * columns could not be masked.
 */
export class Responses {
  private readonly pending = new Fifo<Pending>()
  /** The mask rules of the execution sent last. */
  private lastRules: readonly MaskRule[] = []
  /** The upstream is skipping messages until the client's next Sync (an extended batch failed). */
  skipping = false
  /** The upstream is in COPY FROM STDIN: the client's Syncs get no answer until it ends the copy. */
  private copyingIn = false
  /** Syncs in the queue marked `unsure`. */
  private unsure = 0
  /**
   * An extended Execute of COPY FROM STDIN that neither began nor failed yet. A Sync the client
   * sends behind it would reach the upstream inside the copy (ignored) or after it failed
   * (answered), and which cannot be told: it waits (`copyAnswered`).
   */
  private copyAhead: Execution | undefined
  private copyWaiters: Array<() => void> = []
  /** The copy began and the client sent none of its messages yet. */
  private copyUntouched = false
  /**
   * Syncs the client sent once the copy began, before any copy message: PostgreSQL reads them
   * inside the copy and ignores them, unless the copy fails before it reads anything (`FREEZE`
   * on the wrong table, a trigger), when it answers each. They are held back until that is known.
   */
  private heldSyncs = 0

  constructor (private readonly deps: {
    refusals: Refusals
    /** Audits an execution that ended (`error`: why it did not run to its end). */
    record: (e: Execution, error?: string) => void
    /** Undoes a Parse or Bind the upstream refused or skipped. */
    undo: (step: Undo) => void
    /** A Parse, Bind or Close left the queue: the upstream answered or skipped it. */
    settled: (step: Undo) => void
    catalog: () => Catalog
    /** The deployment's key for the `hash` mask. */
    maskKey: KeyObject
    /** The upstream sent FATAL: the session ends after the message is passed on. */
    onFatal: () => void
    /** ReadyForQuery outside a transaction block ended batch number `done` (counted from 1). */
    onIdle: (done: number) => void
    /** Sends a Sync upstream on the client's behalf (one it held back). */
    sendSync: () => void
    /** Whether a notification's payload must be masked now (mask rules apply to the session). */
    masksNotifications: () => boolean
  }) {}

  private sent = 0
  private done = 0

  /** Answers awaited from the upstream, and Syncs held back that may yet be sent and answered (`heldSyncs`). */
  get outstanding (): number { return this.pending.length + this.heldSyncs }

  /** The upstream is in COPY FROM STDIN: only copy messages, Flush and Sync may follow until the client ends it. */
  get copyIn (): boolean { return this.copyingIn }

  /** The client half sent a message that the upstream will answer with `p`. */
  expect (p: Pending): void {
    this.pending.push(p)
    if (p.type === 'exec') {
      this.lastRules = p.rules
      if (!p.simple && p.c.copy?.direction === 'from' && p.c.copy.stdio) this.copyAhead = p
    }
  }

  /** Whether a Sync from the client must wait for `copyAnswered` (see `copyAhead`). */
  get copyInAhead (): boolean { return this.copyAhead !== undefined }

  /** Resolves once the COPY FROM STDIN ahead began, failed, or the session ended. */
  async copyAnswered (): Promise<void> {
    if (this.copyAhead === undefined) return
    await new Promise<void>((resolve) => { this.copyWaiters.push(resolve) })
  }

  private copySettled (): void {
    this.copyAhead = undefined
    for (const resolve of this.copyWaiters.splice(0)) resolve()
  }

  /** The client sent copy data: a Sync it sent before, the upstream has read inside the copy. */
  copyData (): void {
    this.copyUntouched = false
    this.heldSyncs = 0
  }

  /**
   * The client's Sync, or a simple Query, or a fast-path call (`simple`) goes upstream: one
   * ReadyForQuery will answer it. A Sync ends the skipping after an error. During COPY FROM
   * STDIN the upstream would ignore a Sync, or answer it if the copy has just failed: such a
   * Sync is not sent at all (false).
   */
  endBatch (simple: boolean): boolean {
    if (!simple) {
      if (this.copyingIn) {
        if (this.copyUntouched) this.heldSyncs++
        return false
      }
      this.skipping = false
    }
    this.pending.push({ type: 'sync', simple })
    this.sent++
    return true
  }

  /** The client ended a COPY FROM STDIN (CopyDone or CopyFail). */
  copyEnd (): void {
    this.copyData()
    if (this.copyIn) this.copyingIn = false
    else this.pending.push({ type: 'copyend' })
  }

  /** Batches sent upstream so far. */
  get batch (): number { return this.sent }

  /** Audits every execution still waiting for its answer. */
  abandon (reason: string): void {
    for (const p of this.pending.clear()) if (p.type === 'exec') { countReturned(p); this.deps.record(p, reason) }
    this.copySettled()
  }

  /** Takes the head off the queue, telling of a Parse, Bind or Close that leaves it. */
  private shift (): Pending | undefined {
    const p = this.pending.shift()
    if (p?.type === 'step' && p.undo !== undefined) this.deps.settled(p.undo)
    return p
  }

  /** The head, past the markers of ended copies (they await no answer). */
  private head (): Pending | undefined {
    let p = this.pending.peek()
    while (p?.type === 'copyend') { this.shift(); p = this.pending.peek() }
    return p
  }

  private headOf (type: Pending['type']): Pending | undefined {
    const p = this.head()
    return p?.type === type ? p : undefined
  }

  /**
   * Whether an upstream message with `tag` would be forwarded unchanged, whatever its body:
   * a data row no mask applies to, or a row of COPY … TO STDOUT. Such a message may be passed
   * on as it arrives instead of whole (`frame` then never sees it). 'wait': call
   * `resolveMask`, then ask again.
   * @throws OutOfStep for a data row that answers no statement, as `frame` would
   */
  passesUnread (tag: number): boolean | 'wait' {
    if (tag === BackendCode.CopyData) return true
    if (tag !== BackendCode.DataRow) return false
    const p = this.head()
    if (p?.type !== 'exec') throw new OutOfStep('a data row that answers no statement')
    if (p.rules.length > 0 && p.mask === undefined) return 'wait'
    if (p.rules.length > 0 && p.mask?.some((m) => m !== undefined) === true) return false
    // Passed on as it arrives, it never reaches `frame`: it is counted here.
    p.returned = (p.returned ?? 0) + 1
    return true
  }

  /** Handles one upstream message: undefined to forward it, what to send instead, or 'wait' (call `resolveMask`, then again). */
  frame (f: Frame): Buffer[] | 'wait' | undefined {
    switch (f.tag) {
      case BackendCode.DataRow: {
        const p = this.head()
        // Fail closed: a row that answers no known execution cannot be masked.
        if (p?.type !== 'exec') throw new OutOfStep('a data row that answers no statement')
        if (p.rules.length > 0 && p.mask === undefined) return 'wait'
        p.returned = (p.returned ?? 0) + 1
        if (p.mask?.some((m) => m !== undefined) !== true) return undefined
        return [maskedRow(p, f.body, this.deps.maskKey)]
      }
      case BackendCode.RowDescription: {
        const d = this.headOf('describe')
        if (d?.type === 'describe') {
          this.pending.shift()
          if (d.into === undefined) return undefined
          d.into.fields = parseRowDescription(f.body)
          return []
        }
        // An execution needs its columns only to mask them.
        const e = this.headOf('exec')
        if (e?.type === 'exec') { e.fields = e.rules.length === 0 ? undefined : parseRowDescription(f.body); e.mask = undefined }
        return undefined
      }
      case BackendCode.NoData: {
        const d = this.headOf('describe')
        if (d?.type === 'describe') {
          this.pending.shift()
          if (d.into === undefined) return undefined
          d.into.fields = []
          return []
        }
        return undefined
      }
      case BackendCode.ParseComplete:
      case BackendCode.BindComplete:
      case BackendCode.CloseComplete:
        if (this.headOf('step') !== undefined) this.shift()
        return undefined
      case BackendCode.CommandComplete: {
        // A copy that ran to its end read the Syncs sent behind it while it ran, and ignored them.
        if (this.unsure > 0) this.dropUnsure()
        const e = this.headOf('exec')
        if (e?.type === 'exec') {
          e.rows += commandRows(f.body)
          e.returned = 0
          if (e.simple) { e.fields = undefined; e.mask = undefined } else { this.pending.shift(); this.deps.record(e) }
        }
        return undefined
      }
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended: {
        const e = this.headOf('exec')
        if (e?.type === 'exec' && !e.simple) { countReturned(e); this.pending.shift(); this.deps.record(e) }
        return undefined
      }
      case BackendCode.CopyInResponse:
        this.startCopyIn()
        return undefined
      case BackendCode.ErrorResponse: {
        const fields = parseErrorFields(f.body)
        if (fields.S === 'FATAL' || fields.V === 'FATAL') setImmediate(this.deps.onFatal)
        const hidden = errorForAgent(fields, { step: this.head()?.type === 'step', masking: () => this.masking(), namedTableMasked: () => mayQuoteMasked(this.head(), this.lastRules, fields, this.deps.catalog()) })
        this.failed(fields.C ?? 'error')
        // A stand-in's error (a refusal) becomes the gateway's own.
        const refusal = this.deps.refusals.rewrite(fields.M ?? '')
        if (refusal !== undefined) return [refusal]
        return hidden === undefined ? undefined : [errorFromFields(hidden)]
      }
      case BackendCode.NoticeResponse:
        return this.masking() ? [errorFromFields(noticeForAgent(parseErrorFields(f.body)), BackendCode.NoticeResponse)] : undefined
      case BackendCode.ReadyForQuery: {
        const status = parseReadyForQuery(f.body)
        this.copyingIn = false
        // The batch is over: whatever it did not answer was skipped after an error.
        while (this.pending.length > 0) {
          const p = this.shift() as Pending
          if (p.type === 'sync') break
          if (p.type === 'exec') this.deps.record(p)
        }
        this.done++
        if (status === 'I') this.deps.onIdle(this.done)
        return undefined
      }
      case BackendCode.NotificationResponse: {
        // A LISTEN is refused where columns are masked; one made before a policy said so still
        // hears notifications, their payloads (any text a trigger wrote) redacted.
        if (!this.deps.masksNotifications()) return undefined
        const n = parseNotification(f.body)
        if (n.payload === '') return undefined
        return [new Writer().uint32(n.pid).cstring(n.channel).cstring('***').frame(BackendCode.NotificationResponse)]
      }
      default:
        return undefined
    }
  }

  /**
   * The upstream reported an error for the head message. A simple Query's ends that query
   * (and its ReadyForQuery follows); an extended message's makes the upstream skip every
   * message up to the client's next Sync, so their answers are no longer awaited.
   */
  private failed (code: string): void {
    const head = this.head()
    this.copyingIn = false
    // Whether the upstream read those Syncs inside the copy or after it failed cannot be known.
    if (this.unsure > 0) throw new OutOfStep('a COPY FROM STDIN failed with a Sync sent behind it before it began')
    this.skipUntilSync(head, code)
    // The copy failed before it read anything: PostgreSQL would have answered the Syncs sent
    // into it, and it now skips until one comes.
    const held = this.heldSyncs
    this.heldSyncs = 0
    this.copyUntouched = false
    for (let i = 0; i < held; i++) {
      this.endBatch(false)
      this.deps.sendSync()
    }
    if (this.copyAhead !== undefined && !this.pending.includes(this.copyAhead)) this.copySettled()
  }

  /** The failure's part in the queue: what the upstream now skips is no longer awaited. */
  private skipUntilSync (head: Pending | undefined, code: string): void {
    if (head === undefined || head.type === 'sync') return
    if (head.type === 'exec') countReturned(head)
    if (head.type === 'exec' && head.simple) {
      head.error ??= code
      return
    }
    const skipped: Undo[] = []
    let first = true
    for (let p = this.head(); p !== undefined && !(p.type === 'sync' && !p.simple); p = this.head()) {
      this.shift()
      if (p.type === 'exec') this.deps.record(p, first ? code : 'skipped after an error earlier in the batch')
      else if (p.type === 'step' && p.undo !== undefined) skipped.push(p.undo)
      else if (p.type === 'sync') this.done++
      first = false
    }
    // Undone latest first, so a name used twice gets back what it had before both.
    for (let i = skipped.length - 1; i >= 0; i--) this.deps.undo(skipped[i])
    if (this.pending.length === 0) this.skipping = true
  }

  /**
   * COPY FROM STDIN began: the client's Syncs sent before it ends the copy get no answer. Any
   * other message sent before it ends the copy would abort the copy and be lost upstream, so
   * a client that sent one (it cannot have seen the copy begin) loses its session instead.
   */
  private startCopyIn (): void {
    this.copyUntouched = true
    this.heldSyncs = 0
    this.copySettled()
    // A simple Query's own ReadyForQuery still comes, after the copy.
    const head = this.head()
    for (let i = head?.type === 'exec' && head.simple ? 2 : 1; i < this.pending.length; i++) {
      const p = this.pending.at(i) as Pending
      if (p.type === 'copyend') return
      if (p.type !== 'sync' || p.simple) throw new OutOfStep('the client sent statements into a COPY FROM STDIN')
      p.unsure = true
      this.unsure++
    }
    this.copyingIn = true
  }

  /** The copy ran on: the upstream ignored the Syncs sent behind it before it began. */
  private dropUnsure (): void {
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending.at(i) as Pending
      if (p.type === 'sync' && p.unsure === true) { this.pending.removeAt(i); this.done++; i-- }
    }
    this.unsure = 0
  }

  /** Whether mask rules apply where an upstream message arrives: to its execution, else to the statement sent last. */
  private masking (): boolean {
    const e = this.head()
    return (e?.type === 'exec' ? e.rules : this.lastRules).length > 0
  }

  /** Works out which result columns of the head execution are masked, reading the catalog when needed. */
  async resolveMask (): Promise<void> {
    const p = this.head()
    if (p?.type === 'exec') await resolveMask(p, this.deps.catalog())
  }
}
