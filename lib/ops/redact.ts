import { API_TOKEN_IN_TEXT } from '../identity/tokens.ts';

export const REDACTED = '[redacted]';

// Field names that hold secrets, after camelCase is folded to snake_case: password, new_password,
// secret(s), token, raw_token, api_key, credential(s), authorization, private_key. `token_id` and
// `token_name` are not secrets and do not match.
const SECRET_FIELD = /(^|_)(password|passwd|secrets?|token|api_?key|credentials?|authorization|private_?key)$/;

function isSecretField(key: string): boolean {
  const snake = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  return SECRET_FIELD.test(snake);
}

/**
 * Removes API-token-shaped substrings, and the given secret values, from free text: an error thrown
 * deep inside an operation may quote its input, and its message still gets logged.
 */
export function scrubText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(API_TOKEN_IN_TEXT, REDACTED);
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join(REDACTED);
  return out;
}

/** The string values held under secret field names anywhere in a value (all strings below them). */
export function secretValues(value: unknown, underSecret = false, depth = 0, found: string[] = []): string[] {
  if (depth > 8) return found;
  if (typeof value === 'string') {
    if (underSecret) found.push(value);
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) secretValues(item, underSecret || isSecretField(key), depth + 1, found);
  }
  return found;
}

/** A copy of a value fit for audit details: secret fields and token-shaped strings replaced. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return REDACTED;
  if (typeof value === 'string') return scrubText(value);
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = isSecretField(key) ? REDACTED : redact(item, depth + 1);
    }
    return out;
  }
  return value;
}
