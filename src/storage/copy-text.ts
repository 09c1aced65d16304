/**
 * Rows in PostgreSQL's COPY text format (the default of `COPY … FROM STDIN`): columns split
 * by tab, rows ended by newline, `\N` for NULL, and backslash, tab, newline and carriage
 * return escaped with a backslash. Arrays are array literals with every element quoted; each
 * array is encoded once and remembered by identity, so an array must not change once passed.
 */
export type CopyValue = string | number | null | string[]

const special = /[\\\t\n\r]/
const escapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }

function field (s: string): string {
  return special.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => escapes[c]) : s
}

const quoted = /["\\]/

/** An array literal (`{"a","b"}`): each element quoted, its `"` and `\` escaped for the array parser. */
function arrayLiteral (a: string[]): string {
  let out = '{'
  for (let i = 0; i < a.length; i++) {
    const e = a[i]
    out += `${i === 0 ? '' : ','}"${quoted.test(e) ? e.replace(/["\\]/g, '\\$&') : e}"`
  }
  return out + '}'
}

// Audit rows repeat the same few arrays (a session's principals and actors).
const literals = new WeakMap<string[], string>()

/** An array column's COPY text. */
function arrayField (a: string[]): string {
  let text = literals.get(a)
  if (text === undefined) literals.set(a, text = field(arrayLiteral(a)))
  return text
}

/** One row of COPY text, newline included. */
export function copyRow (values: CopyValue[]): string {
  let out = ''
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (i > 0) out += '\t'
    out += v === null ? '\\N' : typeof v === 'number' ? String(v) : Array.isArray(v) ? arrayField(v) : field(v)
  }
  return out + '\n'
}
