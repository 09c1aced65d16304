import type { KeyObject } from 'node:crypto'
import type { Socket } from 'node:net'
import type { AuditLog } from '../../audit/audit-log.js'
import type { Logger } from '../../log.js'
import type { AccessClaims } from '../../lineage/claims.js'
import { auditLineage, type AuditLineage } from '../../audit/record.js'
import type { Target } from '../targets.js'
import { classify, type Classification } from './classify.js'
import type { Catalog } from './catalog.js'
import { noMasks, StatementCheck } from './statement-check.js'
import { FrontendCode } from './protocol/codes.js'
import { encodeFrame, type Frame, type Framer } from './protocol/framer.js'
import { Passthrough } from './protocol/passthrough.js'
import { parseBindTarget, parseClose, parseDescribe, parseEmpty, parseExecute, parseFunctionCall, parseParse, parseQuery } from './protocol/frontend.js'
import { errorResponse } from './protocol/backend.js'
import { ProtocolError } from './protocol/errors.js'
import { Writer } from './protocol/writer.js'
import { Refusals } from './refusals.js'
import { Prepared } from './prepared.js'
import { OutOfStep, Responses, type Execution, type Statement } from './responses.js'
import { cancelUpstream, type Upstream } from './upstream.js'

export interface SessionDeps {
  audit: AuditLog
  log: Logger
  /** The target as it is now: a policy saved mid-session applies to the next statement. */
  target: () => Target | undefined
  catalog: () => Catalog
  /** The deployment's key for the `hash` mask. */
  maskKey: KeyObject
  now: () => number
  /** Why the live-status view cannot be trusted now (too old), or undefined when it can. */
  stale: () => string | undefined
  /** Why the session's chain is not live now by the clock (cut off, past an end date or `exp`), or undefined while it is. */
  cutOff: () => string | undefined
}

// Answers awaited per session stay bounded, whatever a client pipelines.
const maxOutstanding = 100_000
const tooMany: Classification = { class: 'admin', statements: [], tables: [], count: 1 }
const unknownFunction: Classification = { class: 'admin', statements: [], tables: [], count: 1, reason: 'a fast-path call of a function the catalog does not know' }
/** Upstream messages larger than this that need no rewriting are passed on as they arrive, not held whole. */
const streamAbove = 256 * 1024

/** Writes `out` to `socket` (vectored when it is several pieces); true when the socket wants the other side paused. */
function writeAll (socket: Socket, out: Buffer[]): boolean {
  if (out.length === 0) return false
  if (out.length === 1) return !socket.write(out[0])
  socket.cork()
  for (const b of out) socket.write(b)
  socket.uncork()
  return socket.writableNeedDrain
}

/**
 * One agent session relayed to its own upstream session after login. Every statement is
 * classified and checked (scope for its class, then the target's policy) before it reaches
 * the upstream; a refused one is replaced by a statement that fails upstream, so the error
 * arrives in order, the transaction aborts and the extended protocol discards until Sync
 * exactly as PostgreSQL would; the gateway rewrites that error into its own 42501. Result
 * columns the policy masks are rewritten in every DataRow. Every statement is audited with the
 * whole lineage.
 */
export class PgSession {
  private readonly prepared = new Prepared()
  private readonly refusals = new Refusals()
  private readonly responses: Responses
  private readonly lineage: AuditLineage
  private readonly check: StatementCheck
  // While a direction waits for the catalog, what arrives queues behind it, in order.
  private clientWait: Buffer[] | undefined
  private upWait: Buffer[] | undefined
  private closed = false
  /** The client sent Terminate: the upstream is finishing what came before it. */
  private terminating = false
  /** Bytes still to come of a large upstream message being passed on as it arrives. */
  private streaming = 0
  /** Set when a client message waits for the upstream's answer to one before it (a COPY FROM STDIN beginning or not). */
  private waitFor: Promise<void> | undefined

  constructor (
    private readonly client: Socket,
    private readonly clientFramer: Framer,
    private readonly up: Upstream,
    readonly claims: AccessClaims,
    private readonly targetName: string,
    private readonly deps: SessionDeps,
    private readonly onEnd: () => void
  ) {
    this.lineage = auditLineage(claims)
    this.check = new StatementCheck(claims, {
      target: deps.target,
      catalog: deps.catalog,
      stale: deps.stale,
      outstanding: () => this.responses.outstanding,
      refused: (c, text, reason) => { this.audit('deny', c.class, text, { reason }) },
      executed: (name) => this.prepared.executed(name),
      seen: (name) => this.prepared.seen(name)
    })
    this.responses = new Responses({
      refusals: this.refusals,
      record: (e, error) => this.recordExec(e, error),
      undo: (step) => this.prepared.undo(step),
      settled: (step) => { this.prepared.settled(step) },
      catalog: deps.catalog,
      maskKey: deps.maskKey,
      onFatal: () => this.end(),
      onIdle: (done) => { this.prepared.endTransaction(done) },
      sendSync: () => { this.toUpstream([Buffer.from([FrontendCode.Sync, 0, 0, 0, 4])]) },
      masksNotifications: () => this.check.masksNotifications()
    })
    client.on('data', (chunk: Buffer) => this.fromClient(chunk))
    up.socket.on('data', (chunk: Buffer) => this.fromUpstream(chunk))
    // Backpressure both ways: a slow reader pauses the other side, so memory stays bounded.
    up.socket.on('drain', () => { if (this.clientWait === undefined) client.resume() })
    client.on('drain', () => { if (this.upWait === undefined) up.socket.resume() })
    client.on('close', () => { if (!this.terminating) this.end() })
    client.on('error', () => { if (!this.terminating) this.end() })
    up.socket.on('close', () => this.end(this.terminating))
    up.socket.on('error', () => this.end())
  }

  /** Relays what arrived during login (pipelined by the client) and starts reading the client, paused during the login. */
  start (early: Frame[]): void {
    if (early.length > 0) this.guarded(() => this.handleClientFrames(early, new Passthrough(undefined)))
    if (!this.closed && this.clientWait === undefined && !this.up.socket.writableNeedDrain) this.client.resume()
  }

  /** Ends the session at once: FATAL 28000 to the client, the upstream's running statement cancelled. */
  kill (reason: string): void {
    if (this.closed) return
    this.audit('deny', undefined, undefined, { event: 'session_ended', reason })
    this.endClient(errorResponse({ severity: 'FATAL', code: '28000', message: `lineage: ${reason}` }))
    setTimeout(() => this.client.destroy(), 1000).unref()
    this.end()
  }

  /**
   * The gateway is stopping: FATAL 57P01 to the client (what PostgreSQL sends at a shutdown),
   * the upstream's running statement cancelled, and the session ended now, not when its socket's
   * close comes (after the listener has closed): what it awaited is recorded before the stop returns.
   */
  shutDown (): void {
    if (this.closed) return
    this.endClient(errorResponse({ severity: 'FATAL', code: '57P01', message: 'lineage: the gateway is stopping' }))
    this.end()
  }

  private end (graceful = false): void {
    if (this.closed) return
    this.closed = true
    // A statement still running upstream would not notice the closed socket until it ends.
    if (!graceful && this.responses.outstanding > 0) cancelUpstream(this.up.url, this.up.key)
    if (!graceful) this.up.socket.destroy()
    // After a Terminate the client is owed nothing, not even answers it stopped reading.
    if (graceful || !this.client.writableEnded) this.client.destroy()
    this.responses.abandon('session ended')
    this.onEnd()
  }

  private protocolViolation (err: unknown): void {
    const message = err instanceof ProtocolError ? err.message : 'malformed message'
    this.endClient(errorResponse({ severity: 'FATAL', code: '08P01', message: `lineage: ${message}` }))
    this.end()
  }

  /**
   * Ends the client's connection with `fatal`, or without it while an upstream message is
   * passed on as it arrives: the client reads every byte up to that message's declared end
   * as part of it, so the error would become part of a row's value.
   */
  private endClient (fatal: Buffer): void {
    if (this.client.writableEnded) return
    if (this.streaming > 0) this.client.end()
    else this.client.end(fatal)
  }

  // --- client → upstream ------------------------------------------------------------------

  private fromClient (chunk: Buffer): void {
    if (this.closed || this.terminating) return
    // The end timers run on a clock that stands still while the host sleeps; the chain's end is the wall clock's.
    const cut = this.deps.cutOff()
    if (cut !== undefined) { this.kill(cut); return }
    if (this.clientWait !== undefined) { this.clientWait.push(chunk); return }
    const framer = this.clientFramer
    const held = framer.buffered()
    framer.add(chunk)
    this.guarded(() => {
      const frames: Frame[] = []
      for (let f = framer.next(); f !== undefined; f = framer.next()) frames.push(f)
      this.handleClientFrames(frames, new Passthrough(chunk, held))
    })
  }

  /** Runs `fn`; a message the client got wrong ends the session with FATAL 08P01 (also after a catalog lookup, where nothing else would catch it). */
  private guarded (fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.protocolViolation(err)
    }
  }

  /** `pass`: builds what goes upstream from the chunk the frames arrived in. */
  private handleClientFrames (frames: Frame[], pass: Passthrough): void {
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]
      if (f.tag === FrontendCode.Terminate) {
        // What the client sent before it left still runs, as it would on PostgreSQL.
        this.toUpstream(pass.take())
        this.terminate()
        return
      }
      const r = this.clientFrame(f)
      if (this.closed) return
      if (r === 'wait') {
        // A question for the worker thread or the catalog first: the functions a statement calls, the columns a COPY … TO copies.
        this.toUpstream(pass.take())
        this.clientWait = []
        this.client.pause()
        const ready = this.waitFor ?? this.check.ready()
        this.waitFor = undefined
        ready.then(() => {
          const queued = this.clientWait ?? []
          this.clientWait = undefined
          if (this.closed) return
          this.guarded(() => this.handleClientFrames(frames.slice(i), new Passthrough(undefined)))
          for (const c of queued) this.fromClient(c)
          if (this.clientWait === undefined && !this.up.socket.writableNeedDrain) this.client.resume()
        }, (err) => {
          this.deps.log.warn({ err: (err as Error).message, target: this.targetName }, 'reading the upstream catalog failed')
          this.kill('the statement could not be checked: the upstream catalog could not be read')
        })
        return
      }
      this.check.handled()
      if (r === undefined) pass.keep(f)
      else pass.replace(f, r)
    }
    this.toUpstream(pass.take())
  }

  private toUpstream (out: Buffer[]): void {
    if (writeAll(this.up.socket, out)) this.client.pause()
  }

  /** Handles one client message: undefined to forward it as is, what to send instead, or 'wait'. */
  private clientFrame (f: Frame): Buffer[] | 'wait' | undefined {
    const r = this.responses
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
        const c = this.check.classified(sql)
        if (c === 'wait') return 'wait'
        if (!skipping && this.unsettled('statement', c.executes ?? [])) return 'wait'
        const refusal = this.check.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        if (skipping) {
          if (refusal === undefined) this.recordExec({ type: 'exec', sql: this.check.statementText(sql, c), c: this.check.decided ?? c, rows: 0, simple: true, rules: noMasks }, 'skipped after an error earlier in the batch')
        } else {
          if (refusal === undefined) {
            r.expect({ type: 'exec', sql: this.check.statementText(sql, c), c: this.check.decided ?? c, rows: 0, simple: true, rules: this.check.masking, quotesMasked: this.check.touchesMasked })
            this.renamed(c)
          }
          r.endBatch(true)
        }
        return refusal === undefined ? undefined : [this.refusals.query(refusal)]
      }
      case FrontendCode.Parse: {
        const m = parseParse(f.body)
        if (!skipping && this.unsettled('statement', [m.name])) return 'wait'
        const limit = this.prepared.statementLimit(m.name, m.sql)
        if (limit !== undefined) return this.parseStep(m.name, undefined, this.refusals.parse(m.name, this.check.deny(m.sql, tooMany, limit)))
        const c = this.check.classified(m.sql)
        if (c === 'wait') return 'wait'
        if (!skipping && this.unsettled('statement', c.executes ?? [])) return 'wait'
        const refusal = this.check.decide(m.sql, c)
        if (refusal === 'wait') return 'wait'
        if (refusal !== undefined) return this.parseStep(m.name, undefined, this.refusals.parse(m.name, refusal))
        return this.parseStep(m.name, { sql: m.sql, c }, undefined)
      }
      case FrontendCode.Bind: {
        if (skipping) return undefined
        const m = parseBindTarget(f.body)
        if (this.unsettled('statement', [m.statement]) || this.unsettled('portal', [m.portal])) return 'wait'
        const limit = this.prepared.portalLimit(m.portal)
        if (limit !== undefined) return this.parseStep('', undefined, this.refusals.parse('', this.check.deny(`BIND ${m.portal}`, tooMany, limit)))
        const undo = this.prepared.bind(m.portal, { statement: m.statement, st: this.prepared.statement(m.statement), batch: r.batch })
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
        const portal = this.prepared.portal(m.portal)
        const st = portal?.st
        if (!skipping && st !== undefined && this.unsettled('statement', st.c.executes ?? [])) return 'wait'
        // A statement the gateway did not see parsed (SQL PREPARE) is of unknown class.
        const c: Classification = st?.c ?? { class: 'admin', statements: [], tables: [], count: 1, reason: 'a prepared statement the gateway did not see' }
        const sql = st?.sql ?? `EXECUTE ${portal?.statement ?? '?'}`
        // Checked again at each execution: a policy saved since the Parse applies now.
        const refusal = this.check.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        // The stand-in is a Parse of the unnamed statement, which PostgreSQL drops when it fails.
        if (refusal !== undefined) return skipping ? [this.refusals.parse('', refusal)] : this.parseStep('', undefined, this.refusals.parse('', refusal))
        if (skipping) return undefined
        const exec: Execution = { type: 'exec', sql: this.check.statementText(sql, c), c: this.check.decided ?? c, rows: 0, simple: false, portal, rules: this.check.masking, quotesMasked: this.check.touchesMasked }
        this.renamed(c)
        if (this.check.masking.length === 0) {
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
        r.expect({ type: 'step', undo: this.prepared.close(m.kind, m.name, r.batch) })
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
        r.copyEnd()
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
        const { oid } = parseFunctionCall(f.body)
        const catalog = this.deps.catalog()
        const fn = catalog.functionNamed(oid)
        if (fn === undefined) {
          this.waitFor = catalog.readFunctionName(oid)
          return 'wait'
        }
        const sql = fn === null ? `(function call) ${oid}` : `(function call) ${fn}`
        const c = fn === null ? unknownFunction : classify(`SELECT ${fn}()`)
        const refusal = this.check.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        // Allowed, it is audited like a simple query: when its ReadyForQuery comes, with its error if any.
        const exec: Execution = { type: 'exec', sql, c: this.check.decided ?? c, rows: 0, simple: true, rules: noMasks }
        if (skipping) {
          if (refusal === undefined) this.recordExec(exec, 'skipped after an error earlier in the batch')
        } else {
          if (refusal === undefined) r.expect(exec)
          r.endBatch(true)
        }
        return refusal === undefined ? undefined : [this.refusals.query(refusal)]
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
    if (!this.responses.skipping) this.responses.expect({ type: 'step', undo: this.prepared.parse(name, statement, this.responses.batch) })
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
      const w = this.prepared.unsettled(kind, n, this.responses.batch)
      if (w !== undefined) { this.waitFor = w; return true }
    }
    return false
  }

  /**
   * The client said goodbye. The upstream still runs what came before the Terminate and
   * answers it; those answers are audited (the client gets none), then it closes, and so does
   * the session. A cut-off meanwhile still ends it at once.
   */
  private terminate (): void {
    this.terminating = true
    this.client.end()
    this.up.socket.end(Buffer.from([FrontendCode.Terminate, 0, 0, 0, 4]))
    // Answers the client stopped reading paused the upstream, which would then never read the Terminate.
    if (this.upWait === undefined) this.up.socket.resume()
  }

  // --- upstream → client ------------------------------------------------------------------

  private fromUpstream (chunk: Buffer): void {
    if (this.closed) return
    if (this.upWait !== undefined) { this.upWait.push(chunk); return }
    if (this.streaming > 0) {
      const n = Math.min(this.streaming, chunk.length)
      this.streaming -= n
      this.flushToClient([n === chunk.length ? chunk : chunk.subarray(0, n)])
      if (n === chunk.length) return
      chunk = chunk.subarray(n)
    }
    const held = this.up.framer.buffered()
    this.up.framer.add(chunk)
    this.drainUpstream(new Passthrough(chunk, held))
  }

  /** Handles the upstream's complete frames; pauses for a catalog lookup when masking needs one. */
  private drainUpstream (pass: Passthrough): void {
    const framer = this.up.framer
    try {
      for (let f = framer.next(); f !== undefined; f = framer.next()) {
        const res = this.responses.frame(f)
        if (res === 'wait') {
          this.waitForMask(f, pass.take())
          return
        }
        if (this.closed) return
        if (res === undefined) pass.keep(f)
        else pass.replace(f, res)
      }
      // A large row is passed on as it arrives (when nothing in it is rewritten), so a session
      // holds at most a chunk of it, not the whole, however large the value.
      const h = framer.head()
      const passes = h !== undefined && h.total > streamAbove ? this.responses.passesUnread(h.tag) : false
      if (passes === 'wait') {
        this.waitForMask(undefined, pass.take())
        return
      }
      if (passes && h !== undefined) {
        this.streaming = h.total - framer.buffered()
        this.flushToClient([...pass.take(), ...framer.drain()])
        return
      }
    } catch (err) {
      this.upstreamBroke(err)
      return
    }
    this.flushToClient(pass.take())
  }

  private upstreamBroke (err: unknown): void {
    if (err instanceof OutOfStep) return this.kill(`the session lost step with the upstream: ${err.message}`)
    this.deps.log.warn({ err: (err as Error).message, target: this.targetName }, 'upstream broke the protocol')
    this.kill('the upstream database broke the protocol')
  }

  /**
   * Masking needs names from the catalog: sends what came before `f`, holds everything from `f`
   * on until then. Without `f`, the message it is for is still arriving, in the framer.
   */
  private waitForMask (f: Frame | undefined, before: Buffer[]): void {
    this.up.socket.pause()
    this.upWait = []
    this.flushToClient(before)
    this.responses.resolveMask().then(() => {
      const queued = this.upWait ?? []
      this.upWait = undefined
      if (this.closed) return
      if (f !== undefined) {
        let again
        try {
          again = this.responses.frame(f)
        } catch (err) {
          this.upstreamBroke(err)
          return
        }
        this.flushToClient(again === undefined ? encodeFrame(f) : again === 'wait' ? [] : again)
      }
      this.drainUpstream(new Passthrough(undefined))
      for (const c of queued) this.fromUpstream(c)
      if (this.upWait === undefined && (this.terminating || !this.client.writableNeedDrain)) this.up.socket.resume()
    }, (err) => {
      this.deps.log.warn({ err: (err as Error).message, target: this.targetName }, 'reading the upstream catalog for masking failed')
      this.kill('masking could not be applied: the upstream catalog could not be read')
    })
  }

  private flushToClient (out: Buffer[]): void {
    if (!this.closed && !this.terminating && writeAll(this.client, out)) this.up.socket.pause()
  }

  /** A text `c` that changes prepared statements or portals by name in SQL goes upstream. */
  private renamed (c: Classification): void {
    if (c.renames !== undefined) this.prepared.forget(c.renames)
    if (c.prepares !== undefined) this.prepared.sqlPrepare(c.prepares, this.check.decided ?? c)
  }

  private recordExec (e: Execution, error?: string): void {
    const failed = e.error ?? error
    this.audit('allow', e.c.class, e.sql, failed === undefined ? { rows: e.rows } : { rows: e.rows, error: failed })
  }

  private audit (decision: 'allow' | 'deny', method: string | undefined, path: string | undefined, detail: Record<string, unknown>): void {
    const l = this.lineage
    this.deps.audit.record({ at: this.deps.now(), kind: 'gateway.pg', decision, target: this.targetName, method, path, jti: l.jti, root: l.root, principals: l.principals, actors: l.actors, detail })
  }
}
