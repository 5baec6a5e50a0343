import { Migration } from '@mikro-orm/migrations';

// Every append to the access-change feed is also notified (channel mandate_access_change) in a
// session that set mandate.notify_access_changes: the embedded database's, whose one process then
// reads the feed only after a change committed. PostgreSQL's sessions never set it, so nothing
// there notifies (a NOTIFY would serialise the commits of every access change).
export class Migration20261203100000_access_change_notify extends Migration {
  override name = 'Migration20261203100000_access_change_notify';

  override up(): void {
    this.addSql(`create or replace function "access_changed"("subject" uuid) returns void language plpgsql as $$ begin
  insert into access_change (subject_id) values (subject);
  if current_setting('mandate.notify_access_changes', true) = 'on' then
    perform pg_notify('mandate_access_change', '');
  end if;
end; $$;`);
  }

  override down(): void {
    this.addSql(`create or replace function "access_changed"("subject" uuid) returns void language plpgsql as $$ begin
  insert into access_change (subject_id) values (subject); end; $$;`);
  }
}
