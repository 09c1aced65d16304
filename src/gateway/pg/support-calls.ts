import { isObj, names } from './from-scope.js'

/**
 * Functions a statement names for PostgreSQL to call later where the calling text shows no call:
 * an operator's, an aggregate's, a range type's, a base type's, an operator class's support
 * functions (`CREATE OPERATOR ### (FUNCTION = email_of, …)`, then `SELECT ### 1`). What they
 * return is of no table, so the gateway judges them when they are named, as a call of each
 * (`routineMasks`): where columns are masked, one whose body reads a masked table is refused.
 * Casts are left out: CREATE CAST is admin.
 */

/** Options whose value is a function, as CREATE AGGREGATE, OPERATOR, TYPE and range types and ALTER OPERATOR and TYPE … SET give them. */
const functionOptions = new Set(['sfunc', 'finalfunc', 'combinefunc', 'serialfunc', 'deserialfunc', 'msfunc', 'minvfunc', 'mfinalfunc',
  'function', 'procedure', 'restrict', 'join', 'canonical', 'subtype_diff', 'input', 'output', 'receive', 'send', 'typmod_in', 'typmod_out', 'analyze', 'subscript'])

const optionsField: Record<string, string> = { DefineStmt: 'definition', AlterOperatorStmt: 'options', AlterTypeStmt: 'options', CreateRangeStmt: 'params' }

/** The support functions (last name part, lower-cased as the parser folds them) a top-level parsed statement names. */
export function supportCalls (stmt: unknown): string[] {
  if (!isObj(stmt)) return []
  const kind = Object.keys(stmt)[0] ?? ''
  const body = stmt[kind]
  if (!isObj(body)) return []
  const found: string[] = []
  const field = optionsField[kind]
  if (field !== undefined) {
    for (const o of Array.isArray(body[field]) ? body[field] : []) {
      const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined
      const fn = isObj(d?.arg) && isObj(d.arg.TypeName) && functionOptions.has(String(d.defname)) ? names(d.arg.TypeName.names).at(-1) : undefined
      if (fn !== undefined) found.push(fn)
    }
  } else if (kind === 'CreateOpClassStmt' || kind === 'AlterOpFamilyStmt') {
    for (const i of Array.isArray(body.items) ? body.items : []) {
      const item = isObj(i) && isObj(i.CreateOpClassItem) ? i.CreateOpClassItem : undefined
      // Item type 2 is a support function (1 an operator, whose own function was judged when it was made).
      const fn = item?.itemtype === 2 && isObj(item.name) ? names(item.name.objname).at(-1) : undefined
      if (fn !== undefined) found.push(fn)
    }
  }
  return found
}
