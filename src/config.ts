/**
 * The one configuration file: TOML, read once at start, validated against the
 * schema below, then frozen and passed in. Every error names the file, the key
 * and what was expected. Nothing else in the program reads the environment.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { ConfigError } from './errors.js';
import { isValidNumber } from './numbers.js';

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
    readonly unsupportedCharacter: string;
  };
  readonly notices: { readonly disabled: string; readonly unknown: string; readonly sipFailed: string };
  readonly ami: {
    /** Off: T messages wait in the journal until AMI is configured. */
    readonly enabled: boolean;
    readonly host: string;
    readonly port: number;
    readonly username: string;
    readonly secret: string;
    /** Seconds one action may take before it counts as failed. */
    readonly actionTimeout: number;
  };
  readonly sip: {
    /** Domain of the From: URI of SIP messages the centre sends ("2001" <sip:2001@DOMAIN>). */
    readonly domain: string;
  };
  readonly agi: {
    /** Where the FastAGI service listens (loopback unless you mean otherwise). */
    readonly host: string;
    readonly port: number;
  };
  readonly log: { readonly level: LogLevel };
}

type Kind = 'string' | 'integer' | 'boolean';
interface Field {
  kind: Kind;
  default?: string | number | boolean;
  /** Extra rule; returns what was expected when the value breaks it. */
  check?: (v: never) => string | undefined;
}
type Schema = Record<string, Record<string, Field>>;

const positive = (min: number, max: number) => (v: number) =>
  v >= min && v <= max ? undefined : `an integer from ${min} to ${max}`;
const number = (v: string) => (isValidNumber(v) ? undefined : 'a number: digits with an optional leading +, 19 characters at most');
const noControl = (v: string) => (/[\u0000-\u001f\u007f]/.test(v) ? 'a value without control characters' : undefined);
const hostname = (v: string) => (/^[A-Za-z0-9.:\[\]-]{1,253}$/.test(v) ? undefined : 'a host name or IP address');
const hostPort = (v: string) => (parseHostPort(v) ? undefined : 'HOST:PORT, such as 127.0.0.1:4573 (port 0 picks a free port)');
export function parseHostPort(v: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253}):([0-9]{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}
const absoluteOrRelativePath = (v: string) =>
  v.length > 0 && !/[\0\r\n]/.test(v) ? undefined : 'a non-empty path';

export const SCHEMA: Schema = {
  spool: {
    root: { kind: 'string', default: '/var/spool/asterisk', check: absoluteOrRelativePath as never },
    quarantine: { kind: 'string', default: '' },
    max_file_size: { kind: 'integer', default: 65536, check: positive(256, 16 * 1024 * 1024) as never },
    rescan_interval: { kind: 'integer', default: 10, check: positive(1, 3600) as never },
    create_missing: { kind: 'boolean', default: false },
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
  },
  ami: {
    enabled: { kind: 'boolean', default: false },
    host: { kind: 'string', default: '127.0.0.1', check: hostname as never },
    port: { kind: 'integer', default: 5038, check: positive(1, 65535) as never },
    username: { kind: 'string', default: '', check: noControl as never },
    secret: { kind: 'string', default: '', check: noControl as never },
    action_timeout: { kind: 'integer', default: 10, check: positive(1, 300) as never },
  },
  sip: {
    domain: { kind: 'string', default: 'localhost', check: hostname as never },
  },
  agi: {
    listen: { kind: 'string', default: '127.0.0.1:4573', check: hostPort as never },
  },
  log: {
    level: {
      kind: 'string',
      default: 'info',
      check: ((v: string) =>
        ['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(v)
          ? undefined
          : 'one of fatal, error, warn, info, debug, trace') as never,
    },
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
    if (!(section in SCHEMA)) {
      throw new ConfigError(file, section, `unknown section; expected one of [${Object.keys(SCHEMA).join('], [')}]`);
    }
  }
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, fields] of Object.entries(SCHEMA)) {
    const table = doc[section] ?? {};
    if (typeof table !== 'object' || table === null || Array.isArray(table) || table instanceof Date) {
      throw new ConfigError(file, section, `expected a table [${section}], found ${kindOf(table)}`);
    }
    const given = table as Record<string, unknown>;
    for (const key of Object.keys(given)) {
      if (!(key in fields)) {
        throw new ConfigError(
          file,
          `${section}.${key}`,
          `unknown key; [${section}] takes ${Object.keys(fields).join(', ')}`,
        );
      }
    }
    out[section] = {};
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
        (field.kind === 'integer' && typeof value === 'number' && Number.isInteger(value));
      if (!ok) throw new ConfigError(file, name, `expected ${describe(field)}, found ${kindOf(value)}`);
      const problem = field.check?.(value as never);
      if (problem) throw new ConfigError(file, name, `expected ${problem}, found ${JSON.stringify(value)}`);
      out[section]![key] = value;
    }
  }
  return out;
}

function describe(field: Field): string {
  return field.kind === 'integer' ? 'an integer' : field.kind === 'boolean' ? 'true or false' : 'a string';
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
      unsupportedCharacter: v.sms!.unsupported_character as string,
    },
    notices: {
      disabled: v.notices!.disabled as string,
      unknown: v.notices!.unknown as string,
      sipFailed: v.notices!.sip_failed as string,
    },
    ami: {
      enabled: v.ami!.enabled as boolean,
      host: v.ami!.host as string,
      port: v.ami!.port as number,
      username: v.ami!.username as string,
      secret: v.ami!.secret as string,
      actionTimeout: v.ami!.action_timeout as number,
    },
    sip: { domain: v.sip!.domain as string },
    agi: parseHostPort(v.agi!.listen as string)!,
    log: { level: v.log!.level as LogLevel },
  };
  return deepFreeze(config);
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
