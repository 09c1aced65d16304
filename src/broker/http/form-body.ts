import type { IncomingMessage } from 'node:http'
import { InvalidRequest, PayloadTooLarge } from '../../errors.js'
import type { Form } from '../form-params.js'

/** Largest form body accepted: room for a few maximal tokens, far below what could hurt. */
export const maxFormBytes = 256 * 1024
const maxParameters = 64
/**
 * Charsets whose ASCII is UTF-8's, byte for byte. RFC 6749 Appendix B makes the form UTF-8, yet
 * clients label it otherwise (Apache HttpClient's form entity says ISO-8859-1 by default): such a
 * form reads the same as long as all its text, escapes included, is ASCII, as tokens, client
 * credentials and scopes are.
 */
const asciiCompatible = new Set(['us-ascii', 'ascii', 'iso-8859-1', 'iso_8859-1', 'latin1'])
const beyondAscii = /[^\x00-\x7f]|%[89a-f][0-9a-f]/i

/**
 * Reads an `application/x-www-form-urlencoded` body (RFC 6749 §3.2) into a `Form`: repeated
 * names become arrays. Written against node:http directly because the token endpoint is the
 * broker's hot path and a framework's body parser costs more than the parse itself.
 * @throws InvalidRequest (wrong content type or charset, too many parameters, a body cut short), PayloadTooLarge
 */
export async function readForm (req: IncomingMessage): Promise<Form> {
  const type = req.headers['content-type'] ?? ''
  const [mime, ...params] = type.split(';').map((s) => s.trim().toLowerCase())
  if (mime !== 'application/x-www-form-urlencoded') throw new InvalidRequest('the body must be application/x-www-form-urlencoded')
  const charset = params.find((p) => p.startsWith('charset='))?.slice(8).replace(/"/g, '')
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8' && !asciiCompatible.has(charset)) throw new InvalidRequest(`unsupported charset ${charset.slice(0, 40)}`)
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > maxFormBytes) throw new PayloadTooLarge()

  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > maxFormBytes) throw new PayloadTooLarge()
      chunks.push(chunk)
    }
  } catch (err) {
    if (err instanceof PayloadTooLarge) throw err
    // The stream fails only when the client hangs up before its body is in ('aborted'): the
    // client's doing, answered as a malformed request (as the JSON parser does), not a server failure.
    throw new InvalidRequest('the request body ended before it was complete', 'ERR_REQUEST_ABORTED')
  }
  const body = Buffer.concat(chunks, size)
  if (charset !== undefined && asciiCompatible.has(charset) && beyondAscii.test(body.toString('latin1'))) {
    throw new InvalidRequest(`a form labelled ${charset} is read only while all its text is ASCII; send it as UTF-8`)
  }
  // No prototype: a parameter named __proto__ or constructor is a name like any other, never
  // Object.prototype's (`form[k]` of such a name was that object's member, and assigning it set the prototype).
  const form: Form = Object.create(null) as Form
  let n = 0
  for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
    if (++n > maxParameters) throw new InvalidRequest('too many parameters')
    const seen = form[k]
    form[k] = seen === undefined ? v : Array.isArray(seen) ? [...seen, v] : [seen, v]
  }
  return form
}
