import { FrontendCode, StartupCode } from './codes.js'
import { ProtocolError } from './errors.js'
import { Reader } from './reader.js'
import { Writer } from './writer.js'

/**
 * Messages a frontend (client) sends: parsers for the gateway's client side, serializers for
 * its upstream side. Parsers take a frame's body and throw only ProtocolError.
 */

/** What the first, untagged message of a connection asks for. */
export type StartupRequest =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel', pid: number, secret: number }
  | { kind: 'startup', version: number, params: Record<string, string> }

/** Bounds on a StartupMessage's parameters, beyond the framer's bound on its length. */
export interface StartupLimits {
  maxParams: number
  maxNameBytes: number
  maxValueBytes: number
}

export const defaultStartupLimits: Readonly<StartupLimits> = { maxParams: 64, maxNameBytes: 256, maxValueBytes: 4096 }

/**
 * Parses an untagged message: SSLRequest, GSSENCRequest, CancelRequest or StartupMessage.
 * A StartupMessage of any protocol 3.x is returned with its `version`; which minor versions
 * and `_pq_.` options to accept (NegotiateProtocolVersion) is the caller's choice, as is
 * requiring `user`. `params` has no prototype, and a parameter given twice is refused, so
 * that the gateway and the upstream cannot read different values for the same name.
 * @param body the frame body, starting with the Int32 code
 * @throws ProtocolError `ERR_PG_PROTOCOL_UNSUPPORTED` for an unknown code or major version,
 *   `ERR_PG_MESSAGE_INVALID` for a malformed body or parameters beyond `limits`
 */
export function parseStartup (body: Buffer, limits: StartupLimits = defaultStartupLimits): StartupRequest {
  const r = new Reader(body, 'startup packet')
  const code = r.uint32()
  switch (code) {
    case StartupCode.SSLRequest: r.end(); return { kind: 'ssl' }
    case StartupCode.GSSENCRequest: r.end(); return { kind: 'gssenc' }
    case StartupCode.CancelRequest: {
      const pid = r.uint32()
      const secret = r.uint32()
      r.end()
      return { kind: 'cancel', pid, secret }
    }
  }
  if (code >>> 16 !== 3) throw new ProtocolError('ERR_PG_PROTOCOL_UNSUPPORTED', `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`)
  const params = Object.create(null) as Record<string, string>
  let count = 0
  for (;;) {
    const name = r.cstring()
    if (name === '') break
    if (++count > limits.maxParams) throw r.invalid(`more than ${limits.maxParams} parameters`)
    if (Buffer.byteLength(name) > limits.maxNameBytes) throw r.invalid(`a parameter name is longer than ${limits.maxNameBytes} bytes`)
    const value = r.cstring()
    if (Buffer.byteLength(value) > limits.maxValueBytes) throw r.invalid(`parameter ${name} is longer than ${limits.maxValueBytes} bytes`)
    if (name in params) throw r.invalid(`parameter ${name} is given twice`)
    params[name] = value
  }
  // The server requires the terminator to be the last byte.
  r.end()
  return { kind: 'startup', version: code, params }
}

/** Query ('Q'): the SQL text, possibly several statements. */
export function parseQuery (body: Buffer): string {
  const r = new Reader(body, 'Query')
  const sql = r.cstring()
  r.end()
  return sql
}

export interface ParseMessage {
  /** Prepared statement name; empty for the unnamed statement. */
  name: string
  sql: string
  /** Parameter type OIDs; 0 leaves a type to the server. */
  paramTypes: number[]
}

/** Parse ('P'). */
export function parseParse (body: Buffer): ParseMessage {
  const r = new Reader(body, 'Parse')
  const name = r.cstring()
  const sql = r.cstring()
  const n = r.uint16()
  const paramTypes: number[] = []
  for (let i = 0; i < n; i++) paramTypes.push(r.uint32())
  r.end()
  return { name, sql, paramTypes }
}

export interface BindMessage {
  portal: string
  statement: string
  /** Empty (all text), one code for all, or one per parameter; 0 text, 1 binary. */
  paramFormats: number[]
  /** Views into the body; null for SQL NULL. */
  params: Array<Buffer | null>
  /** Empty (all text), one code for all, or one per result column. */
  resultFormats: number[]
}

function formatCodes (r: Reader): number[] {
  const n = r.uint16()
  const codes: number[] = []
  for (let i = 0; i < n; i++) {
    const f = r.int16()
    if (f !== 0 && f !== 1) throw r.invalid(`unsupported format code ${f}`)
    codes.push(f)
  }
  return codes
}

/**
 * Bind ('B'). Format codes other than 0 and 1, and a number of parameter formats other than
 * 0, 1 or the number of parameters, are refused here as the server would refuse them.
 */
export function parseBind (body: Buffer): BindMessage {
  return readBind(body, true)
}

/** What a Bind binds, from where, and how results come back; its values are checked but not kept. */
export type BindTarget = Pick<BindMessage, 'portal' | 'statement' | 'resultFormats'>

/** Bind ('B') as `parseBind` reads and refuses it, without a view per parameter value: what the gateway's statement path needs. */
export function parseBindTarget (body: Buffer): BindTarget {
  return readBind(body, false)
}

function readBind (body: Buffer, values: true): BindMessage
function readBind (body: Buffer, values: false): BindTarget
function readBind (body: Buffer, values: boolean): BindMessage | BindTarget {
  const r = new Reader(body, 'Bind')
  const portal = r.cstring()
  const statement = r.cstring()
  const paramFormats = formatCodes(r)
  const n = r.uint16()
  if (paramFormats.length > 1 && paramFormats.length !== n) throw r.invalid(`${paramFormats.length} parameter formats for ${n} parameters`)
  const params: Array<Buffer | null> = []
  for (let i = 0; i < n; i++) {
    const len = r.int32()
    if (len < -1) throw r.invalid(`invalid parameter length ${len}`)
    if (!values) { if (len > 0) r.skip(len) } else params.push(len === -1 ? null : r.bytes(len))
  }
  const resultFormats = formatCodes(r)
  r.end()
  return values ? { portal, statement, paramFormats, params, resultFormats } : { portal, statement, resultFormats }
}

/** Describe and Close: 'S' a prepared statement, 'P' a portal; empty name for the unnamed one. */
export interface StatementOrPortal {
  kind: 'S' | 'P'
  name: string
}

function statementOrPortal (body: Buffer, what: string): StatementOrPortal {
  const r = new Reader(body, what)
  const kind = r.byte()
  if (kind !== 0x53 && kind !== 0x50) throw r.invalid(`invalid target type ${kind}`)
  const name = r.cstring()
  r.end()
  return { kind: kind === 0x53 ? 'S' : 'P', name }
}

/** Describe ('D'). */
export function parseDescribe (body: Buffer): StatementOrPortal {
  return statementOrPortal(body, 'Describe')
}

/** Close ('C'). */
export function parseClose (body: Buffer): StatementOrPortal {
  return statementOrPortal(body, 'Close')
}

/** Execute ('E'): `maxRows` 0 means no limit. */
export function parseExecute (body: Buffer): { portal: string, maxRows: number } {
  const r = new Reader(body, 'Execute')
  const portal = r.cstring()
  const maxRows = r.int32()
  r.end()
  return { portal, maxRows }
}

/** A fast-path call's argument: its bytes (null for NULL) and whether they are binary. */
export interface CallArgument { value: Buffer | null, binary: boolean }

/** FunctionCall ('F'): the OID of the function called and its arguments, checked for form. */
export function parseFunctionCall (body: Buffer): { oid: number, args: CallArgument[] } {
  const r = new Reader(body, 'FunctionCall')
  const oid = r.int32() >>> 0
  const formats = formatCodes(r)
  const n = r.uint16()
  if (formats.length > 1 && formats.length !== n) throw r.invalid(`${formats.length} argument formats for ${n} arguments`)
  const args: CallArgument[] = []
  for (let i = 0; i < n; i++) {
    const len = r.int32()
    if (len < -1) throw r.invalid(`invalid argument length ${len}`)
    // One format code applies to every argument; none means text.
    args.push({ value: len === -1 ? null : r.bytes(len), binary: (formats.length === 1 ? formats[0] : formats[i] ?? 0) === 1 })
  }
  const result = r.uint16()
  if (result > 1) throw r.invalid(`invalid result format ${result}`)
  r.end()
  return { oid, args }
}

/** PasswordMessage ('p') in answer to AuthenticationCleartextPassword or MD5Password. */
export function parsePassword (body: Buffer): string {
  const r = new Reader(body, 'PasswordMessage')
  const password = r.cstring()
  r.end()
  return password
}

/** SASLInitialResponse ('p'): the mechanism chosen and its initial response (null if none). */
export function parseSASLInitialResponse (body: Buffer): { mechanism: string, data: Buffer | null } {
  const r = new Reader(body, 'SASLInitialResponse')
  const mechanism = r.cstring()
  const len = r.int32()
  if (len < -1) throw r.invalid(`invalid response length ${len}`)
  const data = len === -1 ? null : r.bytes(len)
  r.end()
  return { mechanism, data }
}

/** Sync, Flush, Terminate, CopyDone: checks that the body is empty. */
export function parseEmpty (body: Buffer, what = 'message'): void {
  new Reader(body, what).end()
}

/**
 * StartupMessage for protocol `version` (default 3.0).
 * @throws TypeError on an empty parameter name or a NUL in a name or value
 */
export function startupMessage (params: Record<string, string>, version: number = StartupCode.Protocol30): Buffer {
  const w = new Writer().uint32(version)
  for (const [name, value] of Object.entries(params)) {
    // An empty name would be read as the end of the list.
    if (name === '') throw new TypeError('a startup parameter name cannot be empty')
    w.cstring(name).cstring(value)
  }
  return w.byte(0).untagged()
}

/** SSLRequest: asks the server to start TLS; it answers one unframed byte, 'S' or 'N'. */
export function sslRequest (): Buffer {
  return new Writer(8).uint32(StartupCode.SSLRequest).untagged()
}

/** GSSENCRequest: asks for GSSAPI encryption; answered like SSLRequest. */
export function gssencRequest (): Buffer {
  return new Writer(8).uint32(StartupCode.GSSENCRequest).untagged()
}

/** CancelRequest, sent on a new connection, with the process id and secret key from BackendKeyData. */
export function cancelRequest (pid: number, secret: number): Buffer {
  return new Writer(16).uint32(StartupCode.CancelRequest).uint32(pid).uint32(secret).untagged()
}

/** PasswordMessage ('p'): a cleartext password, or an MD5 hash as its text. */
export function passwordMessage (password: string): Buffer {
  return new Writer().cstring(password).frame(FrontendCode.PasswordMessage)
}

/** SASLInitialResponse ('p'): the chosen mechanism and the client's first message. */
export function saslInitialResponse (mechanism: string, data: Buffer): Buffer {
  return new Writer().cstring(mechanism).int32(data.length).bytes(data).frame(FrontendCode.PasswordMessage)
}

/** SASLResponse ('p'): a further client message of the SASL exchange. */
export function saslResponse (data: Buffer): Buffer {
  return new Writer().bytes(data).frame(FrontendCode.PasswordMessage)
}

/** Query ('Q'). @throws TypeError if `sql` contains NUL */
export function query (sql: string): Buffer {
  return new Writer().cstring(sql).frame(FrontendCode.Query)
}

/** Terminate ('X'). */
export function terminate (): Buffer {
  return new Writer(8).frame(FrontendCode.Terminate)
}
