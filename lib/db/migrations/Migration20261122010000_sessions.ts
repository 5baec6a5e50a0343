import { Migration } from '@mikro-orm/migrations';

// MCP sessions, agent sessions and the failed-login limiter's store; any change to a user now
// bumps the access epoch.
export class Migration20261122010000_sessions extends Migration {
  override name = 'Migration20261122010000_sessions';

  override up(): void {
    this.addSql(`create table "mcp_session" ("id" uuid not null, "user_id" uuid not null, "token_id" uuid null, "transport" text not null, "servers" varchar(100) not null default '', "client_name" varchar(200) null, "client_address" varchar(100) null, "created_at" timestamptz not null, "last_seen_at" timestamptz not null, "ended_at" timestamptz null, "end_reason" varchar(100) null, primary key ("id"));`);
    this.addSql(`create index "mcp_session_user_idx" on "mcp_session" ("user_id");`);
    this.addSql(`alter table "mcp_session" add constraint "mcp_session_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "mcp_session" add constraint "mcp_session_transport_check" check ("transport" in ('stdio', 'http'));`);

    this.addSql(`create table "agent_session" ("id" uuid not null, "agent_id" uuid not null, "spawner_id" uuid null, "role" varchar(64) not null, "token_id" uuid not null, "created_at" timestamptz not null, "expires_at" timestamptz not null, "ended_at" timestamptz null, "end_reason" varchar(100) null, primary key ("id"));`);
    this.addSql(`create index "agent_session_agent_idx" on "agent_session" ("agent_id");`);
    this.addSql(`create index "agent_session_spawner_idx" on "agent_session" ("spawner_id");`);
    this.addSql(`create index "agent_session_expires_idx" on "agent_session" ("expires_at");`);
    this.addSql(`alter table "agent_session" add constraint "agent_session_agent_id_foreign" foreign key ("agent_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "agent_session" add constraint "agent_session_spawner_id_foreign" foreign key ("spawner_id") references "app_user" ("id") on delete set null;`);

    this.addSql(`create table "login_limit" ("key" varchar(255) not null, "points" int not null default 0, "expire" bigint null, primary key ("key"));`);

    this.addSql(`drop trigger if exists "app_user_access_epoch_update" on "app_user";`);
    this.addSql(`create trigger "app_user_access_epoch_update" AFTER UPDATE on "app_user" for each STATEMENT execute function "app_user_app_user_access_epoch_update_fn"();`);
    this.addSql(`create or replace function "mcp_session_mcp_session_access_epoch_update_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "mcp_session_access_epoch_update" AFTER UPDATE on "mcp_session" for each ROW
  when ((old.ended_at IS DISTINCT FROM new.ended_at)) execute function "mcp_session_mcp_session_access_epoch_update_fn"();`);
    this.addSql(`create or replace function "mcp_session_mcp_session_access_epoch_delete_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "mcp_session_access_epoch_delete" AFTER DELETE on "mcp_session" for each STATEMENT execute function "mcp_session_mcp_session_access_epoch_delete_fn"();`);
  }

  override down(): void {
    this.addSql(`drop table if exists "login_limit" cascade;`);
    this.addSql(`drop table if exists "agent_session" cascade;`);
    this.addSql(`drop table if exists "mcp_session" cascade;`);
    this.addSql(`drop function if exists "mcp_session_mcp_session_access_epoch_update_fn"();`);
    this.addSql(`drop function if exists "mcp_session_mcp_session_access_epoch_delete_fn"();`);
    this.addSql(`drop trigger if exists "app_user_access_epoch_update" on "app_user";`);
    this.addSql(`create trigger "app_user_access_epoch_update" AFTER UPDATE on "app_user" for each ROW
  when ((old.active IS DISTINCT FROM new.active)) execute function "app_user_app_user_access_epoch_update_fn"();`);
  }
}
