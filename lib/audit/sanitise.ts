// Text that the database (and every reader after it) can hold: PostgreSQL's text and jsonb refuse
// NUL and lone UTF-16 surrogates, so an audit row carrying them would never be written. Such
// characters become U+FFFD and long values are cut, so no input can stop its event being written.

const REPLACEMENT = '\uFFFD';
const MAX_DEPTH = 8;
const MAX_KEYS = 100;
const MAX_ITEMS = 100;

/** The text with NUL and lone surrogates replaced, cut to `max` characters (marked). */
export function sanitiseText(text: string, max: number): string {
  let out = text.includes('\0') ? text.replaceAll('\0', REPLACEMENT) : text;
  if (!out.isWellFormed()) out = out.toWellFormed();
  if (out.length <= max) return out;
  const cut = out.slice(0, Math.max(0, max - 16)).toWellFormed();
  return `${cut}…[${out.length - cut.length} more]`;
}

export function sanitiseOptional(text: string | null | undefined, max: number): string | null {
  return text === null || text === undefined ? null : sanitiseText(String(text), max);
}

/** A JSON value whose strings (keys too) are sanitised, with bounded depth, breadth and string size. */
export function sanitiseJson(value: unknown, maxString = 2000, depth = 0): unknown {
  if (typeof value === 'string') return sanitiseText(value, maxString);
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value !== 'object') return value === undefined ? null : String(value);
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((item) => sanitiseJson(item, maxString, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`[${value.length - MAX_ITEMS} more]`);
    return items;
  }
  const out: Record<string, unknown> = {};
  let count = 0;
  for (const [key, item] of Object.entries(value)) {
    if (count++ >= MAX_KEYS) {
      out['[more]'] = `${Object.keys(value).length - MAX_KEYS} more keys`;
      break;
    }
    // Defined as an own property: a key "__proto__" stays data.
    Object.defineProperty(out, sanitiseText(key, 200), { value: sanitiseJson(item, maxString, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
