import {
  adminObjectTypes, onRelationObjectTypes, privilegedSettings, readOnlySettings, readOnlyValues,
  readTransactionKinds, relationObjectTypes, safeEncodings, secretSettings, superuserSettingPrefixes, superuserSettings, transactionSettings
} from './known-names.js'
import { isObj, type Obj } from './from-scope.js'
import { admin, ddl, read, write, type Rule } from './ranks.js'
import { createFunction, definesWith, namesFunction, supportFunctions } from './routine-rules.js'
import { namesSystemSchema } from './system-schema.js'
import { wholeSchemas } from './whole-schemas.js'
import type { Walk } from './walk.js'

/**
 * What each kind of statement does to a classification: its class, its policy shapes, and
 * what it says about its parts (a COPY's direction, a SET's setting, a function's body). The
 * walk over the tree (`walk.ts`) calls these by node name.
 */

export { admin, ddl, read, write, type Rule } from './ranks.js'

/** Whether a statement's RangeVar names a system catalog (every one is `pg_…`, and in pg_catalog). */
function isCatalog (rel: Obj): boolean {
  return rel.schemaname === 'pg_catalog' || (rel.schemaname === undefined && String(rel.relname).startsWith('pg_'))
}

/**
 * A write into `relation`: admin when it is a system catalog (`UPDATE pg_settings` is
 * `set_config`, a row of `pg_proc` a function), or one of information_schema's tables
 * (`sql_features`…), which every session's tools read as the server's own account of itself.
 */
function intoTable (relation: unknown, w: Walk): void {
  w.raise(write)
  const rel = isObj(relation) ? relation : {}
  if (isCatalog(rel) || rel.schemaname === 'information_schema') w.raise(admin, `writes system catalog ${String(rel.relname)}`)
}

/** LOCK: a write, and admin on a system catalog, whose lock holds up every login and statement that reads it, in every database of the server for a shared one. */
function lock (body: Obj, w: Walk): undefined {
  w.raise(write)
  for (const r of Array.isArray(body.relations) ? body.relations : []) {
    const rel = isObj(r) && isObj(r.RangeVar) ? r.RangeVar : {}
    if (isCatalog(rel)) w.raise(admin, `locks system catalog ${String(rel.relname)}`)
  }
  return undefined
}

/** A statement that writes: the target table must not be a system catalog. */
function dml (shape?: string): (body: Obj, w: Walk) => undefined {
  return (body, w) => {
    intoTable(body.relation, w)
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
 * CREATE VIEW: DDL, and admin when it reads a system catalog: a view of one table is updatable,
 * so an UPDATE or INSERT of it writes the catalog, which `dml` refuses on the catalog itself
 * (`UPDATE v SET proname = 'tidy' WHERE proname = 'pg_cancel_backend'`); of pg_settings, whose
 * rule turns an UPDATE into set_config, it would be the SET of what it names.
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
      if (isObj(v.RangeVar) && isCatalog(v.RangeVar)) {
        w.raise(admin, `a view of system catalog ${String(v.RangeVar.relname)} would write it through an UPDATE or INSERT of the view`)
        return undefined
      }
      for (const k in v) stack.push(v[k])
    }
  }
  return undefined
}

/** DDL on an object type that may be server administration; names relations given as bare name lists. */
function objectDdl (typeField: string, objectsField: string, drop: boolean): (body: Obj, w: Walk) => undefined {
  return (body, w) => {
    const type = String(body[typeField])
    w.raise(adminObjectTypes.has(type) ? admin : ddl)
    if (drop) w.shapes.add('drop')
    // A system view renamed, moved or with a column renamed (`pg_roles.rolconfig`) is no longer found by the name that makes reading it admin.
    if (isObj(body.relation) && isCatalog(body.relation)) w.raise(admin, `changes system catalog ${String(body.relation.relname)}`)
    const objects = drop ? body[objectsField] : [body[objectsField]]
    for (const o of Array.isArray(objects) ? objects : []) {
      const items = isObj(o) && isObj(o.List) && Array.isArray(o.List.items) ? o.List.items : []
      const names = items.map((i) => (isObj(i) && isObj(i.String) ? String(i.String.sval) : ''))
      if (onRelationObjectTypes.has(type)) names.pop()
      if (names.length === 0 || !(relationObjectTypes.has(type) || onRelationObjectTypes.has(type))) continue
      w.addTable(names.slice(-2).join('.'))
      const [schemaname, relname] = names.length > 1 ? names.slice(-2) : [undefined, names[0]]
      if (isCatalog({ schemaname, relname })) w.raise(admin, `changes system catalog ${relname}`)
    }
    return undefined
  }
}

const dropObject = objectDdl('removeType', 'objects', true)
const renameObject = objectDdl('renameType', 'object', false)
const routineTypes = new Set(['OBJECT_FUNCTION', 'OBJECT_PROCEDURE', 'OBJECT_ROUTINE', 'OBJECT_AGGREGATE'])

/**
 * RENAME: as other DDL on its object, and admin for a function only an admin may call, or one
 * that writes (`ALTER FUNCTION pg_catalog.pg_cancel_backend(int) RENAME TO tidy`): the lists know
 * functions by name, and a built-in one is no user-defined function the catalog would tell of.
 */
function rename (body: Obj, w: Walk): undefined {
  renameObject(body, w)
  if (body.renameType === 'OBJECT_SCHEMA') wholeSchemas(body.subname, w)
  const o = routineTypes.has(String(body.renameType)) && isObj(body.object) && isObj(body.object.ObjectWithArgs) ? body.object.ObjectWithArgs : {}
  namesFunction(Array.isArray(o.objname) ? o.objname : [], w)
  return undefined
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
  else if (from) intoTable(body.relation, w)
  // Several COPYs in one text: 'from' if any reads client data, toClient if any sends rows to it, stdio only if all do.
  w.copy = {
    direction: from || w.copy?.direction === 'from' ? 'from' : 'to',
    toClient: (!from && stdio) || (w.copy?.toClient ?? false),
    stdio: stdio && (w.copy?.stdio ?? true)
  }
  return undefined
}

export function variableSet (body: Obj, w: Walk): undefined {
  const name = String(body.name ?? '').toLowerCase() // setting names are case-insensitive, even quoted
  if (name === 'search_path' && body.kind === 'VAR_SET_VALUE' && !w.routineSettings.has(body) && namesSystemSchema(body.args)) w.searchesSystem = true
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

/**
 * SHOW: admin for a custom setting (it may be a secret or another tenant's), for a setting that
 * holds a password or a command (`primary_conninfo`, `archive_command`), and for `SHOW ALL`,
 * which shows those too.
 */
function show (body: Obj, w: Walk): undefined {
  const name = String(body.name).toLowerCase()
  if (name.includes('.')) w.raise(admin, `reads custom setting ${name}`)
  else if (secretSettings.has(name)) w.raise(admin, `reads ${name}, which may hold a password or a command`)
  else if (name === 'all') w.raise(admin, 'SHOW ALL shows every setting, those that may hold a password or a command among them')
  return undefined
}

/**
 * A foreign table's options are read by its foreign-data wrapper, which the gateway does not
 * know: file_fdw reads the server file or runs the program they name, as `COPY … PROGRAM` would.
 */
export const foreignTableOptions = 'sets options a foreign-data wrapper reads (file_fdw\'s filename or program)'

/** What each statement kind does, by its node name; a kind not here is admin. */
export const statementRules: Record<string, Rule | undefined> = {
  SelectStmt: read, ReturnStmt: read, VariableShowStmt: show, UnlistenStmt: read, ConstraintsSetStmt: read,
  FetchStmt: (_, w) => { w.cursor = true; return undefined },
  ListenStmt: (_, w) => { w.listens = true; return undefined },
  DeclareCursorStmt: (body, w) => { w.rename('portals', body.portalname); return undefined },
  ClosePortalStmt: (body, w) => { w.rename('portals', body.portalname); return undefined },
  PrepareStmt: (body, w) => { w.rename('statements', body.name); w.prepares.add(String(body.name)); return undefined },
  // Its class is the prepared statement's (the session's to add) and its parameters'.
  ExecuteStmt: (body, w) => { w.executes.add(String(body.name)); return undefined },
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
  NotifyStmt: write, LockStmt: lock,
  CreateStmt: ddl, CreateForeignTableStmt: (body, w) => { w.raise(Array.isArray(body.options) && body.options.length > 0 ? admin : ddl, foreignTableOptions); return undefined }, AlterTableStmt: ddl, ReplicaIdentityStmt: ddl, AlterDomainStmt: ddl,
  DefineStmt: definesWith('definition'), CreateDomainStmt: ddl, CompositeTypeStmt: ddl, CreateEnumStmt: ddl, CreateRangeStmt: definesWith('params'), AlterEnumStmt: ddl,
  AlterTypeStmt: definesWith('options'), ViewStmt: view, IndexStmt: ddl, CreateSeqStmt: ddl, AlterSeqStmt: ddl, CreateTableAsStmt: ddl,
  RefreshMatViewStmt: ddl, CreateFunctionStmt: createFunction, AlterFunctionStmt: ddl, CreateTrigStmt: ddl, RuleStmt: ddl,
  CreatePolicyStmt: ddl, AlterPolicyStmt: ddl, CreateStatsStmt: ddl, AlterStatsStmt: ddl, CreateConversionStmt: ddl,
  CreateOpClassStmt: supportFunctions, CreateOpFamilyStmt: ddl, AlterOpFamilyStmt: supportFunctions, AlterOperatorStmt: definesWith('options'), AlterCollationStmt: ddl,
  AlterTSDictionaryStmt: ddl, AlterTSConfigurationStmt: ddl,
  TruncateStmt: (_, w) => { w.raise(ddl); w.shapes.add('truncate'); return undefined },
  CreateSchemaStmt: (body, w) => { w.raise(body.authrole === undefined ? ddl : admin); return undefined },
  DropStmt: (body, w) => { dropObject(body, w); if (body.removeType === 'OBJECT_SCHEMA') wholeSchemas(body.objects, w); return undefined },
  CommentStmt: objectDdl('objtype', 'object', false),
  RenameStmt: rename,
  AlterObjectSchemaStmt: objectDdl('objectType', 'object', false),
  DropdbStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropRoleStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropTableSpaceStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropUserMappingStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropSubscriptionStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DropOwnedStmt: (_, w) => { w.raise(admin); w.shapes.add('drop'); return undefined },
  DoStmt: admin, CallStmt: admin, GrantStmt: admin, GrantRoleStmt: admin, AlterDefaultPrivilegesStmt: admin,
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

/** Whether transaction options (`READ WRITE`, `transaction_read_only = 0`) ask for a read-write transaction. */
function readWrite (options: unknown): boolean {
  return (Array.isArray(options) ? options : []).some((o) => {
    const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined
    const c = isObj(d?.arg) && isObj(d.arg.A_Const) ? d.arg.A_Const : undefined
    return d?.defname === 'transaction_read_only' && !(isObj(c?.ival) && c.ival.ival === 1)
  })
}

/** The lower-cased text of a one-element list of string constants, else ''. */
function constant (args: unknown): string {
  const a = Array.isArray(args) && args.length === 1 && isObj(args[0]) ? args[0].A_Const : undefined
  return isObj(a) && isObj(a.sval) ? String(a.sval.sval).toLowerCase() : ''
}
