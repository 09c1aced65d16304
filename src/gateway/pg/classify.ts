import { createHash } from 'node:crypto'
import { exposureAndCalls, type Exposure } from './exposure.js'
import { mayNestTooDeep } from './nesting.js'
import { fingerprint as parserFingerprint, loadParser, parse, ParserUnavailable, SqlSyntaxError } from './parser.js'
import { isObj } from './from-scope.js'
import { definesIndexCode } from './index-code.js'
import { checksDomainValues } from './domain-checks.js'
import { admin } from './statement-rules.js'
import { supportCalls } from './support-calls.js'
import { shadowedComparison } from './shadowed-comparison.js'
import { Walk } from './walk.js'

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
   * `schema.*` for a whole schema the text drops or renames; names that resolve to a CTE in
   * scope are left out; deduplicated.
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
  /** Functions whose result reaches the client or is computed on, not only compared (see `exposureAndCalls`). */
  returnedCalls?: string[]
  /** Set when the text replaces a trigger function, which a trigger on a table with masked columns may call (see row-code.ts). */
  replacesFunction?: true
  /** Set when the text defines an operator or function by the name of one a masked column may be compared with (see shadowed-comparison.ts): that name. */
  shadowsComparison?: string
  /** Set when the text makes an operator class or adds to a family, whose functions indexes and sorts call on column values (see index-code.ts). */
  definesIndexCode?: true
  /** Set when the text adds or validates a domain's constraint, which runs on every stored value of the type (see domain-checks.ts). */
  checksDomainValues?: true
  /**
   * Set when the text changes prepared statements or portals by name behind the extended
   * protocol's back (SQL `PREPARE`, `DEALLOCATE`, `DECLARE`, `CLOSE`, `DISCARD ALL`; they share
   * its names): the names it changes, or 'all'.
   */
  renames?: { statements: string[] | 'all', portals: string[] | 'all' }
  /**
   * Set when the text may make the session's search_path name pg_catalog or information_schema
   * (`SET search_path`, set_config, a value known only at run time): an object created
   * unqualified afterwards may land there (see `systemSchema`).
   */
  searchesSystem?: true
  /** Set when the text creates an object by a name without a schema, in the first schema of the search path. */
  createsUnqualified?: true
  /**
   * Names the text gives without a schema to existing routines, types, operators and the like
   * it alters, renames, moves, drops or comments on: built-in ones when pg_catalog holds such
   * a name, which only the catalog knows (see `unqualifiedExisting`).
   */
  changesUnqualified?: string[]
  /** Set when the text reads rows from a cursor (FETCH), which may be of any table. */
  cursor?: true
  /** Set when the text LISTENs: notification payloads then arrive, which masking cannot see into. */
  listens?: true
  /** Names the text prepares with SQL `PREPARE`: what each holds is this text's classification. */
  prepares?: string[]
  /**
   * Names of prepared statements the text runs with SQL `EXECUTE`: its class is theirs too,
   * which only the session knows (`withExecuted`).
   */
  executes?: string[]
}
const classNames: StatementClass[] = ['read', 'write', 'ddl', 'admin']

const union = <T>(all: readonly Classification[], pick: (c: Classification) => readonly T[] | undefined): T[] => [...new Set(all.flatMap((c) => pick(c) ?? []))]

/**
 * `c` together with the statements it runs (SQL `EXECUTE`): the strongest class among them
 * (with its reason), and every shape, table, function and exposure of any.
 */
export function withRuns (c: Classification, runs: readonly Classification[]): Classification {
  if (runs.length === 0) return c
  const all = [c, ...runs]
  const strongest = all.reduce((a, b) => (classNames.indexOf(b.class) > classNames.indexOf(a.class) ? b : a))
  const out: Classification = { ...c, class: strongest.class, statements: union(all, (x) => x.statements), tables: union(all, (x) => x.tables) }
  const reason = strongest.reason ?? c.reason
  if (reason === undefined) delete out.reason
  else out.reason = reason
  const functions = union(all, (x) => x.functions)
  if (functions.length > 0) out.functions = functions
  if (all.some((x) => x.cursor === true)) out.cursor = true
  if (all.some((x) => x.listens === true)) out.listens = true
  if (all.some((x) => x.searchesSystem === true)) out.searchesSystem = true
  if (all.some((x) => x.createsUnqualified === true)) out.createsUnqualified = true
  const returnedCalls = union(all, (x) => x.returnedCalls)
  if (returnedCalls.length > 0) out.returnedCalls = returnedCalls
  const exposes = all.flatMap((x) => (x.exposes === undefined ? [] : [x.exposes]))
  if (exposes.length > 0) {
    out.exposes = {
      columns: exposes.flatMap((e) => e.columns),
      all: exposes.some((e) => e.all),
      ...(exposes.some((e) => e.rowCode === true) ? { rowCode: true } : {}),
      qualified: exposes.flatMap((e) => e.qualified),
      ofTables: exposes.flatMap((e) => e.ofTables),
      columnsOf: exposes.flatMap((e) => e.columnsOf)
    }
  }
  return out
}

/** `c`, with its arrays, made read-only (classifications are shared between sessions). */
export function frozen (c: Classification): Classification {
  Object.freeze(c.statements)
  Object.freeze(c.tables)
  if (c.exposes !== undefined) Object.freeze(Object.freeze(c.exposes).columns)
  if (c.returnedCalls !== undefined) Object.freeze(c.returnedCalls)
  if (c.renames !== undefined) Object.freeze(c.renames)
  if (c.prepares !== undefined) Object.freeze(c.prepares)
  if (c.executes !== undefined) Object.freeze(c.executes)
  if (c.changesUnqualified !== undefined) Object.freeze(c.changesUnqualified)
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
  // A function's body is classified without the cache: a refusal while the parser restarts must not be kept for the outer text.
  const w = new Walk(analyse)
  let exposes: Exposure | undefined
  let calls: string[] = []
  let replacesFunction = false
  try {
    w.source = sql
    for (const s of stmts) {
      if (isObj(s)) w.span = [Number(s.stmt_location ?? 0), Number(s.stmt_len ?? 0)]
      w.statement(isObj(s) ? s.stmt : undefined)
    }
    w.finish()
    const found = exposureAndCalls(stmts.map((s) => (isObj(s) ? s.stmt : undefined)))
    exposes = found.exposes
    calls = found.calls
    replacesFunction = found.replacesFunction
    // Support functions count as called here, and by a body that names them, for `routineTables` to follow.
    const support = stmts.flatMap((s) => supportCalls(isObj(s) ? s.stmt : undefined))
    if (stmts.some((s) => definesIndexCode(isObj(s) ? s.stmt : undefined))) w.definesIndexCode = true
    if (stmts.some((s) => checksDomainValues(isObj(s) ? s.stmt : undefined))) w.checksDomainValues = true
    w.shadowsComparison ??= stmts.map((s) => shadowedComparison(isObj(s) ? s.stmt : undefined)).find((n) => n !== undefined)
    for (const f of support) w.functions.add(f)
    // What a routine's body calls counts as called by its CREATE: an operator or aggregate already made on it would show the call's result as of no table.
    if (support.length > 0 || w.routineBody) calls = [...new Set([...calls, ...support, ...(w.routineBody ? w.functions : [])])]
    // A routine's result columns are of no table: any column its body reads would reach a caller unmasked.
    if (w.routineBody && w.tables.size > 0) exposes = { columns: [], qualified: [], ofTables: [], columnsOf: [], ...exposes, all: true }
  } catch (err) {
    return refuse(`unclassifiable: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}`)
  }
  const c: Classification = { class: classNames[w.rank], statements: [...w.shapes], tables: [...w.tables], count: stmts.length }
  if (exposes !== undefined) c.exposes = exposes
  if (calls.length > 0) c.returnedCalls = calls
  if (replacesFunction) c.replacesFunction = true
  if (w.shadowsComparison !== undefined) c.shadowsComparison = w.shadowsComparison
  if (w.definesIndexCode) c.definesIndexCode = true
  if (w.checksDomainValues) c.checksDomainValues = true
  if (w.copy !== undefined) c.copy = w.copy
  if (w.renames !== undefined) c.renames = w.renames
  if (w.cursor) c.cursor = true
  if (w.listens) c.listens = true
  if (w.searchesSystem) c.searchesSystem = true
  if (w.createsUnqualified) c.createsUnqualified = true
  if (w.changesUnqualified.size > 0) c.changesUnqualified = [...w.changesUnqualified]
  if (w.prepares.size > 0) c.prepares = [...w.prepares]
  if (w.executes.size > 0) c.executes = [...w.executes]
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
// (`\b` knows only ASCII letters: in `café2` the 2 would look like a number of its own), and
// no `lo_open`, whose mode number says whether it opens to write (1 would read it as a read).
const unfoldable = /['"$\\]|--|\/\*|[^\x00-\x7f]|lo_open/i
const numbers = /\b\d+(?:\.\d+)?\b/g

/**
 * Statements that differ only in their numeric constants (`… WHERE aid = 4711` sent by a
 * simple-protocol client) classify alike: they share one cache entry and one parse, with
 * every number folded to 1. Never to 0: a number can be a boolean option
 * (`EXPLAIN (ANALYZE 0) DELETE …`), and 1 is the stricter reading (but for `lo_open`'s mode,
 * whose text is never folded). Only ASCII text without quotes, dollar signs, backslashes or
 * comments is folded, so no number inside a string, an identifier or a comment is touched.
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
