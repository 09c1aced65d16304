import pg from 'pg'
import { upstreamTls } from './upstream-tls.js'
import type { ColumnName } from './mask.js'

/**
 * Answers kept by key, oldest forgotten first: at most 10,000 of them, and at most `maxWeight`
 * in all, an answer weighing its key's characters unless `weigh` says otherwise. A statement
 * may name tens of thousands of tables (up to the gateway's 1 MiB statement limit), and every
 * list is a key of its own: bounded by number alone, a few thousand such statements from one
 * session held gigabytes in the memory every session of the process shares. The newest answers
 * are always kept, for the statement that asked.
 */
class Remembered<V> {
  private readonly entries = new Map<string, { at: number, value: V, batch: number, weight: number }>()
  private weight = 0
  private batches = 0

  constructor (
    private readonly maxWeight: number,
    private readonly weigh: (key: string, value: V) => number = (key) => key.length,
    private readonly maxEntries = 10_000
  ) {}

  /** The answer for `key` read after `since`, or undefined. */
  get (key: string, since: number): V | undefined {
    const e = this.entries.get(key)
    return e === undefined || e.at <= since ? undefined : e.value
  }

  /** Keeps the answers of one catalog query, read at `at`; older ones go first when the bounds are passed. */
  set (answers: Iterable<[string, V]>, at: number): void {
    const batch = ++this.batches
    for (const [key, value] of answers) {
      this.forget(key)
      const weight = this.weigh(key, value)
      this.entries.set(key, { at, value, batch, weight })
      this.weight += weight
    }
    for (const [oldest, e] of this.entries) {
      if (e.batch === batch || (this.weight <= this.maxWeight && this.entries.size <= this.maxEntries)) break
      this.forget(oldest)
    }
  }

  private forget (key: string): void {
    const e = this.entries.get(key)
    if (e === undefined) return
    this.entries.delete(key)
    this.weight -= e.weight
  }
}

/**
 * The first of `names` of which `known` says true; 'wait' when it knows one not yet (undefined),
 * before any true, as a decision waits for the catalog; undefined when none.
 */
export function firstKnown (names: readonly string[], known: (name: string) => boolean | undefined): string | 'wait' | undefined {
  let first: string | undefined
  for (const n of names) {
    const k = known(n)
    if (k === undefined) return 'wait'
    if (k) first ??= n
  }
  return first
}

/**
 * The condition that names every relation of a schema given as `schema.*` (one a statement drops
 * or renames), only when `tables` has one: each condition on the list is checked against every
 * row of pg_class, and a statement may name tens of thousands of tables.
 */
function schemaCondition (tables: readonly string[]): string {
  return tables.some((t) => t.endsWith('.*')) ? " OR n.nspname || '.*' = ANY($1::text[])" : ''
}

/**
 * Table and column names by table OID and attribute number, read from an upstream's catalog
 * with the target's credentials, for masking (RowDescription names columns only by number).
 * Entries expire after `ttlMs` (30 s by default): a table dropped and re-created gets a new OID anyway.
 */
export class Catalog {
  private pool: pg.Pool
  /** `sslmode=prefer`: the plain pool to fall back on, once, should the upstream offer no TLS. */
  private plain: (() => pg.Pool) | undefined
  /**
   * Column names by attribute number, by table OID, each table weighing its columns: without a
   * bound, a session making a temporary table again and again (a new OID each time) grew it
   * for as long as the process ran.
   */
  private readonly tables: Remembered<ReadonlyMap<number, ColumnName>>
  private readonly functions: Remembered<boolean>
  private readonly columns: Remembered<readonly ColumnName[]>
  private readonly reached: Remembered<{ all: readonly string[], viewed: { relations: readonly string[], columns: ReadonlySet<string> | 'all' } }>
  private readonly procs = new Remembered<string | null>(1024 * 1024)
  private readonly systemNames = new Remembered<boolean>(1024 * 1024)
  private readonly routines = new Remembered<ReadonlyArray<{ language: string, definition: string }>>(4 * 1024 * 1024, (key, defs) => key.length + defs.reduce((n, d) => n + d.definition.length, 0))

  /**
   * `maxNameChars`: characters of table lists and function names kept, per kind of answer
   * (default 4 Mi); `maxColumns`: column names kept for masking, a table counting one more (200,000).
   */
  constructor (upstream: URL, private readonly ttlMs = 30_000, opts: { maxNameChars?: number, maxColumns?: number } = {}) {
    const max = opts.maxNameChars ?? 4 * 1024 * 1024
    this.tables = new Remembered(opts.maxColumns ?? 200_000, (_, columns) => 1 + columns.size)
    this.functions = new Remembered(max)
    this.columns = new Remembered(max)
    this.reached = new Remembered(max)
    // TLS as the sessions connect (`upstreamTls`): node-postgres reads `sslmode` otherwise
    // (`prefer` and `require` as `verify-full`, no fallback to plain).
    const tls = upstreamTls(upstream)
    const url = new URL(upstream)
    url.searchParams.delete('sslmode')
    // Sessions wait on these answers: a catalog query that runs long fails (and its statement is refused) rather than stall them.
    const open = (ssl: pg.PoolConfig['ssl']): pg.Pool => {
      const pool = new pg.Pool({ connectionString: url.toString(), ssl, max: 2, idleTimeoutMillis: 10_000, connectionTimeoutMillis: 5000, statement_timeout: 5000 })
      pool.on('error', () => {})
      return pool
    }
    this.pool = open(tls.attempt ? tls.options : false)
    if (tls.attempt && !tls.required) this.plain = () => open(false)
  }

  /** A catalog query; under `prefer`, an upstream that turns TLS down is asked again in plain, and from then on. */
  private async query<R extends pg.QueryResultRow> (text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    const pool = this.pool
    try {
      return await pool.query<R>(text, values)
    } catch (err) {
      if (!/does not support SSL/.test((err as Error).message)) throw err
      // Queries sent together all fail on the TLS pool: the first swaps it, the others follow it.
      if (pool === this.pool) {
        if (this.plain === undefined) throw err
        this.pool = this.plain()
        this.plain = undefined
        void pool.end().catch(() => {})
      }
      return await this.pool.query<R>(text, values)
    }
  }

  /**
   * The names of result columns by `(tableOid, column)`; answers from memory when it can. A
   * table remembered without one of the columns asked for (added since it was read) is read again.
   */
  async resolve (fields: ReadonlyArray<{ tableOid: number, column: number }>): Promise<(oid: number, column: number) => ColumnName | undefined> {
    const now = Date.now()
    const held = new Map<number, ReadonlyMap<number, ColumnName> | undefined>()
    for (const f of fields) if (f.tableOid !== 0 && !held.has(f.tableOid)) held.set(f.tableOid, this.tables.get(String(f.tableOid), now - this.ttlMs))
    const missing = [...held.keys()].filter((o) => held.get(o) === undefined || fields.some((f) => f.tableOid === o && f.column > 0 && held.get(o)?.has(f.column) !== true))
    if (missing.length > 0) {
      const { rows } = await this.query<{ oid: string, schema: string, table: string, attnum: number, column: string }>(
        `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS table, a.attnum, a.attname AS column
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0`, [missing])
      const read = new Map(missing.map((o) => [o, new Map<number, ColumnName>()]))
      for (const r of rows) read.get(Number(r.oid))?.set(r.attnum, { schema: r.schema, table: r.table, column: r.column })
      for (const [o, columns] of read) held.set(o, columns)
      this.tables.set([...read].map(([o, columns]) => [String(o), columns]), now)
    }
    // The names as this call found them, whatever the memory forgets meanwhile for other tables.
    return (oid, column) => held.get(oid)?.get(column)
  }

  /**
   * The columns of every relation a statement may mean by the names it uses (`table` or
   * `schema.table`, as PostgreSQL folded them), from memory; undefined until `readColumns`
   * has read them. An unqualified name counts in every schema, since the session's
   * search_path is not this pool's; `schema.*` (a whole schema dropped or renamed) names every relation in it.
   */
  columnsOf (tables: readonly string[]): readonly ColumnName[] | undefined {
    if (tables.length === 0) return []
    return this.columns.get(tables.join('\0'), Date.now() - this.ttlMs)
  }

  async readColumns (tables: readonly string[]): Promise<void> {
    const now = Date.now()
    // Names compared as they are: a quoted `"People"` stays `People`.
    const { rows } = await this.query<{ schema: string, table: string, column: string }>(
      `SELECT n.nspname AS schema, c.relname AS table, a.attname AS column
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE (c.relname = ANY($1::text[]) OR n.nspname || '.' || c.relname = ANY($1::text[])${schemaCondition(tables)})
          AND a.attnum > 0 AND NOT a.attisdropped`, [tables])
    this.columns.set([[tables.join('\0'), rows]], now)
  }

  /**
   * The relations a statement reaches through the ones it names (`schema.table`): inheritance
   * children and partitions, the tables and views a view reads (its `_RETURN` rule), theirs in
   * turn, and the parents of each of these (a partition named alone is still its table's
   * rows). From memory; undefined until `readBehind` has read them. Names resolve as in
   * `columnsOf`; `schema.*` (a whole schema dropped or renamed) names every relation in it.
   */
  behind (tables: readonly string[]): readonly string[] | undefined {
    return this.reached.get(tables.join('\0'), Date.now() - this.ttlMs)?.all
  }

  /**
   * Of `behind(tables)`, the relations reached through a view or a materialized view (a result
   * column read through one is reported as the view's, whatever column it shows), and the
   * names of the columns those views' rules read ('all' where one reads a whole row).
   */
  throughViews (tables: readonly string[]): { relations: readonly string[], columns: ReadonlySet<string> | 'all' } | undefined {
    return this.reached.get(tables.join('\0'), Date.now() - this.ttlMs)?.viewed
  }

  async readBehind (tables: readonly string[]): Promise<void> {
    const now = Date.now()
    const { rows } = await this.query<{ name: string, viewed: boolean }>(
      `WITH RECURSIVE edges (parent, child, view) AS (
         SELECT inhparent, inhrelid, false FROM pg_inherits
         UNION ALL
         SELECT r.ev_class, d.refobjid, true FROM pg_rewrite r
           JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
          WHERE r.ev_type = '1' AND d.refobjid <> r.ev_class
       ), down (oid, viewed) AS (
         SELECT c.oid, false FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = ANY($1::text[]) OR n.nspname || '.' || c.relname = ANY($1::text[])${schemaCondition(tables)}
         UNION
         SELECT e.child, d.viewed OR e.view FROM edges e JOIN down d ON e.parent = d.oid
       ), up (oid, viewed) AS (
         SELECT oid, viewed FROM down
         UNION
         SELECT i.inhparent, u.viewed FROM pg_inherits i JOIN up u ON i.inhrelid = u.oid
       )
       SELECT n.nspname || '.' || c.relname AS name, bool_or(r.viewed) AS viewed
         FROM up r JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace n ON n.oid = c.relnamespace GROUP BY 1`, [tables])
    const relations = rows.filter((r) => r.viewed).map((r) => r.name)
    let columns: ReadonlySet<string> | 'all' = new Set()
    if (relations.length > 0) {
      // The columns the views' rules read: each column a rule names is a dependency of it; a whole
      // row (`row_to_json(c)`) is none, so a rule with one reads them all.
      const read = await this.query<{ column: string | null, whole: boolean }>(
        `WITH RECURSIVE edges (parent, child) AS (
           SELECT inhparent, inhrelid FROM pg_inherits
           UNION ALL
           SELECT r.ev_class, dep.refobjid FROM pg_rewrite r
             JOIN pg_depend dep ON dep.classid = 'pg_rewrite'::regclass AND dep.objid = r.oid AND dep.refclassid = 'pg_class'::regclass
            WHERE r.ev_type = '1' AND dep.refobjid <> r.ev_class
         ), down (oid) AS (
           SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = ANY($1::text[]) OR n.nspname || '.' || c.relname = ANY($1::text[])
           UNION
           SELECT e.child FROM edges e JOIN down d ON e.parent = d.oid
         )
         SELECT DISTINCT a.attname::text AS column, r.ev_action::text LIKE '%:varattno 0 %' AS whole
           FROM pg_rewrite r JOIN pg_depend dep ON dep.classid = 'pg_rewrite'::regclass AND dep.objid = r.oid AND dep.refclassid = 'pg_class'::regclass
           LEFT JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid AND dep.refobjsubid > 0
          WHERE r.ev_type = '1' AND dep.refobjid <> r.ev_class AND r.ev_class IN (SELECT oid FROM down)`, [tables])
      columns = read.rows.some((r) => r.whole) ? 'all' : new Set(read.rows.flatMap((r) => (r.column === null ? [] : [r.column])))
    }
    this.reached.set([[tables.join('\0'), { all: rows.map((r) => r.name), viewed: { relations, columns } }]], now)
  }

  /**
   * Whether a function of that name may write, as far as the catalog knows: true when some
   * overload outside `pg_catalog` and `information_schema` is VOLATILE (PostgreSQL lets only
   * volatile functions change data); undefined until `readFunctions` has read it.
   */
  mayWrite (name: string): boolean | undefined {
    return this.functions.get(name, Date.now() - this.ttlMs)
  }

  async readFunctions (names: string[]): Promise<void> {
    const now = Date.now()
    const { rows } = await this.query<{ name: string }>(
      `SELECT DISTINCT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proname = ANY($1::text[]) AND p.provolatile = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`, [names])
    const volatile = new Set(rows.map((r) => r.name))
    this.functions.set(names.map((n) => [n, volatile.has(n)]), now)
  }

  /**
   * The definitions (`CREATE OR REPLACE FUNCTION …`) and languages of the functions and
   * procedures of that name outside pg_catalog and information_schema (none: an empty list);
   * undefined until `readRoutines` has read them.
   */
  routinesNamed (name: string): ReadonlyArray<{ language: string, definition: string }> | undefined {
    return this.routines.get(name, Date.now() - this.ttlMs)
  }

  async readRoutines (names: string[]): Promise<void> {
    const now = Date.now()
    const { rows } = await this.query<{ name: string, language: string, definition: string }>(
      `SELECT p.proname AS name, l.lanname AS language, pg_get_functiondef(p.oid) AS definition
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE p.proname = ANY($1::text[]) AND p.prokind <> 'a' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`, [names])
    this.routines.set(names.map((n) => [n, rows.filter((r) => r.name === n).map((r) => ({ language: r.language, definition: r.definition }))]), now)
  }

  /**
   * Whether pg_catalog or information_schema holds a routine, type, operator, collation,
   * conversion, text search object, operator class or family of that name (as stored: a
   * statement's unqualified name of one finds it first); undefined until `readSystemNames` has read it.
   */
  systemNamed (name: string): boolean | undefined {
    return this.systemNames.get(name, Date.now() - this.ttlMs)
  }

  async readSystemNames (names: string[]): Promise<void> {
    const now = Date.now()
    const { rows } = await this.query<{ name: string }>(
      `SELECT o.name FROM (
         SELECT proname::text AS name, pronamespace AS ns FROM pg_proc UNION ALL SELECT typname::text, typnamespace FROM pg_type
         UNION ALL SELECT oprname::text, oprnamespace FROM pg_operator UNION ALL SELECT collname::text, collnamespace FROM pg_collation
         UNION ALL SELECT conname::text, connamespace FROM pg_conversion UNION ALL SELECT cfgname::text, cfgnamespace FROM pg_ts_config
         UNION ALL SELECT dictname::text, dictnamespace FROM pg_ts_dict UNION ALL SELECT prsname::text, prsnamespace FROM pg_ts_parser
         UNION ALL SELECT tmplname::text, tmplnamespace FROM pg_ts_template UNION ALL SELECT opcname::text, opcnamespace FROM pg_opclass
         UNION ALL SELECT opfname::text, opfnamespace FROM pg_opfamily) o
        JOIN pg_namespace n ON n.oid = o.ns
       WHERE o.name = ANY($1::text[]) AND n.nspname IN ('pg_catalog', 'information_schema')`, [names])
    const found = new Set(rows.map((r) => r.name))
    this.systemNames.set(names.map((n) => [n, found.has(n)]), now)
  }

  /**
   * The function a fast-path call names by OID, as `schema.name` with each part quoted; null
   * when there is none; undefined until `readFunctionName` has read it.
   */
  functionNamed (oid: number): string | null | undefined {
    return this.procs.get(String(oid), Date.now() - this.ttlMs)
  }

  async readFunctionName (oid: number): Promise<void> {
    const now = Date.now()
    const { rows } = await this.query<{ name: string }>(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname) AS name
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = $1::oid`, [oid])
    this.procs.set([[String(oid), rows[0]?.name ?? null]], now)
  }

  async close (): Promise<void> {
    this.plain = undefined
    await this.pool.end().catch(() => {})
  }
}
