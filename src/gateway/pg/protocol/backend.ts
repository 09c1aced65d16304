import { AuthenticationType, BackendCode } from './codes.js'
import { Reader } from './reader.js'
import { Writer } from './writer.js'

/**
 * Messages a backend (server) sends: parsers for the gateway's upstream side, serializers for
 * what the gateway itself answers its clients. Parsers take a frame's body and throw only
 * ProtocolError.
 */

/** An Authentication ('R') request; `data` is a view of what follows the type. */
export interface Authentication {
  type: number
  data: Buffer
}

/**
 * Authentication ('R'). Checks each type's layout: nothing after Ok, CleartextPassword, GSS
 * and SSPI; a 4-byte salt for MD5Password; a well-formed mechanism list for SASL (read it
 * with {@link parseSASLMechanisms}); anything for GSSContinue, SASLContinue and SASLFinal.
 * @throws ProtocolError also for an unknown type, or KerberosV5 (gone since PostgreSQL 9.4)
 */
export function parseAuthentication (body: Buffer): Authentication {
  const r = new Reader(body, 'Authentication')
  const type = r.int32()
  const data = r.rest()
  switch (type) {
    case AuthenticationType.Ok:
    case AuthenticationType.CleartextPassword:
    case AuthenticationType.GSS:
    case AuthenticationType.SSPI:
      if (data.length !== 0) throw r.invalid(`type ${type} carries ${data.length} unexpected bytes`)
      break
    case AuthenticationType.MD5Password:
      if (data.length !== 4) throw r.invalid(`MD5 salt of ${data.length} bytes`)
      break
    case AuthenticationType.SASL:
      parseSASLMechanisms(data)
      break
    case AuthenticationType.GSSContinue:
    case AuthenticationType.SASLContinue:
    case AuthenticationType.SASLFinal:
      break
    default:
      throw r.invalid(`unsupported authentication type ${type}`)
  }
  return { type, data }
}

/** The mechanisms of an AuthenticationSASL: at least one name, then an empty one. */
export function parseSASLMechanisms (data: Buffer): string[] {
  const r = new Reader(data, 'AuthenticationSASL')
  const mechanisms: string[] = []
  for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m)
  r.end()
  if (mechanisms.length === 0) throw r.invalid('no mechanism offered')
  return mechanisms
}

/** One column of a RowDescription. */
export interface FieldDescription {
  name: string
  /** OID of the table the column comes from, or 0. */
  tableOid: number
  /** Attribute number of the column in that table, or 0. */
  column: number
  typeOid: number
  /** pg_type.typlen: negative for variable-width types. */
  typeSize: number
  /** pg_attribute.atttypmod: type-specific, -1 when none. */
  typeMod: number
  /** 0 text, 1 binary. */
  format: number
}

/** RowDescription ('T'). */
export function parseRowDescription (body: Buffer): FieldDescription[] {
  const r = new Reader(body, 'RowDescription')
  const n = r.uint16()
  const fields: FieldDescription[] = []
  for (let i = 0; i < n; i++) {
    fields.push({ name: r.cstring(), tableOid: r.uint32(), column: r.int16(), typeOid: r.uint32(), typeSize: r.int16(), typeMod: r.int32(), format: r.int16() })
  }
  r.end()
  return fields
}

/** DataRow ('D'): each column value as a view into the body, or null for SQL NULL. */
export function parseDataRow (body: Buffer): Array<Buffer | null> {
  const r = new Reader(body, 'DataRow')
  const n = r.uint16()
  const values: Array<Buffer | null> = []
  for (let i = 0; i < n; i++) {
    const len = r.int32()
    if (len < -1) throw r.invalid(`invalid column length ${len}`)
    values.push(len === -1 ? null : r.bytes(len))
  }
  r.end()
  return values
}

/** CommandComplete ('C'): the command tag, e.g. `SELECT 3` or `INSERT 0 1`. */
export function parseCommandComplete (body: Buffer): string {
  const r = new Reader(body, 'CommandComplete')
  const tag = r.cstring()
  r.end()
  return tag
}

/**
 * The row count a CommandComplete tag ends with (`INSERT 0 5` → 5, `SELECT 1` → 1), 0 for a
 * tag without one (`BEGIN`) or one past 2^53. Read from the bytes: the hot path of every
 * statement need not decode the tag.
 */
export function commandRows (body: Buffer): number {
  const end = body.length - 1
  if (end < 0 || body[end] !== 0) throw new Reader(body, 'CommandComplete').invalid('string is missing its terminator')
  let n = 0
  let scale = 1
  let i = end - 1
  for (; i >= 0 && body[i] >= 0x30 && body[i] <= 0x39; i--) {
    n += (body[i] - 0x30) * scale
    scale *= 10
  }
  if (i === end - 1 || (i >= 0 && body[i] !== 0x20)) return 0
  return scale <= 1e16 && Number.isSafeInteger(n) ? n : 0
}

/**
 * ErrorResponse ('E') and NoticeResponse ('N'): the fields keyed by their type letter
 * (S severity, V non-localized severity, C SQLSTATE, M message, D detail, H hint, P position,
 * …). A field type given twice keeps its last value.
 */
export function parseErrorFields (body: Buffer): Record<string, string> {
  const r = new Reader(body, 'ErrorResponse')
  const fields: Record<string, string> = {}
  for (let type = r.byte(); type !== 0; type = r.byte()) fields[String.fromCharCode(type)] = r.cstring()
  r.end()
  return fields
}

/** BackendKeyData ('K'), protocol 3.0: the process id and secret key a CancelRequest needs. */
export function parseBackendKeyData (body: Buffer): { pid: number, secret: number } {
  const r = new Reader(body, 'BackendKeyData')
  const pid = r.uint32()
  const secret = r.uint32()
  r.end()
  return { pid, secret }
}

/** ParameterStatus ('S'). */
export function parseParameterStatus (body: Buffer): { name: string, value: string } {
  const r = new Reader(body, 'ParameterStatus')
  const name = r.cstring()
  const value = r.cstring()
  r.end()
  return { name, value }
}

/** NotificationResponse ('A'): what `NOTIFY channel, 'payload'` (or `pg_notify`) sent a session that listens. */
export function parseNotification (body: Buffer): { pid: number, channel: string, payload: string } {
  const r = new Reader(body, 'NotificationResponse')
  const pid = r.uint32()
  const channel = r.cstring()
  const payload = r.cstring()
  r.end()
  return { pid, channel, payload }
}

/** Transaction status: idle, in a transaction block, in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E'

/** ReadyForQuery ('Z'). */
export function parseReadyForQuery (body: Buffer): TransactionStatus {
  const r = new Reader(body, 'ReadyForQuery')
  const status = String.fromCharCode(r.byte())
  r.end()
  if (status !== 'I' && status !== 'T' && status !== 'E') throw r.invalid(`invalid transaction status ${JSON.stringify(status)}`)
  return status
}

/** AuthenticationOk. */
export function authenticationOk (): Buffer {
  return new Writer(16).int32(AuthenticationType.Ok).frame(BackendCode.Authentication)
}

/** AuthenticationCleartextPassword. */
export function authenticationCleartextPassword (): Buffer {
  return new Writer(16).int32(AuthenticationType.CleartextPassword).frame(BackendCode.Authentication)
}

/** ParameterStatus ('S'). */
export function parameterStatus (name: string, value: string): Buffer {
  return new Writer().cstring(name).cstring(value).frame(BackendCode.ParameterStatus)
}

/** BackendKeyData ('K'), protocol 3.0: both values are 32-bit unsigned. */
export function backendKeyData (pid: number, secret: number): Buffer {
  return new Writer(16).uint32(pid).uint32(secret).frame(BackendCode.BackendKeyData)
}

/** ReadyForQuery ('Z'). */
export function readyForQuery (status: TransactionStatus): Buffer {
  if (status !== 'I' && status !== 'T' && status !== 'E') throw new TypeError(`invalid transaction status ${String(status)}`)
  return new Writer(8).byte(status.charCodeAt(0)).frame(BackendCode.ReadyForQuery)
}

/** The fields of an ErrorResponse or NoticeResponse the gateway writes. */
export interface Notice<S extends string> {
  severity: S
  /** SQLSTATE: five digits or upper-case letters. */
  code: string
  message: string
  detail?: string
  hint?: string
}

// Display text may come from the world (a statement, a name); a NUL in it would end the
// field early and let the rest be read as further fields.
function text (s: string): string {
  return s.replaceAll('\0', '\uFFFD')
}

function notice (tag: number, n: Notice<string>): Buffer {
  if (!/^[0-9A-Z]{5}$/.test(n.code)) throw new TypeError(`invalid SQLSTATE ${JSON.stringify(n.code)}`)
  // S is the localized severity and V the untranslated one (added in 9.6); the gateway does
  // not translate, so both carry the same word.
  const w = new Writer()
    .byte(0x53).cstring(n.severity)
    .byte(0x56).cstring(n.severity)
    .byte(0x43).cstring(n.code)
    .byte(0x4d).cstring(text(n.message))
  if (n.detail !== undefined) w.byte(0x44).cstring(text(n.detail))
  if (n.hint !== undefined) w.byte(0x48).cstring(text(n.hint))
  return w.byte(0).frame(tag)
}

/** ErrorResponse ('E'). NUL characters in message, detail and hint become U+FFFD. */
export function errorResponse (e: Notice<'ERROR' | 'FATAL' | 'PANIC'>): Buffer {
  return notice(BackendCode.ErrorResponse, e)
}

/** An ErrorResponse (or, given its code, a NoticeResponse) of fields as `parseErrorFields` gives them, in their order. */
export function errorFromFields (fields: Record<string, string>, code: BackendCode.ErrorResponse | BackendCode.NoticeResponse = BackendCode.ErrorResponse): Buffer {
  const w = new Writer()
  for (const type in fields) w.byte(type.charCodeAt(0)).cstring(fields[type])
  return w.byte(0).frame(code)
}

/** NoticeResponse ('N'). NUL characters in message, detail and hint become U+FFFD. */
export function noticeResponse (n: Notice<'WARNING' | 'NOTICE' | 'INFO' | 'DEBUG' | 'LOG'>): Buffer {
  return notice(BackendCode.NoticeResponse, n)
}

/** RowDescription ('T'). */
export function rowDescription (fields: FieldDescription[]): Buffer {
  const w = new Writer().int16(fields.length)
  for (const f of fields) w.cstring(f.name).uint32(f.tableOid).int16(f.column).uint32(f.typeOid).int16(f.typeSize).int32(f.typeMod).int16(f.format)
  return w.frame(BackendCode.RowDescription)
}

/** DataRow ('D'): every length and the message length computed afresh; null for SQL NULL. */
export function dataRow (values: Array<Buffer | null>): Buffer {
  let size = 2
  for (const v of values) size += 4 + (v === null ? 0 : v.length)
  const w = new Writer(size + 5).int16(values.length)
  for (const v of values) {
    if (v === null) w.int32(-1)
    else w.int32(v.length).bytes(v)
  }
  return w.frame(BackendCode.DataRow)
}

/** CommandComplete ('C'). */
export function commandComplete (tag: string): Buffer {
  return new Writer().cstring(tag).frame(BackendCode.CommandComplete)
}

/** EmptyQueryResponse ('I'), the answer to an empty query string. */
export function emptyQueryResponse (): Buffer {
  return new Writer(8).frame(BackendCode.EmptyQueryResponse)
}

/**
 * NegotiateProtocolVersion ('v'): the newest minor version the gateway supports for the
 * major version the client asked for, and the `_pq_.` options it did not recognize.
 */
export function negotiateProtocolVersion (minor: number, unrecognized: string[]): Buffer {
  if (!Number.isInteger(minor) || minor < 0 || minor > 0xffff) throw new TypeError(`invalid minor version ${minor}`)
  const w = new Writer().int32((3 << 16) | minor).int32(unrecognized.length)
  for (const option of unrecognized) w.cstring(option)
  return w.frame(BackendCode.NegotiateProtocolVersion)
}
