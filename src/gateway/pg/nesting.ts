import { ParserUnavailable, scan } from './parser.js'

/**
 * How deep a statement text may nest before it is parsed.
 *
 * The parser's WebAssembly build recurses over the parse tree it returns, and a tree a few
 * thousand levels deep overflows its stack. That does not fail cleanly: the instance is left
 * with its stack pointer and memory in disorder, and after a few such overflows every parse in
 * the process fails. So text whose tree may be too deep is refused before it reaches the parser.
 *
 * Depth is counted in units of what one level of an operator chain costs that stack: measured,
 * about 9,700 chained `+` (or `IS NULL`, or joins) overflow it, 2,570 nested subqueries, 5,400
 * chained `COLLATE`, 12,400 chained `UNION`. A parenthesis (or bracket, or CASE) counts 4 units,
 * `COLLATE` 2, anything else that nests 1, and the bound, `maxNesting`, is 4,000 units: at most
 * 1,000 nested subqueries or 4,000 chained operators, each well under half of what overflows.
 * No statement a person or an ORM writes comes near.
 */
export const maxNesting = 4000

const openWeight = 4
// Every unit of nesting comes with one of these marks, weighted as below: text whose marks weigh no more cannot nest deeper.
const nestingMarks = /[([]|[)\]+\-*/<>=~!@#%^&|`?:]|\b(?:collate|case)\b|\b(?:not|is|isnull|notnull|like|ilike|similar|between|in|at|union|intersect|except|join|overlaps|operator)\b/gi
// Keywords that nest what follows under what precedes, as operators do, and their weights.
const keywordOperators = new Map([['NOT', 1], ['IS', 1], ['ISNULL', 1], ['NOTNULL', 1], ['LIKE', 1], ['ILIKE', 1], ['SIMILAR', 1],
  ['BETWEEN', 1], ['IN', 1], ['COLLATE', 2], ['AT', 1], ['OVERLAPS', 1], ['OPERATOR', 1]])
const setOperations = new Set(['UNION', 'INTERSECT', 'EXCEPT'])
// Tokens between the items of a list the parser keeps flat: arguments, rows, AND/OR terms, CASE branches.
const listSeparators = new Set([',', 'AND', 'OR', 'WHEN', 'THEN', 'ELSE'])
const operator = /^[-+*/<>=~!@#%^&|`?:]+$/
// After these a `*` is every column (`SELECT *`, `t.*`, `count(*)`), not multiplication.
const beforeStar = new Set(['SELECT', 'DISTINCT', 'ALL', 'RETURNING', ',', '(', '.'])

interface Token { text: string, keywordKind: number, tokenName?: string }
const comments = new Set(['C_COMMENT', 'SQL_COMMENT'])
/**
 * One parenthesis (or bracket, or CASE) level. `setOps`: set operations so far, each nesting
 * every arm under the ones before it whatever lists the arms hold; `joins`: joins of the current
 * arm, likewise; `ops`: operators since the last list separator; `casts`: `::` since the last
 * operator (a cast binds to one operand, so only a run of them nests); `between`: BETWEENs
 * still owed their AND, which separates nothing.
 */
interface Level { base: number, setOps: number, joins: number, ops: number, casts: number, between: number, closer: string }

const depthOf = (l: Level): number => l.base + l.setOps + l.joins + l.ops + l.casts

/** Whether `sql` may nest deeper than `maxNesting`; counts with PostgreSQL's own scanner only when a quick count cannot rule it out. */
export function mayNestTooDeep (sql: string): boolean {
  let marks = 0
  nestingMarks.lastIndex = 0
  for (let m = nestingMarks.exec(sql); m !== null && marks <= maxNesting; m = nestingMarks.exec(sql)) {
    const c = m[0][0]
    marks += c === '(' || c === '[' || c === 'c' || c === 'C' ? (m[0].length === 7 ? 2 : openWeight) : 1
  }
  if (marks <= maxNesting) return false
  let tokens: Token[]
  try {
    // The scanner's JSON carries control characters unescaped; they can stand only inside a
    // string, a comment or a quoted name, where a space is the same to the token structure.
    tokens = (scan(sql.replace(/[\x01-\x08\x0b\x0c\x0e-\x1f]/g, ' ')) as { tokens: Token[] }).tokens
  } catch (err) {
    if (err instanceof ParserUnavailable) throw err
    // Most text the scanner cannot read the parser refuses too; counting cannot tell, so refuse.
    return true
  }
  return nesting(tokens) > maxNesting
}

/**
 * An upper bound on the depth of the parse tree of scanned text, in units of stack (see
 * `maxNesting`): each open parenthesis, bracket or CASE nests a level; each operator adds to
 * its level until a list separator starts a sibling; each set operation adds for good and
 * starts a new arm; each join adds until the arm ends.
 */
export function nesting (tokens: readonly Token[]): number {
  const fresh = (base: number, closer: string): Level => ({ base, setOps: 0, joins: 0, ops: 0, casts: 0, between: 0, closer })
  const levels: Level[] = [fresh(0, '')]
  let deepest = 0
  let previous = ''
  for (const t of tokens) {
    // A comment is blank space to the parser (`t./**/and` is the column `t.and`).
    if (t.tokenName !== undefined && comments.has(t.tokenName)) continue
    const word = t.keywordKind !== 0 ? t.text.toUpperCase() : t.text
    const after = previous
    previous = word
    // After `.` a word is a column's or a field's name (`t.and`, `r.END`), whatever keyword it spells.
    if (after === '.' && word !== '*') continue
    const star = word === '*' && beforeStar.has(after)
    const top = levels[levels.length - 1]
    if (word === '(' || word === '[' || word === 'CASE') {
      levels.push(fresh(depthOf(top) + openWeight, word === '(' ? ')' : word === '[' ? ']' : 'END'))
    } else if (levels.length > 1 && word === top.closer) {
      levels.pop()
    } else if (word === ';') {
      levels.length = 0
      levels.push(fresh(0, ''))
    } else if (setOperations.has(word)) {
      top.setOps++
      top.joins = top.ops = top.casts = 0
    } else if (word === 'JOIN') {
      top.joins++
      top.ops = top.casts = 0
    } else if (word === 'AND' && top.between > 0) {
      top.between--
      top.casts = 0
    } else if (listSeparators.has(word)) {
      top.ops = top.casts = 0
    } else if (word === '::') {
      top.casts++
    } else if (keywordOperators.has(word)) {
      // The next operator ends the operand the casts bound to.
      top.ops += keywordOperators.get(word) as number
      top.casts = 0
      if (word === 'BETWEEN') top.between++
    } else if (t.keywordKind === 0 && !star && operator.test(word)) {
      top.ops++
      top.casts = 0
    }
    deepest = Math.max(deepest, depthOf(levels[levels.length - 1]))
  }
  return deepest
}
