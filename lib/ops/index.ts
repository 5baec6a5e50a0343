import type { AnyOperation } from './operation.ts';
import { createUser } from './users.ts';
import { assignRole } from './roles.ts';
import { createDelegation, revokeDelegation } from './delegations.ts';
import { createTokenForUser } from './tokens.ts';

export { createUser, assignRole, createDelegation, revokeDelegation, createTokenForUser };

/** Every operation, by name: the one registry the servers, REST routes and CLI draw from. */
export const OPERATIONS: Record<string, AnyOperation> = Object.fromEntries(
  ([createUser, assignRole, createDelegation, revokeDelegation, createTokenForUser] as AnyOperation[]).map((op) => [op.name, op]),
);
