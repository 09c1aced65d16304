import { createRequire } from 'node:module'

/**
 * PostgreSQL's own parser and scanner, from libpg-query's WebAssembly build, in instances that
 * can be thrown away.
 *
 * Why not the package's wrapper: it keeps one instance for the whole process. Text nested deeper
 * than the parser's stack traps inside the WebAssembly code, and where the trap lands decides
 * whether that instance works afterwards: a trap inside malloc or inside a memory context switch
 * leaves it failing every later call ("table index is out of bounds"), for every session, until
 * the process restarts. `nesting.ts` refuses such text before it reaches the parser, but its bound
 * is an estimate. So this module calls the build's exported C functions itself (the package's
 * wrapper does nothing more) on an instance it owns: a call that traps discards that instance,
 * a spare loaded in advance takes its place at once, and a new spare loads in the background.
 * An instance whose memory has grown past `maxMemory` is replaced the same way, so one huge
 * statement does not keep its memory for the life of the process.
 */

/** The text could not be parsed or scanned; `message` is PostgreSQL's. */
export class SqlSyntaxError extends Error {
  override name = 'SqlSyntaxError'
}

/** The parser trapped on this text or another, and no spare was loaded yet; try again shortly. */
export class ParserUnavailable extends Error {
  override name = 'ParserUnavailable'
  constructor () { super('the parser is restarting') }
}

/** What this module uses of the Emscripten module (see libpg-query's `wasm/libpg-query.js`). */
interface Wasm {
  HEAPU8: Uint8Array
  getValue: (ptr: number, type: 'i32') => number
  UTF8ToString: (ptr: number) => string
  stringToUTF8: (s: string, ptr: number, max: number) => void
  lengthBytesUTF8: (s: string) => number
  _malloc: (n: number) => number
  _free: (ptr: number) => void
  _wasm_parse_query_raw: (query: number) => number
  _wasm_free_parse_result: (result: number) => void
  _wasm_fingerprint: (query: number) => number
  _wasm_scan: (query: number) => number
  _wasm_parse_plpgsql: (query: number) => number
  _wasm_free_string: (ptr: number) => void
}

const load = createRequire(import.meta.url)('libpg-query/wasm/libpg-query.js') as () => Promise<Wasm>

/** Memory an instance may have grown to (from 128 MiB at start) before it is replaced. */
export const maxMemory = 512 * 1024 * 1024

let current: Wasm | undefined
let spare: Wasm | undefined
let loading: Promise<void> | undefined
let replaced = 0

function loadSpare (): Promise<void> {
  loading ??= (async () => {
    try {
      const w = await load()
      if (current === undefined) current = w
      else spare = w
    } finally {
      loading = undefined
    }
    // A trap while this load was running took the spare it would have become.
    if (current === undefined || spare === undefined) await loadSpare()
  })()
  return loading
}

/** Loads the parser and its spare; await it before any other call here. */
export async function loadParser (): Promise<void> {
  while (current === undefined || spare === undefined) await loadSpare()
}

/** How many instances have been replaced since the process started (after a trap or growth). */
export function parserReplacements (): number {
  return replaced
}

function retire (w: Wasm): void {
  if (current !== w) return
  replaced++
  current = spare
  spare = undefined
  void loadSpare().catch(() => {})
}

/**
 * Runs `fn` with `query` as a C string in the current instance and returns what `read` makes of
 * `fn`'s result (then released by `free`). A throw from `fn` itself is a trap; the instance is
 * retired and the error rethrown as it is. `read` throws `SqlSyntaxError` for the parser's own errors.
 */
function call<T> (query: string, fn: (w: Wasm, q: number) => number, read: (w: Wasm, r: number) => T, free: (w: Wasm, r: number) => void): T {
  const w = current
  if (w === undefined) {
    void loadSpare().catch(() => {})
    throw new ParserUnavailable()
  }
  const size = w.lengthBytesUTF8(query) + 1
  const q = w._malloc(size)
  if (q === 0) { retire(w); throw new ParserUnavailable() }
  let r = 0
  try {
    w.stringToUTF8(query, q, size)
    try {
      r = fn(w, q)
    } catch (err) {
      retire(w)
      throw err
    }
    if (r === 0) throw new Error('the parser returned no result')
    return read(w, r)
  } finally {
    if (current === w) {
      w._free(q)
      if (r !== 0) free(w, r)
      if (w.HEAPU8.length > maxMemory) retire(w)
    }
  }
}

/** One statement text's parse tree (PostgreSQL's JSON output form), `{ version, stmts? }`. */
export function parse (query: string): { stmts?: unknown[] } {
  return call(query, (w, q) => w._wasm_parse_query_raw(q), (w, r) => {
    // PgQueryParseResult { char *parse_tree; char *stderr_buffer; PgQueryError *error }, PgQueryError { char *message; … }
    const error = w.getValue(r + 8, 'i32')
    if (error !== 0) {
      const message = w.getValue(error, 'i32')
      throw new SqlSyntaxError(message === 0 ? 'syntax error' : w.UTF8ToString(message))
    }
    const tree = w.getValue(r, 'i32')
    if (tree === 0) throw new Error('the parser returned no tree')
    return JSON.parse(w.UTF8ToString(tree)) as { stmts?: unknown[] }
  }, (w, r) => { w._wasm_free_parse_result(r) })
}

// The build's fingerprint and scan functions return either their result or an error message.
const failed = /^(?:syntax error|deparse error|ERROR)/

function text (w: Wasm, r: number): string {
  const s = w.UTF8ToString(r)
  if (failed.test(s)) throw new SqlSyntaxError(s)
  return s
}

const freeString = (w: Wasm, r: number): void => { w._wasm_free_string(r) }

/** PostgreSQL's query fingerprint of a statement text (16 hex digits). */
export function fingerprint (query: string): string {
  return call(query, (w, q) => w._wasm_fingerprint(q), text, freeString)
}

/** PostgreSQL's scanner's tokens of a text (JSON output form). */
export function scan (query: string): unknown {
  return call(query, (w, q) => w._wasm_scan(q), (w, r) => JSON.parse(text(w, r)) as unknown, freeString)
}

/**
 * The PL/pgSQL trees of the `CREATE FUNCTION` statements in a text (JSON output form,
 * `{ plpgsql_funcs: [...] }`): their bodies compiled as PostgreSQL's PL/pgSQL compiler reads them.
 */
export function parsePlpgsql (query: string): unknown {
  return call(query, (w, q) => w._wasm_parse_plpgsql(q), (w, r) => {
    const s = w.UTF8ToString(r)
    // The build returns the tree, or else the compiler's error message.
    if (!s.startsWith('{')) throw new SqlSyntaxError(s)
    return JSON.parse(s) as unknown
  }, freeString)
}
