import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { AuthenticationType, BackendCode } from './protocol/codes.js'
import { Framer, type Frame } from './protocol/framer.js'
import { parseAuthentication, parseBackendKeyData, parseErrorFields, parseParameterStatus, parseSASLMechanisms } from './protocol/backend.js'
import { passwordMessage, query, saslInitialResponse, saslResponse, sslRequest, startupMessage, cancelRequest } from './protocol/frontend.js'
import { md5Password, ScramClient } from './scram.js'
import { upstreamTls } from './upstream-tls.js'

/** A logged-in upstream session, ready for queries. */
export interface Upstream {
  /** Where the session was opened (the target's upstream at login). */
  url: URL
  socket: Socket
  /** Continues framing what the upstream sends after ReadyForQuery. */
  framer: Framer
  /** The ParameterStatus messages of the login, to pass on to the client. */
  parameters: Frame[]
  /** The upstream backend's cancel key: its secret stays in the gateway (the client is given the process id, with a secret of the gateway's own). */
  key: { pid: number, secret: number }
}

/** Why the upstream could not be reached or refused the gateway's login; `detail` is for the log only. */
export class UpstreamError extends Error {
  constructor (message: string, readonly detail: string) { super(message) }
}

// The upstream's messages may be large (a DataRow holds up to 1 GB); the client side is capped far lower.
const upstreamMaxMessage = 1024 * 1024 * 1024

function hostOf (u: URL): { host: string, port: number } {
  return { host: u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(u.port === '' ? 5432 : u.port) }
}

/**
 * Resolves with the first `event` on `socket`; rejects on its error or its close (a peer that
 * hangs up sends no error), which is also how the caller's deadline, destroying it, ends the wait.
 */
async function first<T> (socket: Socket, event: string, what: string): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const done = (err: Error | undefined, value?: T): void => {
      socket.off(event, onEvent)
      socket.off('error', onError)
      socket.off('close', onClose)
      if (err !== undefined) reject(err)
      else resolve(value as T)
    }
    const onEvent = (value: T): void => { done(undefined, value) }
    const onError = (err: Error): void => { done(err) }
    const onClose = (): void => { done(new Error(`closed before ${what}`)) }
    socket.once(event, onEvent)
    socket.once('error', onError)
    socket.once('close', onClose)
  })
}

async function open (u: URL, timeoutMs: number): Promise<Socket> {
  const { host, port } = hostOf(u)
  const socket = netConnect({ host, port })
  socket.setNoDelay(true)
  // One deadline for the connection, the answer to SSLRequest and the TLS handshake: an
  // upstream (or a proxy in front of it) that takes the connection and then says nothing
  // would otherwise hold it, and the login, for ever.
  let current: Socket = socket
  const timer = setTimeout(() => { current.destroy(new Error(`not open within ${timeoutMs} ms`)) }, timeoutMs)
  try {
    await first(socket, 'connect', 'connecting')
    const tls = upstreamTls(u)
    if (!tls.attempt) return socket
    socket.write(sslRequest())
    const answer = await first<Buffer>(socket, 'data', 'answering the SSLRequest')
    // `prefer`: a server that answers N goes on in plain on the same connection.
    if (answer.length === 1 && answer[0] === 0x4e && !tls.required) return socket
    if (answer.length !== 1 || answer[0] !== 0x53) { socket.destroy(); throw new Error('the upstream does not offer TLS') }
    const secure = current = tlsConnect({ socket, servername: host, ...tls.options })
    await first(secure, 'secureConnect', 'the TLS handshake ended')
    return secure
  } catch (err) {
    current.destroy()
    socket.destroy()
    throw err
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Opens one upstream session with the target's own credentials (cleartext, md5 or
 * SCRAM-SHA-256, as the upstream asks) and reads up to its first ReadyForQuery. `settings`:
 * run-time settings for the session, as a client gives them in its own StartupMessage.
 * @throws UpstreamError with a message safe to show an agent (no credential in it).
 */
export async function connectUpstream (target: URL, opts: { timeoutMs: number, applicationName: string, settings?: ReadonlyArray<{ name: string, value: string }> }): Promise<Upstream> {
  const user = decodeURIComponent(target.username)
  const password = decodeURIComponent(target.password)
  const database = decodeURIComponent(target.pathname.replace(/^\//, '')) || user
  let socket: Socket
  try {
    socket = await open(target, opts.timeoutMs)
  } catch (err) {
    throw new UpstreamError('the upstream database is unreachable', (err as Error).message)
  }
  const framer = new Framer({ mode: 'tagged', maxLength: upstreamMaxMessage })
  const parameters: Frame[] = []
  let key = { pid: 0, secret: 0 }
  let scram: ScramClient | undefined
  const fail = (message: string, detail: string): UpstreamError => { socket.destroy(); return new UpstreamError(message, detail) }
  try {
    // The client's settings (checked by the caller) go first: none of them can be the names that follow.
    const settings = Object.fromEntries((opts.settings ?? []).map((s) => [s.name, s.value]))
    // The classifier reads strings as standard_conforming_strings on does: a database or role whose
    // default is off would read `'a\', '; DROP …; --'` otherwise. A client setting (admin only) may still change it.
    socket.write(startupMessage({ standard_conforming_strings: 'on', ...settings, user, database, application_name: opts.applicationName, client_encoding: 'UTF8' }))
    return await new Promise<Upstream>((resolve, reject) => {
      const timer = setTimeout(() => reject(fail('the upstream database did not complete the login in time', `${opts.timeoutMs} ms`)), opts.timeoutMs)
      const done = (err: Error | undefined, value?: Upstream): void => {
        clearTimeout(timer)
        socket.off('data', onData)
        socket.off('error', onError)
        socket.off('close', onClose)
        if (err !== undefined) reject(err)
        else resolve(value as Upstream)
      }
      const onError = (err: Error): void => { done(fail('the upstream database closed the connection during login', err.message)) }
      const onClose = (): void => { done(fail('the upstream database closed the connection during login', 'closed')) }
      const onData = (chunk: Buffer): void => {
        try {
          for (const f of framer.push(chunk)) {
            if (f.tag === BackendCode.Authentication) {
              const a = parseAuthentication(f.body)
              if (a.type === AuthenticationType.Ok) {
                // RFC 5802 §5: the server proves itself in its final message; one that skips it
                // (any server that did not check the password, or one in the middle) is not the target.
                if (scram !== undefined && !scram.verified) return done(fail('the upstream database broke the protocol during login', 'AuthenticationOk before the SCRAM exchange ended'))
                continue
              }
              if (a.type === AuthenticationType.CleartextPassword) socket.write(passwordMessage(password))
              else if (a.type === AuthenticationType.MD5Password) socket.write(passwordMessage(md5Password(user, password, a.data)))
              else if (a.type === AuthenticationType.SASL) {
                if (!parseSASLMechanisms(a.data).includes('SCRAM-SHA-256')) return done(fail('the upstream database asks for an unsupported login method', 'SASL without SCRAM-SHA-256'))
                scram = new ScramClient(password)
                socket.write(saslInitialResponse('SCRAM-SHA-256', scram.initial()))
              } else if (a.type === AuthenticationType.SASLContinue && scram !== undefined) socket.write(saslResponse(scram.respond(a.data)))
              else if (a.type === AuthenticationType.SASLFinal && scram !== undefined) scram.verify(a.data)
              else return done(fail('the upstream database asks for an unsupported login method', `authentication type ${a.type}`))
            } else if (f.tag === BackendCode.ParameterStatus) {
              parseParameterStatus(f.body)
              parameters.push({ tag: f.tag, body: Buffer.from(f.body) })
            } else if (f.tag === BackendCode.BackendKeyData) {
              key = parseBackendKeyData(f.body)
            } else if (f.tag === BackendCode.ErrorResponse) {
              const e = parseErrorFields(f.body)
              return done(fail('the upstream database refused the gateway\'s login', `${e.C ?? ''} ${e.M ?? ''}`))
            } else if (f.tag === BackendCode.ReadyForQuery) {
              return done(undefined, { url: target, socket, framer, parameters, key })
            }
            // NoticeResponse and NegotiateProtocolVersion during login: nothing to act on.
          }
        } catch (err) {
          done(fail('the upstream database broke the protocol during login', (err as Error).message))
        }
      }
      socket.on('data', onData)
      socket.on('error', onError)
      socket.on('close', onClose)
    })
  } catch (err) {
    socket.destroy()
    throw err
  }
}

/**
 * Makes every transaction of a logged-in upstream session read-only (`default_transaction_read_only`),
 * before the client is handed the session. The upstream reports the setting; its ParameterStatus
 * joins `parameters`, for the client to see.
 * @throws UpstreamError when the upstream refuses or does not answer in time.
 */
export async function makeReadOnly (up: Upstream, timeoutMs: number): Promise<void> {
  const { socket, framer } = up
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new UpstreamError('the upstream database did not make the session read-only in time', `${timeoutMs} ms`)), timeoutMs)
    let failure: UpstreamError | undefined
    const done = (err?: Error): void => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('error', onError)
      socket.off('close', onClose)
      if (err !== undefined) { socket.destroy(); reject(err) } else resolve()
    }
    const onError = (err: Error): void => { done(new UpstreamError('the upstream database closed the connection', err.message)) }
    const onClose = (): void => { done(new UpstreamError('the upstream database closed the connection', 'closed while making the session read-only')) }
    const onData = (chunk: Buffer): void => {
      try {
        for (const f of framer.push(chunk)) {
          if (f.tag === BackendCode.ParameterStatus) {
            const name = parseParameterStatus(f.body).name
            const kept = up.parameters.findIndex((p) => parseParameterStatus(p.body).name === name)
            up.parameters.splice(kept < 0 ? up.parameters.length : kept, kept < 0 ? 0 : 1, { tag: f.tag, body: Buffer.from(f.body) })
          } else if (f.tag === BackendCode.ErrorResponse) {
            const e = parseErrorFields(f.body)
            failure = new UpstreamError('the upstream database refused to make the session read-only', `${e.C ?? ''} ${e.M ?? ''}`)
          } else if (f.tag === BackendCode.ReadyForQuery) {
            return done(failure)
          }
        }
      } catch (err) {
        done(new UpstreamError('the upstream database broke the protocol', (err as Error).message))
      }
    }
    socket.on('data', onData)
    socket.on('error', onError)
    socket.on('close', onClose)
    socket.write(query('SET default_transaction_read_only = on'))
  })
}

/** Sends a CancelRequest for the upstream backend `key` on a connection of its own. Never throws. */
export function cancelUpstream (target: URL, key: { pid: number, secret: number }): void {
  const { host, port } = hostOf(target)
  const s = netConnect({ host, port })
  s.on('error', () => {})
  s.setTimeout(5000, () => s.destroy())
  s.once('connect', () => { s.end(cancelRequest(key.pid, key.secret)) })
}
