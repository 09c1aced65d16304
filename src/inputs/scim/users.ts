import { randomBytes } from 'node:crypto'
import type { BrokerContext } from '../../broker/context.js'
import { createPrincipal } from '../../broker/principals.js'
import { scimDeletedSource, setStatus } from '../../broker/set-status.js'
import { Conflict } from '../../errors.js'
import type { Queryable } from '../../storage/db.js'
import { ScimError, scimNotFound } from './errors.js'
import type { ListQuery } from './filter.js'
import { parsePatch } from './patch.js'
import { checkEmailShape, idFromUserName, listSchema, parseUserBody, toScimUser, userColumns, userNameOf, type ScimUser, type UserChanges, type UserRow } from './resource.js'
import { issuerUrl } from '../../broker/issuer-url.js'

/** SCIM Users are the human principals not deleted through SCIM. */
const visible = `p.kind = 'human' AND NOT (p.status <> 'active' AND EXISTS (
  SELECT 1 FROM inbound_events e WHERE e.source = '${scimDeletedSource}' AND e.event_id = p.id))`

/** Principals whose SCIM `userName` (email, else id) is `$n`, compared case-insensitively (RFC 7643 §4.1.1). */
const userNameIs = (n: number): string => `(lower(p.email) = lower($${n}) OR (p.email IS NULL AND lower(p.id) = lower($${n})))`

export interface ListResponse {
  schemas: [typeof listSchema]
  totalResults: number
  itemsPerPage: number
  startIndex: number
  Resources: ScimUser[]
}

const baseUrl = (ctx: BrokerContext): string => issuerUrl(ctx.issuer, '/scim/v2')

async function loadUser (q: Queryable, id: string): Promise<UserRow | undefined> {
  const { rows } = await q.query<UserRow>(`SELECT ${userColumns} FROM principals p WHERE p.id = $1 AND ${visible}`, [id])
  return rows[0]
}

async function mustLoadUser (q: Queryable, id: string): Promise<UserRow> {
  const row = await loadUser(q, id)
  if (row === undefined) throw scimNotFound(`User ${id.slice(0, 200)} not found`)
  return row
}

/** @throws ScimError uniqueness when another principal holds the `userName` or `externalId`. */
async function checkUnique (q: Queryable, id: string | null, changes: UserChanges): Promise<void> {
  if (changes.userName !== undefined) {
    // Any principal, deleted or a service, holds its email for good: emails are unique.
    const { rows } = await q.query(`SELECT 1 FROM principals p WHERE p.id IS DISTINCT FROM $1 AND ${userNameIs(2)} LIMIT 1`, [id, changes.userName])
    if (rows.length > 0) throw new ScimError(409, 'uniqueness', `userName ${changes.userName.slice(0, 200)} is taken`)
  }
  if (typeof changes.externalId === 'string') {
    const { rows } = await q.query('SELECT 1 FROM principals WHERE id IS DISTINCT FROM $1 AND external_id = $2 LIMIT 1', [id, changes.externalId])
    if (rows.length > 0) throw new ScimError(409, 'uniqueness', 'externalId is taken')
  }
}

/** Writes `userName` (as the email) and `externalId`. @throws ScimError uniqueness on a race the check lost */
async function writeAttributes (q: Queryable, id: string, email: string | undefined, externalId: string | null | undefined): Promise<void> {
  const sets: string[] = []
  const params: unknown[] = [id]
  if (email !== undefined) { params.push(email); sets.push(`email = $${params.length}`) }
  if (externalId !== undefined) { params.push(externalId); sets.push(`external_id = $${params.length}`) }
  if (sets.length === 0) return
  try {
    await q.query(`UPDATE principals SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`, params)
  } catch (err) {
    if ((err as { code?: unknown }).code === '23505') throw new ScimError(409, 'uniqueness', 'userName or externalId is taken')
    throw err
  }
}

/** Moves the principal to `active` or `offboarded` through setStatus, which cuts off the cascade and audits. */
async function applyActive (ctx: BrokerContext, row: UserRow, active: boolean | undefined, via: string): Promise<void> {
  if (active === false && row.status !== 'offboarded') await setStatus(ctx, row.id, 'offboarded', { reason: `SCIM ${via} active:false`, source: 'scim', count: false })
  // Identity providers send active:true with every profile push: it undoes only what SCIM itself did,
  // never an offboarding by HR, another provider or an admin.
  if (active === true && row.status !== 'active' && row.status_source === 'scim') await setStatus(ctx, row.id, 'active', { reason: `SCIM ${via} active:true`, source: 'scim', count: false })
}

/**
 * Applies checked changes to an existing User: uniqueness first, so that a refused request
 * changes nothing; then the attributes; then the status.
 */
async function applyChanges (ctx: BrokerContext, row: UserRow, changes: UserChanges, via: string): Promise<ScimUser> {
  const renamed = changes.userName !== undefined && changes.userName.toLowerCase() !== userNameOf(row).toLowerCase()
  if (renamed) checkEmailShape(changes.userName as string)
  const externalId = changes.externalId !== undefined && changes.externalId !== row.external_id ? changes.externalId : undefined
  await checkUnique(ctx.db, row.id, { userName: renamed ? changes.userName : undefined, externalId })
  await writeAttributes(ctx.db, row.id, renamed ? changes.userName : undefined, externalId)
  await applyActive(ctx, row, changes.active, via)
  return toScimUser(await mustLoadUser(ctx.db, row.id), ctx.clock.now(), baseUrl(ctx))
}

/** A human principal for `userName` under an id derived from it, suffixed when a principal already holds that id. */
async function createHuman (ctx: BrokerContext, userName: string): Promise<string> {
  const base = idFromUserName(userName)
  for (let attempt = 0; attempt < 5; attempt++) {
    const id = attempt === 0 ? base : `${base.slice(0, 119)}-${randomBytes(4).toString('hex')}`
    const { rows } = await ctx.db.query('SELECT 1 FROM principals WHERE id = $1', [id])
    if (rows.length > 0) continue
    try {
      await createPrincipal(ctx, { id, kind: 'human', email: userName })
      return id
    } catch (err) {
      if (!(err instanceof Conflict)) throw err
      // The id or the email was taken since the check: the email means a concurrent create.
      await checkUnique(ctx.db, null, { userName })
    }
  }
  throw new Error(`no free principal id for ${base}`)
}

/**
 * `POST /Users`: a human principal whose email is `userName`. A User created with
 * `active:false` is created, then offboarded.
 * @throws ScimError invalidSyntax, invalidValue (no userName, not an email address), uniqueness (409)
 */
export async function createUser (ctx: BrokerContext, body: unknown): Promise<ScimUser> {
  const input = parseUserBody(body)
  checkEmailShape(input.userName)
  await checkUnique(ctx.db, null, input)
  const id = await createHuman(ctx, input.userName)
  await writeAttributes(ctx.db, id, undefined, input.externalId ?? undefined)
  const row = await mustLoadUser(ctx.db, id)
  await applyActive(ctx, row, input.active, 'POST')
  return toScimUser(await mustLoadUser(ctx.db, id), ctx.clock.now(), baseUrl(ctx))
}

/** `GET /Users/{id}`. @throws ScimError 404 */
export async function getUser (ctx: BrokerContext, id: string): Promise<ScimUser> {
  return toScimUser(await mustLoadUser(ctx.db, id), ctx.clock.now(), baseUrl(ctx))
}

/** `GET /Users`: one page of the Users that match the filter, oldest first (RFC 7644 §3.4.2). */
export async function listUsers (ctx: BrokerContext, query: ListQuery): Promise<ListResponse> {
  const params: unknown[] = []
  let where = visible
  if (query.filter !== undefined) {
    params.push(query.filter.value)
    // RFC 7643 §3.1: externalId is case-exact, userName is not.
    where += query.filter.attribute === 'userName' ? ` AND ${userNameIs(1)}` : ' AND p.external_id = $1'
  }
  const { rows: [{ n }] } = await ctx.db.query<{ n: number }>(`SELECT count(*) AS n FROM principals p WHERE ${where}`, params)
  const { rows } = query.count === 0
    ? { rows: [] }
    : await ctx.db.query<UserRow>(`SELECT ${userColumns} FROM principals p WHERE ${where} ORDER BY p.created_at, p.id OFFSET ${query.startIndex - 1} LIMIT ${query.count}`, params)
  const now = ctx.clock.now()
  const resources = rows.map((r) => toScimUser(r, now, baseUrl(ctx)))
  return { schemas: [listSchema], totalResults: Number(n), itemsPerPage: resources.length, startIndex: query.startIndex, Resources: resources }
}

/**
 * `PUT /Users/{id}` (RFC 7644 §3.5.1). `userName` is required; `active:false` offboards,
 * `active:true` reinstates. An absent `active` or `externalId` leaves it as it is (Lineage
 * treats them as not sent rather than cleared: `externalId: null` clears).
 * @throws ScimError 404, invalidSyntax, invalidValue, uniqueness
 */
export async function replaceUser (ctx: BrokerContext, id: string, body: unknown): Promise<ScimUser> {
  const row = await mustLoadUser(ctx.db, id)
  return await applyChanges(ctx, row, parseUserBody(body), 'PUT')
}

/**
 * `PATCH /Users/{id}` with a PatchOp body (see parsePatch). The body is checked whole before
 * anything changes.
 * @throws ScimError 404, invalidSyntax, invalidValue, invalidPath, noTarget, mutability, uniqueness
 */
export async function patchUser (ctx: BrokerContext, id: string, body: unknown): Promise<ScimUser> {
  const row = await mustLoadUser(ctx.db, id)
  return await applyChanges(ctx, row, parsePatch(body), 'PATCH')
}

/**
 * `DELETE /Users/{id}`: offboards the principal (cutting off its cascade), then marks it
 * deleted, so that it answers 404 from then on. Offboarding comes first: a failure between
 * the two leaves an offboarded User that is still visible, and the IdP's retry completes it.
 * @throws ScimError 404
 */
export async function deleteUser (ctx: BrokerContext, id: string): Promise<void> {
  const row = await mustLoadUser(ctx.db, id)
  if (row.status !== 'offboarded') await setStatus(ctx, row.id, 'offboarded', { reason: 'SCIM DELETE', source: 'scim', count: false })
  await ctx.db.query(
    `INSERT INTO inbound_events (source, event_id, principal) VALUES ($1, $2, $2)
     ON CONFLICT (source, event_id) DO UPDATE SET received_at = now()`, [scimDeletedSource, row.id])
}
