import type { Socket } from 'node:net'
import type { AccessClaims } from '../../lineage/claims.js'
import { auditLineage, type AuditLineage } from '../../audit/record.js'
import { StatementCheck } from './statement-check.js'
import { FrontendCode } from './protocol/codes.js'
import { encodeFrame, type Frame, type Framer } from './protocol/framer.js'
import { Passthrough } from './protocol/passthrough.js'
import { ClientMessages } from './client-messages.js'
import { errorResponse } from './protocol/backend.js'
import { ProtocolError } from './protocol/errors.js'
import { Refusals } from './refusals.js'
import { Prepared } from './prepared.js'
import { OutOfStep } from './out-of-step.js'
import type { Execution } from './pending.js'
import { Responses } from './responses.js'
import { cancelUpstream, type Upstream } from './upstream.js'
import type { SessionDeps } from './session-deps.js'
import { writeAll } from './write-all.js'

/** Upstream messages larger than this that need no rewriting are passed on as they arrive, not held whole. */
const streamAbove = 256 * 1024

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
  private readonly messages: ClientMessages
  // While a direction waits for the catalog, what arrives queues behind it, in order.
  private clientWait: Buffer[] | undefined
  private upWait: Buffer[] | undefined
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
    this.check = new StatementCheck(claims, {
      target: deps.target,
      catalog: deps.catalog,
      stale: deps.stale,
      outstanding: () => this.responses.outstanding,
      refused: (c, text, reason) => {
        deps.counted('deny')
        this.audit('deny', c.class, text, { reason })
      },
      executed: (name) => this.prepared.executed(name),
      seen: (name) => this.prepared.seen(name),
      searchesSystem: deps.searchesSystem
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
    this.messages = new ClientMessages({
      responses: this.responses,
      prepared: this.prepared,
      refusals: this.refusals,
      check: this.check,
      catalog: deps.catalog,
      record: (e, error) => this.recordExec(e, error)
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

  /** Ends the session at once: FATAL `code` (a cut-off's 28000 unless told) to the client, the upstream's running statement cancelled. */
  kill (reason: string, code = '28000'): void {
    if (this.closed) return
    this.audit('deny', undefined, undefined, { event: 'session_ended', reason })
    this.endClient(errorResponse({ severity: 'FATAL', code, message: `lineage: ${reason}` }))
    this.end()
  }

  /** Whether a statement is running upstream: its answers are still to come. */
  busy (): boolean {
    return this.responses.outstanding > 0
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
   * as part of it, so the error would become part of a row's value. A second later the
   * connection is closed whatever is left unsent: a client that stopped reading would
   * otherwise keep it, and what waits in it, for as long as it keeps its own end open.
   */
  private endClient (fatal: Buffer): void {
    if (this.client.writableEnded) return
    if (this.streaming > 0) this.client.end()
    else this.client.end(fatal)
    setTimeout(() => this.client.destroy(), 1000).unref()
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
      const r = this.messages.handle(f)
      if (this.closed) return
      if (r === 'wait') {
        // A question for the worker thread or the catalog first: the functions a statement calls, the columns a COPY … TO copies.
        this.toUpstream(pass.take())
        this.clientWait = []
        this.client.pause()
        const ready = this.messages.takeWait()
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


  private recordExec (e: Execution, error?: string): void {
    const failed = e.error ?? error
    this.deps.counted('allow')
    this.audit('allow', e.c.class, e.sql, failed === undefined ? { rows: e.rows } : { rows: e.rows, error: failed })
  }

  private audit (decision: 'allow' | 'deny', method: string | undefined, path: string | undefined, detail: Record<string, unknown>): void {
    const l = this.lineage
    this.deps.audit.record({ at: this.deps.now(), kind: 'gateway.pg', decision, target: this.targetName, method, path, jti: l.jti, root: l.root, principals: l.principals, actors: l.actors, detail })
  }
}
