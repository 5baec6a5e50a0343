import { Migration } from '@mikro-orm/migrations';

// Mandate as an OAuth 2.1 authorization server for MCP clients: the library's records, and the
// api_token row each grant acts through.
export class Migration20261201100000_oauth extends Migration {
  override name = 'Migration20261201100000_oauth';

  override up(): void {
    this.addSql(`create table "oauth_record" ("key" varchar(300) not null, "model" varchar(40) not null, "payload" jsonb not null, "grant_id" varchar(64) null, "uid" varchar(64) null, "client_id" varchar(255) null, "expires_at" timestamptz null, "consumed_at" timestamptz null, "created_at" timestamptz not null, "last_used_at" timestamptz null, primary key ("key"));`);
    this.addSql(`create index "oauth_record_grant_idx" on "oauth_record" ("grant_id");`);
    this.addSql(`create index "oauth_record_uid_idx" on "oauth_record" ("uid");`);
    this.addSql(`create index "oauth_record_client_idx" on "oauth_record" ("client_id");`);
    this.addSql(`create index "oauth_record_expires_idx" on "oauth_record" ("expires_at");`);
    this.addSql(`alter table "api_token" add "oauth_grant_id" varchar(64) null, add "oauth_client_id" varchar(255) null;`);
    this.addSql(`alter table "api_token" add constraint "api_token_oauth_grant_unique" unique ("oauth_grant_id");`);
    this.addSql(`create or replace function "oauth_record_oauth_record_access_epoch_delete_fn"() returns trigger as $$ begin update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null; end; $$ language plpgsql;`);
    this.addSql(`create trigger "oauth_record_access_epoch_delete" AFTER DELETE on "oauth_record" for each ROW
  when (((old.model)::text = 'AccessToken'::text)) execute function "oauth_record_oauth_record_access_epoch_delete_fn"();`);
  }

  override down(): void {
    this.addSql(`drop table if exists "oauth_record" cascade;`);
    this.addSql(`drop function if exists "oauth_record_oauth_record_access_epoch_delete_fn"();`);
    this.addSql(`alter table "api_token" drop constraint "api_token_oauth_grant_unique";`);
    this.addSql(`alter table "api_token" drop column "oauth_grant_id", drop column "oauth_client_id";`);
  }
}
