import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../../lib/http/server.ts';
import type { HttpAuthOptions } from '../../lib/http/authenticate.ts';
import type { User } from '../../lib/db/entities/index.ts';
import type { Permission } from '../../lib/access/permissions.ts';
import { assign, delegate, makeRole, makeToken, makeUser } from '../helpers/fixtures.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from '../helpers/db.ts';

// What the attacker-side suites share: a runtime with its HTTP face on loopback, people holding
// exactly the permissions a test gives them, and raw HTTP calls that keep every answer for the sweep.

export interface Person {
  user: User;
  id: string;
  email: string;
  token: string;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface Rig {
  rt: TestRuntime;
  base: string;
  /** A user holding exactly `permissions` through a custom role (global, or `[permission, projectKey]`). */
  person(permissions: (Permission | [Permission, string])[], options?: { password?: string; type?: User['type'] }): Promise<Person>;
  /** A user holding `permissions` only through delegations from `from`. */
  delegatedPerson(from: Person, permissions: Permission[], options?: { expiresAt?: Date }): Promise<Person & { delegationIds: string[] }>;
  admin(): Promise<Person>;
  api(method: string, path: string, auth: string | Record<string, string> | null, body?: unknown): Promise<Answer>;
  close(): Promise<void>;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
export const basic = (email: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}` });

export async function attackRig(options: { env?: Record<string, string>; http?: HttpAuthOptions | ((rt: TestRuntime) => Promise<HttpAuthOptions>) } = {}): Promise<Rig> {
  const rt = await testRuntime(options.env ? { env: options.env } : {});
  const http = typeof options.http === 'function' ? await options.http(rt) : (options.http ?? {});
  const server: Server = createHttpServer(rt, http);
  const address = await listen(server, '127.0.0.1', 0);
  const base = `http://127.0.0.1:${address.port}`;
  let roles = 0;
  const finish = async (user: User): Promise<Person> => ({ user, id: user.id, email: user.email, token: recordSecret((await makeToken(rt, user)).raw) });
  const rig: Rig = {
    rt,
    base,
    async person(permissions, opts = {}) {
      const user = await makeUser(rt, { type: opts.type ?? 'human', email: `attacker-${randomBytes(4).toString('hex')}@example.test` });
      const global = permissions.filter((p): p is Permission => typeof p === 'string');
      const scoped = permissions.filter((p): p is [Permission, string] => typeof p !== 'string');
      if (global.length) await assign(rt, user, (await makeRole(rt, `only-${roles++}-${randomBytes(3).toString('hex')}`, global)).name);
      for (const [permission, projectKey] of scoped) {
        await assign(rt, user, (await makeRole(rt, `scoped-${roles++}-${randomBytes(3).toString('hex')}`, [permission])).name, projectKey);
      }
      if (opts.password) {
        const { hashPassword } = await import('../../lib/identity/passwords.ts');
        await rt.db.orm.em.fork().execute('update app_user set password_hash = ? where id = ?', [await hashPassword(recordSecret(opts.password)), user.id], 'run');
      }
      return finish(user);
    },
    async delegatedPerson(from, permissions, opts = {}) {
      const user = await makeUser(rt, { email: `delegate-${randomBytes(4).toString('hex')}@example.test` });
      const delegationIds: string[] = [];
      for (const permission of permissions) delegationIds.push((await delegate(rt, from.user, user, permission, opts.expiresAt ? { expiresAt: opts.expiresAt } : {})).id);
      return { ...(await finish(user)), delegationIds };
    },
    async admin() {
      return finish(await makeUser(rt, { roles: ['admin'], email: `admin-${randomBytes(4).toString('hex')}@example.test` }));
    },
    async api(method, path, auth, body) {
      const headers: Record<string, string> = typeof auth === 'string' ? bearer(auth) : (auth ?? {});
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      // Kept for the secret sweep, except answers that hand out a new token (once, by design).
      if (!/"token":"mnd_/.test(text)) keepArtifact('http-response', text);
      let parsed: unknown = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = text;
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rt.close();
    },
  };
  return rig;
}

/** Everything a user holds right now, anywhere (through a token when given). */
export async function heldAnywhere(rt: TestRuntime, userId: string, tokenId?: string): Promise<Set<string>> {
  const effective = await rt.resolver.resolveAnywhere(rt.db.orm.em.fork(), { userId, ...(tokenId ? { tokenId } : {}) });
  return new Set(effective.live ? effective.grants.keys() : []);
}
