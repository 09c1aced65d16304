import { comparedCalls, comparisons } from './exposure.js'
import { isObj, names } from './from-scope.js'

/**
 * Masking lets a masked column be compared (`email = $1`, `email LIKE $1`, `lower(email) = $1`)
 * because PostgreSQL's own operators and functions return a truth, never the value. But an
 * operator or function is found by its name and argument types: one of the same name in any
 * schema is called instead where the search path names its schema first (`SET search_path =
 * public, pg_catalog`), or where its argument types match better (`=(text, int)`, which
 * pg_catalog lacks, for `email = 1`). Its body then gets the value unmasked and may copy it
 * anywhere. So where columns are masked, defining an operator, function or aggregate by such
 * a name, or renaming a function to one, is refused: the comparison would call it.
 */

/** Renames of routines, which an aggregate is too. (BETWEEN runs `>=` and `<=`, IN and IS DISTINCT FROM `=`: all in `comparisons`.) */
const routineRenames = new Set(['OBJECT_FUNCTION', 'OBJECT_PROCEDURE', 'OBJECT_ROUTINE', 'OBJECT_AGGREGATE'])

/** The name of a comparison's operator or function a top-level parsed statement defines, or undefined. */
export function shadowedComparison (stmt: unknown): string | undefined {
  if (!isObj(stmt)) return undefined
  const kind = Object.keys(stmt)[0] ?? ''
  const b = stmt[kind]
  if (!isObj(b)) return undefined
  let name: string | undefined
  let isOperator = false
  if (kind === 'DefineStmt' && (b.kind === 'OBJECT_OPERATOR' || b.kind === 'OBJECT_AGGREGATE')) {
    name = names(b.defnames).at(-1)
    isOperator = b.kind === 'OBJECT_OPERATOR'
  } else if (kind === 'CreateFunctionStmt') name = names(b.funcname).at(-1)
  else if (kind === 'RenameStmt' && routineRenames.has(String(b.renameType)) && typeof b.newname === 'string') name = b.newname
  if (name === undefined) return undefined
  return (isOperator ? comparisons.has(name) : comparedCalls.has(name)) ? name : undefined
}
