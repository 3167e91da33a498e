/**
 * pino, JSON on stdout. Message texts are logged only at debug level; the
 * keys below are redacted at every level as a second line of defence.
 */
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream | number = 1): Logger {
  const redact = level === 'debug' || level === 'trace' ? ['secret', '*.secret'] : ['text', '*.text', 'secret', '*.secret'];
  return pino(
    {
      level,
      base: { pid: process.pid, name: 'sms-router' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redact, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination,
  );
}
