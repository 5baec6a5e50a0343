import { Migration } from '@mikro-orm/migrations';

// An MCP session's log level (logging/setLevel), stored with the session so every instance serving
// it honours it. A change is reported on the access-change feed under the session's own id, so the
// cached session rows are dropped and nothing else.
export class Migration20261203000000_session_log_level extends Migration {
  override name = 'Migration20261203000000_session_log_level';

  override up(): void {
    this.addSql(`alter table "mcp_session" add column "log_level" varchar(16) null;`);
    this.addSql(`create or replace function "mcp_session_mcp_session_log_level_change_fn"() returns trigger as $$ begin if tg_op <> 'INSERT' then perform "access_changed"(old."id"); end if; if tg_op = 'INSERT' or (tg_op = 'UPDATE' and new."id" is distinct from old."id") then perform "access_changed"(new."id"); end if; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "mcp_session_log_level_change" AFTER UPDATE on "mcp_session" for each ROW
  when (((old.log_level)::text IS DISTINCT FROM (new.log_level)::text)) execute function "mcp_session_mcp_session_log_level_change_fn"();`);
  }

  override down(): void {
    this.addSql(`drop trigger if exists "mcp_session_log_level_change" on "mcp_session";`);
    this.addSql(`drop function if exists "mcp_session_mcp_session_log_level_change_fn"();`);
    this.addSql(`alter table "mcp_session" drop column "log_level";`);
  }
}
