import type { Catalog } from './catalog.js'
import { maskFor, type ColumnName, type MaskRule } from './mask.js'

/**
 * The relations behind a statement's tables whose columns masking must look at besides the
 * named ones' (`named`: their columns, from the catalog): the others behind them, and any
 * named one also reached through a view. Undefined until the catalog has read what is behind.
 */
export function behindToCheck (tables: readonly string[], named: readonly ColumnName[], catalog: Catalog): string[] | undefined {
  const all = catalog.behind(tables)
  const viewed = catalog.throughViews(tables)
  if (all === undefined || viewed === undefined) return undefined
  const direct = new Set(named.map((c) => `${c.schema}.${c.table}`))
  return all.filter((r) => !direct.has(r) || viewed.relations.includes(r))
}

/**
 * Why masking cannot hold for a statement by what lies behind the relations it names, or
 * undefined; 'wait' until the catalog has read it. PostgreSQL reports a result column as the
 * relation's it was read from: a view's or a materialized view's column as the view's, whatever
 * column of whatever table it shows (`CREATE VIEW contacts AS SELECT email AS contact FROM
 * customers`), a parent's as the parent's, its children's rows too. A mask rule names the table
 * and column it masks, so a masked column a view reads would pass unmasked, and one of a
 * parent or child passes unless the named relation's column of that name is masked too
 * (inherited columns keep their names). Columns by name: a view that reads a column of that
 * name of any table behind it counts as reading the masked one.
 */
export function behindMasks (rules: readonly MaskRule[], tables: readonly string[], named: readonly ColumnName[], catalog: Catalog): string | 'wait' | undefined {
  const others = behindToCheck(tables, named, catalog)
  if (others === undefined) return 'wait'
  if (others.length === 0) return undefined
  const columns = catalog.columnsOf(others)
  if (columns === undefined) return 'wait'
  const viewed = catalog.throughViews(tables)
  const through = new Set(viewed?.relations)
  const maskedHere = new Set(named.filter((c) => maskFor(rules, c) !== undefined).map((c) => c.column))
  for (const c of columns) {
    if (maskFor(rules, c) === undefined) continue
    // A view that never reads the column cannot show it; one that reads it anywhere (a WHERE too) counts.
    if (through.has(`${c.schema}.${c.table}`) && (viewed?.columns === 'all' || viewed?.columns.has(c.column) === true)) return `${c.table}.${c.column} is masked, and this statement reads ${c.table} through a view, whose columns PostgreSQL reports as the view's own, where masking cannot see them; select from ${c.table}`
    if (!through.has(`${c.schema}.${c.table}`) && !maskedHere.has(c.column)) return `${c.table}.${c.column} is masked, and this statement reads ${c.table} as an inheritance parent or child of a table it names, whose column of that name no rule masks; name ${c.table}, or mask the column of every table in the hierarchy`
  }
  return undefined
}
