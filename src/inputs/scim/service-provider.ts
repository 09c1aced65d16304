import { maxResults } from './filter.js'

/** RFC 7643 §5: what this SCIM endpoint supports, for IdPs that ask. */
export function serviceProviderConfig (): Record<string, unknown> {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [{ type: 'oauthbearertoken', name: 'Bearer token', description: 'The LINEAGE_SCIM_TOKEN as a bearer token', primary: true }],
    meta: { resourceType: 'ServiceProviderConfig' }
  }
}
