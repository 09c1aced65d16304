import { randomBytes } from 'node:crypto'
import { errorResponse } from './protocol/backend.js'
import { FrontendCode } from './protocol/codes.js'
import { Writer } from './protocol/writer.js'

const marker = 'lineage_refused_'
const nonce = /lineage_refused_[0-9a-f]{16}/
// The upstream's own answer to a stand-in, whose reason may have been forgotten.
const standInError = /^syntax error at or near "lineage_refused_[0-9a-f]{16}"$/
// Refusals whose batch the upstream skipped after an earlier error are never consumed: the oldest are forgotten.
const maxOpen = 1000

/**
 * Stand-ins for refused statements. A refused message is not dropped: it is replaced by one
 * whose text is a single unknown word, so the upstream answers it with a syntax error at the
 * very place the statement held. The error then arrives in order among the other answers, the
 * transaction aborts and the extended protocol discards until Sync exactly as PostgreSQL
 * would for any failing statement; `rewrite` turns that error into the gateway's own 42501.
 */
export class Refusals {
  private readonly open = new Map<string, string>()

  /** A Query standing in for a refused simple query (or fast-path call). */
  query (reason: string): Buffer {
    return new Writer().cstring(this.word(reason)).frame(FrontendCode.Query)
  }

  /** A Parse standing in for a refused Parse, or for an Execute refused by a policy saved since. */
  parse (statement: string, reason: string): Buffer {
    return new Writer().cstring(statement).cstring(this.word(reason)).int16(0).frame(FrontendCode.Parse)
  }

  /** The client's ErrorResponse for an upstream error that answers a stand-in; undefined for any other error. */
  rewrite (message: string): Buffer | undefined {
    if (!message.includes(marker)) return undefined
    const word = nonce.exec(message)?.[0]
    const reason = word === undefined ? undefined : this.open.get(word)
    if (word === undefined || (reason === undefined && !standInError.test(message))) return undefined
    this.open.delete(word)
    return errorResponse({ severity: 'ERROR', code: '42501', message: `lineage: ${reason ?? 'refused by the gateway'}` })
  }

  private word (reason: string): string {
    const w = `${marker}${randomBytes(8).toString('hex')}`
    if (this.open.size >= maxOpen) this.open.delete(this.open.keys().next().value as string)
    this.open.set(w, reason)
    return w
  }
}
