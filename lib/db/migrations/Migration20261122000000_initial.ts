import { Migration } from '@mikro-orm/migrations';

// The initial schema, as the schema generator emits it for lib/db/entities (a test asserts that
// the migrated database and the entities do not drift apart), plus what entities cannot express:
// the access-epoch triggers and the seeded system roles.
export class Migration20261122000000_initial extends Migration {
  override name = 'Migration20261122000000_initial';

  override up(): void {
    this.addSql(`create table "access_epoch" ("id" int not null, "version" bigint not null default '0', primary key ("id"));`);
    this.addSql(`insert into "access_epoch" ("id", "version") values (1, 0);`);

    this.addSql(`create table "audit_event" ("id" uuid not null, "at" timestamptz not null, "actor_id" uuid null, "actor_name" varchar(320) not null, "on_behalf_of" jsonb not null default '[]', "operation" varchar(100) not null, "permission" varchar(64) null, "project_key" varchar(32) null, "target" varchar(200) null, "outcome" text not null, "error_code" varchar(40) null, "message" text null, "detail" jsonb not null default '{}', "request_id" varchar(100) null, "session_id" varchar(100) null, "client_address" varchar(100) null, primary key ("id"));`);
    this.addSql(`create index "audit_event_at_idx" on "audit_event" ("at");`);
    this.addSql(`create index "audit_event_actor_idx" on "audit_event" ("actor_id");`);
    this.addSql(`create index "audit_event_operation_idx" on "audit_event" ("operation");`);
    this.addSql(`alter table "audit_event" add constraint "audit_event_outcome_check" check ("outcome" in ('allowed', 'denied', 'invalid', 'failed'));`);

    this.addSql(`create table "project" ("id" uuid not null, "key" varchar(32) not null, "name" varchar(200) not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "project" add constraint "project_key_unique" unique ("key");`);

    this.addSql(`create table "role" ("id" uuid not null, "name" varchar(64) not null, "description" text not null default '', "system" boolean not null default false, "permissions" text[] not null default '{}', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "role" add constraint "role_name_unique" unique ("name");`);

    this.addSql(`create table "app_user" ("id" uuid not null, "name" varchar(64) not null, "email" varchar(320) not null, "display_name" varchar(200) not null, "type" text not null default 'human', "password_hash" text null, "active" boolean not null default true, "created_at" timestamptz not null, "updated_at" timestamptz not null, "deactivated_at" timestamptz null, "created_by_id" uuid null, primary key ("id"));`);
    this.addSql(`alter table "app_user" add constraint "app_user_name_unique" unique ("name");`);
    this.addSql(`alter table "app_user" add constraint "app_user_email_unique" unique ("email");`);
    this.addSql(`alter table "app_user" add constraint "app_user_type_check" check ("type" in ('human', 'agent', 'service'));`);

    this.addSql(`create table "role_assignment" ("id" uuid not null, "user_id" uuid not null, "role_id" uuid not null, "project_id" uuid null, "granted_by_id" uuid null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "role_assignment_user_idx" on "role_assignment" ("user_id");`);
    this.addSql(`alter table "role_assignment" add constraint "role_assignment_project_unique" unique ("user_id", "role_id", "project_id");`);
    this.addSql(`create unique index "role_assignment_global_unique" on "role_assignment" ("user_id", "role_id") where project_id is null;`);

    this.addSql(`create table "delegation" ("id" uuid not null, "delegator_id" uuid not null, "delegate_id" uuid not null, "permission" varchar(64) not null, "project_id" uuid null, "expires_at" timestamptz null, "reason" text not null default '', "created_at" timestamptz not null, "revoked_at" timestamptz null, "revoked_by_id" uuid null, primary key ("id"));`);
    this.addSql(`create index "delegation_delegate_idx" on "delegation" ("delegate_id");`);

    this.addSql(`create table "api_token" ("id" uuid not null, "user_id" uuid not null, "name" varchar(100) not null, "prefix" varchar(16) not null, "hash" varchar(64) not null, "scopes" text[] null, "expires_at" timestamptz null, "last_used_at" timestamptz null, "created_at" timestamptz not null, "created_by_id" uuid null, "revoked_at" timestamptz null, primary key ("id"));`);
    this.addSql(`create index "api_token_user_idx" on "api_token" ("user_id");`);
    this.addSql(`alter table "api_token" add constraint "api_token_hash_unique" unique ("hash");`);

    this.addSql(`alter table "role_assignment" add constraint "role_assignment_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "role_assignment" add constraint "role_assignment_role_id_foreign" foreign key ("role_id") references "role" ("id") on delete cascade;`);
    this.addSql(`alter table "role_assignment" add constraint "role_assignment_project_id_foreign" foreign key ("project_id") references "project" ("id") on delete cascade;`);
    this.addSql(`alter table "delegation" add constraint "delegation_delegator_id_foreign" foreign key ("delegator_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "delegation" add constraint "delegation_delegate_id_foreign" foreign key ("delegate_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "delegation" add constraint "delegation_project_id_foreign" foreign key ("project_id") references "project" ("id") on delete cascade;`);
    this.addSql(`alter table "api_token" add constraint "api_token_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`);

    // Every change that can alter anyone's effective permissions bumps the epoch, whoever makes it
    // (this process, another instance, or a person with psql). Token last-used writes do not.
    this.addSql(`create or replace function "role_role_access_epoch_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "role_access_epoch" AFTER INSERT OR UPDATE OR DELETE on "role" for each STATEMENT execute function "role_role_access_epoch_fn"();`);
    this.addSql(`create or replace function "app_user_app_user_access_epoch_update_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "app_user_access_epoch_update" AFTER UPDATE on "app_user" for each ROW
  when ((old.active IS DISTINCT FROM new.active)) execute function "app_user_app_user_access_epoch_update_fn"();`);
    this.addSql(`create or replace function "app_user_app_user_access_epoch_delete_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "app_user_access_epoch_delete" AFTER DELETE on "app_user" for each STATEMENT execute function "app_user_app_user_access_epoch_delete_fn"();`);
    this.addSql(`create or replace function "role_assignment_role_assignment_access_epoch_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "role_assignment_access_epoch" AFTER INSERT OR UPDATE OR DELETE on "role_assignment" for each STATEMENT execute function "role_assignment_role_assignment_access_epoch_fn"();`);
    this.addSql(`create or replace function "delegation_delegation_access_epoch_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "delegation_access_epoch" AFTER INSERT OR UPDATE OR DELETE on "delegation" for each STATEMENT execute function "delegation_delegation_access_epoch_fn"();`);
    this.addSql(`create or replace function "api_token_api_token_access_epoch_update_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "api_token_access_epoch_update" AFTER UPDATE on "api_token" for each ROW
  when (((old.revoked_at IS DISTINCT FROM new.revoked_at) OR (old.expires_at IS DISTINCT FROM new.expires_at) OR (old.scopes IS DISTINCT FROM new.scopes) OR (old.user_id IS DISTINCT FROM new.user_id))) execute function "api_token_api_token_access_epoch_update_fn"();`);
    this.addSql(`create or replace function "api_token_api_token_access_epoch_delete_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "api_token_access_epoch_delete" AFTER DELETE on "api_token" for each STATEMENT execute function "api_token_api_token_access_epoch_delete_fn"();`);

    const allPermissions = [
      'users:read', 'users:write', 'roles:read', 'roles:write', 'delegations:read', 'delegations:write',
      'tokens:read', 'tokens:write', 'sessions:read', 'sessions:write', 'installs:read', 'installs:write',
      'installs:admin', 'pm:read', 'pm:write', 'audit:read',
    ];
    const systemRoles: [string, string, string[]][] = [
      ['admin', 'Everything Mandate can do.', allPermissions],
      ['developer', 'Works in PM tools with their own connection and installs MCP servers for themselves.', ['pm:read', 'pm:write', 'installs:write']],
      ['viewer', 'Reads PM tools with their own connection.', ['pm:read']],
      ['agent', 'An AI agent acting in PM tools.', ['pm:read', 'pm:write']],
      ['auditor', 'Reads the audit log and every administrative record, changes nothing.', ['audit:read', 'users:read', 'roles:read', 'delegations:read', 'tokens:read', 'sessions:read', 'installs:read']],
    ];
    for (const [name, description, permissions] of systemRoles) {
      const list = permissions.map((permission) => `'${permission}'`).join(', ');
      this.addSql(`insert into "role" ("id", "name", "description", "system", "permissions", "created_at", "updated_at") values (gen_random_uuid(), '${name}', '${description}', true, array[${list}]::text[], now(), now());`);
    }
  }
}
