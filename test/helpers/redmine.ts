import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { freePort } from './pg-cluster.ts';

// A real Redmine (Debian's package, sqlite) on loopback for the integration test. .ci/run installs
// the package (scripts/install-redmine.sh); here it is seeded (users alice and bob, an API key
// each, private projects) and served with thin, as www-data.

const REDMINE = '/usr/share/redmine';
const SEED = new URL('../fixtures/redmine-seed.rb', import.meta.url);

export interface RedmineWorld {
  url: string;
  keys: { alice: string; bob: string };
  stop(): Promise<void>;
}

/** Why Redmine cannot run here, or null when it can. */
export function redmineUnavailable(): string | null {
  if (!existsSync(`${REDMINE}/config.ru`)) return `Debian's redmine package is not installed (${REDMINE}); run scripts/install-redmine.sh as root (CI does)`;
  if (process.getuid?.() !== 0) return 'Redmine runs as www-data, which needs the test to run as root';
  if (spawnSync('which', ['rackup']).status !== 0) return 'rackup is not installed (package thin/ruby-rack)';
  return null;
}

function asRedmine(command: string[], env: Record<string, string>) {
  return ['-u', 'www-data', '--', 'env', 'REDMINE_INSTANCE=default', 'RAILS_ENV=production', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...command];
}

/** Gives a Redmine user a new API key (as an administrator resetting it would): the old one stops working. */
export function rotateApiKey(login: string): string {
  const key = randomBytes(20).toString('hex');
  const script = `Token.where(user_id: User.find_by!(login: ENV.fetch('LOGIN')).id, action: 'api').update_all(value: ENV.fetch('NEW_KEY'))`;
  const done = spawnSync('runuser', asRedmine(['bin/rails', 'runner', script], { LOGIN: login, NEW_KEY: key }), { cwd: REDMINE, encoding: 'utf8', timeout: 120_000 });
  if (done.status !== 0) throw new Error(`rotating ${login}'s Redmine key failed: ${done.stderr.slice(-2000)}`);
  return key;
}

export async function startRedmine(): Promise<RedmineWorld> {
  const keys = { alice: randomBytes(20).toString('hex'), bob: randomBytes(20).toString('hex') };
  // The seed goes as an argument: a temporary clone of the project may not be readable by www-data.
  const seeded = spawnSync('runuser', asRedmine(['bin/rails', 'runner', readFileSync(SEED, 'utf8')], { ALICE_KEY: keys.alice, BOB_KEY: keys.bob }), { cwd: REDMINE, encoding: 'utf8', timeout: 120_000 });
  if (seeded.status !== 0) throw new Error(`seeding Redmine failed: ${seeded.stderr.slice(-2000)}`);
  const port = await freePort();
  const server: ChildProcess = spawn('runuser', asRedmine(['rackup', '-E', 'production', '-s', 'thin', '-o', '127.0.0.1', '-p', String(port), `${REDMINE}/config.ru`], {}), {
    cwd: REDMINE,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let stderr = '';
  server.stderr!.on('data', (chunk) => (stderr = (stderr + String(chunk)).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  // A first start after the package is installed compiles its caches, and beside the running suite
  // a start took over 240 s once: minutes on a busy machine.
  const deadline = Date.now() + 480_000;
  let lastSeen = 'no answer';
  for (;;) {
    try {
      const response = await fetch(`${url}/users/current.json`, { headers: { 'x-redmine-api-key': keys.alice } });
      if (response.status === 200) break;
      lastSeen = `HTTP ${response.status}`;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || server.exitCode !== null) {
      try {
        process.kill(-server.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      throw new Error(`Redmine did not start (last: ${lastSeen}${server.exitCode !== null ? `, exited ${server.exitCode}` : ''}): ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return {
    url,
    keys,
    async stop() {
      try {
        process.kill(-server.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    },
  };
}
