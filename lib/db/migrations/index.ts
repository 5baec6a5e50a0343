import { Migration20261122000000_initial } from './Migration20261122000000_initial.ts';

/** Every migration, in order. Listed explicitly so the same list runs from .ts sources and built .js. */
export const MIGRATIONS = [
  { name: 'Migration20261122000000_initial', class: Migration20261122000000_initial },
];
