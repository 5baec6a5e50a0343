import { OpError } from '../errors.ts';

// The seed's infrastructure-as-code shape of one route (POST /api/mcp_server): camelCase names
// accepted for the operation's snake_case fields, and the answer given back in camelCase when the
// request used them. Everywhere else the interface is snake_case only.

const SNAKE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/;
const CAMEL = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;
/** Maps whose keys are the caller's own names (credential fields), never renamed. */
const VERBATIM = new Set(['secrets']);

export const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
export const camelCase = (name: string) => (SNAKE.test(name) ? name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) : name);

/**
 * The body with camelCase aliases of known fields renamed; `aliased` says whether any was used.
 * A field given in both spellings is refused: which one was meant cannot be known.
 */
export function acceptCamelCase(body: Record<string, unknown>, fields: readonly string[]): { input: Record<string, unknown>; aliased: boolean } {
  const known = new Set(fields);
  const input: Record<string, unknown> = Object.create(null);
  let aliased = false;
  for (const [key, value] of Object.entries(body)) {
    const snake = CAMEL.test(key) ? snakeCase(key) : key;
    if (snake !== key && known.has(snake)) {
      if (Object.hasOwn(body, snake)) throw new OpError('invalid_input', `${key}: also given as ${snake}; give one of them`, { field: key });
      input[snake] = value;
      aliased = true;
    } else {
      input[key] = value;
    }
  }
  return { input, aliased };
}

/** The answer with every snake_case field name in camelCase (credential field names left as they are). */
export function answerInCamelCase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(answerInCamelCase);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([key, field]) => [camelCase(key), VERBATIM.has(key) ? field : answerInCamelCase(field)]),
  );
}
