import { Migration } from '@mikro-orm/migrations';

// The MCP server catalog and installations (their secrets are vault ciphertexts).
export class Migration20261122020000_installations extends Migration {
  override name = 'Migration20261122020000_installations';

  override up(): void {
    this.addSql(`create table "mcp_catalog" ("id" uuid not null, "name" varchar(64) not null, "description" text not null default '', "transport" text not null, "url" varchar(2000) null, "command" varchar(500) null, "args" jsonb not null default '[]', "credential_fields" jsonb not null default '[]', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "mcp_catalog" add constraint "mcp_catalog_name_unique" unique ("name");`);
    this.addSql(`create table "mcp_installation" ("id" uuid not null, "catalog_id" uuid not null, "scope" text not null, "user_id" uuid null, "project_id" uuid null, "owner_id" uuid null, "installed_by_id" uuid null, "secrets" jsonb not null default '{}', "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "mcp_installation_catalog_idx" on "mcp_installation" ("catalog_id");`);
    this.addSql(`create index "mcp_installation_user_idx" on "mcp_installation" ("user_id");`);
    this.addSql(`create index "mcp_installation_owner_idx" on "mcp_installation" ("owner_id");`);
    this.addSql(`create unique index "mcp_installation_personal_unique" on "mcp_installation" ("catalog_id", "user_id") where scope = 'personal';`);
    this.addSql(`create unique index "mcp_installation_project_unique" on "mcp_installation" ("catalog_id", "project_id") where project_id is not null;`);
    this.addSql(`create unique index "mcp_installation_org_unique" on "mcp_installation" ("catalog_id") where scope = 'org';`);
    this.addSql(`alter table "mcp_catalog" add constraint "mcp_catalog_transport_check" check ("transport" in ('remote', 'stdio'));`);
    this.addSql(`alter table "mcp_installation" add constraint "mcp_installation_catalog_id_foreign" foreign key ("catalog_id") references "mcp_catalog" ("id") on delete cascade;`);
    this.addSql(`alter table "mcp_installation" add constraint "mcp_installation_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "mcp_installation" add constraint "mcp_installation_project_id_foreign" foreign key ("project_id") references "project" ("id") on delete cascade;`);
    this.addSql(`alter table "mcp_installation" add constraint "mcp_installation_owner_id_foreign" foreign key ("owner_id") references "app_user" ("id") on delete set null;`);
    this.addSql(`alter table "mcp_installation" add constraint "mcp_installation_audience_check" check (((scope = 'personal') = (user_id is not null)) and ((scope in ('team', 'project')) = (project_id is not null)));`);
    this.addSql(`alter table "mcp_installation" add constraint "mcp_installation_scope_check" check ("scope" in ('personal', 'team', 'project', 'org'));`);
  }

  override down(): void {
    this.addSql(`drop table if exists "mcp_installation" cascade;`);
    this.addSql(`drop table if exists "mcp_catalog" cascade;`);
  }
}
