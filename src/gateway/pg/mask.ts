import { createHmac, type KeyObject } from 'node:crypto'
import { globMatch } from '../policy.js'
import type { Exposure } from './exposure.js'

export type MaskKind = 'redact' | 'hash' | 'email' | 'last4'

/** A column as the catalog names it. */
export interface ColumnName { schema: string, table: string, column: string }

/** Mask rules as `{ columns, with }`: patterns `table.column` or `schema.table.column`, globs allowed. */
export interface MaskRule { columns: string[], with: MaskKind }

/** The first rule's mask for a column, or undefined when no rule names it. */
export function maskFor (rules: readonly MaskRule[], c: ColumnName): MaskKind | undefined {
  const short = `${c.table}.${c.column}`
  const long = `${c.schema}.${short}`
  for (const r of rules) {
    if (r.columns.some((p) => globMatch(p, p.split('.').length > 2 ? long : short))) return r.with
  }
  return undefined
}

// Types whose binary form is their text (UTF-8): text, varchar, bpchar, name, unknown, json.
const textLike = new Set([25, 1043, 1042, 19, 705, 114])

function maskText (kind: Exclude<MaskKind, 'hash'>, value: string): string {
  switch (kind) {
    case 'redact': return '***'
    case 'email': {
      const at = value.lastIndexOf('@')
      return at <= 0 ? '***' : `${value[0]}***${value.slice(at)}`
    }
    case 'last4': return value.length <= 4 ? '***' : `***${value.slice(-4)}`
  }
}

/**
 * `hash`: HMAC-SHA-256 (RFC 2104) of the value's bytes under the deployment's key, as 16 hex
 * digits. Unkeyed, a digest of a low-entropy value (an SSN, a phone number, an email) is
 * reversed by hashing every candidate; keyed, only who holds the key can. The same key in
 * every process of a deployment keeps the digest stable, so masked values still join and group.
 */
function keyedDigest (key: KeyObject, value: Buffer): Buffer {
  return Buffer.from(createHmac('sha256', key).update(value).digest().toString('hex', 0, 8))
}

/**
 * The masked form of one column value. Text format: the masked text, whatever the column's
 * type. Binary format: the masked bytes for text-like types, and NULL for any other type,
 * whose binary form cannot carry the mask. NULL stays NULL.
 * @param key the deployment's `hash` key (`loadMaskKey`).
 */
export function maskValue (kind: MaskKind, value: Buffer | null, format: number, typeOid: number, key: KeyObject): Buffer | null {
  if (value === null) return null
  if (format === 1 && !textLike.has(typeOid)) return null
  // A text-like value's bytes in either format are its text, so both give one digest.
  if (kind === 'hash') return keyedDigest(key, value)
  return Buffer.from(maskText(kind, value.toString('utf8')))
}

/**
 * Why a statement must be refused because a masked column would reach the client where masking
 * cannot see it (computed, converted, combined, a whole row: see `Exposure`), or undefined.
 * `columns`: every column of the relations the statement may mean, from the catalog.
 */
export function exposedMask (rules: readonly MaskRule[], columns: readonly ColumnName[], e: Exposure): string | undefined {
  const masked = columns.filter((c) => maskFor(rules, c) !== undefined)
  if (masked.length === 0) return undefined
  const named = (c: ColumnName): string => `${c.table}.${c.column}`
  if (e.rowCode === true) return `${named(masked[0])} is masked, and this statement attaches code to ${masked[0].table}'s rows (a trigger, rule or row security policy) or switches its triggers or rules: such code sees the rows unmasked and may copy them where masking cannot see them`
  if (e.all) return `${named(masked[0])} is masked, and this statement would return whole rows or every column computed; select the columns by name`
  const of = (c: ColumnName, relation: string): boolean => c.table === relation || `${c.schema}.${c.table}` === relation
  const hit = masked.find((c) => e.columns.includes(c.column) || e.columnsOf.some((q) => q.name === c.column && of(c, q.relation)))
  if (hit !== undefined) return `${named(hit)} is masked: it may be selected or compared as it is stored, not passed to a function, operator, cast or set operation`
  const known = new Set(columns.map((c) => c.column))
  const call = e.qualified.find((n) => !known.has(n)) ??
    e.ofTables.find((q) => !columns.some((c) => c.column === q.name && of(c, q.relation)))?.name
  if (call !== undefined) return `.${call} names no column here, so PostgreSQL would call ${call}() on a whole row, and ${named(masked[0])} is masked`
  return undefined
}
