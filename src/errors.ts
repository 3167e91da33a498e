/**
 * Error taxonomy. Every failure that crosses a module boundary is one of these
 * classes with a stable `code`, so the daemon can log it, decide whether to
 * retry, and keep running. Codes are part of the public surface (logs,
 * `.reason` files, `decode` output): never rename one.
 */

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
    super('INVALID_NUMBER', `invalid number ${JSON.stringify(value)}: expected digits with an optional leading +, 19 characters at most`);
  }
}

export class InvalidChannelError extends SmsRouterError {
  constructor(readonly value: string) {
    super(
      'INVALID_CHANNEL',
      `invalid channel ${JSON.stringify(value)}: expected TECH/resource such as PJSIP/1001, DAHDI/2 or Local/1001@phones`,
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
