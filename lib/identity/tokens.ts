import { createHash, randomBytes } from 'node:crypto';

export const TOKEN_PREFIX = 'mnd_';
const TOKEN_PATTERN = /^mnd_[A-Za-z0-9_-]{43}$/;
/** How many leading characters of a token are kept to recognise it in a list. */
const DISPLAY_PREFIX_LENGTH = 12;

export interface NewApiToken {
  /** Shown to its owner once, never stored. */
  raw: string;
  prefix: string;
  hash: string;
}

export function hashApiToken(raw: string): string {
  return createHash('sha256').update(raw, 'utf8').digest('hex');
}

export function generateApiToken(): NewApiToken {
  const raw = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { raw, prefix: raw.slice(0, DISPLAY_PREFIX_LENGTH), hash: hashApiToken(raw) };
}

export function looksLikeApiToken(value: string): boolean {
  return TOKEN_PATTERN.test(value);
}

/** Finds token-shaped substrings, e.g. to scrub a message before it is logged or audited. */
export const API_TOKEN_IN_TEXT = /mnd_[A-Za-z0-9_-]{43}/g;
