import pino, { type Logger } from 'pino';

export type { Logger };

// Keys whose values are secrets wherever they appear in a log object. The operation runner never
// logs inputs, so this is a second line of defence, not the first.
const SECRET_KEYS = [
  'password', 'newPassword', 'adminPassword', 'token', 'rawToken', 'secret', 'secrets', 'apiKey',
  'authorization', 'credential', 'credentials', 'passwordHash', 'hash', 'clientSecret', 'accessToken', 'refreshToken',
  'api_key', 'api_token', 'raw_token', 'new_password', 'client_secret', 'access_token', 'refresh_token',
];

export interface LogOptions {
  level?: string;
  /** Where lines go: a file path, or stderr (never stdout: stdio servers speak the protocol there). */
  file?: string;
  /** For tests: collect lines in memory. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LogOptions): Logger {
  const destination = options.stream ?? pino.destination({ dest: options.file ?? 2, sync: true, mkdir: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      redact: {
        paths: [...SECRET_KEYS, ...SECRET_KEYS.map((key) => `*.${key}`)],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
