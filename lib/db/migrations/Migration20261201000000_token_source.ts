import { Migration } from '@mikro-orm/migrations';

// P3: a token minted through a delegation (an agent's above all) names it, and lives no longer.
export class Migration20261201000000_token_source extends Migration {
  override name = 'Migration20261201000000_token_source';

  override up(): void {
    this.addSql(`alter table "api_token" add column "source_delegation_id" uuid null;`);
  }

  override down(): void {
    this.addSql(`alter table "api_token" drop column "source_delegation_id";`);
  }
}
