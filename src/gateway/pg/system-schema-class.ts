import { firstKnown, type Catalog } from './catalog.js'
import type { Classification } from './classify.js'

/**
 * The class of a statement that may create or change an object of a system schema without
 * naming that schema: admin, as one naming it is (see `systemSchema`). It creates an object
 * unqualified where search_path may name a system schema (`searchesSystem`: the session's, or
 * the text's own), or changes one by a name pg_catalog holds (`ALTER FUNCTION upper(text)
 * RENAME TO upper_orig`, which finds the built-in first, so that a `public.upper` of the
 * agent's own then runs in every session). 'wait' until the catalog has read the names.
 */
export function systemSchemaClass (c: Classification | 'wait', searchesSystem: boolean, catalog: () => Catalog): Classification | 'wait' {
  if (c === 'wait') return c
  if (c.createsUnqualified === true && (searchesSystem || c.searchesSystem === true)) {
    return { ...c, class: 'admin', reason: 'creates an object by an unqualified name, and search_path was set to name pg_catalog or information_schema, where it may land' }
  }
  if (c.changesUnqualified === undefined || c.class === 'admin') return c
  const known = catalog()
  const builtIn = firstKnown(c.changesUnqualified, (n) => known.systemNamed(n))
  if (builtIn === 'wait') return builtIn
  if (builtIn === undefined) return c
  return { ...c, class: 'admin', reason: `changes ${builtIn.slice(0, 63)} by a name pg_catalog holds, which is found first; name its schema` }
}
