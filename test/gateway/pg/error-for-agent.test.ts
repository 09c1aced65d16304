import t from 'tap'
import { errorForAgent } from '../../../src/gateway/pg/error-for-agent.js'

// Which of an upstream error's fields reach an agent where columns are masked. The real server's
// errors (PL/pgSQL raises, constraints violated inside triggers) are in gateway.test.ts; other
// procedural languages are not installed there, so their raises are given here field by field:
// a context naming the language's function, a routine of the language's own.
const masked = { step: false, masking: () => true, namedTableMasked: () => true }
const insideTrigger = 'SQL statement "INSERT INTO order_notes VALUES (1)"\nPL/pgSQL function orders_note() line 2 at SQL statement'

t.test('a constraint violated inside a function keeps PostgreSQL\'s own message, which names only objects; its detail and context go', async (t) => {
  const kept = errorForAgent({ S: 'ERROR', C: '23505', M: 'duplicate key value violates unique constraint "customers_seen_pkey"', D: 'Key (email)=(ann@example.com) already exists.', W: insideTrigger, R: '_bt_check_unique' }, masked)
  t.match(kept, { C: '23505', M: 'duplicate key value violates unique constraint "customers_seen_pkey"', R: '_bt_check_unique' })
  t.notOk(kept?.D !== undefined || kept?.W !== undefined, 'no detail, no context')
  t.match(errorForAgent({ S: 'ERROR', C: '57014', M: 'canceling statement due to statement timeout', W: insideTrigger, R: 'ProcessInterrupts' }, masked), { M: 'canceling statement due to statement timeout' })
})

t.test('the same codes raised by another procedural language (its own routine) say what its author wrote: hidden', async (t) => {
  for (const [language, routine] of [['PL/Python', 'PLy_elog_impl'], ['PL/Perl', 'plperl_util_elog'], ['PL/Tcl', 'pltcl_elog']]) {
    const hidden = errorForAgent({ S: 'ERROR', V: 'ERROR', C: '23514', M: 'customer ann@example.com is not allowed', W: `${language} function "check_customer"`, R: routine, F: 'elog.c', L: '1' }, masked)
    t.match(hidden, { S: 'ERROR', C: '23514', R: routine, M: /^lineage: the message of error inside a function or trigger 23514 is hidden/ }, language)
    t.notMatch(JSON.stringify(hidden), /@example/)
  }
  t.match(errorForAgent({ S: 'ERROR', C: '40001', M: 'retry ann@example.com', W: 'PL/Python function "f"' }, masked), { M: /is hidden/ }, 'no routine given: hidden')
})

t.test('where nothing is masked, every field passes', async (t) => {
  t.equal(errorForAgent({ S: 'ERROR', C: '23514', M: 'customer ann@example.com', W: 'PL/Python function "f"', R: 'PLy_elog_impl' }, { step: false, masking: () => false, namedTableMasked: () => false }), undefined)
})
