/**
 * The one configuration file: TOML, read once at start, validated against the
 * schema below, then frozen and passed in. Every error names the file, the key
 * and what was expected. Nothing else in the program reads the environment.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { ConfigError, quoted } from './errors.js';
import { isValidNumber } from './numbers.js';
import { isValidTimeZone, parseQuietWindow } from './schedule/quiet-hours.js';
import { CRASH_POINTS, isCrashPointName, parseCrashAt } from './testing/crash-points.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface Config {
  /** Absolute path of the file this came from. */
  readonly file: string;
  readonly spool: {
    readonly root: string;
    readonly morx: string;
    readonly mttx: string;
    readonly outgoing: string;
    readonly outgoingDone: string;
    readonly tmp: string;
    readonly quarantine: string;
    /** Files larger than this are quarantined unread. */
    readonly maxFileSize: number;
    /** Seconds between safety rescans of morx (inotify can overflow) and of pending S queues. */
    readonly rescanInterval: number;
    /** Create the root and outgoing/ when missing (demo and tests; on a real PBX Asterisk owns them). */
    readonly createMissing: boolean;
    /** Where our call files go once their outcome is read from outgoing_done. */
    readonly callArchive: string;
    /** Keep them there (true) or delete them once read (false). */
    readonly keepCalls: boolean;
    /** morx files read and committed per journal transaction. */
    readonly batchSize: number;
    /** fsync every spool file before renaming it into place. */
    readonly fsync: boolean;
  };
  readonly database: { readonly path: string };
  readonly centre: { readonly receiveNumber: string; readonly sendNumber: string };
  readonly sms: {
    readonly maxRetries: number;
    readonly retryTime: number;
    readonly waitTime: number;
    readonly referenceBits: 8 | 16;
    /** Attempts (each a new mttx file and call) before the sender is told. */
    readonly maxAttempts: number;
    /** Seconds before the next attempt after the first failed one; each later wait is multiplied by retryBackoff. */
    readonly retryDelay: number;
    readonly retryBackoff: number;
    /** S calls outstanding at once; other queues wait (their files stay in mttx) until a call ends. */
    readonly maxConcurrentCalls: number;
    /** Seconds the parts of a long message wait for the rest before going out with markers. */
    readonly reassemblyTimeout: number;
    /** Seconds a message is worth trying for when it carries no vp of its own. */
    readonly validity: number;
    /** app_sms's own log: the only record of whether a phone acknowledged an SMS. */
    readonly appLog: string;
    readonly unsupportedCharacter: string;
  };
  readonly notices: {
    readonly disabled: string;
    readonly unknown: string;
    readonly sipFailed: string;
    readonly faxFailed: string;
    readonly voiceFailed: string;
    readonly smsFailed: string;
    readonly expired: string;
  };
  readonly ami: {
    /** Off: T messages wait in the journal until AMI is configured. */
    readonly enabled: boolean;
    readonly host: string;
    readonly port: number;
    readonly username: string;
    readonly secret: string;
    /** Seconds one action may take before it counts as failed. */
    readonly actionTimeout: number;
    /**
     * The outcome keeper's dialplan context ('' = off): F and V call files push it
     * as a hangup handler, which records FAXSTATUS/PLAYBACKSTATUS in AstDB, read
     * back over AMI when the daemon did not record the outcome itself.
     */
    readonly outcomeKeeper: string;
  };
  readonly quiet: {
    /** Default window when calls are not placed ('' = none); a recipient's own window wins. */
    readonly hours: string;
    /** IANA zone the windows are in. */
    readonly timeZone: string;
    /** Services whose calls respect quiet hours. */
    readonly services: readonly string[];
  };
  readonly commands: {
    readonly selfService: boolean;
    readonly perSenderPerMinute: number;
    readonly builtinNumbers: readonly string[];
    readonly replyMaxChars: number;
    readonly texts: { readonly unknown: string; readonly wrongNumber: string; readonly failed: string; readonly tooMany: string };
    readonly programs: ReadonlyArray<{
      readonly name: string;
      readonly keyword: string;
      readonly numbers: readonly string[];
      readonly program: string;
      readonly args: readonly string[];
      readonly timeoutMs: number;
      readonly maxOutputBytes: number;
      readonly description: string;
    }>;
  };
  readonly sip: {
    /** Domain of the From: URI of SIP messages the centre sends ("2001" <sip:2001@DOMAIN>). */
    readonly domain: string;
  };
  readonly agi: {
    /** Where the FastAGI service listens (loopback unless you mean otherwise). */
    readonly host: string;
    readonly port: number;
    /** HOST:PORT Asterisk connects to (call files' agi:// URL); empty = the listening address. */
    readonly advertise: string;
  };
  readonly fax: CallServiceConfig & {
    readonly dir: string;
    readonly keep: boolean;
    readonly resolution: 'standard' | 'fine' | 'superfine';
    readonly compression: 'g4' | 'g3';
    readonly header: string;
    readonly localStationId: string;
    readonly headerInfo: string;
    readonly ecm: boolean;
    readonly minRate: number;
    readonly maxRate: number;
  };
  readonly voice: CallServiceConfig & {
    readonly dir: string;
    readonly keep: boolean;
    readonly engine: 'espeak' | 'gtts';
    readonly language: string;
    readonly repeats: number;
  };
  readonly http: {
    /** Off when undefined. */
    readonly listen: { readonly host: string; readonly port: number } | undefined;
  };
  readonly log: {
    readonly level: LogLevel;
    /** A file to write the JSON log lines to (reopened on SIGHUP, for logrotate); empty = standard output. */
    readonly file: string;
  };
  /** Test-only: named crash points (src/testing/crash-points.ts). Never set on a real PBX. */
  readonly testing: { readonly crashAt: readonly string[]; readonly crashAfter: number };
}

/** The wait before attempt n + 1 after attempt n failed: delay × backoff^(n - 1), at most a day. */
export function retryWaitMs(service: { retryDelay: number; retryBackoff: number }, failedAttempt: number): number {
  return Math.min(86_400, service.retryDelay * service.retryBackoff ** Math.max(0, failedAttempt - 1)) * 1000;
}

/** What F and V share: how their calls are placed and retried. */
export interface CallServiceConfig {
  readonly callerId: string;
  /** Call file MaxRetries / RetryTime / WaitTime: Asterisk's own redials of one attempt. */
  readonly maxRetries: number;
  readonly retryTime: number;
  readonly waitTime: number;
  /** Attempts (each a new call file) before the sender is told. */
  readonly maxAttempts: number;
  /** Seconds between the first failed attempt and the next; each later wait is multiplied by retryBackoff. */
  readonly retryDelay: number;
  readonly retryBackoff: number;
  /** Calls of this service outstanding at once (a PBX has few lines); the rest wait in the journal. */
  readonly maxConcurrentCalls: number;
}

type Kind = 'string' | 'integer' | 'boolean' | 'strings';
interface Field {
  kind: Kind;
  default?: string | number | boolean | readonly string[];
  /** Extra rule; returns what was expected when the value breaks it. */
  check?: (v: never) => string | undefined;
}
type Schema = Record<string, Record<string, Field>>;

const positive = (min: number, max: number) => (v: number) =>
  v >= min && v <= max ? undefined : `an integer from ${min} to ${max}`;
const number = (v: string) => (isValidNumber(v) ? undefined : 'a number: digits with an optional leading +, 19 characters at most');
const numberList = (v: string[]) =>
  v.every((n) => n === '*' || isValidNumber(n)) ? undefined : 'numbers, or "*" for every C number';

const oneOf =
  (...allowed: Array<string | number>) =>
  (v: string | number) =>
    allowed.includes(v) ? undefined : `one of ${allowed.join(', ')}`;
const noControl = (v: string) => (/[\u0000-\u001f\u007f]/.test(v) ? 'a value without control characters' : undefined);
const hostname = (v: string) => (/^[A-Za-z0-9.:\[\]-]{1,253}$/.test(v) ? undefined : 'a host name or IP address');
const hostPort = (v: string) => (parseHostPort(v) ? undefined : 'HOST:PORT, such as 127.0.0.1:4573 (port 0 picks a free port)');
export function parseHostPort(v: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}
/** [http] listen: a bare port means loopback, so that nothing is exposed by accident. */
export function parseListen(v: string): { host: string; port: number } | undefined {
  if (/^[0-9]{1,5}$/.test(v)) return Number(v) <= 65535 ? { host: '127.0.0.1', port: Number(v) } : undefined;
  return parseHostPort(v);
}
const absoluteOrRelativePath = (v: string) =>
  v.length > 0 && !/[\0\r\n]/.test(v) ? undefined : 'a non-empty path';

/** One [commands.NAME] table: a keyword that runs a program, never through a shell. */
const COMMAND_PROGRAM: Record<string, Field> = {
  keyword: { kind: 'string', check: ((v: string) => (/^[A-Za-z0-9]{1,20}$/.test(v) ? undefined : 'one word of letters and digits')) as never },
  numbers: { kind: 'strings', default: ['*'] as never, check: numberList as never },
  program: { kind: 'string', check: ((v: string) => (path.isAbsolute(v) && !/[\0\r\n]/.test(v) ? undefined : 'an absolute path to a program')) as never },
  args: { kind: 'strings', default: [] as never, check: ((v: string[]) => (v.every((a) => !/[\0]/.test(a)) ? undefined : 'arguments without NUL')) as never },
  timeout: { kind: 'integer', default: 10, check: positive(1, 600) as never },
  max_output: { kind: 'integer', default: 65536, check: positive(1, 16 * 1024 * 1024) as never },
  description: { kind: 'string', default: '', check: noControl as never },
};

/** The keys [fax] and [voice] share: how their calls are placed, retried and paced, and where their files wait. */
function callServiceFields(maxConcurrentCalls: number): Record<string, Field> {
  return {
    caller_id: { kind: 'string', default: '"SMS centre" <1000>', check: noControl as never },
    max_retries: { kind: 'integer', default: 2, check: positive(0, 100) as never },
    retry_time: { kind: 'integer', default: 300, check: positive(1, 86400) as never },
    wait_time: { kind: 'integer', default: 45, check: positive(1, 600) as never },
    max_attempts: { kind: 'integer', default: 3, check: positive(1, 100) as never },
    retry_delay: { kind: 'integer', default: 600, check: positive(1, 7 * 86400) as never },
    retry_backoff: { kind: 'integer', default: 2, check: positive(1, 10) as never },
    max_concurrent_calls: { kind: 'integer', default: maxConcurrentCalls, check: positive(1, 1000) as never },
    dir: { kind: 'string', default: '' },
    keep: { kind: 'boolean', default: false },
  };
}

export const SCHEMA: Schema = {
  spool: {
    root: { kind: 'string', default: '/var/spool/asterisk', check: absoluteOrRelativePath as never },
    quarantine: { kind: 'string', default: '' },
    max_file_size: { kind: 'integer', default: 65536, check: positive(256, 16 * 1024 * 1024) as never },
    rescan_interval: { kind: 'integer', default: 10, check: positive(1, 3600) as never },
    create_missing: { kind: 'boolean', default: false },
    call_archive: { kind: 'string', default: '' },
    keep_calls: { kind: 'boolean', default: true },
    batch_size: { kind: 'integer', default: 256, check: positive(1, 10000) as never },
    fsync: { kind: 'boolean', default: true },
  },
  database: {
    path: { kind: 'string', default: '/var/lib/sms-router/sms-router.db', check: absoluteOrRelativePath as never },
  },
  centre: {
    receive_number: { kind: 'string', check: number as never },
    send_number: { kind: 'string', check: number as never },
  },
  sms: {
    max_retries: { kind: 'integer', default: 3, check: positive(0, 100) as never },
    retry_time: { kind: 'integer', default: 60, check: positive(1, 86400) as never },
    wait_time: { kind: 'integer', default: 30, check: positive(1, 600) as never },
    max_attempts: { kind: 'integer', default: 5, check: positive(1, 100) as never },
    retry_delay: { kind: 'integer', default: 300, check: positive(1, 7 * 86400) as never },
    retry_backoff: { kind: 'integer', default: 2, check: positive(1, 10) as never },
    max_concurrent_calls: { kind: 'integer', default: 32, check: positive(1, 1000) as never },
    app_log: { kind: 'string', default: '/var/log/asterisk/sms', check: absoluteOrRelativePath as never },
    validity: { kind: 'integer', default: 3 * 86400, check: positive(60, 365 * 86400) as never },
    reassembly_timeout: { kind: 'integer', default: 600, check: positive(1, 7 * 86400) as never },
    reference_bits: {
      kind: 'integer',
      default: 8,
      check: ((v: number) => (v === 8 || v === 16 ? undefined : '8 or 16')) as never,
    },
    unsupported_character: {
      kind: 'string',
      default: '?',
      check: ((v: string) =>
        [...v].length === 1 && v.codePointAt(0)! <= 0xffff && v.codePointAt(0)! >= 0x20
          ? undefined
          : 'one printable character of the Basic Multilingual Plane') as never,
    },
  },
  notices: {
    disabled: {
      kind: 'string',
      default: 'Cannot deliver SMS to {to}. Subscriber has disabled messaging service.',
    },
    unknown: { kind: 'string', default: 'Cannot deliver SMS to {to}. Number does not exist.' },
    sip_failed: { kind: 'string', default: 'Cannot deliver SMS to {to}. VoIP user not logged in.' },
    fax_failed: { kind: 'string', default: 'Cannot deliver SMS to {to}. Fax failed after {attempts} attempts: {reason}.' },
    expired: { kind: 'string', default: 'Cannot deliver SMS to {to}. It expired after {attempts} attempts.' },
    sms_failed: { kind: 'string', default: 'Cannot deliver SMS to {to}. No answer after {attempts} attempts.' },
    voice_failed: { kind: 'string', default: 'Cannot deliver SMS to {to}. No answer after {attempts} attempts: {reason}.' },
  },
  ami: {
    enabled: { kind: 'boolean', default: false },
    host: { kind: 'string', default: '127.0.0.1', check: hostname as never },
    port: { kind: 'integer', default: 5038, check: positive(1, 65535) as never },
    username: { kind: 'string', default: '', check: noControl as never },
    secret: { kind: 'string', default: '', check: noControl as never },
    action_timeout: { kind: 'integer', default: 10, check: positive(1, 300) as never },
    // A context name goes into call files (Set: CHANNEL(hangup_handler_push)=NAME,s,1): nothing that could end the line or the argument.
    outcome_keeper: {
      kind: 'string',
      default: '',
      check: ((v: string) => (v === '' || /^[A-Za-z0-9_-]{1,79}$/.test(v) ? undefined : 'a dialplan context name of letters, digits, _ and - (such as sms-router-outcome), or empty for off')) as never,
    },
  },
  sip: {
    domain: { kind: 'string', default: 'localhost', check: hostname as never },
  },
  quiet: {
    hours: { kind: 'string', default: '', check: ((v: string) => (v === '' || parseQuietWindow(v) ? undefined : 'HH:MM-HH:MM, such as 22:00-07:00, or empty for none')) as never },
    time_zone: { kind: 'string', default: '', check: ((v: string) => (v === '' || isValidTimeZone(v) ? undefined : 'an IANA time zone such as Europe/Warsaw, or empty for the system zone')) as never },
    services: { kind: 'strings', default: ['F', 'V'] as never, check: ((v: string[]) => (v.every((x) => ['S', 'F', 'V'].includes(x)) ? undefined : 'letters among S, F and V')) as never },
  },
  commands: {
    self_service: { kind: 'boolean', default: false },
    per_sender_per_minute: { kind: 'integer', default: 5, check: positive(1, 1000) as never },
    builtin_numbers: { kind: 'strings', default: ['*'] as never, check: numberList as never },
    reply_max_chars: { kind: 'integer', default: 459, check: positive(1, 10000) as never },
    unknown: { kind: 'string', default: 'Unknown command. Send HELP.' },
    wrong_number: { kind: 'string', default: 'Wrong number.' },
    failed: { kind: 'string', default: 'Unable to complete the order. Please try again in a few minutes.' },
    too_many: { kind: 'string', default: 'Too many requests. Please wait a minute.' },
  },
  agi: {
    listen: { kind: 'string', default: '127.0.0.1:4573', check: hostPort as never },
    advertise: { kind: 'string', default: '', check: ((v: string) => (v === '' ? undefined : hostPort(v))) as never },
  },
  fax: {
    ...callServiceFields(1),
    resolution: { kind: 'string', default: 'fine', check: oneOf('standard', 'fine', 'superfine') as never },
    compression: { kind: 'string', default: 'g4', check: oneOf('g4', 'g3') as never },
    header: { kind: 'string', default: 'Text message from {from} sent {time} (ref {ref})', check: noControl as never },
    local_station_id: { kind: 'string', default: 'SMS-ROUTER', check: noControl as never },
    header_info: { kind: 'string', default: 'sms-router', check: noControl as never },
    ecm: { kind: 'boolean', default: true },
    min_rate: { kind: 'integer', default: 2400, check: oneOf(2400, 4800, 7200, 9600, 12000, 14400) as never },
    max_rate: { kind: 'integer', default: 14400, check: oneOf(2400, 4800, 7200, 9600, 12000, 14400) as never },
  },
  voice: {
    ...callServiceFields(2),
    engine: { kind: 'string', default: 'espeak', check: oneOf('espeak', 'gtts') as never },
    language: { kind: 'string', default: 'en', check: ((v: string) => (/^[a-z]{2,3}(-[A-Za-z]{2,4})?$/.test(v) ? undefined : 'a language code such as en or pl')) as never },
    repeats: { kind: 'integer', default: 2, check: positive(0, 10) as never },
  },
  http: {
    listen: {
      kind: 'string',
      default: '',
      check: ((v: string) =>
        v === '' || parseListen(v) ? undefined : 'empty (off), PORT (on 127.0.0.1) or HOST:PORT, such as 127.0.0.1:9464') as never,
    },
  },
  log: {
    file: { kind: 'string', default: '', check: ((v: string) => (/[\0\r\n]/.test(v) ? 'a path' : undefined)) as never },
    level: {
      kind: 'string',
      default: 'info',
      check: ((v: string) =>
        ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(v)
          ? undefined
          : 'one of fatal, error, warn, info, debug, trace') as never,
    },
  },
  // Test-only (issue 10): SIGKILL the daemon at a named crash point. Empty on a real PBX.
  testing: {
    crash_at: {
      kind: 'string',
      default: '',
      check: ((v: string) => {
        const unknown = parseCrashAt(v).filter((n) => !isCrashPointName(n));
        return unknown.length ? `crash point names among ${Object.keys(CRASH_POINTS).join(', ')} (unknown: ${unknown.join(', ')})` : undefined;
      }) as never,
    },
    crash_after: { kind: 'integer', default: 1, check: positive(1, 1_000_000) as never },
  },
};

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return 'an integer';
  if (typeof v === 'number') return 'a float';
  if (typeof v === 'object' && v !== null) return 'a table';
  return `a ${typeof v}`;
}

/** Validates parsed TOML against SCHEMA; returns plain values with defaults applied. */
export function validate(file: string, doc: Record<string, unknown>): Record<string, Record<string, unknown>> {
  for (const section of Object.keys(doc)) {
    // hasOwn, not `in`: `in` also finds Object.prototype's names, so [__proto__], [constructor]
    // or `toString = 1` passed as known and were silently ignored (found by test/fuzz/config.test.ts).
    if (!Object.hasOwn(SCHEMA, section)) {
      throw new ConfigError(file, shownKey(section), `unknown section; expected one of [${Object.keys(SCHEMA).join('], [')}]`);
    }
  }
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, fields] of Object.entries(SCHEMA)) {
    const given = asTable(file, section, doc[section] ?? {});
    // [commands.NAME] tables sit inside [commands]; each is checked against COMMAND_PROGRAM.
    const subtables = section === 'commands' ? Object.keys(given).filter((k) => isTable(given[k])) : [];
    const plain = Object.fromEntries(Object.entries(given).filter(([k]) => !subtables.includes(k)));
    out[section] = validateTable(file, section, plain, fields);
    if (subtables.length) {
      out[section]!.programs = subtables.map((name) => {
        if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) throw new ConfigError(file, `commands.${shownKey(name)}`, 'a table name of letters, digits, _ and -');
        return { name, ...validateTable(file, `commands.${name}`, asTable(file, `commands.${name}`, given[name]), COMMAND_PROGRAM) };
      });
    }
  }
  return out;
}

/** A key as TOML writes it: bare when it can be, else quoted, so that an empty or multi-line key still shows in one line. */
function shownKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function asTable(file: string, name: string, v: unknown): Record<string, unknown> {
  if (!isTable(v)) throw new ConfigError(file, name, `expected a table [${name}], found ${kindOf(v)}`);
  return v;
}

function validateTable(file: string, section: string, given: Record<string, unknown>, fields: Record<string, Field>): Record<string, unknown> {
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(fields, key)) {
      throw new ConfigError(file, `${section}.${shownKey(key)}`, `unknown key; [${section}] takes ${Object.keys(fields).join(', ')}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    const name = `${section}.${key}`;
    let value = given[key];
    if (value === undefined) {
      if (field.default === undefined) throw new ConfigError(file, name, `required, expected ${describe(field)}`);
      value = field.default;
    }
    if (typeof value === 'bigint') value = Number(value);
    const ok =
      (field.kind === 'string' && typeof value === 'string') ||
      (field.kind === 'boolean' && typeof value === 'boolean') ||
      (field.kind === 'integer' && typeof value === 'number' && Number.isInteger(value)) ||
      (field.kind === 'strings' && Array.isArray(value) && value.every((x) => typeof x === 'string'));
    if (!ok) throw new ConfigError(file, name, `expected ${describe(field)}, found ${kindOf(value)}`);
    const problem = field.check?.(value as never);
    // A secret is never echoed: config errors reach the terminal and the journal.
    const shown = key === 'secret' ? '(the value is not shown)' : quoted(value);
    if (problem) throw new ConfigError(file, name, `expected ${problem}, found ${shown}`);
    out[key] = value;
  }
  return out;
}

function describe(field: Field): string {
  return { integer: 'an integer', boolean: 'true or false', string: 'a string', strings: 'an array of strings' }[field.kind];
}

/** Parses and validates TOML text; relative paths are resolved against the file's directory. */
export function parseConfig(file: string, text: string): Config {
  const absoluteFile = path.resolve(file);
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0];
      throw new ConfigError(absoluteFile, `line ${err.line} column ${err.column}`, `valid TOML (${first})`);
    }
    throw err;
  }
  const v = validate(absoluteFile, doc);
  if (v.ami!.enabled) {
    for (const key of ['username', 'secret'] as const) {
      if (!v.ami![key]) throw new ConfigError(absoluteFile, `ami.${key}`, 'required when [ami] enabled = true');
    }
  } else if (v.ami!.outcome_keeper) {
    throw new ConfigError(absoluteFile, 'ami.outcome_keeper', 'empty unless [ami] enabled = true (the keeper is read over AMI)');
  }
  const builtins = ['HELP', 'PING', 'TEST', 'UPTIME', 'STATUS', 'WHOAMI', 'SERVICE'];
  const seen = new Map<string, string>();
  for (const p of (v.commands!.programs as Array<Record<string, unknown>> | undefined) ?? []) {
    const keyword = (p.keyword as string).toUpperCase();
    if (builtins.includes(keyword)) throw new ConfigError(absoluteFile, `commands.${String(p.name)}.keyword`, `a word that is not a built-in command (${builtins.join(' ')})`);
    for (const n of p.numbers as string[]) {
      const other = seen.get(`${keyword} ${n}`) ?? (n === '*' ? [...seen.entries()].find(([k]) => k.startsWith(`${keyword} `))?.[1] : seen.get(`${keyword} *`));
      if (other) throw new ConfigError(absoluteFile, `commands.${String(p.name)}.keyword`, `a keyword not already used by [commands.${other}] on the same number`);
      seen.set(`${keyword} ${n}`, String(p.name));
    }
  }
  const base = path.dirname(absoluteFile);
  const resolve = (p: string) => path.resolve(base, p);
  const root = resolve(v.spool!.root as string);
  const quarantine = (v.spool!.quarantine as string) || path.join(root, 'sms', 'morx-rejected');
  const config: Config = {
    file: absoluteFile,
    spool: {
      root,
      morx: path.join(root, 'sms', 'morx'),
      mttx: path.join(root, 'sms', 'mttx'),
      outgoing: path.join(root, 'outgoing'),
      outgoingDone: path.join(root, 'outgoing_done'),
      tmp: path.join(root, 'tmp'),
      quarantine: resolve(quarantine),
      maxFileSize: v.spool!.max_file_size as number,
      rescanInterval: v.spool!.rescan_interval as number,
      createMissing: v.spool!.create_missing as boolean,
      callArchive: resolve((v.spool!.call_archive as string) || path.join(root, 'sms-router-calls')),
      keepCalls: v.spool!.keep_calls as boolean,
      batchSize: v.spool!.batch_size as number,
      fsync: v.spool!.fsync as boolean,
    },
    database: { path: resolve(v.database!.path as string) },
    centre: {
      receiveNumber: v.centre!.receive_number as string,
      sendNumber: v.centre!.send_number as string,
    },
    sms: {
      maxRetries: v.sms!.max_retries as number,
      retryTime: v.sms!.retry_time as number,
      waitTime: v.sms!.wait_time as number,
      referenceBits: v.sms!.reference_bits as 8 | 16,
      maxAttempts: v.sms!.max_attempts as number,
      retryDelay: v.sms!.retry_delay as number,
      retryBackoff: v.sms!.retry_backoff as number,
      maxConcurrentCalls: v.sms!.max_concurrent_calls as number,
      appLog: resolve(v.sms!.app_log as string),
      validity: v.sms!.validity as number,
      reassemblyTimeout: v.sms!.reassembly_timeout as number,
      unsupportedCharacter: v.sms!.unsupported_character as string,
    },
    notices: {
      disabled: v.notices!.disabled as string,
      unknown: v.notices!.unknown as string,
      sipFailed: v.notices!.sip_failed as string,
      faxFailed: v.notices!.fax_failed as string,
      voiceFailed: v.notices!.voice_failed as string,
      smsFailed: v.notices!.sms_failed as string,
      expired: v.notices!.expired as string,
    },
    ami: {
      enabled: v.ami!.enabled as boolean,
      host: v.ami!.host as string,
      port: v.ami!.port as number,
      username: v.ami!.username as string,
      secret: v.ami!.secret as string,
      actionTimeout: v.ami!.action_timeout as number,
      outcomeKeeper: v.ami!.outcome_keeper as string,
    },
    sip: { domain: v.sip!.domain as string },
    quiet: {
      hours: v.quiet!.hours as string,
      timeZone: (v.quiet!.time_zone as string) || Intl.DateTimeFormat().resolvedOptions().timeZone,
      services: v.quiet!.services as string[],
    },
    commands: {
      selfService: v.commands!.self_service as boolean,
      perSenderPerMinute: v.commands!.per_sender_per_minute as number,
      builtinNumbers: v.commands!.builtin_numbers as string[],
      replyMaxChars: v.commands!.reply_max_chars as number,
      texts: {
        unknown: v.commands!.unknown as string,
        wrongNumber: v.commands!.wrong_number as string,
        failed: v.commands!.failed as string,
        tooMany: v.commands!.too_many as string,
      },
      programs: ((v.commands!.programs as Array<Record<string, unknown>> | undefined) ?? []).map((p) => ({
        name: p.name as string,
        keyword: (p.keyword as string).toUpperCase(),
        numbers: p.numbers as string[],
        program: p.program as string,
        args: p.args as string[],
        timeoutMs: (p.timeout as number) * 1000,
        maxOutputBytes: p.max_output as number,
        description: p.description as string,
      })),
    },
    agi: { ...parseHostPort(v.agi!.listen as string)!, advertise: v.agi!.advertise as string },
    fax: {
      ...callService(v.fax!),
      dir: resolve((v.fax!.dir as string) || path.join(root, 'fax')),
      keep: v.fax!.keep as boolean,
      resolution: v.fax!.resolution as 'standard' | 'fine' | 'superfine',
      compression: v.fax!.compression as 'g4' | 'g3',
      header: v.fax!.header as string,
      localStationId: v.fax!.local_station_id as string,
      headerInfo: v.fax!.header_info as string,
      ecm: v.fax!.ecm as boolean,
      minRate: v.fax!.min_rate as number,
      maxRate: v.fax!.max_rate as number,
    },
    voice: {
      ...callService(v.voice!),
      dir: resolve((v.voice!.dir as string) || path.join(root, 'voice')),
      keep: v.voice!.keep as boolean,
      engine: v.voice!.engine as 'espeak' | 'gtts',
      language: v.voice!.language as string,
      repeats: v.voice!.repeats as number,
    },
    http: { listen: (v.http!.listen as string) === '' ? undefined : parseListen(v.http!.listen as string) },
    log: { level: v.log!.level as LogLevel, file: (v.log!.file as string) === '' ? '' : resolve(v.log!.file as string) },
    testing: { crashAt: parseCrashAt(v.testing!.crash_at as string), crashAfter: v.testing!.crash_after as number },
  };
  return deepFreeze(config);
}

function callService(t: Record<string, unknown>): CallServiceConfig {
  return {
    callerId: t.caller_id as string,
    maxRetries: t.max_retries as number,
    retryTime: t.retry_time as number,
    waitTime: t.wait_time as number,
    maxAttempts: t.max_attempts as number,
    retryDelay: t.retry_delay as number,
    retryBackoff: t.retry_backoff as number,
    maxConcurrentCalls: t.max_concurrent_calls as number,
  };
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(path.resolve(file), '(file)', `a readable TOML file (${code})`);
  }
  return parseConfig(file, text);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
