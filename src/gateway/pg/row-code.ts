import { isObj, names, type Obj } from './from-scope.js'

/**
 * Code PostgreSQL runs on a table's rows, from statements that show none of it: a trigger's
 * function, a rule's actions, a row security policy's expressions. It sees each row whole
 * (`NEW`, `OLD`), where no mask applies, and may copy a value into any table
 * (`INSERT INTO t VALUES (NEW.email)`) or quote it in an error. So where a table's columns are
 * masked, attaching such code to it, or switching its triggers or rules on or off, is refused
 * (`Exposure.rowCode`), and so is replacing a trigger function (`replacesTriggerFunction`):
 * a trigger on such a table may already call it, which only the catalog would tell.
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

/** Whether a CreateFunctionStmt replaces a function returning `trigger`, which triggers call by its identity, not its text. */
export function replacesTriggerFunction (b: Obj): boolean {
  const returns = isObj(b.returnType) ? names(b.returnType.names) : []
  return b.replace === true && returns.at(-1) === 'trigger' && (returns.length === 1 || returns[0] === 'pg_catalog')
}
