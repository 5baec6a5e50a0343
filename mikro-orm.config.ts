// The MikroORM CLI's configuration (npx mikro-orm migration:list | migration:check | migration:create |
// debug): Mandate's own entities and migrations, on the database the environment names, exactly as
// the servers open it (DATABASE_URL: PostgreSQL; unset: the embedded database in MANDATE_DATA_DIR).
import { loadConfig } from './lib/config.ts';
import { cliOptions } from './lib/db/orm.ts';

export default cliOptions(loadConfig(process.env).database);
