// How the remote stdio client (lib/mcp/remote.ts) hands a tool call's exact input to a REST route
// (lib/http/rest.ts). Constants only, so the remote client loads nothing of the HTTP server.

/** A path segment that means "this field was not given" (it travels in the body or the header). */
export const ABSENT = '~';
/** Carries a GET or DELETE call's exact input as base64url JSON. */
export const INPUT_HEADER = 'x-mandate-input';
/** A route path's `{field}` segments, filled from the input field of that name. */
export const ROUTE_PARAM = /\{([A-Za-z_]+)\}/g;
