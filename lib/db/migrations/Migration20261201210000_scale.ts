import { Migration } from '@mikro-orm/migrations';

// What the admin lists, the audit query and the resolver need to stay index-backed at 100,000
// users and millions of audit events, and the audit log partitioned by month (lib/audit/partitions.ts
// makes the months; until then, and for anything outside them, rows land in the default partition).
export class Migration20261201210000_scale extends Migration {
  override name = 'Migration20261201210000_scale';

  override up(): void {
    this.addSql(`create extension if not exists pg_trgm;`);
    this.addSql(`create index "app_user_created_idx" on "app_user" ("created_at", "id");`);
    for (const column of ['name', 'email', 'display_name']) {
      this.addSql(`create index "app_user_${column}_trgm_idx" on "app_user" using gin ("${column}" gin_trgm_ops);`);
    }
    this.addSql(`create index "role_assignment_role_idx" on "role_assignment" ("role_id", "created_at", "id");`);
    this.addSql(`create index "delegation_created_idx" on "delegation" ("created_at", "id");`);

    // A table cannot become partitioned in place: a partitioned copy takes its rows and its name.
    this.addSql(`alter table "audit_event" rename to "audit_event_unpartitioned";`);
    for (const index of ['audit_event_at_idx', 'audit_event_actor_idx', 'audit_event_operation_idx']) this.addSql(`drop index "${index}";`);
    this.addSql(`alter table "audit_event_unpartitioned" rename constraint "audit_event_pkey" to "audit_event_unpartitioned_pkey";`);
    this.addSql(`create table "audit_event" (like "audit_event_unpartitioned" including defaults including constraints) partition by range ("at");`);
    this.addSql(`alter table "audit_event" add primary key ("id", "at");`);
    this.addSql(`create table "audit_event_default" partition of "audit_event" default;`);
    this.addSql(`create index "audit_event_at_idx" on "audit_event" ("at", "id");`);
    for (const column of ['actor_id', 'operation', 'outcome', 'target']) {
      this.addSql(`create index "audit_event_${column === 'actor_id' ? 'actor' : column}_idx" on "audit_event" ("${column}", "at", "id");`);
    }
    this.addSql(`insert into "audit_event" select * from "audit_event_unpartitioned";`);
    this.addSql(`drop table "audit_event_unpartitioned";`);
  }

  override down(): void {
    this.addSql(`create table "audit_event_unpartitioned" (like "audit_event" including defaults including constraints);`);
    this.addSql(`insert into "audit_event_unpartitioned" select * from "audit_event";`);
    this.addSql(`drop table "audit_event" cascade;`);
    this.addSql(`alter table "audit_event_unpartitioned" rename to "audit_event";`);
    this.addSql(`alter table "audit_event" add primary key ("id");`);
    this.addSql(`create index "audit_event_at_idx" on "audit_event" ("at");`);
    this.addSql(`create index "audit_event_actor_idx" on "audit_event" ("actor_id");`);
    this.addSql(`create index "audit_event_operation_idx" on "audit_event" ("operation");`);
    for (const index of ['delegation_created_idx', 'role_assignment_role_idx', 'app_user_created_idx', 'app_user_name_trgm_idx', 'app_user_email_trgm_idx', 'app_user_display_name_trgm_idx']) {
      this.addSql(`drop index if exists "${index}";`);
    }
  }
}
