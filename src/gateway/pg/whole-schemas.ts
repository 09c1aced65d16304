import { isObj } from './from-scope.js'
import type { Walk } from './walk.js'

/**
 * DROP SCHEMA and ALTER SCHEMA … RENAME act on every table in the schema: each counts as
 * `schema.*`, which the catalog answers with the schema's relations (`Catalog.behind`), so a
 * `tables` rule on them holds (a schema renamed would take its tables out of reach of
 * `app.*` and `app.secret`). `names`: the statement's String nodes, or a name.
 */
export function wholeSchemas (names: unknown, w: Walk): void {
  for (const n of Array.isArray(names) ? names : [names]) {
    const name = isObj(n) && isObj(n.String) ? n.String.sval : n
    if (typeof name === 'string') w.addTable(`${name}.*`)
  }
}
