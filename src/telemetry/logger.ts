// Structured JSON logs (one line per event) with pino; level from SELDON_LOG_LEVEL / LOG_LEVEL.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  const valid = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  return pino({
    level: valid.includes(level) ? level : 'info',
    base: { service: 'recserve' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
