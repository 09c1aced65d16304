import type { MaskKind, MaskRule } from './mask.js'
import type { Classification } from './classify.js'
import type { FieldDescription } from './protocol/backend.js'

export interface Statement { sql: string, c: Classification }
/**
 * A bound portal: the statement it was bound to (undefined: one the gateway did not see
 * prepared), kept as it was then, since PostgreSQL's portal keeps it whatever later becomes
 * of the name. `batch`: how many batches (Sync, simple Query) went upstream before its Bind.
 */
export interface Portal { statement: string, st: Statement | undefined, batch: number }
/**
 * An execution awaiting its answer. `sql`: the statement as its audit record holds it
 * (truncated, or a fingerprint). `quotesMasked`: its tables have masked columns, which an
 * error's detail may quote. `returned`: data rows passed on since its last CommandComplete,
 * which count in `rows` when no CommandComplete will (a PortalSuspended, an error).
 */
export type Execution = { type: 'exec', sql: string, c: Classification, rows: number, returned?: number, error?: string, simple: boolean, portal?: Portal, rules: readonly MaskRule[], quotesMasked?: boolean, fields?: FieldDescription[], mask?: Array<MaskKind | undefined> }
/** A Parse, Bind or Close as it changed the session's statements or portals: undone if the upstream refuses or skips it. */
export type Undo = { kind: 'statement', name: string, previous: Statement | undefined } | { kind: 'portal', name: string, previous: Portal | undefined }

/** What the upstream will answer, in order; matched against its responses. */
export type Pending =
  /** `into`: the execution right behind it, whose result columns it tells (a Describe the gateway sent, kept from the client). */
  | { type: 'describe', into?: Execution }
  | Execution
  /**
   * Answered by ReadyForQuery. `simple`: it ends a Query or FunctionCall, which an extended
   * batch that failed skips. `unsure`: sent behind a COPY FROM STDIN before it began, so
   * ignored by the upstream if the copy goes on, answered if it failed at once.
   */
  | { type: 'sync', simple: boolean, unsure?: boolean }
  /** Parse, Bind or Close: answered by ParseComplete, BindComplete, CloseComplete. */
  | { type: 'step', undo?: Undo }
  /** The client ended a COPY FROM STDIN (CopyDone, CopyFail): no answer of its own. */
  | { type: 'copyend' }

/** Counts the rows `e` returned since its last CommandComplete into its `rows`: its answer ends without one. */
export function countReturned (e: Execution): void {
  e.rows += e.returned ?? 0
  e.returned = 0
}
