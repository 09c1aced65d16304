import { functionBody } from './function-body.js'
import { isObj, type Obj } from './from-scope.js'
import { admin, ddl, type Rule } from './ranks.js'
import { namesSystemSchema } from './system-schema.js'
import type { Walk } from './walk.js'

/**
 * Rules for statements that define functions, or name functions that other statements then call
 * where their text shows no call (an aggregate's, an operator's, an operator class's support
 * function): what such a function may do counts when it is defined.
 */

/** Records that a statement names the function whose qualified name parts are `names` (the last part is its name). */
export function namesFunction (names: unknown[], w: Walk): void {
  const last = names[names.length - 1]
  if (isObj(last) && isObj(last.String)) w.defines(String(last.String.sval))
}

/**
 * CREATE FUNCTION or PROCEDURE: DDL, and admin when its body does what only an admin may, or
 * cannot be read (see `functionBody`). The body runs with the caller's privileges whenever it
 * is called, from a statement that shows none of it.
 */
export function createFunction (body: Obj, w: Walk): undefined {
  w.raise(ddl)
  w.routineBody = true
  const statement = (): string => {
    const bytes = Buffer.from(w.source)
    const [at, len] = w.span
    return bytes.subarray(at, len === 0 ? bytes.length : at + len).toString()
  }
  const found = functionBody(body, statement)
  if (found === undefined) return undefined
  if ('unreadable' in found) {
    w.raise(admin, found.unreadable)
    return undefined
  }
  // Its own `SET search_path` holds while it runs: what its body creates unqualified lands in the first schema named.
  const setsSystemPath = (Array.isArray(body.options) ? body.options : []).some((o) => {
    const set = isObj(o) && isObj(o.DefElem) && isObj(o.DefElem.arg) ? o.DefElem.arg.VariableSetStmt : undefined
    return isObj(set) && String(set.name).toLowerCase() === 'search_path' && namesSystemSchema(set.args)
  })
  for (const text of found.texts) {
    const c = w.classifyText(text)
    if (c.class === 'admin') w.raise(admin, `its body ${c.reason ?? 'is admin'}`)
    // A call would change its caller's search_path from a statement that shows none of it.
    else if (c.searchesSystem === true) w.raise(admin, 'its body makes search_path name pg_catalog or information_schema')
    else if (c.createsUnqualified === true && setsSystemPath) w.raise(admin, 'its body creates an object unqualified under a search_path that names pg_catalog or information_schema')
    // Whatever the session that calls it has prepared under that name.
    else if (c.executes !== undefined) w.raise(admin, `its body runs prepared statement ${c.executes[0].slice(0, 63)}`)
    // It would give a name contents the session's gateway never saw.
    else if (c.prepares !== undefined) w.raise(admin, `its body prepares statement ${c.prepares[0].slice(0, 63)}`)
    // A call would LISTEN from a statement that shows none of it.
    if (c.listens === true) w.listens = true
    // A call would define an operator, function or operator class or domain check a comparison, index, sort or check of a masked column may then call.
    w.shadowsComparison ??= c.shadowsComparison
    if (c.definesIndexCode === true) w.definesIndexCode = true
    if (c.checksDomainValues === true) w.checksDomainValues = true
    // What it reads counts as read by the CREATE: a call's result shows no table, for policy or masks to see.
    for (const t of c.tables) w.addTable(t)
    // And what it calls, for a caller to follow (`routineTables`).
    for (const f of c.functions ?? []) w.functions.add(f)
  }
  return undefined
}

/**
 * CREATE AGGREGATE, OPERATOR, TYPE… (`definition`) and ALTER OPERATOR or TYPE … SET (`options`):
 * DDL, and admin when it names a function only an admin may call. Functions are named as
 * type names are (`SFUNC = pg_catalog.set_config`); `SELECT agg('pg_monitor', false)` or
 * `SELECT !!! 42` would then call it under a name no list knows, and an aggregate is immutable
 * to the catalog.
 */
export function definesWith (field: string): Rule {
  return (body, w) => {
    w.raise(ddl)
    for (const o of Array.isArray(body[field]) ? body[field] : []) {
      const arg = isObj(o) && isObj(o.DefElem) && isObj(o.DefElem.arg) ? o.DefElem.arg : undefined
      namesFunction(isObj(arg) && isObj(arg.TypeName) && Array.isArray(arg.TypeName.names) ? arg.TypeName.names : [], w)
    }
    return undefined
  }
}

/**
 * CREATE OPERATOR CLASS and ALTER OPERATOR FAMILY … ADD: DDL, and admin when a support function
 * (`FUNCTION 1 lo_export(oid, text)`) is one only an admin may call: an index scan, a sort or a
 * hash of the type then calls it where the text shows a comparison. (PostgreSQL lets only a
 * superuser run these, which a target's role may be.)
 */
export function supportFunctions (body: Obj, w: Walk): undefined {
  w.raise(ddl)
  for (const i of Array.isArray(body.items) ? body.items : []) {
    const item = isObj(i) && isObj(i.CreateOpClassItem) ? i.CreateOpClassItem : {}
    namesFunction(item.itemtype === 2 && isObj(item.name) && Array.isArray(item.name.objname) ? item.name.objname : [], w)
  }
  return undefined
}
