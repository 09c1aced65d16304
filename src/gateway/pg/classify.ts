import { createHash } from 'node:crypto'
import { exposure, type Exposure } from './exposure.js'
import {
  activityRelations, adminFunctionPrefixes, adminFunctions, adminObjectTypes, configRelations, credentialRelations, onRelationObjectTypes, roleSettingRelations,
  privilegedSettings, readOnlySettings, readOnlyValues, readTransactionKinds, relationObjectTypes, safeEncodings, statisticsRelations,
  superuserSettingPrefixes, superuserSettings, transactionSettings, writeFunctionPrefixes, writeFunctions
} from './known-names.js'
import { functionBody } from './function-body.js'
import { mayNestTooDeep } from './nesting.js'
import { fingerprint as parserFingerprint, loadParser, parse, ParserUnavailable, SqlSyntaxError } from './parser.js'

export type StatementClass = 'read' | 'write' | 'ddl' | 'admin'

/** What a query text does, as the PostgreSQL gateway's scope and policy checks need it. */
export interface Classification {
  /** The strongest class among the statements (read < write < ddl < admin). */
  class: StatementClass
  /** Policy statement shapes present: 'delete_without_where' | 'update_without_where' | 'truncate' | 'drop'. */
  statements: string[]
  /**
   * Every relation the text names (FROM, JOIN, statement targets, COPY, TRUNCATE, DROP TABLE, CTE bodies,
   * subqueries, LOCK…) as PostgreSQL folded it, `schema.table` when schema-qualified else `table`;
   * names that resolve to a CTE in scope are left out; deduplicated.
   */
  tables: string[]
  /**
   * Set when the text contains COPY: direction ('from' if any COPY reads), whether any COPY
   * sends rows to the client (`toClient`, TO STDOUT) and whether all use STDIN/STDOUT (`stdio`).
   */
  copy?: { direction: 'to' | 'from', toClient: boolean, stdio: boolean }
  /** Number of statements in the text (0 for an empty query; 1 for text that cannot be read). */
  count: number
  /** Why the class is admin when it is not obvious (unparsable text, unknown statement kind, a named function). */
  reason?: string
  /**
   * Functions the text runs that no list here knows (lower-cased, last name part): a caller
   * that can read the database's catalog decides whether they may write (a volatile
   * user-defined function called by a SELECT can).
   */
  functions?: string[]
  /** Set when a column may reach the client other than as it is stored, where masking cannot see it (see `exposure`). */
  exposes?: Exposure
  /**
   * Set when the text changes prepared statements or portals by name behind the extended
   * protocol's back (SQL `PREPARE`, `DEALLOCATE`, `DECLARE`, `CLOSE`, `DISCARD ALL`; they share
   * its names): the names it changes, or 'all'.
   */
  renames?: { statements: string[] | 'all', portals: string[] | 'all' }
  /** Set when the text reads rows from a cursor (FETCH), which may be of any table. */
  cursor?: true
}

type Obj = Record<string, unknown>
const read = 0
const write = 1
const ddl = 2
const admin = 3
const classNames: StatementClass[] = ['read', 'write', 'ddl', 'admin']

interface Scope { names: string[], up: Scope | undefined }
interface Frame { v: unknown, scope: Scope | undefined, live: boolean }

/** One classification in progress; `live` is false under a plain EXPLAIN, whose statement is planned but never run. */
class Walk {
  rank = read
  reason: string | undefined
  shapes = new Set<string>()
  tables = new Set<string>()
  functions = new Set<string>()
  copy: Classification['copy']
  renames: Classification['renames']
  cursor = false
  /** The text being classified, and the byte offset and length of the statement walked (0: to the end). */
  source = ''
  span: [number, number] = [0, 0]
  private readonly stack: Frame[] = []

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
    if (kind === 'FuncCall') this.func(body, live)
    // PostgreSQL reads a field selection `(x).f` or `t.f` as the call `f(x)` when no field `f`
    // exists (functional notation): every selected name may be a function.
    if (kind === 'A_Indirection') for (const i of Array.isArray(body.indirection) ? body.indirection : []) this.fieldSelection(i, live)
    if (kind === 'ColumnRef' && Array.isArray(body.fields) && body.fields.length >= 2) this.fieldSelection(body.fields[body.fields.length - 1], live)
    let childrenLive = live
    if (kind.endsWith('Stmt')) {
      const rule = Object.hasOwn(statementRules, kind) ? statementRules[kind] : undefined
      if (rule === undefined) this.raise(admin, `unknown statement kind ${kind}`)
      else if (live) childrenLive = (typeof rule === 'number' ? this.raise(rule) : rule(body, this)) ?? true
    } else if (kind === 'AlterTableCmd' && live) {
      if (body.subtype === 'AT_ChangeOwner') this.raise(admin)
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
    this.call(name, live)
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
    const lower = name.toLowerCase()
    if (adminFunctions.has(lower) || adminFunctionPrefixes.some((p) => lower.startsWith(p))) this.raise(admin, `makes a call of ${name} look like another`)
    // A call of a function known to write (nextval, an advisory lock) would pass for a read.
    else if (writeFunctions.has(lower) || writeFunctionPrefixes.some((p) => lower.startsWith(p))) this.raise(admin, `makes a call of ${name}, which writes, look like a read`)
  }

  private fieldSelection (field: unknown, live: boolean): void {
    if (isObj(field) && isObj(field.String)) this.call(String(field.String.sval), live)
  }

  /**
   * A call of function `name` ('' when unnamed), as the parser gives it: folded to lower case
   * unless quoted. The lists are matched whatever the case; the catalog is asked for the name
   * itself, as PostgreSQL looks it up (`"Wipe"()` is not `wipe()`).
   */
  private call (name: string, live: boolean): void {
    const lower = name.toLowerCase()
    if (adminFunctions.has(lower) || adminFunctionPrefixes.some((p) => lower.startsWith(p))) this.raise(admin, `calls ${name}`)
    else if (live && (writeFunctions.has(lower) || writeFunctionPrefixes.some((p) => lower.startsWith(p)))) this.raise(write)
    else if (live && name !== '') this.functions.add(name)
  }
}

/** A statement kind's class, or a function that records its class and shapes and says whether its children run. */
type Rule = number | ((body: Obj, w: Walk) => boolean | undefined)

/** A statement that writes: the target table must not be a system catalog (`UPDATE pg_settings` is `set_config`). */
function dml (shape?: string): (body: Obj, w: Walk) => undefined {
  return (body, w) => {
    w.raise(write)
    const rel = isObj(body.relation) ? body.relation : {}
    if (rel.schemaname === 'pg_catalog' || (rel.schemaname === undefined && String(rel.relname).startsWith('pg_'))) {
      w.raise(admin, `writes system catalog ${String(rel.relname)}`)
    }
    if (shape !== undefined && !restricts(body.whereClause)) w.shapes.add(shape)
    return undefined
  }
}

/**
 * MERGE deletes or updates every row its join matches: with a join condition and a WHEN
 * condition that tell no rows apart (`ON true`), that is every row of the table.
 */
function merge (body: Obj, w: Walk): undefined {
  dml()(body, w)
  if (restricts(body.joinCondition)) return undefined
  for (const c of Array.isArray(body.mergeWhenClauses) ? body.mergeWhenClauses : []) {
    const when = isObj(c) && isObj(c.MergeWhenClause) ? c.MergeWhenClause : {}
    if (when.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_TARGET' || restricts(when.condition)) continue
    if (when.commandType === 'CMD_DELETE') w.shapes.add('delete_without_where')
    if (when.commandType === 'CMD_UPDATE') w.shapes.add('update_without_where')
  }
  return undefined
}

/**
 * Whether a condition can tell one row from another: it names a column, or a cursor's current
 * row (`WHERE CURRENT OF c`). One that names neither (`WHERE true`, `WHERE 1 = 1`, `WHERE $1`)
 * holds for every row or for none, so it restricts nothing. Syntactic: `WHERE id = id` counts
 * as a restriction.
 */
function restricts (condition: unknown): boolean {
  const stack: unknown[] = [condition]
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x)
    } else if (isObj(v)) {
      if (v.ColumnRef !== undefined || v.CurrentOfExpr !== undefined) return true
      for (const k in v) stack.push(v[k])
    }
  }
  return false
}

/**
 * CREATE FUNCTION or PROCEDURE: DDL, and admin when its body does what only an admin may, or
 * cannot be read (see `functionBody`). The body runs with the caller's privileges whenever it
 * is called, from a statement that shows none of it.
 */
function createFunction (body: Obj, w: Walk): undefined {
  w.raise(ddl)
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
  for (const text of found.texts) {
    // Not cached: a refusal while the parser restarts must not be kept for the outer text.
    const c = analyse(text)
    if (c.class === 'admin') w.raise(admin, `its body ${c.reason ?? 'is admin'}`)
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
function definesWith (field: string): Rule {
  return (body, w) => {
    w.raise(ddl)
    for (const o of Array.isArray(body[field]) ? body[field] : []) {
      const arg = isObj(o) && isObj(o.DefElem) && isObj(o.DefElem.arg) ? o.DefElem.arg : undefined
      const names = isObj(arg) && isObj(arg.TypeName) && Array.isArray(arg.TypeName.names) ? arg.TypeName.names : []
      const last = names[names.length - 1]
      if (isObj(last) && isObj(last.String)) w.defines(String(last.String.sval))
    }
    return undefined
  }
}

/**
 * CREATE VIEW: DDL, and admin when it reads pg_settings, whose rule turns an UPDATE into
 * set_config. A view of it is updatable, so `UPDATE v SET setting = 'off' WHERE name =
 * 'standard_conforming_strings'` would be the SET that `dml` refuses on pg_settings itself.
 */
function view (body: Obj, w: Walk): undefined {
  w.raise(ddl)
  const stack: unknown[] = [body.query]
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x)
    } else if (isObj(v)) {
      if (isObj(v.RangeVar) && v.RangeVar.relname === 'pg_settings') {
        w.raise(admin, 'a view of pg_settings would set the settings an UPDATE of it names')
        return undefined
      }
      for (const k in v) stack.push(v[k])
    }
  }
  return undefined
}

/** DDL on an object type that may be server administration; names relations given as bare name lists. */
function objectDdl (typeField: string, objectsField: string, drop: boolean): Rule {
  return (body, w) => {
    const type = String(body[typeField])
    w.raise(adminObjectTypes.has(type) ? admin : ddl)
    if (drop) w.shapes.add('drop')
    const objects = drop ? body[objectsField] : [body[objectsField]]
    for (const o of Array.isArray(objects) ? objects : []) {
      const items = isObj(o) && isObj(o.List) && Array.isArray(o.List.items) ? o.List.items : []
      const names = items.map((i) => (isObj(i) && isObj(i.String) ? String(i.String.sval) : ''))
      if (onRelationObjectTypes.has(type)) names.pop()
      if (names.length > 0 && (relationObjectTypes.has(type) || onRelationObjectTypes.has(type))) w.addTable(names.slice(-2).join('.'))
    }
    return undefined
  }
}

/** EXPLAIN runs its statement only with ANALYZE; any ANALYZE option not plainly false counts (PostgreSQL's `parse_bool`). */
function explain (body: Obj): boolean {
  const options = Array.isArray(body.options) ? body.options : []
  return options.some((o) => {
    const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined
    if (d === undefined || String(d.defname).toLowerCase() !== 'analyze') return false
    if (d.arg === undefined) return true
    const arg = d.arg as Obj
    if (isObj(arg.Integer)) return arg.Integer.ival !== undefined && arg.Integer.ival !== 0
    if (isObj(arg.Boolean)) return arg.Boolean.boolval === true
    const s = isObj(arg.String) ? String(arg.String.sval).toLowerCase() : ''
    return !['f', 'fa', 'fal', 'fals', 'false', 'n', 'no', 'of', 'off', '0'].includes(s)
  })
}

function copy (body: Obj, w: Walk): undefined {
  const from = body.is_from === true
  const stdio = body.is_program !== true && body.filename === undefined
  if (!stdio) w.raise(admin, 'COPY to or from a server file or program')
  else if (from) w.raise(write)
  // Several COPYs in one text: 'from' if any reads client data, toClient if any sends rows to it, stdio only if all do.
  w.copy = {
    direction: from || w.copy?.direction === 'from' ? 'from' : 'to',
    toClient: (!from && stdio) || (w.copy?.toClient ?? false),
    stdio: stdio && (w.copy?.stdio ?? true)
  }
  return undefined
}

function variableSet (body: Obj, w: Walk): undefined {
  const name = String(body.name ?? '').toLowerCase() // setting names are case-insensitive, even quoted
  switch (body.kind) {
    case 'VAR_RESET_ALL':
      w.raise(admin, 'RESET ALL also resets the role')
      break
    case 'VAR_SET_MULTI':
      if (!transactionSettings.has(name)) w.raise(admin, `unknown SET form ${name}`)
      else if (readWrite(body.args)) w.raise(write, 'asks for read-write transactions')
      break
    case 'VAR_SET_VALUE': case 'VAR_SET_DEFAULT': case 'VAR_SET_CURRENT': case 'VAR_RESET':
      if (privilegedSettings.has(name)) w.raise(admin, `sets ${name}`)
      else if (superuserSettings.has(name) || superuserSettingPrefixes.some((p) => name.startsWith(p))) w.raise(admin, `sets ${name}, which only a superuser may`)
      else if (readOnlySettings.has(name) && !(body.kind === 'VAR_SET_VALUE' && readOnlyValues.has(constant(body.args)))) w.raise(write, `sets ${name}`)
      // The gateway names each upstream session `lineage:<actor>`: another such name would pass for another agent in the server's logs.
      else if (name === 'application_name' && constant(body.args).startsWith('lineage:')) w.raise(admin, 'names the session as one of another agent')
      else if (name === 'client_encoding' && !(body.kind === 'VAR_SET_VALUE' && safeEncodings.has(constant(body.args)))) {
        w.raise(admin, 'changes the client encoding away from UTF8')
      }
      // Custom settings often carry a row-level-security tenant (`current_setting('app.tenant')`).
      else if (name.includes('.')) w.raise(admin, `sets custom setting ${name}`)
      break
    default:
      w.raise(admin, `unknown SET kind ${String(body.kind)}`)
  }
  return undefined
}

const statementRules: Record<string, Rule | undefined> = {
  SelectStmt: read, ReturnStmt: read, VariableShowStmt: (body, w) => { if (String(body.name).includes('.')) w.raise(admin, `reads custom setting ${String(body.name).toLowerCase()}`); return undefined }, ListenStmt: read, UnlistenStmt: read, ConstraintsSetStmt: read,
  FetchStmt: (_, w) => { w.cursor = true; return undefined },
  DeclareCursorStmt: (body, w) => { w.rename('portals', body.portalname); return undefined },
  ClosePortalStmt: (body, w) => { w.rename('portals', body.portalname); return undefined },
  PrepareStmt: (body, w) => { w.rename('statements', body.name); return undefined },
  DeallocateStmt: (body, w) => { w.rename('statements', body.isall === true ? undefined : body.name); return undefined },
  ExplainStmt: (body) => explain(body),
  TransactionStmt: (body, w) => {
    if (!readTransactionKinds.has(String(body.kind))) w.raise(admin)
    else if (readWrite(body.options)) w.raise(write, 'asks for a read-write transaction')
    return undefined
  },
  DiscardStmt: (body, w) => {
    if (body.target !== 'DISCARD_ALL') return undefined
    w.raise(admin, 'DISCARD ALL also resets the session authorization')
    w.rename('statements', undefined)
    w.rename('portals', undefined)
    return undefined
  },
  VariableSetStmt: variableSet,
  CopyStmt: copy,
  InsertStmt: dml(), UpdateStmt: dml('update_without_where'), DeleteStmt: dml('delete_without_where'), MergeStmt: merge,
  NotifyStmt: write, LockStmt: write,
  CreateStmt: ddl, CreateForeignTableStmt: ddl, AlterTableStmt: ddl, ReplicaIdentityStmt: ddl, AlterDomainStmt: ddl,
  DefineStmt: definesWith('definition'), CreateDomainStmt: ddl, CompositeTypeStmt: ddl, CreateEnumStmt: ddl, CreateRangeStmt: definesWith('params'), AlterEnumStmt: ddl,
  AlterTypeStmt: definesWith('options'), ViewStmt: view, IndexStmt: ddl, CreateSeqStmt: ddl, AlterSeqStmt: ddl, CreateTableAsStmt: ddl,
  RefreshMatViewStmt: ddl, CreateFunctionStmt: createFunction, AlterFunctionStmt: ddl, CreateTrigStmt: ddl, RuleStmt: ddl,
  CreatePolicyStmt: ddl, AlterPolicyStmt: ddl, CreateStatsStmt: ddl, AlterStatsStmt: ddl, CreateConversionStmt: ddl,
  CreateOpClassStmt: ddl, CreateOpFamilyStmt: ddl, AlterOpFamilyStmt: ddl, AlterOperatorStmt: definesWith('options'), AlterCollationStmt: ddl,
  AlterTSDictionaryStmt: ddl, AlterTSConfigurationStmt: ddl,
  TruncateStmt: (_, w) => { w.raise(ddl); w.shapes.add('truncate'); return undefined },
  CreateSchemaStmt: (body, w) => { w.raise(body.authrole === undefined ? ddl : admin); return undefined },
  DropStmt: objectDdl('removeType', 'objects', true),
  CommentStmt: objectDdl('objtype', 'object', false),
  RenameStmt: objectDdl('renameType', 'object', false),
  AlterObjectSchemaStmt: objectDdl('objectType', 'object', false),
  DropdbStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropRoleStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropTableSpaceStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropUserMappingStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropSubscriptionStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropOwnedStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DoStmt: admin, CallStmt: admin, ExecuteStmt: admin, GrantStmt: admin, GrantRoleStmt: admin, AlterDefaultPrivilegesStmt: admin,
  CreateRoleStmt: admin, AlterRoleStmt: admin, AlterRoleSetStmt: admin, AlterSystemStmt: admin, VacuumStmt: admin,
  ClusterStmt: admin, ReindexStmt: admin, CheckPointStmt: admin, LoadStmt: admin, CreateExtensionStmt: admin,
  AlterExtensionStmt: admin, AlterExtensionContentsStmt: admin, CreatedbStmt: admin, AlterDatabaseStmt: admin,
  AlterDatabaseRefreshCollStmt: admin, AlterDatabaseSetStmt: admin, AlterOwnerStmt: admin, CreatePLangStmt: admin,
  SecLabelStmt: admin, CreateTableSpaceStmt: admin, AlterTableSpaceOptionsStmt: admin, AlterTableMoveAllStmt: admin,
  CreateFdwStmt: admin, AlterFdwStmt: admin, CreateForeignServerStmt: admin, AlterForeignServerStmt: admin,
  CreateUserMappingStmt: admin, AlterUserMappingStmt: admin, ImportForeignSchemaStmt: admin, CreateAmStmt: admin,
  CreateEventTrigStmt: admin, AlterEventTrigStmt: admin, ReassignOwnedStmt: admin, CreatePublicationStmt: admin,
  AlterPublicationStmt: admin, CreateSubscriptionStmt: admin, AlterSubscriptionStmt: admin, CreateCastStmt: admin,
  CreateTransformStmt: admin, AlterObjectDependsStmt: admin
}

/** The lower-cased text of a one-element list of string constants, else ''. */
/** Whether transaction options (`READ WRITE`, `transaction_read_only = 0`) ask for a read-write transaction. */
function readWrite (options: unknown): boolean {
  return (Array.isArray(options) ? options : []).some((o) => {
    const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined
    const c = isObj(d?.arg) && isObj(d.arg.A_Const) ? d.arg.A_Const : undefined
    return d?.defname === 'transaction_read_only' && !(isObj(c?.ival) && c.ival.ival === 1)
  })
}

function constant (args: unknown): string {
  const a = Array.isArray(args) && args.length === 1 && isObj(args[0]) ? args[0].A_Const : undefined
  return isObj(a) && isObj(a.sval) ? String(a.sval.sval).toLowerCase() : ''
}

function reverseFrom (a: unknown[], start: number): void {
  for (let i = start, j = a.length - 1; i < j; i++, j--) [a[i], a[j]] = [a[j], a[i]]
}

function isObj (v: unknown): v is Obj { return v !== null && typeof v === 'object' && !Array.isArray(v) }

/** `c`, with its arrays, made read-only (classifications are shared between sessions). */
export function frozen (c: Classification): Classification {
  Object.freeze(c.statements)
  Object.freeze(c.tables)
  if (c.exposes !== undefined) Object.freeze(Object.freeze(c.exposes).columns)
  if (c.renames !== undefined) Object.freeze(c.renames)
  if (c.copy !== undefined) Object.freeze(c.copy)
  return Object.freeze(c)
}

/** Text that cannot be read counts as one statement, so that nobody mistakes it for an empty query. */
function refuse (reason: string): Classification {
  return frozen({ class: 'admin', statements: [], tables: [], count: 1, reason })
}

const tooDeep = 'nested deeper than the parser can safely read'

/** @throws ParserUnavailable, for a moment after the parser trapped on other text. */
function analyse (sql: string): Classification {
  // The parser reads a C string: text after a NUL would never be seen, so refuse rather than guess.
  if (sql.includes('\0')) return refuse('contains a NUL character')
  // The parser refuses only the empty string; blanks and comments parse to no statement (PostgreSQL's blanks, not JavaScript's).
  if (sql === '') return frozen({ class: 'read', statements: [], tables: [], count: 0 })
  if (mayNestTooDeep(sql)) return refuse(tooDeep)
  let stmts: unknown[]
  try {
    stmts = parse(sql).stmts ?? []
  } catch (err) {
    if (err instanceof SqlSyntaxError) return refuse(`unparsable: ${err.message.slice(0, 200)}`)
    if (err instanceof ParserUnavailable) throw err
    // The parser trapped (its instance is replaced) or its tree was too deep to read back.
    return refuse(tooDeep)
  }
  const w = new Walk()
  let exposes: Exposure | undefined
  try {
    w.source = sql
    for (const s of stmts) {
      if (isObj(s)) w.span = [Number(s.stmt_location ?? 0), Number(s.stmt_len ?? 0)]
      w.statement(isObj(s) ? s.stmt : undefined)
    }
    exposes = exposure(stmts.map((s) => (isObj(s) ? s.stmt : undefined)))
  } catch (err) {
    return refuse(`unclassifiable: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`)
  }
  const c: Classification = { class: classNames[w.rank], statements: [...w.shapes], tables: [...w.tables], count: stmts.length }
  if (exposes !== undefined) c.exposes = exposes
  if (w.copy !== undefined) c.copy = w.copy
  if (w.renames !== undefined) c.renames = w.renames
  if (w.cursor) c.cursor = true
  if (w.functions.size > 0) c.functions = [...w.functions]
  if (w.rank === admin && w.reason !== undefined) c.reason = w.reason
  return frozen(c)
}

// Results by exact text, least recently used first (see `cached`). Long texts are not kept, so the cache stays small.
const maxEntries = 10_000
const maxCachedLength = 16 * 1024
/** Texts longer than this are not cached; the PostgreSQL gateway classifies them off the event loop (see `classifyLong`). */
export const longStatementChars = maxCachedLength
const maxCachedChars = 8 * 1024 * 1024
const cache = new Map<string, Classification>()
let cachedChars = 0
let loaded: Promise<void> | undefined
let ready = false

/** Loads the parser (WebAssembly) once; await it before `classify` or `fingerprint`. */
export async function loadClassifier (): Promise<void> {
  loaded ??= loadParser().then(() => { ready = true })
  await loaded
}

function assertReady (): void {
  if (!ready) throw new TypeError('await loadClassifier() before classifying statements')
}

/**
 * Classifies a query text (one or more statements; `$n` parameters allowed, as in a Parse message)
 * by what it does: anything not known to be safer is admin, and unparsable text is admin.
 * The result is shared between callers of the same text and frozen.
 * @throws TypeError when `loadClassifier` has not completed; never on any input.
 */
export function classify (sql: string): Classification {
  assertReady()
  return cached(foldNumbers(sql))
}

// Text with no string, quoted identifier, dollar quote, escape or comment in it, all ASCII
// (`\b` knows only ASCII letters: in `café2` the 2 would look like a number of its own).
const unfoldable = /['"$\\]|--|\/\*|[^\x00-\x7f]/
const numbers = /\b\d+(?:\.\d+)?\b/g

/**
 * Statements that differ only in their numeric constants (`… WHERE aid = 4711` sent by a
 * simple-protocol client) classify alike: they share one cache entry and one parse, with
 * every number folded to 1. Never to 0: a number can be a boolean option
 * (`EXPLAIN (ANALYZE 0) DELETE …`), and 1 is the stricter reading. Only ASCII text without
 * quotes, dollar signs, backslashes or comments is folded, so no number inside a string, an
 * identifier or a comment is touched.
 */
function foldNumbers (sql: string): string {
  return unfoldable.test(sql) ? sql : sql.replace(numbers, '1')
}

function cached (sql: string): Classification {
  const hit = cache.get(sql)
  if (hit !== undefined) {
    // Moved to the back only once the cache is half full: before that nothing is evicted, and moving costs a delete and an insert.
    if (2 * cache.size > maxEntries || 2 * cachedChars > maxCachedChars) {
      cache.delete(sql)
      cache.set(sql, hit)
    }
    return hit
  }
  let c: Classification
  try {
    c = analyse(sql)
  } catch (err) {
    // Fail closed while the parser is replaced, and keep no answer that the text itself did not cause.
    if (err instanceof ParserUnavailable) return refuse(err.message)
    throw err
  }
  if (sql.length <= maxCachedLength) {
    cache.set(sql, c)
    cachedChars += sql.length
    for (const oldest of cache.keys()) {
      if (cache.size <= maxEntries && cachedChars <= maxCachedChars) break
      cache.delete(oldest)
      cachedChars -= oldest.length
    }
  }
  return c
}

/**
 * A stable fingerprint of a statement text for audit records: PostgreSQL's query fingerprint, which
 * ignores constants and layout, or for text it cannot parse the first 16 hex digits of its SHA-256.
 * @throws TypeError when `loadClassifier` has not completed.
 */
export function fingerprint (sql: string): string {
  assertReady()
  if (sql !== '' && !sql.includes('\0')) {
    try {
      if (!mayNestTooDeep(sql)) return parserFingerprint(sql)
    } catch {}
  }
  return textFingerprint(sql)
}

/** The fingerprint of text the parser does not read: the first 16 hex digits of its SHA-256. */
export function textFingerprint (sql: string): string {
  return createHash('sha256').update(sql).digest('hex').slice(0, 16)
}
