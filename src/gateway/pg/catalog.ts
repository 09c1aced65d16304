import pg from 'pg'
import type { ColumnName } from './mask.js'

/**
 * Table and column names by table OID and attribute number, read from an upstream's catalog
 * with the target's credentials, for masking (RowDescription names columns only by number).
 * Entries expire after `ttlMs` (30 s by default): a table dropped and re-created gets a new OID anyway.
 */
export class Catalog {
  private readonly pool: pg.Pool
  private readonly tables = new Map<number, { at: number, columns: Map<number, ColumnName> }>()
  private readonly functions = new Map<string, { at: number, volatile: boolean }>()
  private readonly columns = new Map<string, { at: number, columns: readonly ColumnName[] }>()
  private readonly reached = new Map<string, { at: number, relations: readonly string[] }>()

  constructor (upstream: URL, private readonly ttlMs = 30_000) {
    // Sessions wait on these answers: a catalog query that runs long fails (and its statement is refused) rather than stall them.
    this.pool = new pg.Pool({ connectionString: upstream.toString(), max: 2, idleTimeoutMillis: 10_000, connectionTimeoutMillis: 5000, statement_timeout: 5000 })
    this.pool.on('error', () => {})
  }

  /** The names of `(tableOid, column)` pairs; answers from memory when it can. */
  async resolve (oids: number[]): Promise<(oid: number, column: number) => ColumnName | undefined> {
    const now = Date.now()
    const missing = [...new Set(oids)].filter((o) => o !== 0 && !((this.tables.get(o)?.at ?? -Infinity) > now - this.ttlMs))
    if (missing.length > 0) {
      const { rows } = await this.pool.query<{ oid: string, schema: string, table: string, attnum: number, column: string }>(
        `SELECT c.oid::text AS oid, n.nspname AS schema, c.relname AS table, a.attnum, a.attname AS column
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0`, [missing])
      for (const o of missing) this.tables.set(o, { at: now, columns: new Map() })
      for (const r of rows) this.tables.get(Number(r.oid))?.columns.set(r.attnum, { schema: r.schema, table: r.table, column: r.column })
    }
    return (oid, column) => this.tables.get(oid)?.columns.get(column)
  }

  /**
   * The columns of every relation a statement may mean by the names it uses (`table` or
   * `schema.table`, as PostgreSQL folded them), from memory; undefined until `readColumns`
   * has read them. An unqualified name counts in every schema, since the session's
   * search_path is not this pool's.
   */
  columnsOf (tables: readonly string[]): readonly ColumnName[] | undefined {
    if (tables.length === 0) return []
    const kept = this.columns.get(tables.join('\0'))
    return kept === undefined || kept.at <= Date.now() - this.ttlMs ? undefined : kept.columns
  }

  async readColumns (tables: readonly string[]): Promise<void> {
    const now = Date.now()
    // Names compared as they are: a quoted `"People"` stays `People`.
    const { rows } = await this.pool.query<{ schema: string, table: string, column: string }>(
      `SELECT n.nspname AS schema, c.relname AS table, a.attname AS column
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
        WHERE (c.relname = ANY($1::text[]) OR n.nspname || '.' || c.relname = ANY($1::text[]))
          AND a.attnum > 0 AND NOT a.attisdropped`, [tables])
    if (this.columns.size > 10_000) this.columns.clear()
    this.columns.set(tables.join('\0'), { at: now, columns: rows })
  }

  /**
   * The relations a statement reaches through the ones it names (`schema.table`): inheritance
   * children and partitions, the tables and views a view reads (its `_RETURN` rule), theirs in
   * turn, and the parents of each of these (a partition named alone is still its table's
   * rows). From memory; undefined until `readBehind` has read them. Names resolve as in
   * `columnsOf`.
   */
  behind (tables: readonly string[]): readonly string[] | undefined {
    const kept = this.reached.get(tables.join('\0'))
    return kept === undefined || kept.at <= Date.now() - this.ttlMs ? undefined : kept.relations
  }

  async readBehind (tables: readonly string[]): Promise<void> {
    const now = Date.now()
    const { rows } = await this.pool.query<{ name: string }>(
      `WITH RECURSIVE edges (parent, child) AS (
         SELECT inhparent, inhrelid FROM pg_inherits
         UNION ALL
         SELECT r.ev_class, d.refobjid FROM pg_rewrite r
           JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
          WHERE r.ev_type = '1' AND d.refobjid <> r.ev_class
       ), down (oid) AS (
         SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = ANY($1::text[]) OR n.nspname || '.' || c.relname = ANY($1::text[])
         UNION
         SELECT e.child FROM edges e JOIN down d ON e.parent = d.oid
       ), up (oid) AS (
         SELECT oid FROM down
         UNION
         SELECT i.inhparent FROM pg_inherits i JOIN up u ON i.inhrelid = u.oid
       )
       SELECT DISTINCT n.nspname || '.' || c.relname AS name FROM up r JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace n ON n.oid = c.relnamespace`, [tables])
    if (this.reached.size > 10_000) this.reached.clear()
    this.reached.set(tables.join('\0'), { at: now, relations: rows.map((r) => r.name) })
  }

  /**
   * Whether a function of that name may write, as far as the catalog knows: true when some
   * overload outside `pg_catalog` and `information_schema` is VOLATILE (PostgreSQL lets only
   * volatile functions change data); undefined until `readFunctions` has read it.
   */
  mayWrite (name: string): boolean | undefined {
    const f = this.functions.get(name)
    return f === undefined || f.at <= Date.now() - this.ttlMs ? undefined : f.volatile
  }

  async readFunctions (names: string[]): Promise<void> {
    const now = Date.now()
    const { rows } = await this.pool.query<{ name: string }>(
      `SELECT DISTINCT p.proname AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proname = ANY($1::text[]) AND p.provolatile = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`, [names])
    const volatile = new Set(rows.map((r) => r.name))
    if (this.functions.size > 10_000) this.functions.clear()
    for (const n of names) this.functions.set(n, { at: now, volatile: volatile.has(n) })
  }

  async close (): Promise<void> {
    await this.pool.end().catch(() => {})
  }
}
