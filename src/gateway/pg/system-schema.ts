import { isObj, type Obj } from './from-scope.js'

/**
 * Schemas whose objects every session uses without naming a schema: pg_catalog is searched
 * first, before any schema of the search path, and information_schema is what tools read to
 * learn the database's shape. An object a role that may (a superuser, or information_schema's
 * owner) creates, replaces, alters or moves into them (`CREATE OR REPLACE VIEW
 * pg_catalog.pg_tables`, `CREATE FUNCTION pg_catalog.lower(text)`) changes what every other
 * session's statements do, where their text shows nothing of it.
 */
export const systemSchemas = new Set(['pg_catalog', 'information_schema'])

/**
 * The fields that name the object a DDL statement creates or changes, by statement kind: a
 * RangeVar, a name list, an ObjectWithArgs, a TypeName, or a list of these. `CREATE` marks
 * the kinds that create an object, whose unqualified name is never one of a system schema's
 * (the gateway cannot know which schema it lands in; see `searchPathSchemas`).
 */
const objectFields: Record<string, { fields: string[], creates?: true }> = {
  CreateStmt: { fields: ['relation'], creates: true },
  SelectStmt: { fields: ['intoClause'], creates: true },
  CreateForeignTableStmt: { fields: ['base'], creates: true },
  ViewStmt: { fields: ['view'], creates: true },
  CreateTableAsStmt: { fields: ['into'], creates: true },
  CreateSeqStmt: { fields: ['sequence'], creates: true },
  CompositeTypeStmt: { fields: ['typevar'], creates: true },
  CreateFunctionStmt: { fields: ['funcname'], creates: true },
  DefineStmt: { fields: ['defnames'], creates: true },
  CreateDomainStmt: { fields: ['domainname'], creates: true },
  CreateEnumStmt: { fields: ['typeName'], creates: true },
  CreateRangeStmt: { fields: ['typeName'], creates: true },
  CreateConversionStmt: { fields: ['conversion_name'], creates: true },
  CreateOpClassStmt: { fields: ['opclassname'], creates: true },
  CreateOpFamilyStmt: { fields: ['opfamilyname'], creates: true },
  CreateStatsStmt: { fields: ['defnames'], creates: true },
  IndexStmt: { fields: ['relation'] },
  CreateTrigStmt: { fields: ['relation'] },
  RuleStmt: { fields: ['relation'] },
  CreatePolicyStmt: { fields: ['table'] },
  AlterPolicyStmt: { fields: ['table'] },
  AlterTableStmt: { fields: ['relation'] },
  AlterSeqStmt: { fields: ['sequence'] },
  RefreshMatViewStmt: { fields: ['relation'] },
  TruncateStmt: { fields: ['relations'] },
  AlterFunctionStmt: { fields: ['func'] },
  AlterEnumStmt: { fields: ['typeName'] },
  AlterDomainStmt: { fields: ['typeName'] },
  AlterTypeStmt: { fields: ['typeName'] },
  AlterOperatorStmt: { fields: ['opername'] },
  AlterOpFamilyStmt: { fields: ['opfamilyname'] },
  AlterStatsStmt: { fields: ['defnames'] },
  AlterCollationStmt: { fields: ['collname'] },
  AlterTSDictionaryStmt: { fields: ['dictname'] },
  AlterTSConfigurationStmt: { fields: ['cfgname'] },
  DropStmt: { fields: ['objects'] },
  CommentStmt: { fields: ['object'] },
  RenameStmt: { fields: ['relation', 'object'] },
  AlterObjectSchemaStmt: { fields: ['relation', 'object'] }
}

/** The schema a name of the shapes `objectFields` lists is qualified with; `pg_catalog` for an unqualified relation named `pg_…` where `existing`. */
function schemasOf (v: unknown, existing: boolean, out: string[]): void {
  if (Array.isArray(v)) {
    const parts = v.map((p) => (isObj(p) && isObj(p.String) ? String(p.String.sval) : undefined))
    // A name list (`pg_catalog.f`): its schema is the part before the last. Anything else is a list of names.
    if (parts.length > 0 && parts.every((p) => p !== undefined)) {
      if (parts.length >= 2) out.push(String(parts[parts.length - 2]))
      return
    }
    for (const x of v) schemasOf(x, existing, out)
    return
  }
  if (!isObj(v)) return
  if (typeof v.relname === 'string') {
    if (typeof v.schemaname === 'string') out.push(v.schemaname)
    // Unqualified, an existing `pg_…` relation is found in pg_catalog, searched first.
    else if (existing && v.relname.startsWith('pg_')) out.push('pg_catalog')
    return
  }
  for (const key of ['RangeVar', 'ObjectWithArgs', 'TypeName', 'List']) if (isObj(v[key])) return schemasOf(v[key], existing, out)
  for (const key of ['relation', 'rel', 'objname', 'names', 'items']) if (v[key] !== undefined) return schemasOf(v[key], existing, out)
}

/**
 * The system schema (see `systemSchemas`) a DDL statement of kind `kind` creates, replaces,
 * changes or moves an object in, or undefined when it names none. Reads names only: an
 * unqualified name of a function or type that PostgreSQL would find in pg_catalog is not seen.
 */
export function systemSchema (kind: string, body: Obj): string | undefined {
  if (kind === 'AlterObjectSchemaStmt' && systemSchemas.has(String(body.newschema))) return String(body.newschema)
  // DROP, COMMENT ON or RENAME of a schema names the schema itself.
  if ([body.removeType, body.objtype, body.renameType].includes('OBJECT_SCHEMA')) {
    const named = [body.objects, body.object, body.subname].flat().map((o) => (isObj(o) && isObj(o.String) ? String(o.String.sval) : String(o)))
    return named.find((s) => systemSchemas.has(s))
  }
  const spec = Object.hasOwn(objectFields, kind) ? objectFields[kind] : undefined
  if (spec === undefined) return undefined
  const found: string[] = []
  for (const f of spec.fields) schemasOf(body[f], spec.creates !== true, found)
  return found.find((s) => systemSchemas.has(s))
}

/** Whether a relation is a system catalog or view: in a system schema, or unqualified and named `pg_…` (pg_catalog is searched first). */
function isSystemRelation (rel: Obj): boolean {
  return typeof rel.relname === 'string' &&
    (typeof rel.schemaname === 'string' ? systemSchemas.has(rel.schemaname) : rel.relname.startsWith('pg_'))
}

/** The first system relation named anywhere in `v`. */
function systemRelationIn (v: unknown): string | undefined {
  const stack: unknown[] = [v]
  while (stack.length > 0) {
    const x = stack.pop()
    if (Array.isArray(x)) {
      stack.push(...x)
    } else if (isObj(x)) {
      if (isObj(x.RangeVar) && isSystemRelation(x.RangeVar)) return String(x.RangeVar.relname)
      for (const k in x) stack.push(x[k])
    }
  }
  return undefined
}

/**
 * The system catalog or view whose rows a SELECT's locking clauses (`FOR UPDATE`, `FOR KEY
 * SHARE`…) lock, or undefined. Such a lock, held for the rest of the transaction, holds up
 * every DDL and grant of the object the row describes, in every session (a locked `pg_class`
 * row blocks `ALTER TABLE`). A clause locks the FROM items it names (`OF c`), or all of them,
 * and through a subquery, a view or a CTE the tables they read.
 */
export function lockedSystemRelation (select: Obj): string | undefined {
  const clauses = (Array.isArray(select.lockingClause) ? select.lockingClause : []).map((c) => (isObj(c) && isObj(c.LockingClause) ? c.LockingClause : {}))
  if (clauses.length === 0) return undefined
  const named = clauses.every((c) => Array.isArray(c.lockedRels) && c.lockedRels.length > 0)
    ? new Set(clauses.flatMap((c) => (c.lockedRels as unknown[]).map((r) => (isObj(r) && isObj(r.RangeVar) ? String(r.RangeVar.relname) : ''))))
    : undefined
  const ctes = new Map<string, unknown>()
  const w = isObj(select.withClause) && Array.isArray(select.withClause.ctes) ? select.withClause.ctes : []
  for (const c of w) if (isObj(c) && isObj(c.CommonTableExpr)) ctes.set(String(c.CommonTableExpr.ctename), c.CommonTableExpr.ctequery)
  const items: unknown[] = Array.isArray(select.fromClause) ? [...select.fromClause] : []
  for (let item = items.pop(); item !== undefined; item = items.pop()) {
    if (!isObj(item)) continue
    if (isObj(item.JoinExpr) && item.JoinExpr.alias === undefined) { items.push(item.JoinExpr.larg, item.JoinExpr.rarg); continue }
    const body = Object.values(item)[0]
    const alias = isObj(body) && isObj(body.alias) ? String(body.alias.aliasname) : undefined
    const rel = isObj(item.RangeVar) ? item.RangeVar : undefined
    if (named !== undefined && !named.has(alias ?? String(rel?.relname))) continue
    const cte = rel !== undefined && rel.schemaname === undefined ? ctes.get(String(rel.relname)) : undefined
    const found = systemRelationIn(cte ?? item)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * Whether a CREATE of kind `kind` names its object without a schema: PostgreSQL creates it in
 * the first schema of the search path that exists, which is a system schema where the search
 * path names one (`SET search_path = nosuch, pg_catalog`). A temporary relation goes to pg_temp.
 */
export function createsUnqualified (kind: string, body: Obj): boolean {
  const spec = Object.hasOwn(objectFields, kind) ? objectFields[kind] : undefined
  if (spec?.creates !== true) return false
  const named = spec.fields.map((f) => body[f]).filter((v) => v !== undefined && v !== null)
  if (named.length === 0) return false
  const relation = (v: unknown): Obj | undefined => (isObj(v) ? (typeof v.relname === 'string' ? v : relation(v.relation ?? v.rel)) : undefined)
  if (named.some((v) => relation(v)?.relpersistence === 't')) return false
  const found: string[] = []
  for (const v of named) schemasOf(v, false, found)
  return found.length === 0
}

/**
 * Whether a search_path value (SET's arguments, or set_config's value) names a system schema,
 * or may: a value known only at run time does. `"$user", public` names none.
 */
export function namesSystemSchema (args: unknown): boolean {
  for (const a of Array.isArray(args) ? args : [args]) {
    const c = isObj(a) && isObj(a.A_Const) ? a.A_Const : undefined
    if (c === undefined) return true
    if (!isObj(c.sval)) continue
    // One string may hold the whole list (`set_config('search_path', 'a, pg_catalog', false)`, a startup setting); a quoted part keeps its case.
    for (const part of String(c.sval.sval).split(',')) {
      const p = part.trim()
      const name = p.startsWith('"') && p.endsWith('"') ? p.slice(1, -1).replaceAll('""', '"') : p.toLowerCase()
      if (systemSchemas.has(name)) return true
    }
  }
  return false
}

/** Kinds that change an existing object named by a field of `objectFields`, and the object-type fields that say which kind of object. */
const relationTypes = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE', 'OBJECT_INDEX',
  'OBJECT_COLUMN', 'OBJECT_POLICY', 'OBJECT_RULE', 'OBJECT_TRIGGER', 'OBJECT_TABCONSTRAINT', 'OBJECT_SCHEMA', 'OBJECT_STATISTIC_EXT'])

/**
 * The names a statement gives without a schema to existing routines, types, operators,
 * collations and the like that it alters, renames, moves, drops or comments on
 * (`ALTER FUNCTION upper(text) RENAME TO upper_orig`): PostgreSQL looks pg_catalog up first,
 * so each may be a built-in one, which the catalog can tell (`Catalog.systemNamed`). Relations
 * are left out: every system one is named `pg_…`, which `systemSchema` reads.
 */
export function unqualifiedExisting (kind: string, body: Obj): string[] {
  const spec = Object.hasOwn(objectFields, kind) ? objectFields[kind] : undefined
  if (spec === undefined || spec.creates === true) return []
  const type = body.removeType ?? body.objtype ?? body.renameType ?? body.objectType
  if (typeof type === 'string' && relationTypes.has(type)) return []
  if (isObj(body.relation) || ['IndexStmt', 'CreateTrigStmt', 'RuleStmt', 'CreatePolicyStmt', 'AlterPolicyStmt', 'AlterTableStmt', 'AlterSeqStmt',
    'RefreshMatViewStmt', 'TruncateStmt', 'AlterStatsStmt'].includes(kind)) return []
  const out: string[] = []
  // An operator class or family is named after its access method (`[btree, integer_ops]`).
  const first = type === 'OBJECT_OPCLASS' || type === 'OBJECT_OPFAMILY' ? 1 : 0
  const stack: unknown[] = spec.fields.map((f) => body[f])
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) {
      const parts = v.map((p) => (isObj(p) && isObj(p.String) ? String(p.String.sval) : undefined))
      if (parts.length === 1 + first && parts[first] !== undefined) out.push(String(parts[first]))
      else if (!parts.every((p) => p !== undefined)) stack.push(...v)
    } else if (isObj(v)) {
      for (const key of ['ObjectWithArgs', 'TypeName', 'List']) if (isObj(v[key])) stack.push(v[key])
      for (const key of ['objname', 'names', 'items']) if (Array.isArray(v[key])) stack.push(v[key])
    }
  }
  return out
}
