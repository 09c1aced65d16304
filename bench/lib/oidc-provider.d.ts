// oidc-provider ships no type declarations; this covers the little the peer benchmark uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  export class Provider {
    constructor (issuer: string, configuration: Record<string, unknown>)
    proxy: boolean
    callback (): (req: IncomingMessage, res: ServerResponse) => void
  }
  export default Provider
}
