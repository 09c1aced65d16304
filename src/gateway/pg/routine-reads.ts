import type { Catalog } from './catalog.js'
import { classify } from './classify.js'
import { maskFor, type MaskRule } from './mask.js'

/** Languages whose bodies the gateway reads (`functionBody`); C and internal functions are the server's or an extension's own code. */
const readable = new Set(['sql', 'plpgsql'])
const ownCode = new Set(['c', 'internal'])

/** How deep calls are followed from body to body; a chain deeper than this counts as unreadable. */
const maxDepth = 8

/**
 * The tables the bodies of the user-defined functions a statement calls read (`functions`:
 * their names), and of the functions those call in turn, or the first function whose body is
 * in a language the gateway cannot read or builds its SQL at run time; 'wait' with the names
 * whose definitions the catalog has yet to read.
 */
export function routineTables (functions: readonly string[], catalog: Catalog): { tables: string[], unreadable?: string } | { wait: string[] } {
  const tables = new Set<string>()
  const seen = new Set<string>()
  let level = [...new Set(functions)]
  for (let depth = 0; level.length > 0; depth++) {
    const missing = level.filter((n) => catalog.routinesNamed(n) === undefined)
    if (missing.length > 0) return { wait: missing }
    const next: string[] = []
    for (const name of level) {
      seen.add(name)
      for (const d of catalog.routinesNamed(name) ?? []) {
        if (ownCode.has(d.language)) continue
        if (!readable.has(d.language)) return { tables: [...tables], unreadable: `${name} (in ${d.language})` }
        if (depth >= maxDepth) return { tables: [...tables], unreadable: `${name} (calls nested too deep to follow)` }
        const c = classify(d.definition)
        // SQL text built at run time (PL/pgSQL's EXECUTE) may read any table.
        if (c.reason !== undefined && /built at run time|cannot read/.test(c.reason)) return { tables: [...tables], unreadable: name }
        for (const t of c.tables) tables.add(t)
        for (const f of c.functions ?? []) if (!seen.has(f)) next.push(f)
      }
    }
    level = [...new Set(next)].filter((n) => !seen.has(n))
  }
  return { tables: [...tables] }
}

/**
 * Why masking cannot hold for a statement that calls user-defined functions, or undefined;
 * 'wait' until the catalog has their definitions and their tables' columns. What a function
 * returns is of no table (`SELECT * FROM customer_rows()`), so a masked column its body reads
 * would reach the client unmasked, whoever made the function.
 */
export function routineMasks (rules: readonly MaskRule[], functions: readonly string[], catalog: Catalog): string | 'wait' | undefined {
  const read = routineTables(functions, catalog)
  if ('wait' in read) return 'wait'
  if (read.unreadable !== undefined) return `it calls ${read.unreadable}, whose body the gateway cannot read, where columns are masked`
  if (read.tables.length === 0) return undefined
  const columns = catalog.columnsOf(read.tables)
  if (columns === undefined) return 'wait'
  const masked = columns.find((c) => maskFor(rules, c) !== undefined)
  if (masked === undefined) return undefined
  return `${masked.table}.${masked.column} is masked, and this statement calls a function that reads ${masked.table}: what a function returns is of no table, where masking cannot see it`
}

/** Reads from the catalog what `routineMasks` needs: the functions' definitions, those of the functions they call, then the columns of the tables their bodies read. */
export async function readRoutineTables (functions: readonly string[], catalog: Catalog): Promise<void> {
  let read = routineTables(functions, catalog)
  for (let i = 0; i <= maxDepth && 'wait' in read; i++) {
    await catalog.readRoutines(read.wait)
    read = routineTables(functions, catalog)
  }
  if (!('wait' in read) && read.tables.length > 0 && catalog.columnsOf(read.tables) === undefined) await catalog.readColumns(read.tables)
}
