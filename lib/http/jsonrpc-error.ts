import { OpError } from '../errors.ts';
import { errorReply, NotJsonError, WWW_AUTHENTICATE, type Reply } from './respond.ts';

type RequestId = string | number;

/** The request's JSON-RPC id when the body is one request with a usable id; null otherwise (as JSON-RPC asks). */
export function requestIdOf(body: unknown): RequestId | null {
  const id = (body as { id?: unknown } | null | undefined)?.id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? id : null;
}

/**
 * Mandate's error as the JSON-RPC error body a Streamable HTTP client reads: the same HTTP status
 * and headers (Retry-After, WWW-Authenticate) as the REST face, the code in the ranges the SDK's
 * own transport uses, and Mandate's `{code, message, field}` as `data` for programs.
 */
export function jsonRpcErrorReply(error: OpError, id: RequestId | null, challenge: string = WWW_AUTHENTICATE): Reply {
  const reply = errorReply(error, {}, challenge);
  return { ...reply, body: JSON.stringify({ jsonrpc: '2.0', id, error: { code: jsonRpcCode(error), message: error.message, data: error.toBody() } }) };
}

export const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
export const INTERNAL_ERROR = -32603;
/** Server-defined (-32000..-32099): the SDK's transport answers an unknown session with -32001, anything else with -32000. */
const SESSION_NOT_FOUND = -32001;
export const SERVER_ERROR = -32000;

function jsonRpcCode(error: OpError): number {
  if (error instanceof NotJsonError) return PARSE_ERROR;
  switch (error.code) {
    case 'invalid_input':
    case 'too_large':
      return INVALID_REQUEST;
    case 'not_found':
      return SESSION_NOT_FOUND;
    case 'internal':
      return INTERNAL_ERROR;
    default:
      return SERVER_ERROR;
  }
}
