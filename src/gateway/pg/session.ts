import type { Socket } from 'node:net'
import type { AuditLog } from '../../audit/audit-log.js'
import type { Logger } from '../../log.js'
import { currentActor, type AccessClaims } from '../../lineage/claims.js'
import { auditLineage, type AuditLineage } from '../../audit/record.js'
import { authorize } from '../check.js'
import { maskRules } from '../policy.js'
import type { Target } from '../targets.js'
import { classify, fingerprint, longStatementChars, type Classification } from './classify.js'
import { classifyLong, type Classified } from './classify-long.js'
import { exposedMask, maskFor, type ColumnName, type MaskRule } from './mask.js'
import type { Catalog } from './catalog.js'
import { FrontendCode } from './protocol/codes.js'
import { encodeFrame, type Frame, type Framer } from './protocol/framer.js'
import { Passthrough } from './protocol/passthrough.js'
import { parseBindTarget, parseClose, parseDescribe, parseExecute, parseParse, parseQuery } from './protocol/frontend.js'
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
  now: () => number
  /** Why the live-status view cannot be trusted now (too old), or undefined when it can. */
  stale: () => string | undefined
}

const maxStatementChars = 1024 * 1024
// Answers awaited per session stay bounded, whatever a client pipelines.
const maxOutstanding = 100_000
const tooMany: Classification = { class: 'admin', statements: [], tables: [], count: 1 }
const fastPathCall: Classification = { class: 'admin', statements: [], tables: [], count: 1, reason: 'a fast-path function call' }
/** A statement no mask rule applies to (most of them) shares this one. */
const noMasks: readonly MaskRule[] = Object.freeze([])
const noTables: readonly string[] = Object.freeze([])
const tooLong: Classification = { class: 'admin', statements: [], tables: [], count: 1, reason: 'too long to classify' }
const maxChecks = 1000
/** Upstream messages larger than this that need no rewriting are passed on as they arrive, not held whole. */
const streamAbove = 256 * 1024
// A statement may name tens of thousands of tables: the decisions kept hold their classifications, tables and all.
const maxCheckedTables = 100_000
const maxMaskedTables = 256

/** Whether a target's policy has deny or approve rules on tables, which must see the tables behind views and parents. */
function tableRules (t: Target): boolean {
  return t.policy.rules.some((r) => r.effect !== 'mask' && r.tables !== undefined)
}

/** Writes `out` to `socket` (vectored when it is several pieces); true when the socket wants the other side paused. */
function writeAll (socket: Socket, out: Buffer[]): boolean {
  if (out.length === 0) return false
  if (out.length === 1) return !socket.write(out[0])
  socket.cork()
  for (const b of out) socket.write(b)
  socket.uncork()
  return socket.writableNeedDrain
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
  // The statement decided last (set by `decide`): its mask rules, and its class once the catalog had its say.
  private masking: readonly MaskRule[] = noMasks
  private touchesMasked = false
  private decided: Classification | undefined
  /** The statement whose catalog facts `decide` last waited for. */
  private waiting: Classification | undefined
  /** A long statement's classification from the worker thread, until its message is handled. */
  private long: Classified & { sql: string } | undefined
  /** Set when `classified` waits for the worker thread. */
  private pending: Promise<void> | undefined
  /** Fingerprints the worker thread made of long statements, for their audit records. */
  private readonly fingerprints = new WeakMap<Classification, string>()
  // While a direction waits for the catalog, what arrives queues behind it, in order.
  private clientWait: Buffer[] | undefined
  private upWait: Buffer[] | undefined
  private readonly checks = new Map<Classification, Checked>()
  /** Tables named by the classifications `checks` holds. */
  private checkedTables = 0
  private closed = false
  /** The client sent Terminate: the upstream is finishing what came before it. */
  private terminating = false
  /** Bytes still to come of a large upstream message being passed on as it arrives. */
  private streaming = 0

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
    this.responses = new Responses({
      refusals: this.refusals,
      record: (e, error) => this.recordExec(e, error),
      undo: (step) => this.prepared.undo(step),
      catalog: deps.catalog,
      onFatal: () => this.end(),
      onIdle: (done) => { this.prepared.endTransaction(done) }
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
        const ready = this.pending ?? this.lookUp(this.waiting)
        this.pending = undefined
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
      this.long = undefined
      if (r === undefined) pass.keep(f)
      else pass.replace(f, r)
    }
    this.toUpstream(pass.take())
  }

  private toUpstream (out: Buffer[]): void {
    if (writeAll(this.up.socket, out)) this.client.pause()
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
    const t = this.deps.target()
    if (t !== undefined && tableRules(t) && c.tables.length > 0 && catalog.behind(c.tables) === undefined) await catalog.readBehind(c.tables)
    if (this.masking.length > 0 && catalog.columnsOf(c.tables) === undefined) await catalog.readColumns(c.tables)
  }

  /** The class a statement really has: a read that calls a volatile user-defined function may write. */
  private classOf (c: Classification): Classification | 'wait' {
    if (c.class !== 'read' || c.functions === undefined) return c
    const catalog = this.deps.catalog()
    let writer: string | undefined
    for (const n of c.functions) {
      const w = catalog.mayWrite(n)
      if (w === undefined) return 'wait'
      if (w) writer ??= n
    }
    return writer === undefined ? c : { ...c, class: 'write', reason: `calls ${writer}, a volatile function that may write` }
  }

  /**
   * Why masking cannot hold for a statement, by the columns of its tables: a masked column it
   * would return computed or whole (`exposedMask`), or a COPY … TO that would copy one.
   * Undefined when it holds; 'wait' until the catalog has the columns. Sets `touchesMasked`.
   */
  private maskCheck (c: Classification, checked: Checked): string | 'wait' | undefined {
    this.touchesMasked = false
    if (this.masking.length === 0 || c.tables.length === 0) return undefined
    // Each new set of tables is one catalog query on a pool every session of the target shares.
    if (c.tables.length > maxMaskedTables) return `statements naming more than ${maxMaskedTables} tables are not accepted where columns are masked`
    const columns = this.deps.catalog().columnsOf(c.tables)
    if (columns === undefined) return 'wait'
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
        const c = this.classified(sql)
        if (c === 'wait') return 'wait'
        const refusal = this.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        if (skipping) {
          if (refusal === undefined) this.recordExec({ type: 'exec', sql: this.statementText(sql, c), c: this.decided ?? c, rows: 0, simple: true, rules: noMasks }, 'skipped after an error earlier in the batch')
        } else {
          if (refusal === undefined) {
            r.expect({ type: 'exec', sql: this.statementText(sql, c), c: this.decided ?? c, rows: 0, simple: true, rules: this.masking, quotesMasked: this.touchesMasked })
            if (c.renames !== undefined) this.prepared.forget(c.renames)
          }
          r.endBatch(true)
        }
        return refusal === undefined ? undefined : [this.refusals.query(refusal)]
      }
      case FrontendCode.Parse: {
        const m = parseParse(f.body)
        const limit = this.prepared.statementLimit(m.name, m.sql)
        if (limit !== undefined) return this.parseStep(m.name, undefined, this.refusals.parse(m.name, this.deny(m.sql, tooMany, limit)))
        const c = this.classified(m.sql)
        if (c === 'wait') return 'wait'
        const refusal = this.decide(m.sql, c)
        if (refusal === 'wait') return 'wait'
        if (refusal !== undefined) return this.parseStep(m.name, undefined, this.refusals.parse(m.name, refusal))
        return this.parseStep(m.name, { sql: m.sql, c }, undefined)
      }
      case FrontendCode.Bind: {
        if (skipping) return undefined
        const m = parseBindTarget(f.body)
        const limit = this.prepared.portalLimit(m.portal)
        if (limit !== undefined) return this.parseStep('', undefined, this.refusals.parse('', this.deny(`BIND ${m.portal}`, tooMany, limit)))
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
        const portal = this.prepared.portal(m.portal)
        const st = portal?.st
        // A statement the gateway did not see parsed (SQL PREPARE) is of unknown class.
        const c: Classification = st?.c ?? { class: 'admin', statements: [], tables: [], count: 1, reason: 'a prepared statement the gateway did not see' }
        const sql = st?.sql ?? `EXECUTE ${portal?.statement ?? '?'}`
        // Checked again at each execution: a policy saved since the Parse applies now.
        const refusal = this.decide(sql, c)
        if (refusal === 'wait') return 'wait'
        // The stand-in is a Parse of the unnamed statement, which PostgreSQL drops when it fails.
        if (refusal !== undefined) return skipping ? [this.refusals.parse('', refusal)] : this.parseStep('', undefined, this.refusals.parse('', refusal))
        if (skipping) return undefined
        const exec: Execution = { type: 'exec', sql: this.statementText(sql, c), c: this.decided ?? c, rows: 0, simple: false, portal, rules: this.masking, quotesMasked: this.touchesMasked }
        if (c.renames !== undefined) this.prepared.forget(c.renames)
        if (this.masking.length === 0) {
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
        if (m.kind === 'S') this.prepared.closeStatement(m.name)
        else this.prepared.closePortal(m.name)
        r.expect({ type: 'step' })
        return undefined
      }
      case FrontendCode.Sync:
        return r.endBatch(false) ? undefined : []
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        r.copyEnd()
        return undefined
      case FrontendCode.Flush:
      case FrontendCode.CopyData:
        return undefined
      case FrontendCode.FunctionCall: {
        // The fast-path interface calls any function by OID: only an admin may.
        const refusal = this.decide('(function call)', fastPathCall)
        if (refusal === 'wait') return 'wait'
        // Allowed, it is audited like a simple query: when its ReadyForQuery comes, with its error if any.
        const exec: Execution = { type: 'exec', sql: '(function call)', c: fastPathCall, rows: 0, simple: true, rules: noMasks }
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
    if (!this.responses.skipping) this.responses.expect({ type: 'step', undo: this.prepared.parse(name, statement) })
    return standIn === undefined ? undefined : [standIn]
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

  /**
   * A statement's classification: from the cache or the classifier for short text, from the
   * worker thread for long text ('wait' until it answers), admin for text too long to classify.
   */
  private classified (sql: string): Classification | 'wait' {
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
  private decide (sql: string, classified: Classification): string | 'wait' | undefined {
    this.masking = noMasks
    this.decided = undefined
    // Fail closed: a view that cannot be proven current might be missing a cut-off.
    const stale = this.deps.stale()
    if (stale !== undefined) return this.deny(sql, classified, stale)
    this.waiting = classified
    const c = this.classOf(classified)
    if (c === 'wait') return 'wait'
    // Classifying takes time in proportion to the text, on the thread every session shares.
    if (sql.length > maxStatementChars) return this.deny(sql.slice(0, 200), c, `statements longer than ${maxStatementChars} characters are not accepted; use COPY for bulk data`)
    const t = this.deps.target()
    if (t === undefined || t.kind !== 'postgres') return this.deny(sql, c, 'the target no longer exists')
    // A `tables` rule covers the rows a statement reaches through a view, a parent or a partitioned table too.
    const behind = tableRules(t) && c.tables.length > 0 ? this.deps.catalog().behind(c.tables) : noTables
    if (behind === undefined) return 'wait'
    const checked = this.checked(c, t, behind)
    if (checked.refusal !== undefined) return this.deny(sql, c, checked.refusal)
    this.masking = checked.masking
    const unmaskable = this.maskCheck(c, checked)
    if (unmaskable === 'wait') return 'wait'
    if (unmaskable !== undefined) return this.deny(sql, c, unmaskable)
    this.decided = c
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

  private deny (sql: string, c: Classification, reason: string): string {
    this.audit('deny', c.class, this.statementText(sql, c), { reason })
    return reason
  }

  /**
   * A statement as its audit record holds it, worked out when the statement is sent: an answer
   * may wait long (a client that pipelines and does not read), and what waits is this, not the
   * statement. A copy, and a short one while many answers wait, so that holds little memory.
   */
  private statementText (sql: string, c: Classification): string {
    if (this.deps.target()?.auditStatements === 'fingerprint') return `fingerprint:${this.fingerprints.get(c) ?? fingerprint(sql)}`
    const limit = this.responses.outstanding > 1000 ? 256 : 4096
    return sql.length <= limit ? sql : Buffer.from(sql.slice(0, limit)).toString()
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

  private recordExec (e: Execution, error?: string): void {
    const failed = e.error ?? error
    this.audit('allow', e.c.class, e.sql, failed === undefined ? { rows: e.rows } : { rows: e.rows, error: failed })
  }

  private audit (decision: 'allow' | 'deny', method: string | undefined, path: string | undefined, detail: Record<string, unknown>): void {
    const l = this.lineage
    this.deps.audit.record({ at: this.deps.now(), kind: 'gateway.pg', decision, target: this.targetName, method, path, jti: l.jti, root: l.root, principals: l.principals, actors: l.actors, detail })
  }
}
