import { z } from 'zod';
import { invalid } from '../errors.ts';
import { isUuid } from '../ids.ts';

// Lists page by keyset (sort time, id), so a page never skips or repeats rows as rows are added.
// The cursor is opaque to clients: base64url of the last row's sort key.

export const limitField = z
  .number()
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(100, 'must be at most 100')
  .default(50);
export const cursorField = z.string().max(200, 'must be at most 200 characters').optional();
/** Offset paging, for clients that page by position (the seed's admin tools); cursors are steadier. */
export const offsetField = z.number().int('must be a whole number').min(0, 'must be at least 0').max(1_000_000, 'must be at most 1000000').optional();

/**
 * Where a page starts: after the cursor (keyset), or at an offset; never both. `offset` goes to
 * the query as is, and the page then says `next_offset` too.
 */
export function pageStart(input: { cursor?: string | undefined; offset?: number | undefined }, timeField: string, direction: 'asc' | 'desc' = 'asc') {
  if (input.cursor !== undefined && input.offset !== undefined) throw invalid('offset', 'give cursor or offset, not both');
  return { where: afterCursor(decodeCursor(input.cursor), timeField, direction), offset: input.offset };
}

export interface CursorKey {
  at: Date;
  id: string;
}

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([key.at.toISOString(), key.id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): CursorKey | null {
  if (!cursor) return null;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(parsed) || parsed.length !== 2) throw new Error('shape');
    const [at, id] = parsed as unknown[];
    // Exactly what encodeCursor writes: an ISO time the database can hold, and a UUID.
    if (typeof at !== 'string' || typeof id !== 'string' || !isUuid(id)) throw new Error('shape');
    const date = new Date(at);
    if (Number.isNaN(date.getTime()) || date.toISOString() !== at || date.getUTCFullYear() < 1970 || date.getUTCFullYear() > 9999) throw new Error('time');
    return { at: date, id };
  } catch {
    throw invalid('cursor', 'is not a cursor this list returned; start again without one');
  }
}

/** Keyset condition for rows after the cursor, ascending or descending by (`timeField`, id). */
export function afterCursor(key: CursorKey | null, timeField: string, direction: 'asc' | 'desc' = 'asc'): Record<string, unknown> {
  if (!key) return {};
  const op = direction === 'asc' ? '$gt' : '$lt';
  return { $or: [{ [timeField]: { [op]: key.at } }, { [timeField]: key.at, id: { [op]: key.id } }] };
}

/** Cuts one extra row fetched to learn whether another page follows. */
export function page<T extends { id: string }>(rows: T[], limit: number, timeOf: (row: T) => Date, offset?: number) {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items.at(-1);
  return {
    items,
    next_cursor: more && last ? encodeCursor({ at: timeOf(last), id: last.id }) : null,
    ...(offset !== undefined ? { next_offset: more ? offset + limit : null } : {}),
  };
}
