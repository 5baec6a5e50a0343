import { API_TOKEN_IN_TEXT } from './identity/tokens.ts';

export const REDACTED = '[redacted]';

// Field names that hold secrets, after camelCase is folded to snake_case: password, new_password,
// secret(s), token, raw_token, api_key, credential(s), authorization, private_key. `token_id` and
// `token_name` are not secrets and do not match.
const SECRET_FIELD = /(^|_)(password|passwd|secrets?|token|api_?key|credentials?|authorization|private_?key)$/;

function isSecretField(key: string): boolean {
  const snake = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  return SECRET_FIELD.test(snake);
}

/** The deployment's own secrets (vault keys, service and guard tokens, OAuth client secrets). */
const deploymentSecrets = new Set<string>();

/** Registers secrets that no message, result or audit detail may ever carry, in any encoding. */
export function registerDeploymentSecrets(secrets: readonly (string | undefined)[]): void {
  for (const secret of secrets) if (secret && secret.length >= 4) deploymentSecrets.add(secret);
}

const MIN_SECRET = 4;
const formsCache = new Map<string, string[]>();

/**
 * The ways a secret is written where it may leak: as it is, URL-encoded (either hex case, `+` for
 * spaces), JSON-escaped, and base64 / base64url of it alone. (Base64 of a longer text holding it,
 * such as `user:secret` in a Basic header, is found by decoding; see scrubEncodedRuns.)
 */
function encodedForms(secret: string): string[] {
  let forms = formsCache.get(secret);
  if (!forms) {
    const url = encodeURIComponent(secret);
    const base64 = Buffer.from(secret).toString('base64');
    forms = [...new Set([
      secret,
      url,
      url.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()),
      url.replace(/%20/g, '+'),
      JSON.stringify(secret).slice(1, -1),
      base64,
      base64.replace(/=+$/, ''),
      Buffer.from(secret).toString('base64url'),
    ])].filter((form) => form.length >= MIN_SECRET).sort((a, b) => b.length - a.length);
    if (formsCache.size > 1000) formsCache.clear();
    formsCache.set(secret, forms);
  }
  return forms;
}

// Runs of base64 or base64url long enough to carry a secret.
const ENCODED_RUN = /[A-Za-z0-9+/_-]{12,}={0,2}/g;

/** Replaces base64 runs whose decoded text holds a secret or an API token (e.g. `Basic base64(email:token)`). */
function scrubEncodedRuns(text: string, secrets: readonly string[]): string {
  return text.replace(ENCODED_RUN, (run) => {
    const decoded = Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1');
    API_TOKEN_IN_TEXT.lastIndex = 0;
    if (API_TOKEN_IN_TEXT.test(decoded)) return REDACTED;
    for (const secret of secrets) if (secret.length >= MIN_SECRET && decoded.includes(secret)) return REDACTED;
    return run;
  });
}

/**
 * Removes API-token-shaped substrings, and the given secret values (and the deployment's) in any of
 * their encoded forms, from free text: an error thrown deep inside an operation, or a tracker's
 * error, may quote a credential, and its message still gets shown, logged and audited.
 */
export function scrubText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(API_TOKEN_IN_TEXT, REDACTED);
  const all = deploymentSecrets.size ? [...secrets, ...deploymentSecrets] : secrets;
  for (const secret of all) {
    if (secret.length < MIN_SECRET) continue;
    for (const form of encodedForms(secret)) if (out.includes(form)) out = out.split(form).join(REDACTED);
  }
  return all.length || out.length > 40 ? scrubEncodedRuns(out, all) : out;
}

/** A copy of a JSON value with every string scrubbed (tool results that quote another system). */
export function scrubValue<T>(value: T, secrets: readonly string[], depth = 0): T {
  if (typeof value === 'string') return scrubText(value, secrets) as T;
  if (!value || typeof value !== 'object' || depth > 32) return value;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, secrets, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    Object.defineProperty(out, key, { value: scrubValue(item, secrets, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out as T;
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
      // Defined, not assigned: a key "__proto__" stays data.
      Object.defineProperty(out, key, { value: isSecretField(key) ? REDACTED : redact(item, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
