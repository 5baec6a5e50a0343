import type { NetworkClass } from '../pm/net-guard.ts';

/** How Mandate acts as the OAuth 2.1 authorization server of its MCP endpoints. */
export interface OAuthSettings {
  /** Off until MANDATE_PUBLIC_URL says where the server is reached (it is the issuer). */
  enabled: boolean;
  /** The issuer and the base of every resource: MANDATE_PUBLIC_URL, without a trailing slash. */
  issuer: string;
  /** Dynamic Client Registration (RFC 7591) for clients without a metadata document. */
  dynamicRegistration: boolean;
  /** Clients identified by an https URL whose document describes them. */
  clientMetadataDocuments: boolean;
  /** Address classes a metadata document may be fetched from (default none: public addresses only). */
  metadataNetworks: ReadonlySet<NetworkClass>;
  /** New registrations one address may make per hour (identical ones are the same client). */
  registrationsPerHour: number;
  accessTokenSeconds: number;
  refreshTokenSeconds: number;
  /** How long a consent lasts before the user is asked again. */
  grantSeconds: number;
  /** A registration that never obtained a grant is removed after this long. */
  unusedClientSeconds: number;
}

/** The MCP endpoints a token can be requested for: one resource each (RFC 8707). */
export const MCP_RESOURCE_PATHS = ['/mcp', '/mcp/core', '/mcp/admin', '/mcp/pm'] as const;

export const resourceUrls = (issuer: string) => MCP_RESOURCE_PATHS.map((path) => `${issuer}${path}`);

/** The scope that carries the user's own permissions, unnarrowed. */
export const FULL_SCOPE = 'mandate';
