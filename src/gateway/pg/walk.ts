import type { Classification } from './classify.js'
import { isObj, type Obj } from './from-scope.js'
import {
  activityRelations, configRelations, credentialRelations, cronFunctions, isAdminFunction, isWriteFunction, roleSettingRelations,
  secretSettings, settingColumns, settingViews, statisticsRelations
} from './known-names.js'
import { admin, ddl, foreignTableOptions, read, statementRules, variableSet, write } from './statement-rules.js'
import { createsUnqualified, lockedSystemRelation, systemSchema, unqualifiedExisting } from './system-schema.js'

interface Scope { names: string[], up: Scope | undefined }

/**
 * Calls that the grammar (PostgreSQL 18's) reads as SQL/JSON or MERGE syntax, by node kind, and
 * the function each is to PostgreSQL 15, where those names are no keywords: there
 * `json_value(a, b)` or `merge_action()` calls a function of that name, a user's, which may write.
 */
const syntaxCalls: Record<string, string | ((body: Obj) => string)> = {
  JsonFuncExpr: (body) => String(body.op).replace(/_OP$/, '').toLowerCase(),
  JsonScalarExpr: 'json_scalar', JsonSerializeExpr: 'json_serialize', JsonParseExpr: 'json',
  JsonArrayConstructor: 'json_array', JsonArrayQueryConstructor: 'json_array', JsonObjectConstructor: 'json_object',
  JsonArrayAgg: 'json_arrayagg', JsonObjectAgg: 'json_objectagg', MergeSupportFunc: 'merge_action'
}
interface Frame { v: unknown, scope: Scope | undefined, live: boolean }

/** One classification in progress; `live` is false under a plain EXPLAIN, whose statement is planned but never run. */
export class Walk {
  rank = read
  reason: string | undefined
  shapes = new Set<string>()
  tables = new Set<string>()
  functions = new Set<string>()
  copy: Classification['copy']
  renames: Classification['renames']
  cursor = false
  /** Set by LISTEN: notifications will arrive, their payloads as the notifying statement wrote them. */
  listens = false
  prepares = new Set<string>()
  executes = new Set<string>()
  /** See `Classification.searchesSystem` and `createsUnqualified`. */
  searchesSystem = false
  createsUnqualified = false
  /** Set when the text defines a routine's body: rows it reads reach a caller as the routine's result, of no table. */
  routineBody = false
  /** See `Classification.shadowsComparison`: also set by a routine's body, which a call runs. */
  shadowsComparison: string | undefined
  /** See `Classification.definesIndexCode`: also set by a routine's body. */
  definesIndexCode = false
  /** See `Classification.checksDomainValues`: also set by a routine's body. */
  checksDomainValues = false
  readonly changesUnqualified = new Set<string>()
  /** A routine's own settings (`CREATE FUNCTION … SET search_path = pg_catalog`): they hold only while it runs. */
  readonly routineSettings = new WeakSet<object>()
  /** The text being classified, and the byte offset and length of the statement walked (0: to the end). */
  source = ''
  span: [number, number] = [0, 0]
  private readonly stack: Frame[] = []
  /**
   * What could show settings from `settingViews` (see `finish`): the views named, each name a
   * row of one goes by (the view's, an alias's: its view; a join's: undefined), and field
   * selections `q.f` to judge once every name is known.
   */
  private readonly roleSettings = {
    views: new Set<string>(),
    names: new Map<string, string | undefined>(),
    renamed: false,
    star: false,
    column: false,
    rows: [] as string[],
    selections: [] as Array<[string, string]>
  }

  /** `classifyText`: classifies a text the statement carries (a function's body), uncached. */
  constructor (readonly classifyText: (sql: string) => Classification) {}

  raise (rank: number, reason?: string): void {
    if (rank > this.rank) this.rank = rank
    if (rank === admin && this.reason === undefined && reason !== undefined) this.reason = reason
  }

  /** Walks one statement iteratively, so no nesting depth can overflow the JavaScript stack. */
  statement (stmt: unknown): void {
    const kind = isObj(stmt) ? Object.keys(stmt)[0] : undefined
    if (kind === undefined || !Object.hasOwn(statementRules, kind)) this.raise(admin, `unknown statement kind ${kind ?? '(none)'}`)
    this.stack.push({ v: stmt, scope: undefined, live: true })
    for (let f = this.stack.pop(); f !== undefined; f = this.stack.pop()) {
      const mark = this.stack.length
      if (Array.isArray(f.v)) for (const item of f.v) this.stack.push({ v: item, scope: f.scope, live: f.live })
      else if (isObj(f.v)) this.object(f.v, f.scope, f.live)
      // Children were pushed in text order; reverse them so they are visited in it and the first reason is the first in the text.
      reverseFrom(this.stack, mark)
    }
  }

  /** Fields start lower-case; an upper-case key is a node kind wrapping its fields (`{ "SelectStmt": {…} }`). */
  private object (o: Obj, outer: Scope | undefined, live: boolean): void {
    const scope = isObj(o.withClause) ? this.withClause(o.withClause, outer, live) : outer
    for (const key in o) {
      const v = o[key]
      if (v === null || typeof v !== 'object' || key === 'withClause') continue
      const first = key.charCodeAt(0)
      if (first >= 65 && first <= 90) { this.node(key, v as Obj, scope, live); continue }
      if (key === 'lockingClause') {
        // FOR UPDATE/SHARE takes row locks; its `lockedRels` are FROM aliases, not relations.
        if (live && Array.isArray(v) && v.length > 0) this.raise(write)
        const locked = live ? lockedSystemRelation(o) : undefined
        if (locked !== undefined) this.raise(admin, `locks rows of system catalog ${locked}, which holds up DDL on what they describe for every session`)
        continue
      }
      if (key === 'intoClause' && live) this.raise(ddl) // SELECT … INTO creates a table
      if (key === 'funccall') this.func(v as Obj, live) // CALL's bare FuncCall
      // A bare RangeVar is a statement's own target (INSERT/UPDATE/DELETE/MERGE/COPY/INTO/DDL), which never resolves to a CTE.
      if (typeof (v as Obj).relname === 'string') this.table(v as Obj, undefined)
      this.stack.push({ v, scope, live })
    }
  }

  private node (kind: string, body: Obj, scope: Scope | undefined, live: boolean): void {
    if (kind === 'RangeVar') return this.table(body, scope)
    if (kind === 'A_Star') this.roleSettings.star = true
    if (kind === 'String' && typeof body.sval === 'string' && settingColumns.has(body.sval)) this.roleSettings.column = true
    if (kind === 'ColumnRef' && Array.isArray(body.fields) && body.fields.length === 1) {
      const f = body.fields[0]
      if (isObj(f) && isObj(f.String)) this.roleSettings.rows.push(String(f.String.sval))
    }
    // `r.row_to_json` is `row_to_json(r)` where the view has no column of that name: a whole row of `r`.
    if (kind === 'ColumnRef' && Array.isArray(body.fields) && body.fields.length >= 2) {
      const [q, f] = body.fields.slice(-2)
      if (isObj(q) && isObj(q.String) && isObj(f) && isObj(f.String)) this.roleSettings.selections.push([String(q.String.sval), String(f.String.sval)])
    }
    // A join's alias names the whole row of all its columns (`SELECT x FROM (pg_roles CROSS JOIN t) AS x`), or renames them by position.
    if (kind === 'JoinExpr' && isObj(body.alias)) {
      this.roleSettings.names.set(String(body.alias.aliasname), undefined)
      if (Array.isArray(body.alias.colnames) && body.alias.colnames.length > 0) this.roleSettings.renamed = true
    }
    if (kind === 'FuncCall') this.func(body, live)
    const syntax = Object.hasOwn(syntaxCalls, kind) ? syntaxCalls[kind] : undefined
    if (syntax !== undefined) this.call(typeof syntax === 'string' ? syntax : syntax(body), live)
    // PostgreSQL reads a field selection `(x).f` or `t.f` as the call `f(x)` when no field `f`
    // exists (functional notation): every selected name may be a function.
    if (kind === 'A_Indirection') for (const i of Array.isArray(body.indirection) ? body.indirection : []) this.fieldSelection(i, live)
    if (kind === 'ColumnRef' && Array.isArray(body.fields) && body.fields.length >= 2) this.fieldSelection(body.fields[body.fields.length - 1], live)
    let childrenLive = live
    if (kind.endsWith('Stmt')) {
      const rule = Object.hasOwn(statementRules, kind) ? statementRules[kind] : undefined
      if (rule === undefined) this.raise(admin, `unknown statement kind ${kind}`)
      else if (live) childrenLive = (typeof rule === 'number' ? this.raise(rule) : rule(body, this)) ?? true
      const schema = live ? systemSchema(kind, body) : undefined
      if (schema !== undefined) this.raise(admin, `creates or changes an object in ${schema}, which every session uses`)
      if (live && createsUnqualified(kind, body)) this.createsUnqualified = true
      if (live) for (const n of unqualifiedExisting(kind, body)) this.changesUnqualified.add(n)
      for (const o of [body.options, body.actions].flat()) {
        const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined
        if ((kind === 'CreateFunctionStmt' || kind === 'AlterFunctionStmt') && isObj(d?.arg) && isObj(d.arg.VariableSetStmt)) this.routineSettings.add(d.arg.VariableSetStmt)
      }
      // EXPLAIN only plans an EXECUTE, but evaluates its parameters first (`EXPLAIN EXECUTE p(nextval('s'))`): they run.
      if (kind === 'ExecuteStmt') childrenLive = true
    } else if (kind === 'AlterTableCmd' && live) {
      if (body.subtype === 'AT_ChangeOwner') this.raise(admin)
      if (body.subtype === 'AT_GenericOptions') this.raise(admin, foreignTableOptions)
      if (body.subtype === 'AT_DropColumn') this.shapes.add('drop')
    }
    this.stack.push({ v: body, scope, live: childrenLive })
  }

  /** CTE names shadow unqualified relations in the statement and, for RECURSIVE or later siblings, in CTE bodies. */
  private withClause (w: Obj, outer: Scope | undefined, live: boolean): Scope {
    const ctes = Array.isArray(w.ctes) ? w.ctes : []
    const names = ctes.map((c) => (isObj(c) && isObj(c.CommonTableExpr) ? String(c.CommonTableExpr.ctename) : ''))
    ctes.forEach((c, i) => {
      this.stack.push({ v: c, scope: { names: w.recursive === true ? names : names.slice(0, i), up: outer }, live })
    })
    return { names, up: outer }
  }

  /**
   * After the walk: a text that names `pg_roles`, `pg_user` or `pg_settings` is admin where it
   * may show a column of settings' values: by its name (in any position, a function's too:
   * `rolconfig(r)`), through `*`, a whole row (`row_to_json(r)`, `r.row_to_json`), or the view's
   * columns renamed by position. Names only, as the walk reads them: a `*` or a whole row
   * anywhere in the text counts.
   */
  finish (): void {
    const r = this.roleSettings
    if (r.views.size === 0) return
    const wholeRow = ([q, f]: [string, string]): boolean => {
      if (!r.names.has(q)) return false
      const view = r.names.get(q)
      // A join's alias: `f` may be a column of any view the text names.
      return ![...(view === undefined ? r.views : [view])].some((v) => settingViews.get(v)?.columns.has(f) === true)
    }
    if (!(r.column || r.star || r.renamed || r.rows.some((n) => r.names.has(n)) || r.selections.some(wholeRow))) return
    const view = [...r.views][0]
    const v = settingViews.get(view)
    this.raise(admin, `may read ${view}.${String(v?.secret[0])}, which holds ${String(v?.holds)}; select its other columns by name`)
  }

  addTable (name: string): void {
    this.tables.add(name)
    const rel = name.slice(name.lastIndexOf('.') + 1)
    if (statisticsRelations.has(rel)) this.raise(admin, `reads ${rel}, whose statistics sample the values of every table`)
    else if (activityRelations.has(rel)) this.raise(admin, `reads ${rel}, which shows other sessions' SQL text`)
    else if (credentialRelations.has(rel)) this.raise(admin, `reads ${rel}, which holds password hashes`)
    else if (configRelations.has(rel)) this.raise(admin, `reads ${rel}, the server's configuration files`)
    else if (roleSettingRelations.has(rel)) this.raise(admin, `reads ${rel}, which holds custom settings such as secrets`)
    else if (name.startsWith('pg_toast.') || rel.startsWith('pg_toast_')) this.raise(admin, `reads ${rel}, which holds other tables' long values`)
  }

  /** A statement that changes prepared statements or portals by name (undefined `names`: all of them). */
  rename (kind: 'statements' | 'portals', name: unknown): void {
    const r = this.renames ??= { statements: [], portals: [] }
    if (typeof name !== 'string') r[kind] = 'all'
    else if (r[kind] !== 'all') r[kind].push(name)
  }

  private table (rv: Obj, scope: Scope | undefined): void {
    const rel = String(rv.relname)
    if (settingViews.has(rel)) {
      const r = this.roleSettings
      r.views.add(rel)
      r.names.set(rel, rel)
      if (isObj(rv.alias)) {
        r.names.set(String(rv.alias.aliasname), rel)
        if (Array.isArray(rv.alias.colnames) && rv.alias.colnames.length > 0) r.renamed = true
      }
    }
    if (typeof rv.schemaname === 'string') return this.addTable(`${rv.schemaname}.${rel}`)
    for (let s = scope; s !== undefined; s = s.up) if (s.names.includes(rel)) return
    this.addTable(rel)
  }

  private func (call: Obj, live: boolean): void {
    const parts = Array.isArray(call.funcname) ? call.funcname : []
    const last = parts[parts.length - 1]
    const name = isObj(last) && isObj(last.String) ? String(last.String.sval) : ''
    if (name === 'set_config' && this.setConfig(call, parts, live)) return
    if (name === 'current_setting') this.currentSetting(call)
    const schema = parts.length >= 2 ? parts[parts.length - 2] : undefined
    if (isObj(schema) && isObj(schema.String) && String(schema.String.sval).toLowerCase() === 'cron' && cronFunctions.has(name.toLowerCase())) {
      this.raise(admin, `calls cron.${name}, which changes the SQL pg_cron runs later as the target's role`)
    }
    this.call(name, live, name.toLowerCase() === 'lo_open' && opensToRead(call.args))
  }

  /**
   * `current_setting(name)`: a custom setting (`app.jwt_secret`, set by `ALTER DATABASE … SET`
   * or a tenant's `SET app.tenant`) may be a secret or another agent's, so reading one is admin,
   * as setting one is; so is reading a setting whose name is known only at run time.
   */
  private currentSetting (call: Obj): void {
    const args = Array.isArray(call.args) ? call.args : []
    const setting = isObj(args[0]) && isObj(args[0].A_Const) && isObj(args[0].A_Const.sval) ? String(args[0].A_Const.sval.sval) : undefined
    if (setting === undefined) this.raise(admin, 'reads a setting named at run time')
    else if (setting.includes('.')) this.raise(admin, `reads custom setting ${setting.toLowerCase()}`)
    else if (secretSettings.has(setting.toLowerCase())) this.raise(admin, `reads ${setting.toLowerCase()}, which may hold a password or a command`)
  }

  /**
   * `set_config(name, value, is_local)` with a constant name is the `SET` it amounts to; false
   * when it is not (another schema's `set_config`, a name computed at run time).
   */
  private setConfig (call: Obj, parts: unknown[], live: boolean): boolean {
    const schema = parts.length === 2 && isObj(parts[0]) && isObj(parts[0].String) ? parts[0].String.sval : 'pg_catalog'
    const args = Array.isArray(call.args) ? call.args : []
    const setting = isObj(args[0]) && isObj(args[0].A_Const) && isObj(args[0].A_Const.sval) ? String(args[0].A_Const.sval.sval).toLowerCase() : undefined
    if (schema !== 'pg_catalog' || parts.length > 2 || args.length !== 3 || setting === undefined) return false
    const value = args[1]
    const constantValue = isObj(value) && isObj(value.A_Const)
    // A value known only at run time could be any: the checks that depend on it take the strictest.
    if (!constantValue && (setting === 'application_name' || setting === 'client_encoding')) this.raise(admin, `sets ${setting} to a value known only at run time`)
    const reason = this.reason
    variableSet({ kind: 'VAR_SET_VALUE', name: setting, args: [value] }, this)
    if (this.reason !== reason) this.reason = `calls set_config: ${String(this.reason)}`
    // Unqualified, a set_config of the user's own placed before pg_catalog in the search path would run instead.
    if (live && parts.length === 1) this.functions.add('set_config')
    return true
  }

  /**
   * A function a definition names (an aggregate's state function, an operator's function),
   * which a later call of the aggregate or operator runs where the text shows only their name.
   */
  defines (name: string): void {
    if (isAdminFunction(name)) this.raise(admin, `makes a call of ${name} look like another`)
    // A call of a function known to write (nextval, an advisory lock) would pass for a read.
    else if (isWriteFunction(name)) this.raise(admin, `makes a call of ${name}, which writes, look like a read`)
    // `SELECT !~! 'app.jwt_secret'` would read the setting its operand names, where the text shows no current_setting.
    else if (name.toLowerCase() === 'current_setting') this.raise(admin, 'makes a call of current_setting, which reads a setting named at run time, look like another')
  }

  private fieldSelection (field: unknown, live: boolean): void {
    if (!isObj(field) || !isObj(field.String)) return
    const name = String(field.String.sval)
    // `('app.jwt_secret'::text).current_setting` is `current_setting('app.jwt_secret')`, its setting named by a value.
    if (name === 'current_setting') this.raise(admin, 'reads a setting named at run time')
    this.call(name, live)
  }

  /**
   * A call of function `name` ('' when unnamed), as the parser gives it: folded to lower case
   * unless quoted. The lists are matched whatever the case; the catalog is asked for the name
   * itself, as PostgreSQL looks it up (`"Wipe"()` is not `wipe()`).
   */
  private call (name: string, live: boolean, reads = false): void {
    if (isAdminFunction(name)) this.raise(admin, `calls ${name}`)
    else if (live && !reads && isWriteFunction(name)) this.raise(write)
    else if (live && name !== '') this.functions.add(name)
  }
}

/** INV_WRITE of `libpq/libpq-fs.h`: a large object opened without it cannot be written through that descriptor. */
const invWrite = 0x20000

/**
 * Whether `lo_open`'s arguments open the object only to read it: a constant mode without
 * INV_WRITE, as `lo_get` reads. Any other mode (a parameter, an expression) may write. A
 * same-named volatile function of another schema is still found by the catalog, as any call's.
 */
function opensToRead (args: unknown): boolean {
  if (!Array.isArray(args) || args.length !== 2 || !isObj(args[1]) || !isObj(args[1].A_Const)) return false
  const mode = args[1].A_Const.ival
  // The parser leaves out a zero: `{ ival: {} }`.
  return isObj(mode) && ((Number(mode.ival ?? 0) & invWrite) === 0)
}

function reverseFrom (a: unknown[], start: number): void {
  for (let i = start, j = a.length - 1; i < j; i++, j--) [a[i], a[j]] = [a[j], a[i]]
}
