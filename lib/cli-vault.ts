import { newVaultKeyLine } from './vault.ts';
import { resealInstallationSecrets } from './ops/installs.ts';
import { help, str, SYSTEM, UsageError, withRuntime, type Command } from './cli-support.ts';

// Vault maintenance: a new key, and moving every stored secret onto the current key.
export const vaultCommands: Record<string, Command> = {
  'vault new-key': {
    usage: 'mandate vault new-key [--id KEY_ID]',
    summary: 'Print a new vault key line for MANDATE_VAULT_KEY ("<key id>:<base64 of 32 bytes>"). Touches no database.',
    options: { ...help, id: { type: 'string' } },
    async run(args, io) {
      const id = str(args, 'id');
      if (id !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new UsageError('--id must be 1-32 letters, digits, "_" or "-"');
      io.out(newVaultKeyLine(id));
      return 0;
    },
  },
  'vault reseal': {
    usage: 'mandate vault reseal',
    summary: 'Re-encrypt every stored secret sealed with an older key (MANDATE_VAULT_PREVIOUS_KEYS) with MANDATE_VAULT_KEY; afterwards the older keys can be removed.',
    options: { ...help },
    async run(_args, io) {
      return withRuntime(io, 'vault reseal', async (runtime) => {
        if (!runtime.vault.configured) throw new UsageError('no vault key is configured (MANDATE_VAULT_KEY)');
        const { installations, secrets } = await resealInstallationSecrets(runtime.db.orm.em.fork(), runtime.vault, SYSTEM);
        io.out(`re-sealed ${secrets} secret(s) of ${installations} installation(s) with vault key "${runtime.vault.currentKeyId}"`);
        return 0;
      });
    },
  },
};
