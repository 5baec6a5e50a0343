import assert from 'node:assert/strict';
import { OPERATIONS } from '../../lib/ops/index.ts';
import type { User } from '../../lib/db/entities/index.ts';
import type { Runtime } from '../../lib/runtime.ts';
import { callerOf } from './fixtures.ts';

export type Outcome = { ok: true; value: any } | { ok: false; error: { code: string; message: string; field?: string } };

const SHOWN_ONCE = ['start_agent_session', 'create_my_token', 'create_token_for_user'];

/** Runs PM tools as a user through the runner, keeping every result for the secret checks. */
export function toolCaller(runtime: () => Runtime, responses: string[]) {
  const call = async (user: User, name: string, input: Record<string, unknown> = {}): Promise<Outcome> => {
    const result = await runtime().runner.run(OPERATIONS[name]!, callerOf(user), input);
    const outcome: Outcome = result.ok ? { ok: true, value: result.value } : { ok: false, error: result.error.toBody() };
    // Kept for the secret checks, except a success that hands out a new token (once, by design).
    if (!(result.ok && SHOWN_ONCE.includes(name))) responses.push(JSON.stringify(outcome));
    return outcome;
  };
  const ok = async (user: User, name: string, input: Record<string, unknown> = {}) => {
    const result = await call(user, name, input);
    assert.ok(result.ok, `${name} failed: ${JSON.stringify(!result.ok && result.error)}`);
    return result.value;
  };
  const refused = async (user: User, name: string, input: Record<string, unknown> = {}) => {
    const result = await call(user, name, input);
    assert.equal(result.ok, false, `${name} should have been refused`);
    return (result as Extract<Outcome, { ok: false }>).error;
  };
  return { call, ok, refused };
}

/** Every page of a search, following next_cursor: the keys (sorted), the projects named, and how many pages. */
export async function everySearchPage(ok: (user: User, name: string, input?: Record<string, unknown>) => Promise<any>, user: User, input: Record<string, unknown>, maxPages = 200) {
  const keys: string[] = [];
  const projects = new Set<string | null>();
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: { items: { key: string; project: string | null }[]; next_cursor: string | null } = await ok(user, 'search_issues', { ...input, ...(cursor ? { cursor } : {}) });
    for (const item of page.items) {
      keys.push(item.key);
      projects.add(item.project);
    }
    cursor = page.next_cursor;
    pages++;
  } while (cursor && pages < maxPages);
  return { keys: keys.sort(), projects, pages };
}
