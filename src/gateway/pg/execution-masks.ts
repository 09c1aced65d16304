import type { KeyObject } from 'node:crypto'
import type { Catalog } from './catalog.js'
import { maskFor, maskValue, type MaskRule } from './mask.js'
import { dataRow, parseDataRow } from './protocol/backend.js'
import type { Execution, Pending } from './pending.js'

// How the mask rules of an execution apply to what the upstream answers it: its rows, and the
// errors that may quote them. `Responses` knows which execution an answer belongs to.

/** Works out which result columns of `e` are masked, reading the catalog when needed. */
export async function resolveMask (e: Execution, catalog: Catalog): Promise<void> {
  // Only the description that came with this execution: one from earlier may be of another
  // query since (SQL DEALLOCATE and PREPARE, CLOSE and DECLARE, a changed search_path).
  const fields = e.fields
  if (fields === undefined) {
    // Fail closed: rows whose columns cannot be named are not shown.
    throw new Error('result columns unknown')
  }
  const names = await catalog.resolve(fields)
  e.mask = fields.map((x) => {
    const n = x.tableOid === 0 ? undefined : names(x.tableOid, x.column)
    return n === undefined ? undefined : maskFor(e.rules, n)
  })
}

/** The DataRow `body` with `e`'s masked columns rewritten (`e.mask` resolved, some column masked). */
export function maskedRow (e: Execution, body: Buffer, key: KeyObject): Buffer {
  const values = parseDataRow(body)
  const fields = e.fields ?? []
  const masks = e.mask ?? []
  return dataRow(values.map((v, i) => {
    const m = masks[i]
    // A portal's description (unlike a statement's) carries the result formats its Bind asked for.
    return m === undefined ? v : maskValue(m, v, fields[i]?.format ?? 0, fields[i]?.typeOid ?? 0, key)
  }))
}

/**
 * Whether an error from the upstream may quote a masked column. A constraint's detail quotes
 * the row (`Failing row contains (…)`, `Key (email)=(…)`), masked columns too, also of a table
 * the statement does not name (a cascade, a check deferred to COMMIT). One that answers no
 * execution (`head`, a deferred check failing at Sync's commit) is judged by `lastRules`, the
 * mask rules of the statement sent last, and by its table alone. One that answers a Parse or a
 * Bind reads no row: it quotes the text or a parameter the client sent itself (`invalid input
 * syntax for type integer: "abc"`).
 */
export function mayQuoteMasked (head: Pending | undefined, lastRules: readonly MaskRule[], fields: Record<string, string>, catalog: Catalog): boolean {
  const rules = head?.type === 'exec' ? head.rules : lastRules
  return rules.length > 0 && ((head?.type === 'exec' && head.quotesMasked === true) || (head?.type !== 'exec' && head?.type !== 'step' && fields.t === undefined) || (fields.t !== undefined && !unmasked(rules, fields.t, catalog)))
}

/** Whether the catalog, from memory, shows that `table` (an error's table field) has no masked column. */
function unmasked (rules: readonly MaskRule[], table: string, catalog: Catalog): boolean {
  const columns = catalog.columnsOf([table])
  return columns !== undefined && !columns.some((c) => maskFor(rules, c) !== undefined)
}
