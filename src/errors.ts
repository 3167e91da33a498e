/**
 * Error taxonomy. Every failure that crosses a module boundary is one of these
 * classes with a stable `code`, so the daemon can log it, decide whether to
 * retry, and keep running. Codes are part of the public surface (logs,
 * `.reason` files, `decode` output): never rename one.
 */
import type { Config } from './config.js';

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'SPOOL_PARSE'
  | 'SPOOL_TOO_LARGE'
  | 'SPOOL_NOT_A_FILE'
  | 'SPOOL_UNUSABLE'
  | 'INVALID_NUMBER'
  | 'INVALID_CHANNEL'
  | 'UNKNOWN_NUMBER'
  | 'DIRECTORY_CONFLICT'
  | 'INVALID_RECIPIENT'
  | 'CSV_INVALID'
  | 'DATABASE'
  | 'CALL_FILE_UNSAFE'
  | 'AMI_NOT_CONNECTED'
  | 'AMI_DISCONNECTED'
  | 'AMI_TIMEOUT'
  | 'AMI_UNRESPONSIVE'
  | 'AMI_LOGIN_FAILED'
  | 'AMI_UNSAFE_VALUE'
  | 'AMI_PROTOCOL'
  | 'AMI_ACTION_FAILED'
  | 'AGI_HANGUP'
  | 'AGI_TIMEOUT'
  | 'AGI_CLOSED'
  | 'AGI_PROTOCOL'
  | 'AGI_UNSAFE_VALUE'
  | 'SPEECH_ENGINE_MISSING'
  | 'SPEECH_FAILED'
  | 'SPEECH_TIMEOUT'
  | 'SPEECH_LANGUAGE'
  | 'RENDER_FAILED'
  | 'USAGE';

/**
 * A value quoted for an error or log message, cut to `max` characters: the
 * values come from spool files, CSV sheets and config files, and one of a
 * megabyte must not become a megabyte of log line or `.reason` file.
 */
export function quoted(value: unknown, max = 60): string {
  if (typeof value === 'string' && value.length > max) return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
  return JSON.stringify(value) ?? String(value);
}

export class SmsRouterError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The configuration file is missing, unreadable or does not follow the schema. */
export class ConfigError extends SmsRouterError {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly expected: string,
  ) {
    super('CONFIG_INVALID', `${file}: ${key}: ${expected}`);
  }
}

/** A spool file that cannot be decoded; `line` is 1-based, 0 when the file as a whole is wrong. */
export class SpoolParseError extends SmsRouterError {
  constructor(
    readonly line: number,
    readonly reason: string,
    code: 'SPOOL_PARSE' | 'SPOOL_TOO_LARGE' | 'SPOOL_NOT_A_FILE' = 'SPOOL_PARSE',
  ) {
    super(code, line > 0 ? `line ${line}: ${reason}` : reason);
  }
}

/** The spool directory itself cannot be used (missing, no permission): the daemon must stop. */
export class SpoolUnusableError extends SmsRouterError {
  constructor(
    readonly path: string,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super('SPOOL_UNUSABLE', `spool path ${path} is unusable: ${fix}`, options);
  }
}

/** A number that may not become a file name or a call-file value. */
export class InvalidNumberError extends SmsRouterError {
  constructor(readonly value: string) {
    super('INVALID_NUMBER', `invalid number ${quoted(value)}: expected digits with an optional leading +, 19 characters at most`);
  }
}

export class InvalidChannelError extends SmsRouterError {
  constructor(readonly value: string) {
    super(
      'INVALID_CHANNEL',
      `invalid channel ${quoted(value)}: expected TECH/resource such as PJSIP/1001, DAHDI/2 or Local/1001@phones`,
    );
  }
}

export class UsageError extends SmsRouterError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export class DatabaseError extends SmsRouterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATABASE', message, options);
  }
}

export class CallFileUnsafeError extends SmsRouterError {
  constructor(key: string) {
    super('CALL_FILE_UNSAFE', `call file value for ${key} contains a control character`);
  }
}

export function errorCode(err: unknown): string {
  return err instanceof SmsRouterError ? err.code : 'INTERNAL';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Issue 10: an error of the system around the daemon (a full disk, a directory it may not write,
 * a journal locked by another program) becomes a message that says what to do, and that nothing
 * is lost. Anything else is returned as it is.
 */
export function explainFailure(err: unknown, config: Config): unknown {
  if (err instanceof SmsRouterError) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const where = (err as NodeJS.ErrnoException).path ?? config.spool.root;
  const safe = 'nothing is lost: every message is still in sms/morx or in the journal, and goes out when sms-router is started again';
  if (code === 'ENOSPC' || code === 'EDQUOT') return new SpoolUnusableError(where, `${errorMessage(err)}; free space on its file system; ${safe}`, { cause: err });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new SpoolUnusableError(where, `${errorMessage(err)}; let the user running sms-router write there (chown asterisk:asterisk); ${safe}`, { cause: err });
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new DatabaseError(`the journal ${config.database.path} stayed locked by another program for longer than 5 s (${errorMessage(err)}); end that program (an open sqlite3 shell, a backup) and start sms-router again; ${safe}`, { cause: err });
  }
  if (code === 'SQLITE_FULL') return new DatabaseError(`the journal ${config.database.path} cannot grow (${errorMessage(err)}); free space on its file system; ${safe}`, { cause: err });
  return err;
}
