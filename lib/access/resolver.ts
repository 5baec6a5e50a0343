import { emOf, type Em, type EmSource } from '../db/orm.ts';
import type { UserCaller } from '../identity/caller.ts';
import { AccessCache, AccessChanges, type ValueUse } from './changes.ts';
import { isPermission, type Permission } from './permissions.ts';

export type GrantSource =
  | { kind: 'role'; role: string; projectId: string | null }
  | { kind: 'delegation'; delegationId: string; delegatorId: string; projectId: string | null; expiresAt: Date | null };

export type DeadReason = 'user_inactive' | 'user_unknown' | 'token_revoked' | 'token_expired' | 'token_unknown' | 'token_source_ended' | 'session_ended';

export interface EffectivePermissions {
  /** false: the user is disabled or unknown, or the token is revoked or expired; no permissions. */
  live: boolean;
  deadReason?: DeadReason;
  grants: ReadonlyMap<Permission, readonly GrantSource[]>;
  /** The token's scopes, when it narrows the user's permissions. */
  scopes: readonly Permission[] | null;
}

interface GrantRow {
  kind: 'role' | 'delegation';
  permission: string;
  role_name: string | null;
  project_id: string | null;
  delegation_id: string | null;
  delegator_id: string | null;
  expires_at: Date | string | null;
}

interface LivenessRow {
  active: boolean;
  token_id: string | null;
  token_user_id: string | null;
  scopes: string[] | null;
  token_expires_at: Date | string | null;
  revoked_at: Date | string | null;
  token_source_live: boolean | null;
  token_source_expires_at: Date | string | null;
  session_user_id: string | null;
  session_ended_at: Date | string | null;
  depends_on: string[];
}

// Roles (global, or for the project asked about) and live delegations. A delegation counts only
// while its delegator is active and still holds the permission through a role for the delegation's
// scope: that is both the no-re-delegation rule and the cascade when the delegator loses it.
const GRANTS_SQL = `
select 'role' as kind, perm as permission, r.name as role_name, ra.project_id,
       null::uuid as delegation_id, null::uuid as delegator_id, null::timestamptz as expires_at
  from role_assignment ra
  join role r on r.id = ra.role_id
  cross join lateral unnest(r.permissions) as perm
 where ra.user_id = ? and (?::boolean or ra.project_id is null or ra.project_id = ?::uuid)
 union all
 select 'delegation', d.permission, null, d.project_id, d.id, d.delegator_id, d.expires_at
  from delegation d
  join app_user delegator on delegator.id = d.delegator_id and delegator.active
 where d.delegate_id = ?
   and d.revoked_at is null
   and (d.expires_at is null or d.expires_at > ?)
   and (?::boolean or d.project_id is null or d.project_id = ?::uuid)
   and exists (
     select 1 from role_assignment ra2 join role r2 on r2.id = ra2.role_id
      where ra2.user_id = d.delegator_id
        and d.permission = any(r2.permissions)
        and (ra2.project_id is null or ra2.project_id = d.project_id))`;

// A token minted through a delegation (P3) lives only while that delegation is in force, by the
// same rule as GRANTS_SQL's delegations. depends_on: what else the result is computed from (see
// AccessChanges): the user's roles, the delegators of its delegations and their roles, and for a
// token minted through a delegation, that delegation's two sides and the delegator's roles. Every
// delegation not revoked counts: one that does not apply now may apply after its delegator changes.
// (No SQL comments: the query log joins lines.)
const LIVENESS_SQL = `
select u.active, t.id as token_id, t.user_id as token_user_id, t.scopes,
       t.expires_at as token_expires_at, t.revoked_at,
       (select d.expires_at from delegation d where d.id = t.source_delegation_id) as token_source_expires_at,
       (t.source_delegation_id is null or exists (
          select 1 from delegation d
            join app_user delegator on delegator.id = d.delegator_id and delegator.active
           where d.id = t.source_delegation_id
             and d.revoked_at is null
             and (d.expires_at is null or d.expires_at > ?)
             and exists (
               select 1 from role_assignment ra2 join role r2 on r2.id = ra2.role_id
                where ra2.user_id = d.delegator_id
                  and d.permission = any(r2.permissions)
                  and (ra2.project_id is null or ra2.project_id = d.project_id)))) as token_source_live,
       s.user_id as session_user_id, s.ended_at as session_ended_at,
       array(
         select ra.role_id from role_assignment ra where ra.user_id = u.id
          union select d.delegator_id from delegation d where d.delegate_id = u.id and d.revoked_at is null
          union select dra.role_id from delegation d join role_assignment dra on dra.user_id = d.delegator_id
                 where d.delegate_id = u.id and d.revoked_at is null
          union select x.id from delegation sd cross join lateral (values (sd.delegate_id), (sd.delegator_id)) x(id)
                 where sd.id = t.source_delegation_id
          union select sra.role_id from delegation sd join role_assignment sra on sra.user_id = sd.delegator_id
                 where sd.id = t.source_delegation_id
       )::text[] as depends_on
  from app_user u
  left join api_token t on t.id = ?::uuid
  left join mcp_session s on s.id = ?::uuid
 where u.id = ?`;

const toDate = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function earliest(a: Date | null, b: Date | null): Date | null {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}

/** Whose permissions: a user, maybe through one of its API tokens, maybe within an MCP session. */
export type Subject = Pick<UserCaller, 'userId' | 'tokenId' | 'sessionId'>;

const ANY_PROJECT = Symbol('any project');

const dead = (deadReason: DeadReason): EffectivePermissions => ({ live: false, deadReason, grants: new Map(), scopes: null });

/**
 * Effective permissions of a caller for a project: (role permissions ∪ live delegations) ∩ token
 * scopes; nothing for a disabled user or an expired or revoked token. One read of the access-change
 * feed per check; the two resolution queries run only when the caller's access changed or an entry lapsed.
 */
export class PermissionResolver {
  readonly changes: AccessChanges;
  private readonly cache: AccessCache<EffectivePermissions>;
  private readonly now: () => Date;

  constructor(changes: AccessChanges, now: () => Date = () => new Date()) {
    this.changes = changes;
    this.now = now;
    this.cache = new AccessCache(changes);
  }

  /** Resolves for a user, through one of its tokens when `tokenId` is set. */
  async resolve(em: EmSource, caller: Subject, projectId: string | null = null, notBefore?: number, use?: ValueUse): Promise<EffectivePermissions> {
    return this.resolveFor(em, caller, projectId, notBefore, use);
  }

  /**
   * What the caller holds globally or in any project: what tool lists show. Never use it to
   * authorise a call; that is `resolve` for the project in question.
   */
  async resolveAnywhere(em: EmSource, caller: Subject, notBefore?: number, use?: ValueUse): Promise<EffectivePermissions> {
    return this.resolveFor(em, caller, ANY_PROJECT, notBefore, use);
  }

  // notBefore: see AccessChanges.sync; a call passes the time it began, so its checks share one read.
  // use: told of a cached result used (a speculation, which judges it once its read is in).
  private async resolveFor(source: EmSource, caller: Subject, projectId: string | null | typeof ANY_PROJECT, notBefore?: number, use?: ValueUse): Promise<EffectivePermissions> {
    const now = this.now();
    // Inside a transaction the answer may rest on its own uncommitted changes: computed afresh,
    // never cached, and the shared feed position is left alone.
    // (A source that is still a function forks afresh: never in a transaction.)
    if (typeof source !== 'function' && source.isInTransaction()) return (await this.load(source, caller, projectId, now)).result;
    const projectKey = projectId === ANY_PROJECT ? '*' : (projectId ?? '');
    const key = `${caller.userId}|${caller.tokenId ?? ''}|${caller.sessionId ?? ''}|${projectKey}`;
    const effective = await this.cache.getOrLoad(
      source,
      key,
      now,
      async () => {
        const { result, validUntil, dependsOn } = await this.load(emOf(source), caller, projectId, now);
        return { value: result, subject: caller.userId, dependsOn, validUntil };
      },
      notBefore,
      use,
    );
    return effective!;
  }

  /**
   * Every permission a user holds through its roles and live delegations, with the project each is
   * held for (null: globally), whatever the user's status or tokens: what acting on that user's
   * standing must be covered by (P2). Never cached: only admin writes ask.
   */
  async standing(em: Em, userId: string): Promise<{ permission: Permission; projectId: string | null }[]> {
    const rows = await em.execute<GrantRow[]>(GRANTS_SQL, [userId, true, null, userId, this.now(), true, null]);
    const seen = new Map<string, { permission: Permission; projectId: string | null }>();
    for (const row of rows) {
      if (!isPermission(row.permission)) continue;
      seen.set(`${row.permission}|${row.project_id ?? ''}`, { permission: row.permission, projectId: row.project_id });
    }
    return [...seen.values()];
  }

  private async load(em: Em, caller: Subject, projectId: string | null | typeof ANY_PROJECT, now: Date) {
    const liveness = await em.execute<LivenessRow>(LIVENESS_SQL, [now, caller.tokenId ?? null, caller.sessionId ?? null, caller.userId], 'get');
    if (!liveness) return { result: dead('user_unknown'), validUntil: null, dependsOn: [] };
    const dependsOn = liveness.depends_on ?? [];
    if (!liveness.active) return { result: dead('user_inactive'), validUntil: null, dependsOn };
    if (caller.sessionId && (liveness.session_user_id !== caller.userId || liveness.session_ended_at)) {
      return { result: dead('session_ended'), validUntil: null, dependsOn };
    }
    let validUntil: Date | null = null;
    let scopes: Permission[] | null = null;
    if (caller.tokenId) {
      if (!liveness.token_id || liveness.token_user_id !== caller.userId) return { result: dead('token_unknown'), validUntil: null, dependsOn };
      if (liveness.revoked_at) return { result: dead('token_revoked'), validUntil: null, dependsOn };
      if (liveness.token_source_live === false) return { result: dead('token_source_ended'), validUntil: null, dependsOn };
      const tokenExpiry = toDate(liveness.token_expires_at);
      if (tokenExpiry && tokenExpiry <= now) return { result: dead('token_expired'), validUntil: null, dependsOn };
      // A token minted through a delegation lapses with it too (P3), even if minted to outlive it.
      validUntil = earliest(tokenExpiry, toDate(liveness.token_source_expires_at));
      scopes = liveness.scopes ? liveness.scopes.filter(isPermission) : null;
    }

    const any = projectId === ANY_PROJECT;
    const project = any ? null : projectId;
    const rows = await em.execute<GrantRow[]>(GRANTS_SQL, [caller.userId, any, project, caller.userId, now, any, project]);
    const grants = new Map<Permission, GrantSource[]>();
    for (const row of rows) {
      if (!isPermission(row.permission)) continue; // a permission no longer in the catalogue
      if (scopes && !scopes.includes(row.permission)) continue;
      const source: GrantSource =
        row.kind === 'role'
          ? { kind: 'role', role: row.role_name!, projectId: row.project_id }
          : {
              kind: 'delegation',
              delegationId: row.delegation_id!,
              delegatorId: row.delegator_id!,
              projectId: row.project_id,
              expiresAt: toDate(row.expires_at),
            };
      if (source.kind === 'delegation') validUntil = earliest(validUntil, source.expiresAt);
      const list = grants.get(row.permission) ?? [];
      list.push(source);
      grants.set(row.permission, list);
    }
    return { result: { live: true, grants, scopes } satisfies EffectivePermissions, validUntil, dependsOn };
  }
}
