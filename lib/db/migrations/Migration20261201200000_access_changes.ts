import { Migration } from '@mikro-orm/migrations';

// Scoped invalidation: the one access-epoch row every access change bumped (and every cache of
// every instance dropped on) gives way to the access-change feed, which names the user or role a
// change altered. Row triggers replace the statement triggers, since they must know the row.
export class Migration20261201200000_access_changes extends Migration {
  override name = 'Migration20261201200000_access_changes';

  override up(): void {
    this.addSql(`create table "access_change" ("seq" bigserial primary key, "xid" xid8 not null default pg_current_xact_id(), "subject_id" uuid null, "at" timestamptz not null default clock_timestamp());`);
    this.addSql(`create index "access_change_xid_idx" on "access_change" ("xid");`);
    this.addSql(`create index "access_change_at_idx" on "access_change" ("at");`);
    this.addSql(`create table "access_change_pruned" ("id" int not null, "through_xid" bigint not null default '0', primary key ("id"));`);
    this.addSql(`insert into "access_change_pruned" ("id", "through_xid") values (1, 0);`);
    this.addSql(`create or replace function "access_changed"("subject" uuid) returns void language plpgsql as $$ begin
  insert into access_change (subject_id) values (subject); end; $$;`);
    this.addSql(`drop trigger if exists "oauth_record_access_epoch_delete" on "oauth_record";`);
    this.addSql(`drop function if exists "oauth_record_oauth_record_access_epoch_delete_fn"();`);
    this.addSql(`create or replace function "oauth_record_oauth_record_access_change_delete_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(case when (old.payload ->> 'accountId') ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then (old.payload ->> 'accountId')::uuid end); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "oauth_record_access_change_delete" AFTER DELETE on "oauth_record" for each ROW
  when (((old.model)::text = 'AccessToken'::text)) execute function "oauth_record_oauth_record_access_change_delete_fn"();`);
    this.addSql(`drop trigger if exists "role_access_epoch" on "role";`);
    this.addSql(`drop function if exists "role_role_access_epoch_fn"();`);
    this.addSql(`create or replace function "role_role_access_change_fn"() returns trigger as $$ begin perform "access_changed"(old."id"); return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "role_access_change" AFTER UPDATE OR DELETE on "role" for each ROW execute function "role_role_access_change_fn"();`);
    this.addSql(`drop trigger if exists "app_user_access_epoch_delete" on "app_user";`);
    this.addSql(`drop function if exists "app_user_app_user_access_epoch_delete_fn"();`);
    this.addSql(`drop trigger if exists "app_user_access_epoch_update" on "app_user";`);
    this.addSql(`drop function if exists "app_user_app_user_access_epoch_update_fn"();`);
    this.addSql(`create or replace function "app_user_app_user_access_change_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."id"); end if; if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new."id" is distinct from old."id") then perform "access_changed"(new."id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "app_user_access_change" AFTER UPDATE OR DELETE on "app_user" for each ROW execute function "app_user_app_user_access_change_fn"();`);
    this.addSql(`drop trigger if exists "mcp_session_access_epoch_delete" on "mcp_session";`);
    this.addSql(`drop function if exists "mcp_session_mcp_session_access_epoch_delete_fn"();`);
    this.addSql(`drop trigger if exists "mcp_session_access_epoch_update" on "mcp_session";`);
    this.addSql(`drop function if exists "mcp_session_mcp_session_access_epoch_update_fn"();`);
    this.addSql(`create or replace function "mcp_session_mcp_session_access_change_update_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."user_id"); end if; if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new."user_id" is distinct from old."user_id") then perform "access_changed"(new."user_id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "mcp_session_access_change_update" AFTER UPDATE on "mcp_session" for each ROW
  when (((old.ended_at IS DISTINCT FROM new.ended_at) OR (old.user_id IS DISTINCT FROM new.user_id))) execute function "mcp_session_mcp_session_access_change_update_fn"();`);
    this.addSql(`create or replace function "mcp_session_mcp_session_access_change_delete_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."user_id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "mcp_session_access_change_delete" AFTER DELETE on "mcp_session" for each ROW execute function "mcp_session_mcp_session_access_change_delete_fn"();`);
    this.addSql(`drop trigger if exists "role_assignment_access_epoch" on "role_assignment";`);
    this.addSql(`drop function if exists "role_assignment_role_assignment_access_epoch_fn"();`);
    this.addSql(`create or replace function "role_assignment_role_assignment_access_change_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."user_id"); end if; if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new."user_id" is distinct from old."user_id") then perform "access_changed"(new."user_id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "role_assignment_access_change" AFTER INSERT OR UPDATE OR DELETE on "role_assignment" for each ROW execute function "role_assignment_role_assignment_access_change_fn"();`);
    this.addSql(`drop trigger if exists "delegation_access_epoch" on "delegation";`);
    this.addSql(`drop function if exists "delegation_delegation_access_epoch_fn"();`);
    this.addSql(`create index "delegation_delegator_idx" on "delegation" ("delegator_id");`);
    this.addSql(`create or replace function "delegation_delegation_access_change_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."delegate_id"); end if; if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new."delegate_id" is distinct from old."delegate_id") then perform "access_changed"(new."delegate_id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "delegation_access_change" AFTER INSERT OR UPDATE OR DELETE on "delegation" for each ROW execute function "delegation_delegation_access_change_fn"();`);
    this.addSql(`drop trigger if exists "api_token_access_epoch_delete" on "api_token";`);
    this.addSql(`drop function if exists "api_token_api_token_access_epoch_delete_fn"();`);
    this.addSql(`drop trigger if exists "api_token_access_epoch_update" on "api_token";`);
    this.addSql(`drop function if exists "api_token_api_token_access_epoch_update_fn"();`);
    this.addSql(`create or replace function "api_token_api_token_access_change_update_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."user_id"); end if; if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new."user_id" is distinct from old."user_id") then perform "access_changed"(new."user_id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "api_token_access_change_update" AFTER UPDATE on "api_token" for each ROW
  when (((old.revoked_at IS DISTINCT FROM new.revoked_at) OR (old.expires_at IS DISTINCT FROM new.expires_at) OR (old.scopes IS DISTINCT FROM new.scopes) OR (old.user_id IS DISTINCT FROM new.user_id) OR ((old.hash)::text IS DISTINCT FROM (new.hash)::text) OR (old.source_delegation_id IS DISTINCT FROM new.source_delegation_id) OR ((old.oauth_grant_id)::text IS DISTINCT FROM (new.oauth_grant_id)::text))) execute function "api_token_api_token_access_change_update_fn"();`);
    this.addSql(`create or replace function "api_token_api_token_access_change_delete_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."user_id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "api_token_access_change_delete" AFTER DELETE on "api_token" for each ROW execute function "api_token_api_token_access_change_delete_fn"();`);
    this.addSql(`drop table if exists "access_epoch" cascade;`);
  }

  override down(): void {
    for (const [table, trigger] of NEW_TRIGGERS) {
      this.addSql(`drop trigger if exists "${trigger}" on "${table}";`);
      this.addSql(`drop function if exists "${table}_${trigger}_fn"();`);
    }
    this.addSql(`drop function if exists "access_changed"(uuid);`);
    this.addSql(`drop index if exists "delegation_delegator_idx";`);
    this.addSql(`drop table if exists "access_change" cascade;`);
    this.addSql(`drop table if exists "access_change_pruned" cascade;`);
    this.addSql(`create table "access_epoch" ("id" int not null, "version" bigint not null default '0', primary key ("id"));`);
    this.addSql(`insert into "access_epoch" ("id", "version") values (1, 0);`);
    for (const [table, trigger, timing, forEach, when] of OLD_TRIGGERS) {
      this.addSql(`create or replace function "${table}_${trigger}_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
      this.addSql(`create trigger "${trigger}" AFTER ${timing} on "${table}" for each ${forEach}${when ? `\n  when (${when})` : ''} execute function "${table}_${trigger}_fn"();`);
    }
  }
}

const NEW_TRIGGERS = [
  ['oauth_record', 'oauth_record_access_change_delete'],
  ['role', 'role_access_change'],
  ['app_user', 'app_user_access_change'],
  ['mcp_session', 'mcp_session_access_change_update'],
  ['mcp_session', 'mcp_session_access_change_delete'],
  ['role_assignment', 'role_assignment_access_change'],
  ['delegation', 'delegation_access_change'],
  ['api_token', 'api_token_access_change_update'],
  ['api_token', 'api_token_access_change_delete'],
] as const;

const TOKEN_CHANGED = '((old.revoked_at IS DISTINCT FROM new.revoked_at) OR (old.expires_at IS DISTINCT FROM new.expires_at) OR (old.scopes IS DISTINCT FROM new.scopes) OR (old.user_id IS DISTINCT FROM new.user_id))';
const OLD_TRIGGERS: [table: string, trigger: string, timing: string, forEach: 'ROW' | 'STATEMENT', when?: string][] = [
  ['role', 'role_access_epoch', 'INSERT OR UPDATE OR DELETE', 'STATEMENT'],
  ['app_user', 'app_user_access_epoch_update', 'UPDATE', 'STATEMENT'],
  ['app_user', 'app_user_access_epoch_delete', 'DELETE', 'STATEMENT'],
  ['role_assignment', 'role_assignment_access_epoch', 'INSERT OR UPDATE OR DELETE', 'STATEMENT'],
  ['delegation', 'delegation_access_epoch', 'INSERT OR UPDATE OR DELETE', 'STATEMENT'],
  ['api_token', 'api_token_access_epoch_update', 'UPDATE', 'ROW', TOKEN_CHANGED],
  ['api_token', 'api_token_access_epoch_delete', 'DELETE', 'STATEMENT'],
  ['mcp_session', 'mcp_session_access_epoch_update', 'UPDATE', 'ROW', '(old.ended_at IS DISTINCT FROM new.ended_at)'],
  ['mcp_session', 'mcp_session_access_epoch_delete', 'DELETE', 'STATEMENT'],
  ['oauth_record', 'oauth_record_access_epoch_delete', 'DELETE', 'ROW', "((old.model)::text = 'AccessToken'::text)"],
];
