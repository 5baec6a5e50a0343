import { Migration } from '@mikro-orm/migrations';

// The gateway to installed MCP servers: installs:use (given to the admin, developer and agent
// system roles), pinned tool definitions, and how a remote catalog entry takes its secrets.
export class Migration20261202100000_gateway extends Migration {
  override name = 'Migration20261202100000_gateway';

  override up(): void {
    this.addSql(`alter table "mcp_catalog" add column "headers" jsonb not null default '{}', add column "query" jsonb not null default '{}', add column "launch_approved" boolean not null default false;`);
    this.addSql(`alter table "mcp_installation" add column "tools_pinned_at" timestamptz null;`);
    this.addSql(`create table "mcp_tool_pin" ("id" uuid not null, "installation_id" uuid not null, "name" varchar(128) not null, "seen_hash" varchar(64) not null, "seen" jsonb not null, "approved_hash" varchar(64) null, "approved" jsonb null, "rejected_hash" varchar(64) null, "enabled" boolean not null default true, "reviewed_by_id" uuid null, "reviewed_at" timestamptz null, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "mcp_tool_pin" add constraint "mcp_tool_pin_unique" unique ("installation_id", "name");`);
    this.addSql(`alter table "mcp_tool_pin" add constraint "mcp_tool_pin_installation_id_foreign" foreign key ("installation_id") references "mcp_installation" ("id") on delete cascade;`);
    // Every change to what the gateway serves is reported under one fixed id: processes caching it drop it.
    for (const table of ['mcp_catalog', 'mcp_installation', 'mcp_tool_pin']) {
      this.addSql(`create or replace function "${table}_${table}_gateway_change_fn"() returns trigger as $$ begin perform "access_changed"('00000000-0000-4000-8000-0000ca7a1000'); return null; end; $$ language plpgsql;`);
      this.addSql(`create trigger "${table}_gateway_change" AFTER INSERT OR UPDATE OR DELETE on "${table}" for each ROW execute function "${table}_${table}_gateway_change_fn"();`);
    }
    this.addSql(`update "role" set "permissions" = "permissions" || array['installs:use']::text[], "updated_at" = now() where "name" in ('admin', 'developer', 'agent') and "system";`);
    this.addSql(`update "role" set "description" = 'An AI agent acting in PM tools and the MCP servers installed for it.' where "name" = 'agent' and "system";`);
  }

  override down(): void {
    this.addSql(`update "role" set "permissions" = array_remove("permissions", 'installs:use') where "system";`);
    this.addSql(`update "role" set "description" = 'An AI agent acting in PM tools.' where "name" = 'agent' and "system";`);
    for (const table of ['mcp_catalog', 'mcp_installation']) {
      this.addSql(`drop trigger if exists "${table}_gateway_change" on "${table}";`);
      this.addSql(`drop function if exists "${table}_${table}_gateway_change_fn"();`);
    }
    this.addSql(`drop table if exists "mcp_tool_pin" cascade;`);
    this.addSql(`drop function if exists "mcp_tool_pin_mcp_tool_pin_gateway_change_fn"();`);
    this.addSql(`alter table "mcp_installation" drop column "tools_pinned_at";`);
    this.addSql(`alter table "mcp_catalog" drop column "headers", drop column "query", drop column "launch_approved";`);
  }
}
