/**
 * pino, JSON on stdout. Message texts are logged only at debug level; the
 * keys below are redacted at every level as a second line of defence.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.js';

/**
 * A log file ([log] file) that SIGHUP can reopen after logrotate moved it.
 * 0640 in a 0750 directory whatever the umask (a world-writable log could be
 * forged; numbers in it are nobody else's business). Opening applies the
 * umask too, so a stricter one makes them narrower, never wider.
 */
export function openLogFile(file: string): ReturnType<typeof pino.destination> {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o750 });
  return pino.destination({ dest: file, sync: true, mode: 0o640 });
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
