import { Migration20261122000000_initial } from './Migration20261122000000_initial.ts';
import { Migration20261122010000_sessions } from './Migration20261122010000_sessions.ts';
import { Migration20261122020000_installations } from './Migration20261122020000_installations.ts';
import { Migration20261123000000_pm_connections } from './Migration20261123000000_pm_connections.ts';
import { Migration20261123010000_pm_oauth_states } from './Migration20261123010000_pm_oauth_states.ts';
import { Migration20261201000000_mandate_sources } from './Migration20261201000000_mandate_sources.ts';
import { Migration20261201100000_oauth } from './Migration20261201100000_oauth.ts';
import { Migration20261201200000_access_changes } from './Migration20261201200000_access_changes.ts';
import { Migration20261201210000_scale } from './Migration20261201210000_scale.ts';
import { Migration20261202000000_projects_and_agent_connections } from './Migration20261202000000_projects_and_agent_connections.ts';
import { Migration20261202100000_gateway } from './Migration20261202100000_gateway.ts';
import { Migration20261203000000_session_log_level } from './Migration20261203000000_session_log_level.ts';
import { Migration20261203100000_access_change_notify } from './Migration20261203100000_access_change_notify.ts';

/** Every migration, in order. Listed explicitly so the same list runs from .ts sources and built .js. */
export const MIGRATIONS = [
  { name: 'Migration20261122000000_initial', class: Migration20261122000000_initial },
  { name: 'Migration20261122010000_sessions', class: Migration20261122010000_sessions },
  { name: 'Migration20261122020000_installations', class: Migration20261122020000_installations },
  { name: 'Migration20261123000000_pm_connections', class: Migration20261123000000_pm_connections },
  { name: 'Migration20261123010000_pm_oauth_states', class: Migration20261123010000_pm_oauth_states },
  { name: 'Migration20261201000000_mandate_sources', class: Migration20261201000000_mandate_sources },
  { name: 'Migration20261201100000_oauth', class: Migration20261201100000_oauth },
  { name: 'Migration20261201200000_access_changes', class: Migration20261201200000_access_changes },
  { name: 'Migration20261201210000_scale', class: Migration20261201210000_scale },
  { name: 'Migration20261202000000_projects_and_agent_connections', class: Migration20261202000000_projects_and_agent_connections },
  { name: 'Migration20261202100000_gateway', class: Migration20261202100000_gateway },
  { name: 'Migration20261203000000_session_log_level', class: Migration20261203000000_session_log_level },
  { name: 'Migration20261203100000_access_change_notify', class: Migration20261203100000_access_change_notify },
];
