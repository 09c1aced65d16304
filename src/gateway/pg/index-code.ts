import { isObj } from './from-scope.js'

/**
 * An operator class's or family's operators and support functions are what PostgreSQL calls on
 * a column's values wherever an index, a sort or a constraint uses it, from statements that
 * show no call: `CREATE INDEX ON customers (email leak_ops)` calls each support function with
 * every stored value, unmasked, and `ORDER BY email USING ###`, an exclusion constraint
 * `WITH ###`, the class's own. Such a function may copy what it is given into any table. So
 * where columns are masked, making an operator class or adding to a family is refused
 * (PostgreSQL lets only a superuser do either, which a target's role may be).
 */
export function definesIndexCode (stmt: unknown): boolean {
  if (!isObj(stmt)) return false
  if (isObj(stmt.CreateOpClassStmt)) return true
  return isObj(stmt.AlterOpFamilyStmt) && stmt.AlterOpFamilyStmt.isDrop !== true
}
