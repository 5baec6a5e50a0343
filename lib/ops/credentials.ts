import { OpError } from '../errors.ts';
import { hashPassword } from '../identity/passwords.ts';
import type { OperationContext } from './operation.ts';
import { notThroughOAuth } from './guards.ts';

/**
 * A password someone set for a user is a credential that never expires, so (P3) it may only be set
 * with a permission held through a role of one's own: a call acting through a delegation (every
 * call of an agent) cannot leave a credential behind that outlives the delegation. Such callers
 * create accounts without a password, or issue tokens, which expire with their mandate.
 */
export async function mintPasswordHash(ctx: OperationContext, password: string): Promise<string> {
  notThroughOAuth(ctx.caller, 'passwords');
  if (ctx.via?.kind === 'delegation') {
    throw new OpError(
      'forbidden',
      'permission denied: setting a password needs users:write through a role of your own; you act through a delegation, and a password would outlive it. Leave password out (the account can get a token, or a password from an admin)',
      { field: 'password' },
    );
  }
  return hashPassword(password);
}
