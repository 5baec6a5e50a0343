import { Migration } from '@mikro-orm/migrations';

// Users' own PM tracker connections (credentials are one vault ciphertext per row).
export class Migration20261123000000_pm_connections extends Migration {
  override name = 'Migration20261123000000_pm_connections';

  override up(): void {
    this.addSql(`create table "pm_connection" ("id" uuid not null, "user_id" uuid not null, "provider" text not null, "name" varchar(64) not null, "base_url" varchar(2000) not null, "auth" text not null, "secret" text not null, "cloud_id" varchar(100) null, "account_id" varchar(200) null, "account_name" varchar(200) null, "status" text not null default 'connected', "status_reason" varchar(500) null, "verified_at" timestamptz null, "scopes" jsonb not null default '[]', "expires_at" timestamptz null, "is_default" boolean not null default false, "created_at" timestamptz not null, "updated_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`create index "pm_connection_user_idx" on "pm_connection" ("user_id");`);
    this.addSql(`alter table "pm_connection" add constraint "pm_connection_user_name_unique" unique ("user_id", "name");`);
    this.addSql(`create unique index "pm_connection_default_unique" on "pm_connection" ("user_id") where is_default;`);
    this.addSql(`alter table "pm_connection" add constraint "pm_connection_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "pm_connection" add constraint "pm_connection_provider_check" check ("provider" in ('jira_cloud', 'jira_dc', 'redmine', 'openproject'));`);
    this.addSql(`alter table "pm_connection" add constraint "pm_connection_auth_check" check ("auth" in ('api_token', 'personal_access_token', 'api_key', 'oauth'));`);
    this.addSql(`alter table "pm_connection" add constraint "pm_connection_status_check" check ("status" in ('connected', 'invalid', 'expired', 'unavailable'));`);
  }

  override down(): void {
    this.addSql(`drop table if exists "pm_connection" cascade;`);
  }
}
