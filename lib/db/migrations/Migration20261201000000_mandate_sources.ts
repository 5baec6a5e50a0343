import { Migration } from '@mikro-orm/migrations';

// P3: a token minted through a delegation (an agent's above all) names it, and lives no longer; a
// delegation an agent gives in its spawner's name names the agent, and ends with its session.
export class Migration20261201000000_mandate_sources extends Migration {
  override name = 'Migration20261201000000_mandate_sources';

  override up(): void {
    this.addSql(`alter table "api_token" add column "source_delegation_id" uuid null;`);
    this.addSql(`alter table "delegation" add column "created_by_id" uuid null;`);
  }

  override down(): void {
    this.addSql(`alter table "api_token" drop column "source_delegation_id";`);
    this.addSql(`alter table "delegation" drop column "created_by_id";`);
  }
}
