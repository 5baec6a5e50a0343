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
