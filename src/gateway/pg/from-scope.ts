/**
 * What the names a statement's FROM items and CTEs give stand for, one query level at a time,
 * as far as masking needs to know: whether `x.f` is a column `x` has, or PostgreSQL's
 * functional notation `f(x)`, a call on `x`'s whole row.
 */

export type Obj = Record<string, unknown>

/**
 * `table`: a stored table's rows (only the catalog knows its columns). `rows`: rows computed
 * from expressions judged where they stand (a function in FROM, VALUES, ON CONFLICT's
 * `excluded`). `defines`: a subquery's or CTE's rows, with the columns it names, in order
 * (undefined when not known, as behind `*`).
 */
export type Source = { kind: 'table', relation?: string } | { kind: 'rows' } | { kind: 'defines', columns: readonly string[] | undefined }

const table: Source = { kind: 'table' }
const rows: Source = { kind: 'rows' }

/**
 * The names one query level sees: its FROM items and CTEs, then those of the levels around it.
 * This follows PostgreSQL's visibility only roughly (a function's arguments and a subquery in
 * FROM do not really see their siblings; a join's alias hides the names inside it), so a
 * caller trusts what a name stands for only when it is bound once in this level and the
 * levels around it (`once`).
 */
export class FromScope {
  private readonly sources = new Map<string, Source>()
  private readonly bound = new Map<string, number>()

  /** `ctes`: the CTEs this level declares and may use, by name. */
  constructor (readonly up: FromScope | undefined, private readonly ctes: ReadonlyMap<string, Source> = new Map()) {}

  /** Whether `name` is bound exactly once here and around: then `source` tells what it stands for. */
  private once (name: string): boolean {
    let n = 0
    for (let s: FromScope | undefined = this; s !== undefined; s = s.up) n += s.bound.get(name) ?? 0
    return n === 1
  }

  /** What `name` stands for when `once` trusts it, else undefined. */
  trusted (name: string): Source | undefined {
    return this.once(name) ? this.source(name) : undefined
  }

  /** What `name` stands for at this level, the nearest binding first; undefined when nothing here names it. */
  private source (name: string): Source | undefined {
    for (let s: FromScope | undefined = this; s !== undefined; s = s.up) {
      const found = s.sources.get(name)
      if (found !== undefined) return found
    }
    return undefined
  }

  /** Whether every FROM item of this very level is computed rows (`SELECT * FROM unnest(…)`), each name trusted. */
  onlyRows (): boolean {
    if (this.sources.size === 0) return false
    for (const [name, s] of this.sources) if (s.kind !== 'rows' || !this.once(name)) return false
    return true
  }

  /** Adds what a FROM item names (a wrapped node: RangeVar, RangeSubselect, RangeFunction, JoinExpr…). */
  from (item: unknown): void {
    if (!isObj(item)) return
    if (isObj(item.RangeVar)) return this.relation(item.RangeVar)
    if (isObj(item.RangeTableSample)) return this.from(item.RangeTableSample.relation)
    if (isObj(item.RangeSubselect)) {
      // Unaliased (PostgreSQL 16 and later) it still counts among the level's items.
      this.bind(aliasName(item.RangeSubselect.alias) ?? '', sourceOf(item.RangeSubselect.subquery, item.RangeSubselect.alias))
      return
    }
    if (isObj(item.RangeFunction)) {
      // Without an alias a function's rows go by its name.
      const first = Array.isArray(item.RangeFunction.functions) ? item.RangeFunction.functions[0] : undefined
      const items = isObj(first) && isObj(first.List) && Array.isArray(first.List.items) ? first.List.items : []
      const call = isObj(items[0]) && isObj(items[0].FuncCall) ? items[0].FuncCall : undefined
      const name = aliasName(item.RangeFunction.alias) ?? names(call?.funcname).at(-1)
      this.bind(name ?? '', rows)
      return
    }
    if (isObj(item.JoinExpr)) {
      this.from(item.JoinExpr.larg)
      this.from(item.JoinExpr.rarg)
      for (const a of [item.JoinExpr.alias, item.JoinExpr.join_using_alias]) {
        const name = aliasName(a)
        if (name !== undefined) this.bind(name, table)
      }
    }
  }

  /**
   * A relation named by a RangeVar: a CTE in scope, else a table (`relation`: as the text names
   * it, `table` or `schema.table`); a statement's own target (`target`) is always a table.
   */
  relation (rv: Obj, target = false): void {
    const rel = String(rv.relname)
    const cte = rv.schemaname === undefined && !target ? this.cte(rel) : undefined
    // `AS x(a, b)` renames its columns by position: `x.b` is then no column the catalog names `b`.
    const renames = isObj(rv.alias) && names(rv.alias.colnames).length > 0
    const stored: Source = renames ? table : { kind: 'table', relation: typeof rv.schemaname === 'string' ? `${rv.schemaname}.${rel}` : rel }
    this.bind(aliasName(rv.alias) ?? rel, cte === undefined ? stored : renamed(cte, rv.alias))
  }

  /** ON CONFLICT's `excluded`: the row the statement proposes. */
  proposed (): void { this.bind('excluded', rows) }

  private bind (name: string, source: Source): void {
    this.sources.set(name, source)
    this.bound.set(name, (this.bound.get(name) ?? 0) + 1)
  }

  private cte (name: string): Source | undefined {
    for (let s: FromScope | undefined = this; s !== undefined; s = s.up) {
      const found = s.ctes.get(name)
      if (found !== undefined) return found
    }
    return undefined
  }
}

/** What a subquery or CTE body (a wrapped SelectStmt or data-modifying statement) gives, renamed by its alias's column list. */
export function sourceOf (query: unknown, alias?: unknown, aliasColumns?: unknown): Source {
  const q = isObj(query) ? query : {}
  let select = isObj(q.SelectStmt) ? q.SelectStmt : undefined
  if (select?.valuesLists !== undefined) return rows
  // A set operation's columns are named by its first arm.
  while (select !== undefined && select.op !== 'SETOP_NONE' && isObj(select.larg)) select = select.larg
  const body = select ?? (isObj(q.InsertStmt) ? q.InsertStmt : isObj(q.UpdateStmt) ? q.UpdateStmt : isObj(q.DeleteStmt) ? q.DeleteStmt : isObj(q.MergeStmt) ? q.MergeStmt : undefined)
  const list = select !== undefined ? select.targetList : isObj(body?.returningClause) ? body.returningClause.exprs : undefined
  let columns: string[] | undefined = []
  for (const t of Array.isArray(list) ? list : []) {
    const rt = isObj(t) && isObj(t.ResTarget) ? t.ResTarget : undefined
    // `*`, `x.*` and `(x).*` stand for columns the text does not name (an `AS` on them is ignored).
    if (isStar(rt?.val)) { columns = undefined; break }
    columns.push((rt === undefined ? undefined : typeof rt.name === 'string' ? rt.name : implicitName(rt.val)) ?? '?column?')
  }
  return renamed({ kind: 'defines', columns }, alias, aliasColumns)
}

/** A source seen through an alias whose column list (`AS t(x, y)`) renames its columns by position. */
function renamed (source: Source, alias: unknown, aliasColumns?: unknown): Source {
  const given = names(isObj(alias) ? alias.colnames : aliasColumns)
  if (given.length === 0 || source.kind !== 'defines') return source
  return { kind: 'defines', columns: source.columns?.map((c, i) => given[i] ?? c) }
}

/** Whether a select-list value expands to columns: `*`, `x.*`, `(x).*`, `(x).f.*`. */
function isStar (v: unknown): boolean {
  const parts = isObj(v) && isObj(v.ColumnRef) ? v.ColumnRef.fields : isObj(v) && isObj(v.A_Indirection) ? v.A_Indirection.indirection : undefined
  const last = Array.isArray(parts) ? parts[parts.length - 1] : undefined
  return isObj(last) && isObj(last.A_Star)
}

function aliasName (a: unknown): string | undefined {
  return isObj(a) && typeof a.aliasname === 'string' ? a.aliasname : undefined
}

/** The string values of a list of String nodes. */
export function names (list: unknown): string[] {
  return (Array.isArray(list) ? list : []).flatMap((i) => (isObj(i) && isObj(i.String) ? [String(i.String.sval)] : []))
}

/** The name PostgreSQL gives a select-list entry without `AS` (its FigureColname, for the common forms); undefined when not known. */
function implicitName (v: unknown): string | undefined {
  return figure(v)[0]
}

/** FigureColnameInternal: a name and how strongly the node gives it (2: its own; 1: a type's or `case`; 0: none). */
function figure (v: unknown): [string | undefined, number] {
  if (!isObj(v)) return [undefined, 0]
  if (isObj(v.ColumnRef)) return [names(v.ColumnRef.fields).at(-1), 2] // `c.*` is named `c`
  if (isObj(v.A_Indirection)) {
    if (isStar(v)) return [undefined, 0]
    const field = names(v.A_Indirection.indirection).at(-1)
    return field !== undefined ? [field, 2] : figure(v.A_Indirection.arg)
  }
  if (isObj(v.FuncCall)) return [names(v.FuncCall.funcname).at(-1), 2]
  if (isObj(v.TypeCast)) {
    const inner = figure(v.TypeCast.arg)
    return inner[1] > 1 ? inner : [isObj(v.TypeCast.typeName) ? names(v.TypeCast.typeName.names).at(-1) : undefined, 1]
  }
  if (isObj(v.CollateClause)) return figure(v.CollateClause.arg)
  if (isObj(v.CaseExpr)) return ['case', 1]
  return [undefined, 0]
}

/** The column a plain column reference names (its last part), else undefined. */
export function columnName (v: unknown): string | undefined {
  const fields = isObj(v) && isObj(v.ColumnRef) && Array.isArray(v.ColumnRef.fields) ? v.ColumnRef.fields : []
  const last = fields[fields.length - 1]
  return isObj(last) && isObj(last.String) ? String(last.String.sval) : undefined
}

export function isObj (v: unknown): v is Obj { return v !== null && typeof v === 'object' && !Array.isArray(v) }
