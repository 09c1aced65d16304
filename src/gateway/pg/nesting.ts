import { scanSync } from 'libpg-query'

/**
 * How deep a statement text may nest before it is parsed.
 *
 * The parser's WebAssembly build recurses over the parse tree it returns, and a tree a few
 * thousand levels deep (`SELECT 1+1+…`, nested subqueries, `COLLATE` chains) overflows its
 * stack. That does not fail cleanly: the instance is left with its stack pointer and memory
 * in disorder, and every later parse in the process may fail. So text that may nest deeper
 * than `maxNesting` levels is refused before it reaches the parser. No statement a person or
 * an ORM writes comes near: the deepest trees measured to overflow were about 2,500 nested
 * subqueries and 5,000 chained operators.
 */
export const maxNesting = 1000

// Every level of nesting takes at least one of these: text with no more of them cannot nest deeper.
const nestingMarks = /[()[\]+\-*/<>=~!@#%^&|`?:]|\b(?:not|is|isnull|notnull|like|ilike|similar|between|in|collate|at|union|intersect|except|join|overlaps|case|operator)\b/gi
// Keywords that nest what follows under what precedes, as operators do.
const keywordOperators = new Set(['NOT', 'IS', 'ISNULL', 'NOTNULL', 'LIKE', 'ILIKE', 'SIMILAR', 'BETWEEN', 'IN', 'COLLATE', 'AT',
  'OVERLAPS', 'OPERATOR'])
// Set operations and joins nest every arm under the ones before it, whatever lists each arm
// holds (a select list, an ON condition): a level of their own that no separator resets. A
// set operation costs the parser about a quarter of what a join or an operator does.
const chainWeights = new Map([['UNION', 0.25], ['INTERSECT', 0.25], ['EXCEPT', 0.25], ['JOIN', 1]])
// Tokens between the items of a list the parser keeps flat: arguments, rows, AND/OR terms, CASE branches.
const listSeparators = new Set([',', 'AND', 'OR', 'WHEN', 'THEN', 'ELSE'])
const operator = /^[-+*/<>=~!@#%^&|`?:]+$/
// After these a `*` is every column (`SELECT *`, `t.*`, `count(*)`), not multiplication.
const beforeStar = new Set(['SELECT', 'DISTINCT', 'ALL', 'RETURNING', ',', '(', '.'])

interface Token { text: string, keywordKind: number }
interface Level { base: number, chain: number, ops: number, closer: string }

/** Whether `sql` may nest deeper than `maxNesting`; counts with PostgreSQL's own scanner only when a quick count cannot rule it out. */
export function mayNestTooDeep (sql: string): boolean {
  let marks = 0
  nestingMarks.lastIndex = 0
  while (nestingMarks.exec(sql) !== null) if (++marks > maxNesting) break
  if (marks <= maxNesting) return false
  let tokens: Token[]
  try {
    tokens = (scanSync(sql) as { tokens: Token[] }).tokens
  } catch {
    return false // text the scanner cannot read the parser refuses without building a tree
  }
  return nesting(tokens) > maxNesting
}

/**
 * An upper bound on the depth of the parse tree of scanned text, in operator levels: each open
 * parenthesis, bracket or CASE nests a level; each operator adds one to its level until a list
 * separator starts a sibling; each set operation or join adds its weight for good, and starts
 * a new arm.
 */
export function nesting (tokens: readonly Token[]): number {
  const levels: Level[] = [{ base: 0, chain: 0, ops: 0, closer: '' }]
  const depth = (l: Level): number => l.base + l.chain + l.ops
  let deepest = 0
  let previous = ''
  for (const t of tokens) {
    const word = t.keywordKind !== 0 ? t.text.toUpperCase() : t.text
    const star = word === '*' && beforeStar.has(previous)
    previous = word
    const top = levels[levels.length - 1]
    const weight = chainWeights.get(word)
    if (word === '(' || word === '[' || word === 'CASE') {
      levels.push({ base: depth(top) + 1, chain: 0, ops: 0, closer: word === '(' ? ')' : word === '[' ? ']' : 'END' })
    } else if (levels.length > 1 && word === top.closer) {
      levels.pop()
    } else if (word === ';') {
      levels.length = 1
      levels[0].chain = levels[0].ops = 0
    } else if (weight !== undefined) {
      top.chain += weight
      top.ops = 0
    } else if (listSeparators.has(word)) {
      top.ops = 0
    } else if (keywordOperators.has(word) || (t.keywordKind === 0 && !star && operator.test(word))) {
      top.ops++
    }
    deepest = Math.max(deepest, depth(levels[levels.length - 1]))
  }
  return deepest
}
