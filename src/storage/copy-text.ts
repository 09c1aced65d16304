/**
 * Rows in PostgreSQL's COPY text format (the default of `COPY … FROM STDIN`): columns split
 * by tab, rows ended by newline, `\N` for NULL, and backslash, tab, newline and carriage
 * return escaped with a backslash. Arrays are array literals with every element quoted.
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

// Audit rows repeat the same few arrays (a session's principals and actors): each is encoded
// once, and the encoding is reused while the array still holds the same elements.
const literals = new WeakMap<string[], { items: string[], text: string }>()

/** An array column's COPY text. */
function arrayField (a: string[]): string {
  const kept = literals.get(a)
  if (kept !== undefined && kept.items.length === a.length && kept.items.every((x, i) => x === a[i])) return kept.text
  const text = field(arrayLiteral(a))
  literals.set(a, { items: a.slice(), text })
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
