import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { AuditRecord } from '../audit/writer.ts';
import type { UserCaller } from '../identity/caller.ts';
import type { Logger } from '../log.ts';
import { scrubText } from '../redact.ts';

/** Who a protocol step is audited as when no user is known yet (registration, a bad request). */
export const OAUTH_SYSTEM = { kind: 'system', name: 'oauth' } as const;

/**
 * Every protocol step the library takes is an audit event (`oauth_*`): authorize, token, refresh,
 * reuse detected, grant revoked, registration; details carry ids and outcomes, never a code or a
 * token. (Sign-in, consent and deny are audited where the pages handle them.)
 */
export function auditProtocolSteps(
  provider: Provider,
  deps: { audit: (record: AuditRecord) => void; log: Logger; callerOf: (userId: string) => Promise<UserCaller | typeof OAUTH_SYSTEM> },
): void {
  const record = async (ctx: KoaContextWithOIDC | undefined, operation: string, outcome: AuditRecord['outcome'], detail: Record<string, unknown>, error?: Error) => {
    try {
      const accountId = ctx?.oidc?.entities?.Grant?.accountId ?? ctx?.oidc?.entities?.Account?.accountId ?? ctx?.oidc?.session?.accountId;
      deps.audit({
        caller: accountId ? await deps.callerOf(accountId) : OAUTH_SYSTEM,
        operation,
        outcome,
        target: ctx?.oidc?.client?.clientId?.slice(0, 200),
        detail: { client_id: ctx?.oidc?.client?.clientId ?? null, ...detail },
        ...(error ? { errorCode: (error as { error?: string }).error ?? 'failed', message: scrubText(String((error as { error_description?: string }).error_description ?? error.message)) } : {}),
        ...(ctx?.ip ? { clientAddress: ctx.ip } : {}),
      });
    } catch (failure) {
      deps.log.warn({ err: { message: (failure as Error).message } }, 'an OAuth audit event could not be recorded');
    }
  };
  const grantType = (ctx: KoaContextWithOIDC) => String(ctx.oidc?.params?.grant_type ?? '');
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => void record(ctx, 'oauth_authorize', 'allowed', { resource: ctx.oidc?.params?.resource ?? null }));
  provider.on('authorization.error', (ctx: KoaContextWithOIDC, error: Error) => void record(ctx, 'oauth_authorize', 'invalid', {}, error));
  provider.on('grant.success', (ctx: KoaContextWithOIDC) =>
    void record(ctx, grantType(ctx) === 'refresh_token' ? 'oauth_refresh' : 'oauth_token', 'allowed', { grant_type: grantType(ctx), grant_id: ctx.oidc?.entities?.Grant?.jti ?? null }),
  );
  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: Error) => {
    const said = error as { error_detail?: string; error_description?: string };
    const reused = /already (consumed|used)/.test(`${said.error_detail ?? ''} ${said.error_description ?? ''} ${error.message}`);
    void record(ctx, reused ? 'oauth_reuse_detected' : grantType(ctx) === 'refresh_token' ? 'oauth_refresh' : 'oauth_token', reused ? 'denied' : 'invalid', { grant_type: grantType(ctx) }, error);
  });
  provider.on('grant.revoked', (ctx: KoaContextWithOIDC, grantId: string) => void record(ctx, 'oauth_grant_revoked', 'allowed', { grant_id: grantId }));
  provider.on('revocation.error', (ctx: KoaContextWithOIDC, error: Error) => void record(ctx, 'oauth_revoke', 'invalid', {}, error));
  provider.on('registration_create.success', (ctx: KoaContextWithOIDC, client: { clientId: string; clientName?: string }) =>
    void record(ctx, 'oauth_register', 'allowed', { registered_client_id: client.clientId, client_name: client.clientName ?? null }),
  );
  provider.on('registration_create.error', (ctx: KoaContextWithOIDC, error: Error) => void record(ctx, 'oauth_register', 'invalid', {}, error));
  provider.on('server_error', (_ctx: unknown, error: Error) => deps.log.error({ err: { type: error.name, message: scrubText(error.message) } }, 'OAuth server error'));
}
