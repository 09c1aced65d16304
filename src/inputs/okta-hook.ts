import type { BrokerContext } from '../broker/context.js'
import { resolvePrincipal } from '../broker/resolve-principal.js'
import { setStatus } from '../broker/set-status.js'
import { Conflict, InvalidInput, Unauthorized } from '../errors.js'
import type { PrincipalStatus } from '../lineage/live-status.js'
import { hashSecret, secretMatches } from '../secrets.js'
import { storable } from '../storage/db.js'

const actions = new Map<string, PrincipalStatus>([
  ['user.lifecycle.deactivate', 'offboarded'],
  ['user.lifecycle.delete.initiated', 'offboarded'],
  ['user.lifecycle.suspend', 'suspended']
])
/** Okta's event ids are UUIDs; anything far longer is not one of its events. */
const maxUuidLength = 256

/** A string the database can hold as it is (no NUL, no unpaired surrogate) and so look up or record: any other is no user or id of Okta's. */
const text = (v: unknown): v is string => typeof v === 'string' && storable(v)

/**
 * The static Authorization header Okta is configured to send, compared by hash in constant
 * time: the time taken tells nothing of the expected value, its length included. @throws Unauthorized
 */
export function checkOktaAuthorization (expected: string | undefined, given: string | undefined): void {
  if (expected === undefined) throw new Unauthorized('Okta event hooks are not configured (LINEAGE_OKTA_AUTHORIZATION)')
  if (!secretMatches(given ?? '', hashSecret(expected))) throw new Unauthorized('wrong Authorization for the Okta event hook')
}

interface OktaEvent { uuid?: unknown, eventType?: unknown, target?: unknown }

/**
 * An Okta event hook delivery (`{"data":{"events":[…]}}`): deactivate and delete.initiated
 * offboard, suspend suspends, each acting on the `target[]` users (never the `actor`).
 * De-duplicated on the event's `uuid` together with the user. Unknown users and other event
 * types are skipped, so Okta does not retry what Lineage will never act on.
 * @throws InvalidInput for a body that is not an event hook delivery.
 */
export async function handleOktaDelivery (ctx: BrokerContext, body: unknown): Promise<{ applied: number, skipped: number }> {
  const events = (body as { data?: { events?: unknown } } | undefined)?.data?.events
  if (!Array.isArray(events) || events.length > 1000) throw new InvalidInput('expected {"data":{"events":[…]}}')
  let applied = 0
  let skipped = 0
  for (const raw of events as OktaEvent[]) {
    const status = typeof raw?.eventType === 'string' ? actions.get(raw.eventType) : undefined
    const targets = Array.isArray(raw?.target) ? raw.target as Array<{ type?: unknown, id?: unknown, alternateId?: unknown }> : []
    if (status === undefined || !text(raw.uuid) || raw.uuid.length > maxUuidLength) { skipped++; continue }
    for (const t of targets) {
      if (t?.type !== 'User') continue
      // One event's unusable user is skipped alone: failing the delivery would leave the others in it undone.
      const ref = text(t.alternateId) ? t.alternateId : text(t.id) ? t.id : undefined
      let id: string | undefined
      try {
        id = ref === undefined ? undefined : (await resolvePrincipal(ctx.db, ref)) ?? (text(t.id) ? await resolvePrincipal(ctx.db, t.id, 'external') : undefined)
      } catch (err) {
        // A reference two principals match alike acts on nobody, and keeps the others in the delivery.
        if (!(err instanceof Conflict)) throw err
      }
      if (id === undefined) { skipped++; continue }
      const out = await setStatus(ctx, id, status, { reason: `Okta ${raw.eventType as string}`, event: { source: 'okta', id: `${raw.uuid}:${id}` }, count: false })
      if (out.duplicate) skipped++
      else applied++
    }
  }
  return { applied, skipped }
}
