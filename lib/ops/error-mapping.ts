import {
  DriverException,
  ForeignKeyConstraintViolationException,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import type { z } from 'zod';
import { databaseUnavailable, invalid, OpError, type FieldIssue } from '../errors.ts';

// Unique constraints by name -> the field and message a client can act on.
const UNIQUE_CONSTRAINTS: Record<string, { field: string; message: string }> = {
  app_user_email_unique: { field: 'email', message: 'a user with this email already exists' },
  app_user_name_unique: { field: 'name', message: 'a user with this name already exists' },
  role_name_unique: { field: 'name', message: 'a role with this name already exists' },
  project_key_unique: { field: 'key', message: 'a project with this key already exists' },
  role_assignment_project_unique: { field: 'role', message: 'this role is already assigned to this user for this project' },
  role_assignment_global_unique: { field: 'role', message: 'this role is already assigned to this user' },
  pm_connection_user_name_unique: { field: 'name', message: 'you already have a PM connection with this name' },
};

export function fromZodError(error: z.ZodError): OpError {
  const issues: FieldIssue[] = error.issues.map((issue) => {
    const keys = (issue as { keys?: string[] }).keys;
    const path = issue.path.map(String).join('.');
    const field = keys?.length ? [path, keys[0]].filter(Boolean).join('.') : path || '(input)';
    return { field, message: issue.message };
  });
  const message = 'invalid input: ' + issues.map((i) => `${i.field}: ${i.message}`).join('; ');
  return new OpError('invalid_input', message, { field: issues[0]!.field, issues });
}

/**
 * A client's input checked against an operation's schema. Zod itself throws a TypeError on some
 * hostile values (an object whose `length` cannot be compared, where a list or a text with a
 * minimum length is expected): still the client's mistake, so an invalid_input on the field that
 * carries it, never an internal error.
 */
export function parseInput<Schema extends z.ZodType>(
  schema: Schema,
  input: unknown,
): { success: true; data: z.output<Schema> } | { success: false; error: OpError } {
  const hostile = hostileValue(input);
  if (hostile) return { success: false, error: invalid(hostile.field, hostile.message) };
  try {
    const parsed = schema.safeParse(input);
    return parsed.success ? { success: true, data: parsed.data } : { success: false, error: fromZodError(parsed.error) };
  } catch {
    const field = fieldSchemaThrowsOn(schema, input) ?? '(input)';
    const message = 'this value cannot be read as the type the input schema gives';
    return { success: false, error: new OpError('invalid_input', `invalid input: ${field}: ${message}`, { field, issues: [{ field, message }] }) };
  }
}

const MAX_DEPTH = 32;
const MAX_VALUES = 20_000;
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * What no operation accepts, whatever its schema says, found before the schema runs: NUL
 * characters and lone UTF-16 surrogates in any text or key (no database can store them), values
 * nested deeper than MAX_DEPTH, more than MAX_VALUES values. Walked without recursion.
 */
export function hostileValue(input: unknown): { field: string; message: string } | null {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value: input, path: '', depth: 0 }];
  let count = 0;
  const fieldOf = (path: string) => path || '(input)';
  while (stack.length) {
    const { value, path, depth } = stack.pop()!;
    if (++count > MAX_VALUES) return { field: '(input)', message: `holds more than ${MAX_VALUES} values` };
    if (typeof value === 'string') {
      const why = badText(value);
      if (why) return { field: fieldOf(path), message: why };
      continue;
    }
    if (!value || typeof value !== 'object') continue;
    if (depth >= MAX_DEPTH) return { field: fieldOf(path), message: `is nested more than ${MAX_DEPTH} levels deep` };
    for (const key of Object.keys(value)) {
      const keyPath = path ? `${path}.${key}` : key;
      const why = badText(key);
      if (why) return { field: fieldOf(path), message: `keys ${why}` };
      stack.push({ value: (value as Record<string, unknown>)[key], path: keyPath, depth: depth + 1 });
    }
  }
  return null;
}

function badText(text: string): string | null {
  if (text.includes('\0')) return 'must not contain NUL characters';
  // Well-formed text has no lone surrogate; the regex runs only on text that is not.
  if (!text.isWellFormed() && LONE_SURROGATE.test(text)) return 'must be valid Unicode text (it holds a lone UTF-16 surrogate)';
  return null;
}

function fieldSchemaThrowsOn(schema: z.ZodType, input: unknown): string | undefined {
  const shape = (schema as { shape?: Record<string, z.ZodType> }).shape;
  if (!shape || !input || typeof input !== 'object') return undefined;
  for (const [key, value] of Object.entries(input)) {
    try {
      if (Object.hasOwn(shape, key)) shape[key]!.safeParse(value);
    } catch {
      return key;
    }
  }
  return undefined;
}

/** Turns whatever an operation threw into an OpError; anything unexpected becomes a bare 500. */
export function toOpError(error: unknown): { error: OpError; unexpected: boolean } {
  if (error instanceof OpError) return { error, unexpected: false };
  if (error instanceof UniqueConstraintViolationException) {
    const name = /unique constraint "([^"]+)"/.exec(error.message)?.[1] ?? '';
    const known = Object.hasOwn(UNIQUE_CONSTRAINTS, name) ? UNIQUE_CONSTRAINTS[name] : undefined;
    return {
      error: new OpError('conflict', known?.message ?? 'this already exists', known ? { field: known.field } : {}),
      unexpected: false,
    };
  }
  if (error instanceof ForeignKeyConstraintViolationException) {
    return { error: new OpError('conflict', 'a record this refers to does not exist or is still in use'), unexpected: false };
  }
  const unavailable = databaseUnavailable(error);
  if (unavailable) return { error: unavailable, unexpected: false };
  if (error instanceof DriverException && /could not serialize|deadlock detected/.test(error.message)) {
    return { error: new OpError('unavailable', 'the database was busy; try again'), unexpected: true };
  }
  return { error: new OpError('internal', 'internal error; the server log has the details'), unexpected: true };
}
