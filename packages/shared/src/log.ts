import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * One logger factory for both ends, so that operators search the same field names everywhere:
 * `component`, `site`, `round`, `version`, `code` (a FedmetaError code), errors under `err`.
 * Secrets are redacted by path; flow values are never passed to a logger in the first place.
 */
export function createLogger(
  component: string,
  opts: { level?: string; destination?: DestinationStream } = {},
): Logger {
  const options = {
    level: opts.level ?? process.env['FEDMETA_LOG_LEVEL'] ?? 'info',
    base: { component },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'token',
        'credential',
        'adminToken',
        'auth.token',
        'auth.credential',
        '*.token',
        '*.credential',
        'headers.authorization',
        'req.headers.authorization',
      ],
      censor: '[redacted]',
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
