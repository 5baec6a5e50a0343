import {
  DriverException,
  ForeignKeyConstraintViolationException,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import type { z } from 'zod';
import { OpError, type FieldIssue } from '../errors.ts';

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

/** Turns whatever an operation threw into an OpError; anything unexpected becomes a bare 500. */
export function toOpError(error: unknown): { error: OpError; unexpected: boolean } {
  if (error instanceof OpError) return { error, unexpected: false };
  if (error instanceof UniqueConstraintViolationException) {
    const name = /unique constraint "([^"]+)"/.exec(error.message)?.[1] ?? '';
    const known = UNIQUE_CONSTRAINTS[name];
    return {
      error: new OpError('conflict', known?.message ?? 'this already exists', known ? { field: known.field } : {}),
      unexpected: false,
    };
  }
  if (error instanceof ForeignKeyConstraintViolationException) {
    return { error: new OpError('conflict', 'a record this refers to does not exist or is still in use'), unexpected: false };
  }
  if (error instanceof DriverException && /could not serialize|deadlock detected/.test(error.message)) {
    return { error: new OpError('unavailable', 'the database was busy; try again'), unexpected: true };
  }
  return { error: new OpError('internal', 'internal error; the server log has the details'), unexpected: true };
}
