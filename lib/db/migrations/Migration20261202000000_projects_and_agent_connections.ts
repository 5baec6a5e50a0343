import { Migration } from '@mikro-orm/migrations';

// Projects become managed (projects:read, projects:write, given to the admin and auditor system
// roles) and can be bound to tracker projects; agent sessions may use their spawner's connections.
export class Migration20261202000000_projects_and_agent_connections extends Migration {
  override name = 'Migration20261202000000_projects_and_agent_connections';

  override up(): void {
    this.addSql(`alter table "project" add column "created_by_id" uuid null, add column "updated_at" timestamptz not null default now();`);
    this.addSql(`alter table "project" alter column "updated_at" drop default;`);
    this.addSql(`create table "project_binding" ("id" uuid not null, "project_id" uuid not null, "tracker" varchar(32) not null, "tracker_project" varchar(200) not null, "created_by_id" uuid null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "project_binding_project_idx" on "project_binding" ("project_id");`);
    this.addSql(`alter table "project_binding" add constraint "project_binding_tracker_unique" unique ("tracker", "tracker_project");`);
    this.addSql(`alter table "project_binding" add constraint "project_binding_project_id_foreign" foreign key ("project_id") references "project" ("id") on delete cascade;`);
    // Every binding change is reported under one fixed id: processes caching the bindings drop them.
    this.addSql(`create or replace function "project_binding_project_binding_access_change_fn"() returns trigger as $$ begin perform "access_changed"('00000000-0000-4000-8000-0000b1d10000'); return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "project_binding_access_change" AFTER INSERT OR UPDATE OR DELETE on "project_binding" for each ROW execute function "project_binding_project_binding_access_change_fn"();`);
    this.addSql(`create table "agent_session_connection" ("id" uuid not null, "agent_session_id" uuid not null, "connection_id" uuid not null, "created_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "agent_session_connection_connection_idx" on "agent_session_connection" ("connection_id");`);
    this.addSql(`alter table "agent_session_connection" add constraint "agent_session_connection_unique" unique ("agent_session_id", "connection_id");`);
    this.addSql(`alter table "agent_session_connection" add constraint "agent_session_connection_agent_session_id_foreign" foreign key ("agent_session_id") references "agent_session" ("id") on delete cascade;`);
    this.addSql(`alter table "agent_session_connection" add constraint "agent_session_connection_connection_id_foreign" foreign key ("connection_id") references "pm_connection" ("id") on delete cascade;`);
    this.addSql(`update "role" set "permissions" = "permissions" || array['projects:read', 'projects:write']::text[], "updated_at" = now() where "name" = 'admin' and "system";`);
    this.addSql(`update "role" set "permissions" = "permissions" || array['projects:read']::text[], "updated_at" = now() where "name" = 'auditor' and "system";`);
  }

  override down(): void {
    this.addSql(`update "role" set "permissions" = array_remove(array_remove("permissions", 'projects:read'), 'projects:write') where "system";`);
    this.addSql(`drop table if exists "agent_session_connection" cascade;`);
    this.addSql(`drop table if exists "project_binding" cascade;`);
    this.addSql(`drop function if exists "project_binding_project_binding_access_change_fn"();`);
    this.addSql(`alter table "project" drop column "created_by_id", drop column "updated_at";`);
  }
}
