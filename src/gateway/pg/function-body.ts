import { isObj, type Obj } from './from-scope.js'
import { parsePlpgsql, scan } from './parser.js'

/** What a function's body runs: SQL texts to classify, or why it cannot be read. */
export type FunctionBody = { texts: string[] } | { unreadable: string }

// PostgreSQL's RawParseMode of each PL/pgSQL expression: a statement, a type name, an
// expression, an assignment (`target := expression`, in three forms).
const statementMode = 0
const typeNameMode = 1
const expressionMode = 2
// Statements that run SQL text built at run time.
const dynamic = new Set(['PLpgSQL_stmt_dynexecute', 'PLpgSQL_stmt_dynfors'])

/**
 * The body of a `CREATE FUNCTION` or `CREATE PROCEDURE` given as a string (`AS $$ … $$`), which
 * the parser leaves as text: a function runs with the privileges of whoever calls it, so what
 * it may do is what its body does (`SELECT set_config('role', …)` inside a function declared
 * STABLE is a change of identity that a later `SELECT f()` would not show). A SQL body is its
 * statements; a PL/pgSQL body is every statement and expression in it, as PostgreSQL's
 * PL/pgSQL compiler finds them, and cannot be read when it runs SQL text built at run time
 * (`EXECUTE`); a body in another language cannot be read at all. Undefined when there is no
 * string body (a `BEGIN ATOMIC` body is parsed with the statement).
 * @param create the CreateFunctionStmt node
 * @param statement the statement's own text, for the PL/pgSQL compiler
 */
export function functionBody (create: Obj, statement: () => string): FunctionBody | undefined {
  let language: string | undefined
  let as: unknown[] | undefined
  for (const o of Array.isArray(create.options) ? create.options : []) {
    const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined
    // As PostgreSQL looks it up: a quoted name keeps its case (`LANGUAGE 'PLPGSQL'` names no language).
    if (d?.defname === 'language' && isObj(d.arg) && isObj(d.arg.String)) language = String(d.arg.String.sval)
    if (d?.defname === 'as' && isObj(d.arg) && isObj(d.arg.List) && Array.isArray(d.arg.List.items)) as = d.arg.List.items
  }
  if (as === undefined) return undefined
  const text = isObj(as[0]) && isObj(as[0].String) ? String(as[0].String.sval) : ''
  if (language === undefined || language === 'sql') return { texts: [text] }
  if (language !== 'plpgsql') return { unreadable: `its body is in language ${language.slice(0, 63)}, which the gateway cannot read` }
  let tree: unknown
  try {
    tree = parsePlpgsql(statement())
  } catch (err) {
    return { unreadable: `its PL/pgSQL body cannot be read: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}` }
  }
  // Each function the compiler found must have been compiled (have a body): else nothing was read.
  const funcs = isObj(tree) && Array.isArray(tree.plpgsql_funcs) ? tree.plpgsql_funcs : []
  if (funcs.length === 0 || !funcs.every((f) => isObj(f) && isObj(f.PLpgSQL_function) && f.PLpgSQL_function.action !== undefined)) return { unreadable: 'its PL/pgSQL body cannot be read' }
  return plpgsqlTexts(tree)
}

/** Every statement and expression of a PL/pgSQL tree, as texts the classifier reads. */
function plpgsqlTexts (tree: unknown): FunctionBody {
  const texts: string[] = []
  const stack: unknown[] = [tree]
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x)
      continue
    }
    if (!isObj(v)) continue
    for (const key in v) {
      // EXECUTE, FOR … IN EXECUTE, OPEN … FOR EXECUTE, RETURN QUERY EXECUTE.
      if (dynamic.has(key) || (isObj(v[key]) && (v[key] as Obj).dynquery !== undefined)) {
        return { unreadable: 'its body runs SQL text built at run time (EXECUTE)' }
      }
      if (key === 'PLpgSQL_expr' && isObj(v[key])) {
        const e = v[key] as Obj
        const query = String(e.query ?? '')
        const mode = typeof e.parseMode === 'number' ? e.parseMode : statementMode
        if (mode === statementMode) texts.push(query)
        else if (mode === expressionMode) texts.push(`SELECT ${query}`)
        else if (mode !== typeNameMode) {
          const text = assignmentText(query)
          if (text === undefined) return { unreadable: 'its body has an assignment the gateway cannot read' }
          texts.push(text)
        }
        continue
      }
      stack.push(v[key])
    }
  }
  return { texts }
}

/**
 * An assignment `target := expression` as a select list `SELECT target, expression`: the
 * target's subscripts (`a[f()] := 1`) are expressions PostgreSQL evaluates too. The operator
 * (`:=` or `=`) is the first outside brackets and parentheses, as the scanner finds it, so
 * that no `=` in a subscript, a string or a quoted name is taken for it. Undefined when the
 * text cannot be scanned or has no such operator.
 */
function assignmentText (query: string): string | undefined {
  let tokens: unknown
  try {
    tokens = scan(query)
  } catch {
    return undefined
  }
  const list = isObj(tokens) && Array.isArray(tokens.tokens) ? tokens.tokens : []
  let depth = 0
  for (const t of list) {
    const text = isObj(t) ? t.text : undefined
    if (text === '(' || text === '[') depth++
    else if (text === ')' || text === ']') depth--
    else if (depth === 0 && (text === ':=' || text === '=') && isObj(t)) {
      // Offsets are of the UTF-8 bytes the scanner read.
      const bytes = Buffer.from(query)
      return `SELECT ${bytes.subarray(0, Number(t.start)).toString()}, ${bytes.subarray(Number(t.end)).toString()}`
    }
  }
  return undefined
}
