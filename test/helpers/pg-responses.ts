import { createSecretKey } from 'node:crypto'
import type { Catalog } from '../../src/gateway/pg/catalog.js'
import { Refusals } from '../../src/gateway/pg/refusals.js'
import { Responses } from '../../src/gateway/pg/responses.js'

/** A session's `Responses` alone: no catalog, no masks, every callback doing nothing unless given. */
export function bareResponses (deps: Partial<ConstructorParameters<typeof Responses>[0]> = {}): Responses {
  return new Responses({
    refusals: new Refusals(),
    record: () => {},
    undo: () => {},
    settled: () => {},
    catalog: () => ({}) as unknown as Catalog,
    maskKey: createSecretKey(Buffer.alloc(32)),
    onFatal: () => {},
    onIdle: () => {},
    sendSync: () => {},
    masksNotifications: () => false,
    ...deps
  })
}
