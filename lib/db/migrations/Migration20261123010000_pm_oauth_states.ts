import { Migration } from '@mikro-orm/migrations';

// OAuth authorizations in progress (Jira Cloud 3LO): single use, short-lived, bound to the user.
export class Migration20261123010000_pm_oauth_states extends Migration {
  override name = 'Migration20261123010000_pm_oauth_states';

  override up(): void {
    this.addSql(`create table "pm_oauth_state" ("id" uuid not null, "state_hash" varchar(64) not null, "user_id" uuid not null, "provider" text not null, "verifier" text not null, "site" varchar(255) null, "connection_name" varchar(64) null, "make_default" boolean not null default false, "created_at" timestamptz not null, "expires_at" timestamptz not null, primary key ("id"));`);
    this.addSql(`alter table "pm_oauth_state" add constraint "pm_oauth_state_hash_unique" unique ("state_hash");`);
    this.addSql(`create index "pm_oauth_state_user_idx" on "pm_oauth_state" ("user_id");`);
    this.addSql(`alter table "pm_oauth_state" add constraint "pm_oauth_state_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete cascade;`);
    this.addSql(`alter table "pm_oauth_state" add constraint "pm_oauth_state_provider_check" check ("provider" in ('jira_cloud', 'jira_dc', 'redmine', 'openproject'));`);
  }

  override down(): void {
    this.addSql(`drop table if exists "pm_oauth_state" cascade;`);
  }
}
