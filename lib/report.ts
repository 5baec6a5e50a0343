import { AsyncLocalStorage } from 'node:async_hooks';
import { scrubText, scrubValue } from './redact.ts';

/** MCP's log levels, least severe first (RFC 5424's syslog severities). */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** What a session gets when its client never chose a level: warnings and worse. */
export const DEFAULT_CLIENT_LOG_LEVEL: LogLevel = 'warning';

export const isLogLevel = (value: unknown): value is LogLevel => typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);

/** Whether a message of `level` reaches a client that asked for `threshold` and worse. */
export const reaches = (level: LogLevel, threshold: LogLevel) => LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(threshold);

/**
 * What a running call tells the client that asked for it while it runs: log messages (MCP's
 * notifications/message, filtered by the session's level) and progress (notifications/progress,
 * when the request carried a progressToken). Either may go nowhere: a client that asked for
 * neither, a transport with no stream to send them on, a face that is not MCP.
 */
export interface ClientReport {
  log(level: LogLevel, message: string, data?: Record<string, unknown>): void;
  /** One more step done; `total` when the number of steps is known. */
  progress(message: string, total?: number): void;
}

export const SILENT_REPORT: ClientReport = { log() {}, progress() {} };

const current = new AsyncLocalStorage<ClientReport>();

/** The report of the call this code runs for (upstream clients report through it without being passed it). */
export const clientReport = (): ClientReport => current.getStore() ?? SILENT_REPORT;

export const withClientReport = <T>(report: ClientReport, run: () => Promise<T>): Promise<T> => current.run(report, run);

/**
 * A report whose every text and value is scrubbed first (`secrets`: the call's input's; tokens and
 * deployment secrets always), and which never throws: reporting must not fail the call.
 */
export function scrubbedReport(report: ClientReport, secrets: readonly string[]): ClientReport {
  if (report === SILENT_REPORT) return report;
  const guarded = (send: () => void) => {
    try {
      send();
    } catch {
      // Dropped: the call goes on.
    }
  };
  return {
    log: (level, message, data) => guarded(() => report.log(level, scrubText(message, secrets), data === undefined ? undefined : scrubValue(data, secrets))),
    progress: (message, total) => guarded(() => report.progress(scrubText(message, secrets), total)),
  };
}
