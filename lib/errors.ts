/** The error every face (MCP, REST, remote) knows how to show: a code, a clear message, maybe a field. */
export const ERROR_STATUS = {
  invalid_input: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  // A request body over the limit: refused unread, and the connection closed.
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  // A PM tool needs a tracker connection the caller does not have (or one the tracker refused).
  connection_required: 409,
  connection_invalid: 409,
  // The tracker answered with an error of its own, or not in time.
  upstream_failed: 502,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface FieldIssue {
  field: string;
  message: string;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
  issues?: FieldIssue[];
}

export class OpError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly issues?: FieldIssue[];
  /** For rate_limited: when to try again (HTTP Retry-After). */
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, message: string, options: { field?: string; issues?: FieldIssue[]; retryAfterSeconds?: number } = {}) {
    super(message);
    this.name = 'OpError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.issues !== undefined) this.issues = options.issues;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody(): ErrorBody {
    return {
      code: this.code,
      message: this.message,
      ...(this.field !== undefined ? { field: this.field } : {}),
      ...(this.issues !== undefined ? { issues: this.issues } : {}),
    };
  }
}

export const invalid = (field: string, message: string) =>
  new OpError('invalid_input', `${field}: ${message}`, { field, issues: [{ field, message }] });
export const notFound = (what: string) => new OpError('not_found', `${what} not found`);
export const conflict = (message: string, field?: string) =>
  new OpError('conflict', message, field ? { field } : {});

// Signs that the database cannot be reached or is shutting down, rather than that a statement
// failed: socket errors, SQLSTATE class 08 (connection exception), 57P01-57P03 (shutdown,
// cannot connect now), 53300 (too many connections), and the pool's and driver's own timeouts.
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300']);
const UNREACHABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Query read timeout|not queryable|terminating connection|the database system is (starting up|shutting down)|server closed the connection/i;

/**
 * An error meaning the database is not reachable right now (stopped, restarting, its pool
 * exhausted): a 503 with Retry-After, which a client may retry, never a 500. Null for any other error.
 */
export function databaseUnavailable(error: unknown): OpError | null {
  for (let cause = error, depth = 0; cause && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    const message = (cause as { message?: unknown }).message;
    if ((typeof code === 'string' && (UNREACHABLE_CODES.has(code) || code.startsWith('08'))) || (typeof message === 'string' && UNREACHABLE_MESSAGES.test(message))) {
      return new OpError('unavailable', 'the database is not reachable right now; try again in a few seconds', { retryAfterSeconds: 2 });
    }
  }
  return null;
}

/** What a face shows for an error: the OpError itself, the database being away, or null (a 500 to log). */
export function knownError(error: unknown): OpError | null {
  return error instanceof OpError ? error : databaseUnavailable(error);
}
