import { classify, type Classification } from './classify.js'
import type { Catalog } from './catalog.js'
import { noMasks, type StatementCheck } from './statement-check.js'
import { FrontendCode } from './protocol/codes.js'
import { encodeFrame, type Frame } from './protocol/framer.js'
import { parseBindTarget, parseClose, parseDescribe, parseEmpty, parseExecute, parseFunctionCall, parseParse, parseQuery, type CallArgument } from './protocol/frontend.js'
import { ProtocolError } from './protocol/errors.js'
import { Writer } from './protocol/writer.js'
import type { Refusals } from './refusals.js'
import type { Prepared } from './prepared.js'
import type { Execution, Statement } from './pending.js'
import type { Responses } from './responses.js'

// Answers awaited per session stay bounded, whatever a client pipelines.
const maxOutstanding = 100_000
const tooMany: Classification = { class: 'admin', statements: [], tables: [], count: 1 }
const unknownFunction: Classification = { class: 'admin', statements: [], tables: [], count: 1, reason: 'a fast-path call of a function the catalog does not know' }

/**
 * The arguments of a fast-path `lo_open` as the classifier reads them: its mode when the call
 * gives it as an int4, binary or text (pgjdbc and libpq send it binary), for a mode without
 * INV_WRITE to open for reading; nothing otherwise, which classifies as a write.
 */
function openMode (args: CallArgument[]): string {
  const mode = args[1]?.value
  if (args.length !== 2 || mode == null) return ''
  if (args[1].binary) return mode.length === 4 ? `0, ${mode.readInt32BE(0)}` : ''
  const text = mode.toString('latin1')
  return /^-?\d{1,10}$/.test(text) ? `0, ${Number(text)}` : ''
}

/** What a session's client messages are checked and tracked with. */
export interface ClientMessageDeps {
  responses: Responses
  prepared: Prepared
  refusals: Refusals
  check: StatementCheck
  catalog: () => Catalog
  /** Audits an allowed execution the upstream will not answer (skipped after an error), with why. */
  record: (e: Execution, error: string) => void
}

/**
 * The client's side of a PostgreSQL session: each frontend message checked (a statement's
 * class and the policy, a prepared statement's or portal's by what it was given) and replaced
 * by a refusal where the token may not run it, with the answers it will get awaited in order.
 */
export class ClientMessages {
  /** Set when a message waits for the upstream's answer to one before it (a COPY FROM STDIN beginning or not, a name being settled). */
  private waitFor: Promise<void> | undefined

  constructor (private readonly d: ClientMessageDeps) {}

  /** What a message that returned 'wait' waits for: an answer before it, or else the statement check (the catalog, the worker thread). */
  takeWait (): Promise<void> {
    const w = this.waitFor ?? this.d.check.ready()
    this.waitFor = undefined
    return w
  }

  /** Handles one client message: undefined to forward it as is, what to send instead, or 'wait' (then `takeWait`). */
  handle (f: Frame): Buffer[] | 'wait' | undefined {
    const r = this.d.responses
    // After an error in an extended batch the upstream skips every message up to Sync: each
    // is still checked (a refused one is replaced as ever), but no answer is awaited for it
    // and it changes no statement or portal, as it changes none upstream.
    const skipping = r.skipping
    if (!skipping && r.outstanding >= maxOutstanding) {
      throw new ProtocolError('ERR_PG_MESSAGE_INVALID', `more than ${maxOutstanding} messages wait for their answers; read the results and send Sync`)
    }
    // PostgreSQL ends a COPY FROM STDIN with an error at any other message, and drops that message.
    if (r.copyIn && f.tag !== FrontendCode.CopyData && f.tag !== FrontendCode.CopyDone && f.tag !== FrontendCode.CopyFail && f.tag !== FrontendCode.Flush && f.tag !== FrontendCode.Sync) {
      throw new ProtocolError('ERR_PG_MESSAGE_INVALID', `message type ${JSON.stringify(String.fromCharCode(f.tag))} during COPY FROM STDIN; send CopyDone or CopyFail first`)
    }
    switch (f.tag) {
      case FrontendCode.Query: {
        const sql = parseQuery(f.body)
        const c = this.d.check.classified(sql)
        if (c === 'wait') return 'wait'
        if (!skipping && this.unsettled('statement', c.executes ?? [])) return 'wait'
        const refusal = this.d.check.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        if (skipping) {
          if (refusal === undefined) this.d.record({ type: 'exec', sql: this.d.check.statementText(sql, c), c: this.d.check.decided ?? c, rows: 0, simple: true, rules: noMasks }, 'skipped after an error earlier in the batch')
        } else {
          if (refusal === undefined) {
            r.expect({ type: 'exec', sql: this.d.check.statementText(sql, c), c: this.d.check.decided ?? c, rows: 0, simple: true, rules: this.d.check.masking, quotesMasked: this.d.check.touchesMasked })
            this.renamed(c)
          }
          r.endBatch(true)
        }
        return refusal === undefined ? undefined : [this.d.refusals.query(refusal)]
      }
      case FrontendCode.Parse: {
        const m = parseParse(f.body)
        if (!skipping && this.unsettled('statement', [m.name])) return 'wait'
        const limit = this.d.prepared.statementLimit(m.name, m.sql)
        if (limit !== undefined) return this.parseStep(m.name, undefined, this.d.refusals.parse(m.name, this.d.check.deny(m.sql, tooMany, limit)))
        const c = this.d.check.classified(m.sql)
        if (c === 'wait') return 'wait'
        if (!skipping && this.unsettled('statement', c.executes ?? [])) return 'wait'
        const refusal = this.d.check.decide(m.sql, c)
        if (refusal === 'wait') return 'wait'
        if (refusal !== undefined) return this.parseStep(m.name, undefined, this.d.refusals.parse(m.name, refusal))
        return this.parseStep(m.name, { sql: m.sql, c }, undefined)
      }
      case FrontendCode.Bind: {
        if (skipping) return undefined
        const m = parseBindTarget(f.body)
        if (this.unsettled('statement', [m.statement]) || this.unsettled('portal', [m.portal])) return 'wait'
        const limit = this.d.prepared.portalLimit(m.portal)
        if (limit !== undefined) return this.parseStep('', undefined, this.d.refusals.parse('', this.d.check.deny(`BIND ${m.portal}`, tooMany, limit)))
        const undo = this.d.prepared.bind(m.portal, { statement: m.statement, st: this.d.prepared.statement(m.statement), batch: r.batch })
        r.expect({ type: 'step', undo })
        return undefined
      }
      case FrontendCode.Describe: {
        if (skipping) return undefined
        parseDescribe(f.body) // a malformed one is refused here, not sent upstream
        r.expect({ type: 'describe' })
        return undefined
      }
      case FrontendCode.Execute: {
        const m = parseExecute(f.body)
        if (!skipping && this.unsettled('portal', [m.portal])) return 'wait'
        const portal = this.d.prepared.portal(m.portal)
        const st = portal?.st
        if (!skipping && st !== undefined && this.unsettled('statement', st.c.executes ?? [])) return 'wait'
        // A statement the gateway did not see parsed (SQL PREPARE) is of unknown class.
        const c: Classification = st?.c ?? { class: 'admin', statements: [], tables: [], count: 1, reason: 'a prepared statement the gateway did not see' }
        const sql = st?.sql ?? `EXECUTE ${portal?.statement ?? '?'}`
        // Checked again at each execution: a policy saved since the Parse applies now.
        const refusal = this.d.check.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        // The stand-in is a Parse of the unnamed statement, which PostgreSQL drops when it fails.
        if (refusal !== undefined) return skipping ? [this.d.refusals.parse('', refusal)] : this.parseStep('', undefined, this.d.refusals.parse('', refusal))
        if (skipping) return undefined
        const exec: Execution = { type: 'exec', sql: this.d.check.statementText(sql, c), c: this.d.check.decided ?? c, rows: 0, simple: false, portal, rules: this.d.check.masking, quotesMasked: this.d.check.touchesMasked }
        this.renamed(c)
        if (this.d.check.masking.length === 0) {
          r.expect(exec)
          return undefined
        }
        // Masking needs the result columns of this very execution: the portal is described
        // right before it runs, and the answer kept from the client.
        r.expect({ type: 'describe', into: exec })
        r.expect(exec)
        return [new Writer().byte(0x50).cstring(m.portal).frame(FrontendCode.Describe), ...encodeFrame(f)]
      }
      case FrontendCode.Close: {
        if (skipping) return undefined
        const m = parseClose(f.body)
        if (this.unsettled(m.kind === 'S' ? 'statement' : 'portal', [m.name])) return 'wait'
        r.expect({ type: 'step', undo: this.d.prepared.close(m.kind, m.name, r.batch) })
        return undefined
      }
      case FrontendCode.Sync:
        parseEmpty(f.body, 'Sync')
        if (r.copyInAhead) {
          this.waitFor = r.copyAnswered()
          return 'wait'
        }
        return r.endBatch(false) ? undefined : []
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        // Skipped upstream, no copy can be under way or ahead: it ends none, and leaves nothing to await.
        if (!skipping) r.copyEnd()
        return undefined
      case FrontendCode.CopyData:
        r.copyData()
        return undefined
      case FrontendCode.Flush:
        // PostgreSQL answers one with a body with an error, and then skips every message up to Sync.
        parseEmpty(f.body, 'Flush')
        return undefined
      case FrontendCode.FunctionCall: {
        // The fast-path interface calls a function by OID (libpq's PQfn, pgjdbc's large objects):
        // the catalog names it, and the call is classified as `SELECT` of that function.
        const { oid, args } = parseFunctionCall(f.body)
        const catalog = this.d.catalog()
        const fn = catalog.functionNamed(oid)
        if (fn === undefined) {
          this.waitFor = catalog.readFunctionName(oid)
          return 'wait'
        }
        const sql = fn === null ? `(function call) ${oid}` : `(function call) ${fn}`
        const c = fn === null ? unknownFunction : classify(`SELECT ${fn}(${fn === 'pg_catalog.lo_open' ? openMode(args) : ''})`)
        const refusal = this.d.check.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        // Allowed, it is audited like a simple query: when its ReadyForQuery comes, with its error if any.
        // Its mask rules hide what the function raises (its answer has no columns to mask).
        const exec: Execution = { type: 'exec', sql, c: this.d.check.decided ?? c, rows: 0, simple: true, rules: refusal === undefined ? this.d.check.masking : noMasks }
        if (skipping) {
          if (refusal === undefined) this.d.record(exec, 'skipped after an error earlier in the batch')
        } else {
          if (refusal === undefined) r.expect(exec)
          r.endBatch(true)
        }
        return refusal === undefined ? undefined : [this.d.refusals.query(refusal)]
      }
      default:
        throw new ProtocolError('ERR_PG_MESSAGE_INVALID', `unexpected message type ${JSON.stringify(String.fromCharCode(f.tag))}`)
    }
  }

  /**
   * A Parse of `name` goes upstream: `statement` is what it prepares (undefined for a
   * stand-in), `standIn` replaces the client's message. A Parse the upstream skips prepares
   * nothing here either.
   */
  private parseStep (name: string, statement: Statement | undefined, standIn: Buffer | undefined): Buffer[] | undefined {
    if (!this.d.responses.skipping) this.d.responses.expect({ type: 'step', undo: this.d.prepared.parse(name, statement, this.d.responses.batch) })
    return standIn === undefined ? undefined : [standIn]
  }

  /**
   * Whether a message must wait for the upstream's answer to the latest Parse, Bind or Close of
   * a name it uses or changes (a Bind's statement and portal, an Execute's portal, the statements
   * a text runs with SQL `EXECUTE`), sent before the client's last Sync: should that fail, or be
   * skipped after an error before it, the name holds what it held before, so the message is
   * decided by what it really runs, and its own step is never undone by an earlier one's. Sets `waitFor`.
   */
  private unsettled (kind: 'statement' | 'portal', names: readonly string[]): boolean {
    for (const n of names) {
      const w = this.d.prepared.unsettled(kind, n, this.d.responses.batch)
      if (w !== undefined) { this.waitFor = w; return true }
    }
    return false
  }

  /** A text `c` that changes prepared statements or portals by name in SQL goes upstream. */
  private renamed (c: Classification): void {
    if (c.renames !== undefined) this.d.prepared.forget(c.renames)
    if (c.prepares !== undefined) this.d.prepared.sqlPrepare(c.prepares, this.d.check.decided ?? c)
  }
}
