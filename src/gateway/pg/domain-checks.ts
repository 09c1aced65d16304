import { isObj } from './from-scope.js'

/**
 * A domain's CHECK constraints run on every value of every column of that type when one is
 * added or validated (`ALTER DOMAIN d ADD CONSTRAINT c CHECK (f(VALUE))`), from a statement
 * that names no table: `f` gets each stored value, unmasked, and may copy it into any table. A
 * masked column may be of a domain type (a DBA's, or one a column was changed to), which only
 * the catalog would tell, so where columns are masked adding or validating a domain's
 * constraint is refused.
 */
export function checksDomainValues (stmt: unknown): boolean {
  if (!isObj(stmt) || !isObj(stmt.AlterDomainStmt)) return false
  const subtype = stmt.AlterDomainStmt.subtype
  return subtype === 'C' || subtype === 'V'
}
