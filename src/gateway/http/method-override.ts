import type { IncomingHttpHeaders } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import { BadRequest } from './request-target.js'
import type { Policy } from '../policy.js'

/**
 * Whether a method override could change what `policy` decides: only a rule that names methods
 * tells a POST from the DELETE, PUT or PATCH it could be turned into (all are `write`).
 */
export function judgesMethods (policy: Policy): boolean {
  return policy.rules.some((r) => r.methods !== undefined)
}

// Charsets in which `_method` is written as in ASCII; the scan reads the bytes as Latin-1.
const asciiCharsets = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii', 'iso-8859-1', 'latin1'])

/**
 * Why a POST's body could hold a method override the scan cannot see, if it could: a content
 * coding (Express's body-parser inflates gzip, deflate and br before it reads the form or JSON),
 * or a charset other than ASCII's (body-parser decodes a JSON body in UTF-16 or UTF-7, where
 * `_method` may be `+AF8-method`).
 */
export function unscannable (headers: IncomingHttpHeaders): BadRequest | undefined {
  const coding = headers['content-encoding']
  if (coding !== undefined && coding.split(',').some((c) => !['', 'identity'].includes(c.trim().toLowerCase()))) {
    return new BadRequest(`a POST body in Content-Encoding ${coding.slice(0, 100)} is refused: the gateway could not see a _method field in it`)
  }
  for (const m of (headers['content-type'] ?? '').matchAll(/;\s*charset\s*=\s*"?([^";\s]*)/gi)) {
    if (!asciiCharsets.has(m[1].toLowerCase())) return new BadRequest(`a POST body in charset ${m[1].slice(0, 100)} is refused: the gateway could not see a _method field in it`)
  }
  return undefined
}

const field = '_method'
// The name as the upstream may read it: PHP makes a `.` in a field name `_` (`.method` is
// `$_POST['_method']`, which Symfony and Laravel read, from a form or a multipart body). A
// `.method` after a name's character (`req.method` in an uploaded script) starts no name.
const named = /_method|(?<![0-9A-Za-z_$)\]])\.method/
// Each of the field's characters may come escaped: `%5F` in a form, `\u005f` in JSON, 6 bytes
// at most, after a backslash.
const carried = field.length * 7
const escape = /%([0-9A-Fa-f]{2})|\\u00([0-9A-Fa-f]{2})/g
// Bytes no reader takes for a character of a name. PHP joins a multipart header's line that holds
// no `:` to the line before, with nothing between: `name="_met` and `hod"` on two lines name
// `_method`. Rack decodes a text part's name in ISO-2022-JP to UTF-8, where an escape sequence
// (ESC ( B, to ASCII) is no character; any number of them may come between two characters.
// `withoutUnread` drops them; text without any of these bytes holds none.
const unread = /[\r\n\x1b]/
// An escape sequence the chunk ends inside, carried whole into the next.
const unfinished = /\x1b[\x20-\x2f]{0,3}$/

/**
 * `text` (Latin-1) without the bytes no reader takes for a character of a name: line ends, and
 * escape sequences (ESC, up to three of 0x20–0x2f, one of 0x30–0x7e) until none is left, as one
 * dropped from between the bytes of another (a line end, a sequence) leaves that one whole. In
 * one pass, each sequence dropped as its last byte comes: the same for a body whole as for one
 * read in pieces, whatever the pieces.
 */
function withoutUnread (text: string): string {
  if (!unread.test(text)) return text
  const kept = Buffer.allocUnsafe(text.length)
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x0a || c === 0x0d) continue
    kept[n++] = c
    if (c < 0x30 || c > 0x7e) continue
    let at = n - 2
    while (at >= n - 5 && at >= 0 && (kept[at] as number) >= 0x20 && (kept[at] as number) <= 0x2f) at--
    if (at >= n - 5 && at >= 0 && kept[at] === 0x1b) n = at
  }
  return kept.toString('latin1', 0, n)
}

/**
 * A pass-through for the body of a POST that fails with `BadRequest` once the body holds a
 * `_method` field. Rack's MethodOverride (in every Rails application), Symfony and Laravel (a
 * form's field, in Laravel a JSON body's too) and Express's method-override set to `_method` run
 * a POST as the method that field names: the policy would judge a POST and the upstream run a
 * DELETE. The body streams on as it is read; a refusal ends the upstream exchange before the body
 * is whole, and these frameworks read the whole body before they act.
 *
 * The test is a plain search of the bytes, line ends and ISO 2022 escape sequences dropped,
 * `%XX` and `\u00XX` escapes read and backslashes then dropped, for `_method` (or `.method`
 * where a name could start) anywhere: in a field name, a multipart part's `name="_method"`, or
 * (a refusal the operator can explain) a value or an uploaded file that holds the word. It looks
 * for no field syntax, so no reading of a form that differs from the upstream's can hide the
 * field from it.
 */
export function methodOverrideScanner (): Transform {
  let tail = ''
  return new Transform({
    transform (chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      const text = withoutUnread(tail + chunk.toString('latin1'))
      if (holdsName(text)) {
        done(overrideRefused())
        return
      }
      const open = unfinished.exec(text)?.[0] ?? ''
      tail = text.slice(0, text.length - open.length).slice(-carried) + open
      done(null, chunk)
    }
  })
}

/** Whether `text` (a body's bytes as Latin-1, line ends and escape sequences dropped) names the field, its escapes read. */
function holdsName (text: string): boolean {
  const read = text.includes('%') || text.includes('\\u')
    ? text.replace(escape, (_m, form: string | undefined, json: string | undefined) => String.fromCharCode(Number.parseInt(form ?? json ?? '', 16)))
    : text
  // Rack reads a backslash in a multipart part's quoted name as escaping the next character: `"_\method"` is `_method`.
  return named.test(read.includes('\\') ? read.replaceAll('\\', '') : read)
}

function overrideRefused (): BadRequest {
  return new BadRequest('a _method field in the body is refused: the upstream would run another method than the one checked')
}

/** The search of `methodOverrideScanner` over a body held whole: the refusal, when it holds a method override. */
export function methodOverrideIn (body: Buffer): BadRequest | undefined {
  return holdsName(withoutUnread(body.toString('latin1'))) ? overrideRefused() : undefined
}
