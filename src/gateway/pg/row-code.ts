import type { Obj } from './from-scope.js'

/**
 * Code PostgreSQL runs on a table's rows, from statements that show none of it: a trigger's
 * function, a rule's actions, a row security policy's expressions. It sees each row whole
 * (`NEW`, `OLD`), where no mask applies, and may copy a value into any table
 * (`INSERT INTO t VALUES (NEW.email)`) or quote it in an error. So where a table's columns are
 * masked, attaching such code to it, or switching its triggers or rules on or off, is refused
 * (`Exposure.rowCode`), and so is replacing a function (`replacesFunction`): a trigger on such
 * a table may already call it, or a constraint, index or default of it (`UPDATE customers SET
 * email = email` runs a CHECK's function on the real value), which only the catalog would tell.
 */

/** Statements that attach code to the rows of the table they name. */
const attaching = new Set(['CreateTrigStmt', 'RuleStmt', 'CreatePolicyStmt', 'AlterPolicyStmt'])

/** ALTER TABLE actions that switch a table's triggers or rules: one turned off may be what kept a value from being copied. */
const switching = new Set(['AT_EnableTrig', 'AT_EnableAlwaysTrig', 'AT_EnableReplicaTrig', 'AT_EnableTrigAll', 'AT_EnableTrigUser',
  'AT_DisableTrig', 'AT_DisableTrigAll', 'AT_DisableTrigUser', 'AT_EnableRule', 'AT_EnableAlwaysRule', 'AT_EnableReplicaRule', 'AT_DisableRule'])

/** Whether a node (its kind and body) attaches code to its table's rows or switches it. */
export function attachesRowCode (kind: string, b: Obj): boolean {
  return attaching.has(kind) || (kind === 'AlterTableCmd' && switching.has(String(b.subtype)))
}

/**
 * Whether a CreateFunctionStmt may replace a function (`OR REPLACE`; a procedure is only ever
 * CALLed). What calls a function calls it by its identity, not its text: a trigger, and also a
 * table's CHECK constraint, index expression, generated column or default, each run on stored
 * rows, which only the catalog would tell.
 */
export function replacesFunction (b: Obj): boolean {
  return b.replace === true && b.is_procedure !== true
}
