import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { OPERATIONS, startAgentSession } from '../../lib/ops/index.ts';
import { inputJsonSchema } from '../../lib/ops/json-schema.ts';
import type { AnyOperation } from '../../lib/ops/operation.ts';
import { ALL_PERMISSIONS, type Permission } from '../../lib/access/permissions.ts';
import { authenticatePassword, verifyToken } from '../../lib/identity/authenticate.ts';
import { callerOf, delegate } from '../helpers/fixtures.ts';
import { User } from '../../lib/db/entities/index.ts';
import { recordSecret } from '../helpers/db.ts';
import { attackRig, heldAnywhere, type Person, type Rig } from './rig.ts';

// P1-P3 for every admin and self operation in the registry, present and future: a caller holding
// exactly one permission (through a role, or through a delegation that is then revoked) makes
// every call the operation's input schema allows against a target holding everything, and none of
// them may leave it with a permission it did not hold, or a credential (token, password) worth more.
// The calls are derived from the schema, so a new operation is covered without editing this file.

let rig: Rig;
before(async () => {
  rig = await attackRig();
});
after(() => rig.close());

const PASSWORD = recordSecret('derived attack password 1');
const ADMIN_PERMISSIONS: Permission[] = ['users:write', 'roles:write', 'delegations:write', 'tokens:write', 'sessions:write', 'installs:admin'];
const TOKEN = /mnd_[A-Za-z0-9_-]{43}/g;

interface Target {
  person: Person;
  tokenId: string;
  assignmentId: string;
  agentSessionId: string;
  delegationId: string;
  sessionId: string | null;
}

async function target(): Promise<Target> {
  const person = await rig.admin();
  const em = rig.rt.db.orm.em.fork();
  const [token] = await em.execute<{ id: string }[]>('select id from api_token where user_id = ?', [person.id]);
  const [assignment] = await em.execute<{ id: string }[]>('select id from role_assignment where user_id = ?', [person.id]);
  const agent = await rig.rt.runner.run(startAgentSession, callerOf(person.user), { role: 'agent', delegate_admin: true });
  assert.ok(agent.ok, 'the target runs an agent');
  recordSecret((agent.value as { token: string }).token);
  const helper = await rig.person([]);
  const delegation = await delegate(rig.rt, person.user, helper.user, 'users:read');
  return { person, tokenId: token!.id, assignmentId: assignment!.id, agentSessionId: (agent.value as { agent_session: { id: string } }).agent_session.id, delegationId: delegation.id, sessionId: null };
}

/** Candidate values per input field: the attacker's choices against the target. */
function candidates(name: string, schema: Record<string, any>, required: boolean, t: Target, attacker: Person, n: number): unknown[] {
  const uuid = schema.format === 'uuid';
  if (uuid && /(^|_)(user|delegate|delegator)_id$/.test(name)) return [t.person.id, attacker.id];
  if (name === 'token_id') return [t.tokenId];
  if (name === 'assignment_id') return [t.assignmentId];
  if (name === 'agent_session_id') return [t.agentSessionId];
  if (name === 'delegation_id') return [t.delegationId];
  if (name === 'role') return ['admin'];
  if (name === 'roles') return [['admin']];
  if (name === 'permission') return ['users:write'];
  if (name === 'permissions') return [[...ALL_PERMISSIONS]];
  if (name === 'password') return [PASSWORD];
  if (name === 'email') return [`derived-${n}-${Date.now()}@example.test`];
  if (name === 'name') return [`derived-${n}-${Date.now() % 100000}`];
  if (['display_name', 'description', 'reason', 'label'].includes(name)) return ['derived'];
  if (name === 'expires_in_days') return [365];
  if (name === 'lifetime_minutes') return [1440];
  if (['delegate_admin', 'cascade', 'force'].includes(name)) return [true];
  if (!required) return [undefined];
  if (uuid) return [crypto.randomUUID()];
  if (Array.isArray(schema.enum)) return [schema.enum[0]];
  if (schema.type === 'boolean') return [true];
  if (schema.type === 'integer' || schema.type === 'number') return [schema.minimum ?? 1];
  if (schema.type === 'array') return [[]];
  if (schema.type === 'object') return [{}];
  return ['derived'];
}

function inputsFor(op: AnyOperation, t: Target, attacker: Person): Record<string, unknown>[] {
  const schema = inputJsonSchema(op);
  const required = new Set(schema.required ?? []);
  let combos: Record<string, unknown>[] = [{}];
  let n = 0;
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const values = candidates(name, property as Record<string, any>, required.has(name), t, attacker, n++);
    combos = combos.flatMap((combo) => values.map((value) => (value === undefined ? combo : { ...combo, [name]: value })));
  }
  return combos.slice(0, 16);
}

const subset = (held: Set<string>, of: Set<string>) => [...held].filter((p) => !of.has(p));

/** What a token found in a result is worth: the permissions its holder gets through it. */
async function tokenWorth(raw: string): Promise<Set<string> | null> {
  try {
    const { caller } = await verifyToken(rig.rt.db.orm.em.fork(), raw);
    return heldAnywhere(rig.rt, caller.userId, caller.tokenId);
  } catch {
    return null;
  }
}

async function credentialsHeld(results: string[], emails: string[]): Promise<{ what: string; worth: Set<string> }[]> {
  const found: { what: string; worth: Set<string> }[] = [];
  for (const text of results) {
    for (const raw of text.match(TOKEN) ?? []) {
      recordSecret(raw);
      const worth = await tokenWorth(raw);
      if (worth) found.push({ what: `a token (${raw.slice(0, 8)}…)`, worth });
    }
  }
  for (const email of emails) {
    try {
      const caller = await authenticatePassword(rig.rt.db.orm.em.fork(), email, PASSWORD);
      found.push({ what: `the password of ${email}`, worth: await heldAnywhere(rig.rt, caller.userId) });
    } catch {
      // Not a credential the attacker holds.
    }
  }
  return found;
}

const ADMIN_AND_SELF = Object.values(OPERATIONS).filter((op) => op.toolset === undefined);

test('the registry has the operations this test derives calls for', () => {
  assert.ok(ADMIN_AND_SELF.length >= 40, `found ${ADMIN_AND_SELF.length}`);
  assert.ok(ADMIN_AND_SELF.some((op) => op.name === 'create_token_for_user'));
});

/** An agent whose spawner holds exactly `holding` through a role: the agent holds it through delegations. */
async function agentOf(holding: Permission[]): Promise<Person & { agentSessionId: string }> {
  const spawner = await rig.person(holding);
  const started = await rig.rt.runner.run(startAgentSession, callerOf(spawner.user), { role: 'agent', delegate_admin: true });
  assert.ok(started.ok);
  const value = started.value as { token: string; agent: { id: string }; agent_session: { id: string } };
  const { caller } = await verifyToken(rig.rt.db.orm.em.fork(), recordSecret(value.token));
  const user = await rig.rt.db.orm.em.fork().findOneOrFail(User, { id: caller.userId });
  return { user, id: user.id, email: user.email, token: value.token, agentSessionId: value.agent_session.id };
}

for (const mode of ['role', 'delegation', 'agent session'] as const) {
  test(`P1-P3 for every admin and self operation, one permission held through a ${mode}`, async () => {
    const violations: string[] = [];
    let succeeded = 0;
    let tried = 0;
    for (const op of ADMIN_AND_SELF) {
      const holdings: Permission[][] = op.permission ? [[op.permission]] : ADMIN_PERMISSIONS.map((p) => [p]);
      for (const holding of holdings) {
        const t = await target();
        const boss = mode === 'delegation' ? await rig.admin() : null;
        const attacker: Person & { delegationIds?: string[]; agentSessionId?: string } =
          mode === 'agent session' ? await agentOf(holding) : boss ? await rig.delegatedPerson(boss, holding) : await rig.person(holding);
        const original = await heldAnywhere(rig.rt, attacker.id);
        const results: string[] = [];
        const emails = [t.person.email];
        for (const input of inputsFor(op, t, attacker)) {
          if (typeof input.email === 'string') emails.push(input.email);
          tried++;
          const result = await rig.rt.runner.run(op, callerOf(attacker.user), input);
          if (result.ok) {
            succeeded++;
            results.push(JSON.stringify(result.value));
          }
          const gained = subset(await heldAnywhere(rig.rt, attacker.id), original);
          if (gained.length) violations.push(`${op.name} ${JSON.stringify(input)} (${mode} ${holding}): the attacker gained ${gained}`);
        }
        for (const { what, worth } of await credentialsHeld(results, emails)) {
          const beyond = subset(worth, original);
          if (beyond.length) violations.push(`${op.name} (${mode} ${holding}): the attacker holds ${what} worth ${beyond}`);
        }
        if (mode !== 'role') {
          // The grant ends: nothing may be left, neither permissions nor credentials worth any.
          if (attacker.delegationIds) {
            await rig.rt.db.orm.em.fork().execute('update delegation set revoked_at = now() where id in (' + attacker.delegationIds.map(() => '?').join(',') + ')', attacker.delegationIds, 'run');
          } else {
            const ended = await rig.rt.runner.run(OPERATIONS.end_agent_session!, { kind: 'system', name: 'test' }, { agent_session_id: attacker.agentSessionId });
            assert.ok(ended.ok);
          }
          const kept = await heldAnywhere(rig.rt, attacker.id);
          if (kept.size) violations.push(`${op.name} (${mode} ${holding}): kept ${[...kept]} after the delegation ended`);
          for (const { what, worth } of await credentialsHeld(results, emails)) {
            if (worth.size) violations.push(`${op.name} (${mode} ${holding}): ${what} still carries ${[...worth]} after the delegation ended`);
          }
        }
      }
    }
    assert.deepEqual(violations, []);
    assert.ok(tried > 100 && succeeded > 20, `the derived calls must exercise the operations (tried ${tried}, succeeded ${succeeded})`);
  });
}
