import type { ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import { reaches, type ClientReport, type LogLevel } from '../report.ts';

/** The session's chosen log level (logging/setLevel): kept in the process on stdio, in the session row on HTTP. */
export interface LogLevelSetting {
  /** The level the client chose, or the default. */
  current(): LogLevel;
  choose(level: LogLevel): Promise<void>;
}

export function levelInMemory(initial: LogLevel): LogLevelSetting {
  let level = initial;
  return {
    current: () => level,
    async choose(chosen) {
      level = chosen;
    },
  };
}

/**
 * A call's report as MCP notifications about its request: log messages at or above the session's
 * level, progress only when the request carried a progressToken (numbered 1, 2, … so it only
 * grows). A notification that cannot be sent (the client went away) is dropped: the call goes on.
 */
export function notificationReport(send: (notification: ServerNotification) => Promise<void>, threshold: LogLevel, progressToken: string | number | undefined): ClientReport {
  let step = 0;
  const deliver = (notification: ServerNotification) => void send(notification).catch(() => undefined);
  return {
    log(level, message, data) {
      if (!reaches(level, threshold)) return;
      deliver({ method: 'notifications/message', params: { level, logger: 'mandate', data: data ? { message, ...data } : message } });
    },
    progress(message, total) {
      if (progressToken === undefined) return;
      step += 1;
      deliver({ method: 'notifications/progress', params: { progressToken, progress: step, ...(total !== undefined ? { total } : {}), message } });
    },
  };
}

