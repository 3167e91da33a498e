/**
 * pino, JSON on stdout. Message texts are logged only at debug level; the
 * keys below are redacted at every level as a second line of defence.
 */
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

/** A log file ([log] file) that SIGHUP can reopen after logrotate moved it. */
export function openLogFile(file: string): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: file, sync: true, mkdir: true });
}

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream | ReturnType<typeof pino.destination> | number = 1): Logger {
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
