import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { OpError } from './errors.ts';

/** A named AES-256 key; the name is written into every ciphertext sealed with it. */
export interface VaultKey {
  id: string;
  key: Buffer;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const FORMAT = 'mv1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Parses `id:base64key` (32 bytes once decoded); `what` names the setting in errors. */
export function parseVaultKey(text: string, what: string): VaultKey {
  const colon = text.indexOf(':');
  const id = colon > 0 ? text.slice(0, colon).trim() : '';
  if (!KEY_ID.test(id)) throw new Error(`${what} must look like "<key id>:<base64 of 32 bytes>" (key id: 1-32 letters, digits, "_" or "-")`);
  const key = Buffer.from(text.slice(colon + 1).trim(), 'base64');
  if (key.length !== 32) throw new Error(`${what}: key "${id}" must be 32 bytes (base64), not ${key.length}`);
  return { id, key };
}

/** A fresh key line for MANDATE_VAULT_KEY. */
export function newVaultKeyLine(id = `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/**
 * Seals secrets with AES-256-GCM. Every ciphertext names its key (`mv1:<key id>:<iv>:<data+tag>`),
 * so the current key can change while older keys still open what they sealed. The `context`
 * (for example `mcp_installation:<id>:<field>`) is bound in as associated data: a ciphertext
 * copied into another row or field does not open there.
 */
export class Vault {
  private readonly current: VaultKey | undefined;
  private readonly keys: Map<string, Buffer>;
  private readonly unconfiguredReason: string;

  constructor(current: VaultKey | undefined, previous: readonly VaultKey[] = [], unconfiguredReason = 'no vault key is configured (MANDATE_VAULT_KEY)') {
    this.current = current;
    this.keys = new Map([...previous, ...(current ? [current] : [])].map((k) => [k.id, k.key]));
    this.unconfiguredReason = unconfiguredReason;
  }

  get configured(): boolean {
    return this.current !== undefined;
  }

  get currentKeyId(): string | undefined {
    return this.current?.id;
  }

  /** The keys themselves; only the secret scrubber asks. */
  keyMaterial(): Buffer[] {
    return [...this.keys.values()];
  }

  seal(plaintext: string, context: string): string {
    if (!this.current) throw new OpError('unavailable', `secrets cannot be stored: ${this.unconfiguredReason}`);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${FORMAT}:${this.current.id}:${iv.toString('base64url')}:${data.toString('base64url')}`;
  }

  open(sealed: string, context: string): string {
    const [format, keyId, iv, data] = sealed.split(':');
    if (format !== FORMAT || !keyId || !iv || !data) throw new VaultError('a stored secret is not in the vault format');
    const key = this.keys.get(keyId);
    if (!key) throw new VaultError(`a stored secret was sealed with vault key "${keyId}", which is not configured (MANDATE_VAULT_KEY or MANDATE_VAULT_PREVIOUS_KEYS)`);
    const bytes = Buffer.from(data, 'base64url');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new VaultError(`a stored secret sealed with vault key "${keyId}" did not authenticate (wrong key, or altered)`);
    }
  }

  /** Whether a ciphertext was sealed with a key other than the current one. */
  isStale(sealed: string): boolean {
    return sealed.split(':')[1] !== this.current?.id;
  }
}

export class VaultError extends Error {}

/** A vault's key material in the forms it is written (base64 and raw), for the scrubber only. */
export function vaultKeyTexts(vault: Vault): string[] {
  return vault.keyMaterial().map((key) => key.toString('base64'));
}

export interface VaultSettings {
  key?: string | undefined;
  previousKeys?: string | undefined;
  /** Embedded database with a data directory: where a generated key is kept when none is configured. */
  keyFile?: string | undefined;
  /** Embedded in-memory database: a key for this process only. */
  ephemeral?: boolean;
}

/**
 * The vault of this process. A configured key wins; an embedded data directory otherwise gets a
 * generated key file next to its data (mode 0600), so `npm start` works without setup; on
 * PostgreSQL every instance must share the key, so there is none until one is configured.
 */
export function openVault(settings: VaultSettings): Vault {
  const previous = (settings.previousKeys ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => parseVaultKey(part, 'MANDATE_VAULT_PREVIOUS_KEYS'));
  if (settings.key) return new Vault(parseVaultKey(settings.key, 'MANDATE_VAULT_KEY'), previous);
  if (settings.ephemeral) return new Vault(parseVaultKey(newVaultKeyLine('memory'), 'generated key'), previous);
  if (settings.keyFile) {
    if (!existsSync(settings.keyFile)) {
      mkdirSync(dirname(settings.keyFile), { recursive: true });
      try {
        writeFileSync(settings.keyFile, `${newVaultKeyLine()}\n`, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        // Another process made it first: use theirs.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    chmodSync(settings.keyFile, 0o600);
    return new Vault(parseVaultKey(readFileSync(settings.keyFile, 'utf8').trim(), settings.keyFile), previous);
  }
  return new Vault(undefined, previous, 'MANDATE_VAULT_KEY is not set (every instance on PostgreSQL must share one key; `mandate vault new-key` makes one)');
}
