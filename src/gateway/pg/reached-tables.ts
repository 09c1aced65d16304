import type { Catalog } from './catalog.js'
import type { Classification } from './classify.js'
import { routineTables } from './routine-reads.js'

/** How many rounds of function definitions are read, one level of calls each (as `readRoutineTables`). */
const maxRounds = 9

/**
 * The tables a `tables` rule judges a statement by: those it names, then those the bodies of
 * the user-defined functions it calls read (`SELECT vault_keys()` reads the vault as much as
 * `SELECT * FROM vault` does); 'wait' until the catalog has the functions' definitions. A body
 * the gateway cannot read adds nothing. The same array for the same answer, so the catalog's
 * answer for it is found again.
 */
export function reachedTables (c: Classification, catalog: Catalog): readonly string[] | 'wait' {
  if (c.functions === undefined || c.functions.length === 0) return c.tables
  const read = routineTables(c.functions, catalog)
  if ('wait' in read) return 'wait'
  const called = read.tables.filter((t) => !c.tables.includes(t))
  return called.length === 0 ? c.tables : [...c.tables, ...called]
}

/** Reads from the catalog what `reachedTables` needs, then the relations behind those tables (`Catalog.behind`). */
export async function readReachedTables (c: Classification, catalog: Catalog): Promise<void> {
  let tables = reachedTables(c, catalog)
  for (let i = 0; i < maxRounds && tables === 'wait'; i++) {
    const read = routineTables(c.functions ?? [], catalog)
    if ('wait' in read) await catalog.readRoutines(read.wait)
    tables = reachedTables(c, catalog)
  }
  if (tables !== 'wait' && tables.length > 0 && catalog.behind(tables) === undefined) await catalog.readBehind(tables)
}
