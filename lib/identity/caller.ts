/** Who is calling: a user (maybe through one of its API tokens), or the local system (the CLI). */
export type Caller = UserCaller | SystemCaller;

export interface UserCaller {
  kind: 'user';
  userId: string;
  name: string;
  email: string;
  type: 'human' | 'agent' | 'service';
  /** Set when the caller authenticated with an API token; its liveness and scopes apply. */
  tokenId?: string;
  /** Set when the caller authenticated with an OAuth access token: the one resource it is good for. */
  resource?: string;
  /** Set inside an MCP session: ending the session (admin, deactivation) ends the caller's access. */
  sessionId?: string;
}

/** The calling user's id; null for the system operator. */
export function callerUserId(caller: Caller): string | null {
  return caller.kind === 'user' ? caller.userId : null;
}

/** The operator at the machine (`mandate` CLI with database access): holds every permission. */
export interface SystemCaller {
  kind: 'system';
  name: string;
}
