// Changes to what the gateway serves (catalog entries, installations, pins) reach the access-change
// feed under one id, so cached views of it are dropped everywhere (see lib/ops/gateway/targets.ts).

/**
 * The id every change to the catalog, an installation or a pin reports to the access-change feed,
 * so processes that cached what the gateway serves a caller drop it at their next check.
 */
export const GATEWAY_CHANGE_SUBJECT = '00000000-0000-4000-8000-0000ca7a1000';
/** An after-row trigger reporting GATEWAY_CHANGE_SUBJECT. */
export const gatewayChangeTrigger = (table: string) => ({
  name: `${table}_gateway_change`,
  timing: 'after' as const,
  events: ['insert' as const, 'update' as const, 'delete' as const],
  forEach: 'row' as const,
  body: `perform "access_changed"('${GATEWAY_CHANGE_SUBJECT}'); return null;`,
});

