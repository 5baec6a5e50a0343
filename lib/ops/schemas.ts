import { z } from 'zod';
import { ALL_PERMISSIONS, type Permission } from '../access/permissions.ts';

// Field schemas shared by operations, so every face reports the same field names and messages.
export const uuidField = (what: string) => z.uuid(`must be the UUID of ${what}`);
export const emailField = z
  .string()
  .trim()
  .max(320, 'must be at most 320 characters')
  .pipe(z.email('must be an email address'))
  .transform((email) => email.toLowerCase());
export const userNameField = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9._-]{1,63}$/, 'must be 2-64 characters: letters, digits, ".", "_" or "-", starting with a letter or digit');
export const displayNameField = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
export const projectKeyField = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[A-Z][A-Z0-9_]{0,31}$/, 'must be a project key: a letter then letters, digits or "_" (at most 32)');
// An enum, so a model sees the catalogue in the tool's JSON Schema.
export const permissionField = z.enum(ALL_PERMISSIONS as [Permission, ...Permission[]], {
  message: 'must be a permission from the catalogue (list_permissions)',
});
export const reasonField = z.string().trim().max(1000, 'must be at most 1000 characters');
