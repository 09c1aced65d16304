/**
 * What of an upstream error or notice may reach an agent where columns are masked. PostgreSQL
 * quotes values in many places besides result rows: a constraint's detail quotes the row
 * (`Failing row contains (…)`, `Key (email)=(…)`), a data exception's message the value it could
 * not take, a context or an internal query the statement a trigger's `EXECUTE` built, and what a
 * trigger or a function raises says whatever its author wrote, from any table it reads, named by
 * the statement or not.
 */

/** Error fields that quote no value (severity, SQLSTATE, position, source file, line, routine): all a hidden message keeps. */
const rowless = ['S', 'V', 'C', 'P', 'F', 'L', 'R']
/** Error fields that may quote a row or a statement built from one: detail, context, internal query and its position. */
const quotes = ['D', 'W', 'q', 'p']

/** The whole context PostgreSQL gives an error in a Bind parameter's value (`unnamed portal parameter $1 = '…'`). */
const parameterContext = /^(unnamed portal|portal "[^\n]*") parameter \$\d+( = '[^]*')?$/

/** The whole context PostgreSQL gives an error COPY FROM raised on a line (`COPY orders, line 2`). */
const copyContext = /^COPY [^\n]*, line \d+[^\n]*$/

/**
 * Whether PostgreSQL's own message for `code` names no value, only objects, limits or the
 * transaction's state: an integrity constraint violation (class 23), an invalid transaction
 * state (25, a write in a read-only transaction), a rollback (40), insufficient resources (53),
 * a program limit (54, stack depth), an object not in the state asked (55, a lock not
 * available), operator intervention (57, a statement timeout). Raised with such a code by
 * PL/pgSQL it says whatever its author wrote: that is told apart by its routine.
 */
function namesNoValue (code: string | undefined): boolean {
  return code !== undefined && ['23', '25', '40', '53', '54', '55', '57'].includes(code.slice(0, 2))
}

/**
 * PostgreSQL's own routines (the error's `R` field, which no function's author sets) that raise
 * the errors of those classes a statement inside a function or trigger meets: a constraint it
 * violates, a read-only transaction, a deadlock, a timeout, the stack's depth. The same codes
 * come from any procedural language's raise too (PL/Python's `plpy.error(…, sqlstate=…)`, PL/Perl's
 * `elog`, PL/Tcl's), with whatever message its author wrote: inside a function, a message of
 * these classes passes only from these routines.
 */
const ownRoutines = new Set([
  '_bt_check_unique', 'check_exclusion_or_unique_constraint', 'ExecConstraints', 'ExecPartitionCheckEmitError',
  'ExecEvalConstraintCheck', 'ExecEvalConstraintNotNull', 'domain_check_input', 'ri_ReportViolation',
  'PreventCommandIfReadOnly', 'PreventCommandIfParallelMode', 'DeadLockReport', 'ProcessInterrupts', 'check_stack_depth'
])

/** Where an error arrived, as far as masking goes. */
export interface ErrorPlace {
  /** It answers a Parse or a Bind. */
  step: boolean
  /** Mask rules apply to the statement it answers (or, answering none, to the one sent last). */
  masking: () => boolean
  /** It may quote a masked column of a table the statement names, cascades to, or the error names. */
  namedTableMasked: () => boolean
}

/**
 * The fields of an upstream ErrorResponse as the agent may see them, or undefined when it may
 * see them all. What a function or a trigger raises (class P0, or any SQLSTATE a PL/pgSQL RAISE
 * gave it with USING ERRCODE, told by its routine), and any other error inside one (it has a
 * context, or the internal query of a statement one built), may quote any table (`column
 * "ann@example.com" does not exist` from an EXECUTE; `(SELECT email FROM customers)::int`), also
 * at a Bind, which plans an unnamed statement and so runs the immutable functions it calls on
 * constants. Only a parameter refused at Bind (a context naming the parameter alone) is the
 * client's own, as is a COPY's own error on a line it sent (a context naming the line alone; a
 * trigger or a default adds its own lines before it).
 */
export function errorForAgent (fields: Record<string, string>, place: ErrorPlace): Record<string, string> | undefined {
  const data = fields.C?.startsWith('22') === true
  const inner = fields.q !== undefined || (fields.W !== undefined && !(place.step && parameterContext.test(fields.W)) && !(!data && copyContext.test(fields.W)))
  const thrown = fields.C?.startsWith('P0') === true || fields.R === 'exec_stmt_raise'
  const raised = thrown || (inner && !(namesNoValue(fields.C) && ownRoutines.has(fields.R ?? '')))
  const masked = raised || inner ? place.masking() : place.namedTableMasked()
  // A data exception's message quotes the value it could not take; a raised one says whatever its author wrote.
  const quoting = data || raised
  if (!masked || (fields.D === undefined && fields.W === undefined && fields.q === undefined && !quoting)) return undefined
  // Of such an exception only the fields that say nothing of a row pass: RAISE ... USING sets
  // its hint, column, constraint, datatype, schema and table to whatever it is given.
  const kept: Record<string, string> = {}
  for (const k in fields) if (quoting ? rowless.includes(k) : !quotes.includes(k)) kept[k] = fields[k]
  if (quoting) kept.M = `lineage: the message of ${data ? 'data exception' : thrown ? 'raised exception' : 'error inside a function or trigger'} ${fields.C ?? ''} is hidden: where columns are masked it may quote a value`
  return kept
}

/**
 * The fields of an upstream NoticeResponse where mask rules apply: a trigger's or a function's
 * RAISE NOTICE (or WARNING, INFO) says whatever its author wrote, masked columns of any table it
 * reads included, so only its severity and code pass.
 */
export function noticeForAgent (fields: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {}
  for (const k of ['S', 'V', 'C'] as const) if (fields[k] !== undefined) kept[k] = fields[k]
  kept.M = `lineage: the text of this ${(fields.V ?? fields.S ?? 'notice').toLowerCase()} is hidden: where columns are masked it may quote a value`
  return kept
}
