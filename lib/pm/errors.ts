import { OpError } from '../errors.ts';
import { BlockedAddressError } from './net-guard.ts';
import { UpstreamFailure } from './http.ts';
import { scrubText } from '../redact.ts';

/** A tracker's answer that is an error: its status and what it said (never the credentials). */
export class TrackerError extends Error {
  readonly status: number;
  readonly messages: string[];
  readonly fieldErrors: Record<string, string>;
  constructor(status: number, messages: string[], fieldErrors: Record<string, string> = {}) {
    super(messages.join('; ') || `HTTP ${status}`);
    this.name = 'TrackerError';
    this.status = status;
    this.messages = messages;
    this.fieldErrors = fieldErrors;
  }
}

/** Whether the tracker refused the credentials themselves (not a missing permission for one thing). */
export function credentialsRefused(error: unknown): error is TrackerError {
  return error instanceof TrackerError && (error.status === 401 || error.status === 403);
}

/** Whether the tracker answered that the account cannot see something (403 or 404), not another failure. */
export function isUnseen(error: unknown): error is TrackerError {
  return error instanceof TrackerError && (error.status === 403 || error.status === 404);
}

/** For `.catch`: null when the account cannot see it; any other failure stays one. */
export function nullIfUnseen(error: unknown): null {
  if (isUnseen(error)) return null;
  throw error;
}

export function unsupported(tracker: string, what: string, instead?: string): OpError {
  return new OpError('invalid_input', `${what} is not supported for ${tracker} connections${instead ? `; ${instead}` : ''}`);
}

const MAX_MESSAGE = 500;

/**
 * The tool error for a tracker failure. Messages come from the tracker (useful: "Field 'summary'
 * is required") but are scrubbed of the connection's secrets and cut short.
 */
export function trackerFailure(error: unknown, tracker: string, secrets: readonly string[]): OpError | null {
  const clean = (text: string) => scrubText(text, secrets).slice(0, MAX_MESSAGE);
  if (error instanceof BlockedAddressError) return new OpError('invalid_input', clean(error.message), { field: 'base_url' });
  if (error instanceof UpstreamFailure) {
    if (error.kind === 'timeout') return new OpError('upstream_timeout', `${tracker} did not answer in time (${clean(error.message)}); try again later`);
    if (error.kind === 'rate_limited') {
      return new OpError('rate_limited', `${tracker} is rate limiting this connection; try again in ${error.retryAfterSeconds ?? 1} s`, {
        retryAfterSeconds: Math.max(1, error.retryAfterSeconds ?? 1),
      });
    }
    return new OpError('upstream_failed', `${tracker}: ${clean(error.message)}`);
  }
  if (!(error instanceof TrackerError)) return null;
  const said = clean([...error.messages, ...Object.entries(error.fieldErrors).map(([f, m]) => `${f}: ${m}`)].join('; '));
  const detail = said ? `: ${said}` : '';
  const fields = Object.keys(error.fieldErrors);
  switch (error.status) {
    case 400:
    case 422:
      return new OpError('invalid_input', `${tracker} rejected the request${detail}`, fields.length ? { field: `fields.${fields[0]}`, issues: fields.map((f) => ({ field: `fields.${f}`, message: clean(error.fieldErrors[f]!) })) } : {});
    case 401:
      return new OpError('connection_invalid', `${tracker} no longer accepts this connection's credentials; the connection is marked invalid. Add it again with fresh credentials (or reconnect).`);
    case 403:
      return new OpError('forbidden', `${tracker} refused: your ${tracker} account may not do this${detail}`);
    case 404:
      return new OpError('not_found', `${tracker}: not found, or your ${tracker} account cannot see it${detail}`);
    case 409:
      return new OpError('conflict', `${tracker} reported a conflict${detail}`);
    case 410:
      // An endpoint the tracker retired (Jira Cloud's old /search): never an empty answer.
      return new OpError('upstream_failed', `${tracker} no longer serves the API this tool uses (HTTP 410 Gone, an upstream deprecation)${detail}; this Mandate version needs an update for it`);
    case 429:
      return new OpError('rate_limited', `${tracker} is rate limiting this connection; try again later`, { retryAfterSeconds: 5 });
    default:
      return new OpError('upstream_failed', `${tracker} answered HTTP ${error.status}${detail}`);
  }
}
