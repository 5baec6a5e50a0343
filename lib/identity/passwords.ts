import argon2 from 'argon2';
import { z } from 'zod';

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

export const passwordSchema = z
  .string()
  .min(PASSWORD_MIN_LENGTH, `must be at least ${PASSWORD_MIN_LENGTH} characters`)
  .max(PASSWORD_MAX_LENGTH, `must be at most ${PASSWORD_MAX_LENGTH} characters`);

/** Counts verifications, so tests can prove that an unknown user costs exactly one. */
export const passwordStats = { verifications: 0 };

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id });
}

let dummyHash: Promise<string> | undefined;

/**
 * Verifies a password against a stored hash. With no hash (unknown user, or a user without a
 * password) it still pays one full verify against a dummy hash, so timing does not reveal which.
 */
export async function verifyPassword(hash: string | null | undefined, password: string): Promise<boolean> {
  passwordStats.verifications++;
  if (!hash) {
    dummyHash ??= hashPassword('mandate-dummy-password-for-constant-time');
    await argon2.verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false; // a malformed stored hash is a failed login, not a crash
  }
}
