import { maskFor, maskValue, type MaskKind, type MaskRule } from './mask.js'
import type { Catalog } from './catalog.js'
import type { Classification } from './classify.js'
import { BackendCode } from './protocol/codes.js'
import type { Frame } from './protocol/framer.js'
import { commandRows, dataRow, parseDataRow, parseErrorFields, parseReadyForQuery, parseRowDescription, type FieldDescription } from './protocol/backend.js'
import type { Refusals } from './refusals.js'

export interface Statement { sql: string, c: Classification, fields?: FieldDescription[] }
/** A bound portal; `batch`: how many batches (Sync, simple Query) went upstream before its Bind. */
export interface Portal { statement: string, resultFormats: number[], batch: number, fields?: FieldDescription[] }
export type Execution = { type: 'exec', sql: string, c: Classification, rows: number, error?: string, simple: boolean, portal?: Portal, rules: readonly MaskRule[], fields?: FieldDescription[], mask?: Array<MaskKind | undefined> }

/** What the upstream will answer, in order; matched against its responses. */
export type Pending =
  | { type: 'describe', statement?: Statement, portal?: Portal, swallow: boolean }
  | Execution
  | { type: 'sync' }

/**
 * The upstream half of a session: what each upstream message answers (a Describe, an
 * Execute, a simple query, a Sync), so that executions are audited with their rows and
 * errors, refusals' stand-in errors are rewritten, Describe answers the gateway asked for
 * itself are kept from the client, and DataRows of masked columns are rewritten.
 */
export class Responses {
  /** Pushed by the client half, in the order messages go upstream. */
  readonly pending: Pending[] = []

  constructor (private readonly deps: {
    refusals: Refusals
    /** Audits an execution that ended (`error`: why it did not run to its end). */
    record: (e: Execution, error?: string) => void
    statementFields: (name: string) => FieldDescription[] | undefined
    catalog: () => Catalog
    /** The upstream sent FATAL: the session ends after the message is passed on. */
    onFatal: () => void
    /** ReadyForQuery outside a transaction block ended batch number `done` (counted from 1). */
    onIdle: (done: number) => void
  }) {}

  private sent = 0
  private done = 0

  /** The client's Sync (or a simple query, or a fast-path call) ends a batch: one ReadyForQuery answers it. */
  endBatch (): void {
    this.pending.push({ type: 'sync' })
    this.sent++
  }

  /** Batches sent upstream so far. */
  get batch (): number { return this.sent }

  /** True when a Describe of `portal` is already on its way in the current batch. */
  describedInBatch (portal: Portal): boolean {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i]
      if (p.type === 'sync') return false
      if (p.type === 'describe' && p.portal === portal) return true
    }
    return false
  }

  /** Audits every execution still waiting for its answer. */
  abandon (reason: string): void {
    for (const p of this.pending) if (p.type === 'exec') this.deps.record(p, reason)
    this.pending.length = 0
  }

  private headOf (type: Pending['type']): Pending | undefined {
    const p = this.pending[0]
    return p?.type === type ? p : undefined
  }

  /** Handles one upstream message: undefined to forward it, what to send instead, or 'wait' (call `resolveMask`, then again). */
  frame (f: Frame): Buffer[] | 'wait' | undefined {
    switch (f.tag) {
      case BackendCode.DataRow: {
        const p = this.pending[0]
        if (p?.type !== 'exec' || p.rules.length === 0) return undefined
        if (p.mask === undefined) return 'wait'
        if (!p.mask.some((m) => m !== undefined)) return undefined
        const values = parseDataRow(f.body)
        const fields = p.fields ?? []
        const masks = p.mask
        return [dataRow(values.map((v, i) => {
          const m = masks[i]
          return m === undefined ? v : maskValue(m, v, this.formatOf(p, fields, i), fields[i]?.typeOid ?? 0)
        }))]
      }
      case BackendCode.RowDescription: {
        const d = this.headOf('describe')
        if (d?.type === 'describe') {
          const fields = parseRowDescription(f.body)
          this.pending.shift()
          if (d.portal !== undefined) d.portal.fields = fields
          if (d.statement !== undefined) d.statement.fields = fields
          return d.swallow ? [] : undefined
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
          if (d.portal !== undefined) d.portal.fields = []
          if (d.statement !== undefined) d.statement.fields = []
          return d.swallow ? [] : undefined
        }
        return undefined
      }
      case BackendCode.CommandComplete: {
        const e = this.headOf('exec')
        if (e?.type === 'exec') {
          e.rows += commandRows(f.body)
          if (e.simple) { e.fields = undefined; e.mask = undefined } else { this.pending.shift(); this.deps.record(e) }
        }
        return undefined
      }
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended: {
        const e = this.headOf('exec')
        if (e?.type === 'exec' && !e.simple) { this.pending.shift(); this.deps.record(e) }
        return undefined
      }
      case BackendCode.ErrorResponse: {
        const fields = parseErrorFields(f.body)
        const refusal = this.deps.refusals.rewrite(fields.M ?? '')
        if (refusal !== undefined) return [refusal]
        // The rest of this batch is skipped upstream: its executions end with this error.
        for (const p of this.pending) {
          if (p.type === 'sync') break
          if (p.type === 'exec' && p.error === undefined) p.error = fields.C ?? 'error'
        }
        if (fields.S === 'FATAL' || fields.V === 'FATAL') setImmediate(this.deps.onFatal)
        return undefined
      }
      case BackendCode.ReadyForQuery: {
        const status = parseReadyForQuery(f.body)
        // The batch is over: whatever it did not answer was skipped after an error.
        while (this.pending.length > 0) {
          const p = this.pending.shift() as Pending
          if (p.type === 'sync') break
          if (p.type === 'exec') this.deps.record(p)
        }
        this.done++
        if (status === 'I') this.deps.onIdle(this.done)
        return undefined
      }
      default:
        return undefined
    }
  }

  private formatOf (p: Extract<Pending, { type: 'exec' }>, fields: FieldDescription[], i: number): number {
    if (p.simple || p.portal === undefined) return fields[i]?.format ?? 0
    const rf = p.portal.resultFormats
    return rf.length === 0 ? 0 : rf.length === 1 ? rf[0] : rf[i] ?? 0
  }

  /** Works out which result columns of the head execution are masked, reading the catalog when needed. */
  async resolveMask (): Promise<void> {
    const p = this.pending[0]
    if (p?.type !== 'exec') return
    const fields = p.fields ?? p.portal?.fields ?? (p.portal === undefined ? undefined : this.deps.statementFields(p.portal.statement))
    if (fields === undefined) {
      // Fail closed: rows whose columns cannot be named are not shown.
      throw new Error('result columns unknown')
    }
    p.fields = fields
    const names = await this.deps.catalog().resolve(fields.map((x) => x.tableOid))
    p.mask = fields.map((x) => {
      const n = x.tableOid === 0 ? undefined : names(x.tableOid, x.column)
      return n === undefined ? undefined : maskFor(p.rules, n)
    })
  }
}
