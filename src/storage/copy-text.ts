/**
 * Rows in PostgreSQL's COPY text format (the default of `COPY … FROM STDIN`): columns split
 * by tab, rows ended by newline, `\N` for NULL, and backslash, tab, newline and carriage
 * return escaped with a backslash.
 */
export type CopyValue = string | number | null

const special = /[\\\t\n\r]/
const escapes: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }

function field (s: string): string {
  return special.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => escapes[c]) : s
}

/** One row of COPY text, newline included. */
export function copyRow (values: CopyValue[]): string {
  let out = ''
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (i > 0) out += '\t'
    out += v === null ? '\\N' : typeof v === 'number' ? String(v) : field(v)
  }
  return out + '\n'
}
