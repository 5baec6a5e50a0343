import { Migration } from '@mikro-orm/migrations';

// An MCP session's log level (logging/setLevel), stored with the session so every instance serving
// it honours it; changing it is reported on the access-change feed so cached session rows are dropped.
export class Migration20261203000000_session_log_level extends Migration {
  override name = 'Migration20261203000000_session_log_level';

  override up(): void {
    this.addSql(`alter table "mcp_session" add column "log_level" varchar(16) null;`);
    this.addSql(`drop trigger if exists "mcp_session_access_change_update" on "mcp_session";`);
    this.addSql(`create trigger "mcp_session_access_change_update" AFTER UPDATE on "mcp_session" for each ROW
  when (((old.ended_at IS DISTINCT FROM new.ended_at) OR (old.user_id IS DISTINCT FROM new.user_id) OR ((old.log_level)::text IS DISTINCT FROM (new.log_level)::text))) execute function "mcp_session_mcp_session_access_change_update_fn"();`);
  }

  override down(): void {
    this.addSql(`drop trigger if exists "mcp_session_access_change_update" on "mcp_session";`);
    this.addSql(`create trigger "mcp_session_access_change_update" AFTER UPDATE on "mcp_session" for each ROW
  when (((old.ended_at IS DISTINCT FROM new.ended_at) OR (old.user_id IS DISTINCT FROM new.user_id))) execute function "mcp_session_mcp_session_access_change_update_fn"();`);
    this.addSql(`alter table "mcp_session" drop column "log_level";`);
  }
}
