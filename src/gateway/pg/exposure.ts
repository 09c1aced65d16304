/**
 * Where a statement lets a column's value reach the client in a form masking cannot see.
 *
 * Masking rewrites a result column by the table and column PostgreSQL reports for it in
 * RowDescription. PostgreSQL reports them only for a column passed up as it is stored: a plain
 * column reference in a select list, followed through subqueries, CTEs, inner joins and
 * RETURNING. Anything computed from a column (`upper(email)`, `email || ''`, `email::int`,
 * `max(email)`, `row_to_json(c)`, a UNION's columns, a FULL JOIN's merged USING column, a
 * scalar subquery) is reported as a column of no table, and an error can quote a value
 * (`email::int` fails with the address in its message). So a column is safe where it stands as
 * a plain select-list entry whose origin PostgreSQL keeps, or as a plain operand of a
 * comparison, an ordering or a grouping (which may rank values but never returns them); every
 * other use is an exposure. The gateway refuses a statement whose exposures name a masked column.
 *
 * The walk reads names, without the catalog: a bare name exposed anywhere in the text counts
 * for every table of it, `x.col` for the table `x` stands for (`FromScope`), and names a
 * subquery or CTE gives a column (`AS e`) are followed back. `exposedMask` (mask.ts) then
 * decides with the catalog's columns.
 */
import { FromScope, columnName, isObj, names, sourceOf, type Source } from './from-scope.js'
import { attachesRowCode, replacesFunction } from './row-code.js'

export interface Exposure {
  /** Column names used other than as stored, including names they were given in subqueries and CTEs. */
  columns: string[]
  /** A use that may carry any column: `*` or a whole row inside an expression or a set operation, a natural join, a positional column alias. */
  all: boolean
  /**
   * Last names of qualified references (`c.f`) where `c` is a table, or a subquery or CTE that
   * does not define `f`: a column of a table, or, when no table has such a column, the call
   * `f(c)` on a whole row (PostgreSQL's functional notation: `c.row_to_json`). The catalog tells.
   */
  qualified: string[]
  /** The same for `x.f` where `x` is a table the text names once: `f` must be one of that table's columns. */
  ofTables: Array<{ relation: string, name: string }>
  /** Columns used other than as stored as `x.col`, with `x` a table the text names once: that table's column only. */
  columnsOf: Array<{ relation: string, name: string }>
  /** Set when the statement attaches code to its table's rows, or switches it (see row-code.ts): it sees every column. */
  rowCode?: true
}

type Obj = Record<string, unknown>

// Where a value stands: returned as stored (origin kept), compared (never returned), or anything else.
const other = 0
const returned = 1
const compared = 2
type Position = typeof other | typeof returned | typeof compared

/**
 * A value to visit; for a SELECT or a RETURNING statement here, `origin` says whether its
 * list's columns keep their origins. `scope`: the names its query level sees.
 */
interface Item { v: unknown, pos: Position, origin: boolean, scope: FromScope | undefined }

/** Operators that compare or match without returning an operand (names as the grammar gives them). */
export const comparisons = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '~~', '~~*', '!~~', '!~~*', '~', '~*', '!~', '!~*', '^@', '@@'])
const comparisonKinds = new Set(['AEXPR_OP', 'AEXPR_OP_ANY', 'AEXPR_OP_ALL'])
const matchKinds = new Set(['AEXPR_DISTINCT', 'AEXPR_NOT_DISTINCT', 'AEXPR_IN', 'AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_SIMILAR',
  'AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN', 'AEXPR_BETWEEN_SYM', 'AEXPR_NOT_BETWEEN_SYM'])
/** Sublinks whose subquery's values are only compared or tested for existence. */
const testingSublinks = new Set(['EXISTS_SUBLINK', 'ANY_SUBLINK', 'ALL_SUBLINK'])

class Walk {
  private readonly exposed = new Set<string>()
  private readonly wholeRows = new Set<string>()

  private readonly relations = new Set<string>()
  private readonly positional = new Set<string>()
  private readonly renames: Array<[given: string, stored: string]> = []
  private readonly qualified = new Set<string>()
  private readonly ofTables = new Map<string, { relation: string, name: string }>()
  private readonly exposedOf = new Map<string, { relation: string, name: string }>()
  /** Functions whose result reaches the client or is computed on, not only compared. */
  readonly calls = new Set<string>()
  private all = false
  private rowCode = false
  /** Set when the statement replaces a trigger function (see row-code.ts). */
  replacesFunction = false
  private readonly stack: Item[] = []
  /** The scope of the item being visited, which what it pushes inherits. */
  private scope: FromScope | undefined

  /** Walks iteratively, so no nesting depth can overflow the JavaScript stack. */
  statement (stmt: unknown): void {
    this.stack.push({ v: stmt, pos: other, origin: true, scope: undefined })
    for (let it = this.stack.pop(); it !== undefined; it = this.stack.pop()) {
      this.scope = it.scope
      if (Array.isArray(it.v)) for (const v of it.v) this.stack.push({ ...it, v })
      else if (isObj(it.v)) this.object(it.v, it)
    }
  }

  result (): Exposure | undefined {
    for (const n of this.wholeRows) if (this.relations.has(n)) this.all = true
    // A name a subquery or CTE gave a column exposes the column it was given to.
    for (let grown = true; grown;) {
      grown = false
      for (const [given, stored] of this.renames) {
        if (this.exposed.has(given) && !this.exposed.has(stored)) { this.exposed.add(stored); grown = true }
      }
    }
    for (const n of this.exposed) if (this.positional.has(n)) this.all = true
    const qualified = [...this.qualified]
    const ofTables = [...this.ofTables.values()]
    const columnsOf = [...this.exposedOf.values()].filter((q) => !this.exposed.has(q.name))
    if (!(this.all || this.rowCode || this.exposed.size > 0 || qualified.length > 0 || ofTables.length > 0 || columnsOf.length > 0)) return undefined
    const e: Exposure = { columns: [...this.exposed], all: this.all, qualified, ofTables, columnsOf }
    if (this.rowCode) e.rowCode = true
    return e
  }

  private push (v: unknown, pos: Position = other, origin = false, scope = this.scope): void {
    if (v !== undefined && v !== null) this.stack.push({ v, pos, origin, scope })
  }

  /** A wrapped node (`{ "ColumnRef": {…} }`) or a bare field object, whose children are visited as `other`. */
  private object (o: Obj, it: Item): void {
    const keys = Object.keys(o)
    if (keys.length === 1 && /^[A-Z]/.test(keys[0])) {
      const body = o[keys[0]]
      if (isObj(body)) this.node(keys[0], body, it)
      return
    }
    // A window (`OVER (PARTITION BY …)`) comes as a bare body; its partitions only group.
    for (const k of keys) this.push(o[k], k === 'partitionClause' ? compared : other)
  }

  private node (kind: string, b: Obj, it: Item): void {
    switch (kind) {
      case 'ColumnRef': return this.column(b, it.pos)
      case 'SelectStmt': return this.select(b, it.origin)
      case 'RangeVar':
        this.relations.add(String(b.relname))
        return this.alias(b.alias)
      case 'RangeSubselect': {
        // VALUES rows are computed from expressions judged where they stand: its column list renames no stored column.
        const values = isObj(b.subquery) && isObj(b.subquery.SelectStmt) && b.subquery.SelectStmt.valuesLists !== undefined
        this.alias(b.alias, !values)
        return this.push(b.subquery, other, true)
      }
      // What a function returns was computed from its arguments, which are judged as any
      // expression; its alias names no stored row (`generate_series(1, 9) AS g(n)`).
      case 'RangeFunction': return this.push(b.functions)
      case 'JoinExpr':
        this.alias(b.alias, true)
        this.alias(b.join_using_alias, true)
        // A merged USING column is COALESCE(left, right) in a FULL JOIN, and in any join the
        // side converted to the common type when the two differ: then reported as computed.
        if (b.isNatural === true) this.all = true
        for (const n of names(b.usingClause)) this.exposed.add(n)
        this.push(b.larg)
        this.push(b.rarg)
        return this.push(b.quals, compared)
      case 'SubLink': {
        const testing = testingSublinks.has(String(b.subLinkType))
        this.push(b.testexpr, testing && (b.operName === undefined || isComparison(b.operName)) ? compared : other)
        return this.push(b.subselect, other, testing)
      }
      case 'A_Expr': {
        const kindName = String(b.kind)
        // A prefix operator (`~ssn`, `-salary`) computes on its one operand; inside a comparison,
        // text concatenation and NULLIF only help compare (`lower(name || email) LIKE $1`).
        const binary = b.lexpr !== undefined && b.rexpr !== undefined
        const helps = it.pos === compared && ((kindName === 'AEXPR_OP' && names(b.name).join('.') === '||') || kindName === 'AEXPR_NULLIF')
        const pos = binary && (helps || matchKinds.has(kindName) || (comparisonKinds.has(kindName) && isComparison(b.name))) ? compared : other
        this.push(b.lexpr, pos)
        const r = isObj(b.rexpr) && isObj(b.rexpr.List) ? b.rexpr.List.items : b.rexpr
        return this.push(r, pos)
      }
      case 'FuncCall':
        // SYSTEM_USER is a keyword since PostgreSQL 16; to 15 it is a name, a column's where a table has one (`lower(system_user)`).
        if (b.funcformat === 'COERCE_SQL_SYNTAX' && names(b.funcname).join('.') === 'pg_catalog.system_user') {
          return this.column({ fields: [{ String: { sval: 'system_user' } }] }, it.pos)
        }
        return this.call(b, it.pos)
      case 'CoalesceExpr': return this.push(b.args, it.pos === compared ? compared : other) // `coalesce(email, '') = $1`
      case 'TypeCast':
        // A conversion to text never fails and is compared as the value is (`email::text LIKE …`).
        return this.push(b.arg, it.pos === compared && isTextType(b.typeName) ? compared : other)
      case 'RowExpr': return this.push(b.args, it.pos === compared ? compared : other) // `(email, id) > ($1, $2)`
      case 'BoolExpr': return this.push(b.args, compared)
      case 'NullTest': case 'BooleanTest': return this.push(b.arg, compared)
      case 'CaseExpr':
        this.push(b.arg, compared)
        this.push(b.args)
        return this.push(b.defresult)
      case 'CaseWhen':
        this.push(b.expr, compared)
        return this.push(b.result)
      case 'SortBy': return this.push(b.node, compared)
      case 'GroupingSet': return this.push(b.content, compared)
      case 'WindowDef': return this.object(b, it)
      case 'CollateClause': return this.push(b.arg, it.pos === compared ? compared : other)
      case 'A_Indirection':
        // `(c).email`: the selected field names a column too; subscripts are expressions.
        for (const i of Array.isArray(b.indirection) ? b.indirection : []) if (isObj(i) && isObj(i.String)) this.exposed.add(String(i.String.sval))
        this.push(b.indirection)
        return this.push(b.arg)
      // Statements that return their query's rows as they are.
      case 'DeclareCursorStmt': case 'ExplainStmt': case 'PrepareStmt': return this.push(b.query, other, true)
      // A prepared statement's rows are returned as they are, or copied into a table (`CREATE TABLE x AS EXECUTE p`): every column of them.
      case 'ExecuteStmt':
        if (!it.origin) this.all = true
        return this.push(b.params)
      case 'InsertStmt': case 'UpdateStmt': case 'DeleteStmt': case 'MergeStmt': return this.modify(kind, b, it.origin)
      // A column renamed, or its table renamed or moved, is no longer found by the name a mask rule gives it.
      case 'RenameStmt':
        if (b.renameType === 'OBJECT_COLUMN' && typeof b.subname === 'string') this.exposed.add(b.subname)
        else if (renamedRelations.has(String(b.renameType))) this.all = true
        return
      case 'AlterObjectSchemaStmt':
        if (isObj(b.relation)) this.all = true
        return
      // A table made a child or a partition has its rows read through the parent, whose columns no rule of the child's names.
      case 'AlterTableCmd':
        if (b.subtype === 'AT_AddInherit' || b.subtype === 'AT_AttachPartition') this.all = true
        // A column's type changed converts every stored value, and a domain's checks run on each (`TYPE d`, `d` checking with any function).
        if (b.subtype === 'AT_AlterColumnType' && typeof b.name === 'string') this.exposed.add(b.name)
        if (attachesRowCode(kind, b)) this.rowCode = true
        for (const k in b) this.push(b[k])
        return
      case 'CopyStmt':
        // COPY … TO sends rows with no RowDescription, so every column it copies leaves as it
        // is: a table's listed columns, or all of them (its query's columns are walked as computed).
        if (b.is_from !== true && isObj(b.relation)) {
          const listed = names(b.attlist)
          if (listed.length === 0) this.all = true
          for (const n of listed) this.exposed.add(n)
        }
        for (const k in b) this.push(b[k])
        return
      case 'CreateTrigStmt': case 'RuleStmt': case 'CreatePolicyStmt': case 'AlterPolicyStmt': {
        if (attachesRowCode(kind, b)) this.rowCode = true
        // A trigger's function runs on the rows of a table its text need not name, as a call would.
        const fn = kind === 'CreateTrigStmt' ? names(b.funcname).at(-1) : undefined
        if (fn !== undefined) this.calls.add(fn)
        for (const k in b) this.push(b[k])
        return
      }
      case 'CreateFunctionStmt':
        if (replacesFunction(b)) this.replacesFunction = true
        for (const k in b) this.push(b[k])
        return
      default:
        for (const k in b) this.push(b[k])
    }
  }

  private call (b: Obj, pos: Position): void {
    const name = names(b.funcname)
    if (pos !== compared && name.length > 0) this.calls.add(name[name.length - 1])
    const fn = name.length === 1 || (name.length === 2 && name[0] === 'pg_catalog') ? name[name.length - 1] : ''
    const args = Array.isArray(b.args) ? b.args : []
    const plain = b.over === undefined && b.agg_order === undefined && b.agg_filter === undefined && b.agg_distinct !== true
    // `count(email)` counts; `lower(email) = lower($1)`, `strpos(email, $1) > 0` compare: none returns the value.
    const argPos = (fn === 'count' && args.length === 1) || (plain && pos === compared && args.length <= (comparedCalls.get(fn) ?? 0)) ? compared : other
    this.push(b.args, argPos)
    // `percentile_disc(0) WITHIN GROUP (ORDER BY email)` returns the value it orders by.
    if (b.agg_within_group === true) for (const o of Array.isArray(b.agg_order) ? b.agg_order : []) this.push(isObj(o) && isObj(o.SortBy) ? o.SortBy.node : o)
    else this.push(b.agg_order)
    this.push(b.agg_filter, compared)
    this.push(b.over)
  }

  private select (b: Obj, origin: boolean): void {
    const scope = new FromScope(this.scope, this.ctes(b.withClause))
    // A set operation's columns are reported as computed, whatever its arms select.
    if (b.op !== 'SETOP_NONE') {
      // Its arms come as bare SELECT bodies.
      this.push({ SelectStmt: b.larg }, other, false, scope)
      this.push({ SelectStmt: b.rarg }, other, false, scope)
      for (const v of [b.sortClause, b.limitCount, b.limitOffset]) this.push(v, other, false, scope)
      return
    }
    for (const f of Array.isArray(b.fromClause) ? b.fromClause : []) scope.from(f)
    this.scope = scope
    for (const k in b) {
      const v = b[k]
      switch (k) {
        case 'targetList': this.targets(v, origin && b.intoClause === undefined); break
        case 'whereClause': case 'havingClause': case 'groupClause': case 'distinctClause': this.push(v, compared); break
        case 'lockingClause': case 'withClause': break
        default: this.push(v)
      }
    }
  }

  /** INSERT, UPDATE, DELETE, MERGE: their target (a bare RangeVar) is a table of the text, and RETURNING returns as a select list does (`origin`: as stored, but inside COPY). */
  private modify (kind: string, b: Obj, origin: boolean): void {
    const scope = new FromScope(this.scope, this.ctes(b.withClause))
    if (isObj(b.relation)) {
      scope.relation(b.relation, true)
      this.relations.add(String(b.relation.relname))
      this.alias(b.relation.alias)
    }
    for (const f of [b.fromClause, b.usingClause, b.sourceRelation].flatMap((x) => (Array.isArray(x) ? x : [x]))) scope.from(f)
    if (kind === 'InsertStmt' && b.onConflictClause !== undefined) scope.proposed()
    this.scope = scope
    for (const k in b) {
      const v = b[k]
      if (k === 'returningClause' && isObj(v)) this.targets(v.exprs, origin)
      else if (k === 'targetList' && kind === 'UpdateStmt') this.assignments(v, false)
      else if (k === 'onConflictClause' && isObj(v)) {
        this.assignments(v.targetList, true)
        this.push(v.infer)
        this.push(v.whereClause, compared)
      } else if (k === 'mergeWhenClauses' && Array.isArray(v)) {
        for (const w of v) {
          const when = isObj(w) && isObj(w.MergeWhenClause) ? w.MergeWhenClause : {}
          this.assignments(when.targetList, false)
          this.push(when.values)
          this.push(when.condition, compared)
        }
      } else if (k !== 'withClause' && k !== 'relation') this.push(v)
    }
  }

  /**
   * A WITH clause: its CTEs by name for the statement, each body walked seeing the CTEs before
   * it (all of them when RECURSIVE), as PostgreSQL scopes them.
   */
  private ctes (w: unknown): Map<string, Source> {
    const all = new Map<string, Source>()
    if (!isObj(w)) return all
    const list = (Array.isArray(w.ctes) ? w.ctes : []).flatMap((c) => (isObj(c) && isObj(c.CommonTableExpr) ? [c.CommonTableExpr] : []))
    for (const c of list) {
      const name = String(c.ctename)
      this.relations.add(name)
      for (const n of names(c.aliascolnames)) this.positional.add(n)
      all.set(name, sourceOf(c.ctequery, undefined, c.aliascolnames))
    }
    const seen = new Map<string, Source>()
    for (const c of list) {
      this.push(c.ctequery, other, true, new FromScope(this.scope, w.recursive === true ? all : new Map(seen)))
      seen.set(String(c.ctename), all.get(String(c.ctename)) as Source)
    }
    return all
  }

  /**
   * A SET list (UPDATE, ON CONFLICT, MERGE): a column set to itself, or in ON CONFLICT
   * (`proposed`) to the row's own proposed value (`email = excluded.email`), moves no value
   * into another column; any other value is an exposure.
   */
  private assignments (list: unknown, proposed: boolean): void {
    for (const t of Array.isArray(list) ? list : []) {
      const rt = isObj(t) && isObj(t.ResTarget) ? t.ResTarget : undefined
      if (rt === undefined) { this.push(t); continue }
      const fields = isObj(rt.val) && isObj(rt.val.ColumnRef) ? rt.val.ColumnRef.fields : undefined
      const parts = names(fields)
      const same = typeof rt.name === 'string' && rt.indirection === undefined && Array.isArray(fields) && parts.length === fields.length && parts.at(-1) === rt.name
      const itself = same && parts.length === 1
      // Only where `excluded` is ON CONFLICT's own (no table of the statement aliased so).
      const fromProposed = same && proposed && parts.length === 2 && parts[0] === 'excluded' && this.scope?.trusted('excluded')?.kind === 'rows'
      this.push(rt.val, itself || fromProposed ? compared : other)
      this.push(rt.indirection)
    }
  }

  /** A select or RETURNING list; `origin` when its plain columns reach the client with their table and column. */
  private targets (list: unknown, origin: boolean): void {
    for (const t of Array.isArray(list) ? list : []) {
      const rt = isObj(t) && isObj(t.ResTarget) ? t.ResTarget : undefined
      if (rt === undefined) { this.push(t); continue }
      const stored = columnName(rt.val)
      if (typeof rt.name === 'string' && stored !== undefined && stored !== rt.name) this.renames.push([rt.name, stored])
      this.push(rt.val, origin ? returned : other)
      this.push(rt.indirection)
    }
  }

  /** An alias names a relation of the text; `positional`: its column list (`AS x(e)`) renames stored columns by position, so `e` may be any of them. */
  private alias (a: unknown, positional = true): void {
    if (!isObj(a)) return
    if (typeof a.aliasname === 'string') this.relations.add(a.aliasname)
    if (positional) for (const n of names(a.colnames)) this.positional.add(n)
  }

  private column (b: Obj, pos: Position): void {
    const fields = Array.isArray(b.fields) ? b.fields : []
    const last = fields[fields.length - 1]
    if (!isObj(last) || !isObj(last.String)) {
      // `*`: as a select list entry each column keeps its origin; anywhere else it may carry
      // any of them, unless its rows are computed (`INSERT … SELECT * FROM unnest($1)`).
      if (pos === returned) return
      const rel = fields.length === 2 && isObj(fields[0]) && isObj(fields[0].String) ? String(fields[0].String.sval) : undefined
      const computed = fields.length > 2 ? false : rel === undefined ? this.scope?.onlyRows() === true : this.scope?.trusted(rel)?.kind === 'rows'
      if (!computed) this.all = true
      return
    }
    const name = String(last.String.sval)
    // A lone name may be a whole row (`SELECT c FROM customers c`), reported as column 0 of its table.
    if (fields.length === 1 && pos !== compared && this.scope?.trusted(name)?.kind !== 'rows') this.wholeRows.add(name)
    const rel = fields.length === 2 && isObj(fields[0]) && isObj(fields[0].String) ? String(fields[0].String.sval) : undefined
    const source = rel === undefined ? undefined : this.scope?.trusted(rel)
    // `x.col` with `x` a table the text names once is that table's column, and no other's.
    const own = source?.kind === 'table' && source.relation !== undefined ? { relation: source.relation, name } : undefined
    if (fields.length > 1 && !systemColumns.has(name)) {
      // `x.f` is a column where `x` is computed rows or defines `f`; else maybe the call `f(x)`.
      if (own !== undefined) this.ofTables.set(`${own.relation}\0${name}`, own)
      else if (source?.kind !== 'rows' && !(source?.kind === 'defines' && source.columns?.includes(name) === true)) this.qualified.add(name)
    }
    if (pos === other) {
      if (own !== undefined) this.exposedOf.set(`${own.relation}\0${name}`, own)
      else this.exposed.add(name)
    }
  }
}

/**
 * Functions that, with at most that many arguments, never fail with an argument in the message
 * and, inside a comparison, only help compare (`length(bytea, name)` reads an encoding name,
 * and its error quotes it: one argument only).
 */
export const comparedCalls = new Map([['lower', 1], ['upper', 1], ['length', 1], ['char_length', 1], ['strpos', 2], ['position', 2],
  ['btrim', 2], ['ltrim', 2], ['rtrim', 2], ['left', 2], ['right', 2], ['starts_with', 2], ['substr', 3], ['substring', 3],
  ['to_tsvector', 2], ['concat', Infinity], ['concat_ws', Infinity]])
const systemColumns = new Set(['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid', 'oid'])
const renamedRelations = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE'])
const textTypes = new Set(['text', 'varchar', 'bpchar', 'citext', 'name'])

function isTextType (typeName: unknown): boolean {
  const n = isObj(typeName) ? names(typeName.names) : []
  const arrayBounds = isObj(typeName) && Array.isArray(typeName.arrayBounds) && typeName.arrayBounds.length > 0
  return !arrayBounds && (n.length === 1 || (n.length === 2 && n[0] === 'pg_catalog')) && textTypes.has(n[n.length - 1] ?? '')
}

function isComparison (name: unknown): boolean {
  const parts = names(name)
  if (parts.length > 2 || (parts.length === 2 && parts[0] !== 'pg_catalog')) return false
  return comparisons.has(parts[parts.length - 1] ?? '')
}

/**
 * The exposures of parsed statements (`parseSync(…).stmts[].stmt`), or undefined when every
 * column they name reaches the client only as it is stored, or is only compared.
 */
export function exposure (stmts: readonly unknown[]): Exposure | undefined {
  return exposureAndCalls(stmts).exposes
}

/**
 * `exposure`, and the functions (last name part) whose result reaches the client or is
 * computed on, not only compared: what a function returns is of no table, whatever its body
 * read (see `routineMasks`).
 */
export function exposureAndCalls (stmts: readonly unknown[]): { exposes: Exposure | undefined, calls: string[], replacesFunction: boolean } {
  const w = new Walk()
  for (const s of stmts) w.statement(s)
  return { exposes: w.result(), calls: [...w.calls], replacesFunction: w.replacesFunction }
}
