/**
 * `sms-router users …`: keeping the recipient directory by hand or from CSV.
 *
 * Exit codes: 0 done, 1 the directory refused something (or a CSV row was
 * bad), 2 the command line itself was wrong. Expected errors are one line on
 * stderr, never a stack trace: this is run by people at a shell prompt.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { SmsRouterError, UsageError, errorMessage } from '../errors.js';
import { importRecipients, parseRecipientsCsv } from '../directory/csv-import.js';
import type { Recipient, RecipientChanges, RecipientDirectory, ServiceLetter } from '../directory/recipients.js';

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export type OpenDirectory = (configPath: string | undefined) => { dir: RecipientDirectory; close(): void };

const PREFIX = 'sms-router users';

export const USERS_USAGE = `usage:
  sms-router users add NUMBER --service S|F|V|C|T|N [--channel CHAN] [--name NAME]
                       [--language pl] [--fax-resolution standard|fine|superfine] [--quiet 22:00-07:00]
  sms-router users set NUMBER [the same options; an empty value clears language, fax resolution or quiet hours]
  sms-router users remove NUMBER
  sms-router users list [--json]
  sms-router users import FILE.csv
every subcommand accepts --config FILE
`;

const OPTIONS = {
  service: { type: 'string' },
  channel: { type: 'string' },
  name: { type: 'string' },
  language: { type: 'string' },
  'fax-resolution': { type: 'string' },
  quiet: { type: 'string' },
  json: { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
type OptionName = keyof typeof OPTIONS;
type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const RECIPIENT_OPTIONS: OptionName[] = ['service', 'channel', 'name', 'language', 'fax-resolution', 'quiet'];

/** What each subcommand takes: positional names, and options besides --config and --help. */
const COMMANDS: Record<string, { positionals: string[]; options: OptionName[] }> = {
  add: { positionals: ['NUMBER'], options: RECIPIENT_OPTIONS },
  set: { positionals: ['NUMBER'], options: RECIPIENT_OPTIONS },
  remove: { positionals: ['NUMBER'], options: [] },
  list: { positionals: [], options: ['json'] },
  import: { positionals: ['FILE'], options: [] },
};

interface Parsed {
  command: string;
  args: string[];
  values: Values;
}

export async function runUsersCommand(args: string[], io: CliIo, openDirectory: OpenDirectory): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(args);
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      io.stderr(`${PREFIX}: ${oneLine(errorMessage(err))}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.values.help) {
    io.stdout(USERS_USAGE);
    return 0;
  }

  try {
    switch (parsed.command) {
      case 'import':
        return importFile(parsed.args[0]!, parsed.values.config, io, openDirectory);
      case 'list':
        return withDirectory(openDirectory, parsed.values.config, (dir) => {
          const all = dir.list();
          io.stdout(parsed.values.json ? `${JSON.stringify(all, null, 2)}\n` : table(all));
          return 0;
        });
      case 'remove':
        return withDirectory(openDirectory, parsed.values.config, (dir) => {
          const number = parsed.args[0]!;
          if (!dir.remove(number)) throw new SmsRouterError('UNKNOWN_NUMBER', `number ${number} is not in the directory`);
          io.stdout(`removed ${number}\n`);
          return 0;
        });
      default: {
        // add or set: both take the recipient options.
        const number = parsed.args[0]!;
        const changes = recipientChanges(parsed.values);
        return withDirectory(openDirectory, parsed.values.config, (dir) => {
          const r = parsed.command === 'add' ? dir.add({ number, ...changes, service: changes.service! }) : dir.set(number, changes);
          io.stdout(`${parsed.command === 'add' ? 'added' : 'changed'} ${describe(r)}\n`);
          return 0;
        });
      }
    }
  } catch (err) {
    if (err instanceof SmsRouterError) {
      io.stderr(`${PREFIX}: ${oneLine(err.message)}\n`);
      return 1;
    }
    throw err;
  }
}

function parse(args: string[]): Parsed {
  // One strict parse with every option, so --config may stand anywhere, even
  // before the subcommand; then each subcommand refuses options it has no use for.
  const { values, positionals, tokens } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true, tokens: true });
  const v = values as Values;
  const given = tokens.flatMap((t) => (t.kind === 'option' ? [t.name as OptionName] : []));
  const twice = given.find((name, i) => given.indexOf(name) !== i);
  if (twice) throw new UsageError(`--${twice} given more than once`);
  if (v.help) return { command: positionals[0] ?? '', args: [], values: v };

  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError('missing subcommand: expected add, set, remove, list or import (see --help)');
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown subcommand ${JSON.stringify(command)}: expected add, set, remove, list or import`);
  if (rest.length !== spec.positionals.length) {
    const wanted = spec.positionals.length === 0 ? 'no arguments' : spec.positionals.join(' ');
    throw new UsageError(`${command} takes ${wanted}, got ${rest.length === 0 ? 'none' : rest.map((a) => JSON.stringify(a)).join(' ')}`);
  }
  const stray = given.find((name) => name !== 'config' && name !== 'help' && !spec.options.includes(name));
  if (stray) throw new UsageError(`${command} does not take --${stray}`);
  if (command === 'add' && v.service === undefined) throw new UsageError('add needs --service S|F|V|C|T|N');
  if (command === 'set' && !RECIPIENT_OPTIONS.some((o) => v[o] !== undefined)) {
    throw new UsageError(`set needs at least one of ${RECIPIENT_OPTIONS.map((o) => `--${o}`).join(', ')}`);
  }
  return { command, args: rest, values: v };
}

/** Options to directory fields; the directory itself validates the values. */
function recipientChanges(v: Values): RecipientChanges {
  const changes: RecipientChanges = {};
  // Lower-case letters are what people type; the directory stores upper case.
  if (v.service !== undefined) changes.service = v.service.trim().toUpperCase() as ServiceLetter;
  if (v.channel !== undefined) changes.channel = v.channel;
  if (v.name !== undefined) changes.name = v.name;
  // An empty value is the only way to clear these from a shell.
  if (v.language !== undefined) changes.language = v.language === '' ? null : v.language;
  if (v['fax-resolution'] !== undefined) {
    changes.faxResolution = v['fax-resolution'] === '' ? null : (v['fax-resolution'] as Recipient['faxResolution']);
  }
  if (v.quiet !== undefined) changes.quietHours = v.quiet === '' ? null : v.quiet;
  return changes;
}

function importFile(file: string, config: string | undefined, io: CliIo, openDirectory: OpenDirectory): number {
  let text: string;
  try {
    // fatal: a Latin-2 export would otherwise import with names full of U+FFFD.
    text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(file));
  } catch (err) {
    const why = err instanceof TypeError ? 'it is not UTF-8 text; save it as CSV UTF-8' : errorMessage(err);
    throw new SmsRouterError('CSV_INVALID', `cannot read ${file}: ${why}`, { cause: err });
  }
  const { rows, errors } = parseRecipientsCsv(text);
  // Nothing to write, so no reason to touch (or create) the database.
  const counts = rows.length === 0 ? { added: 0, updated: 0 } : withDirectory(openDirectory, config, (dir) => importRecipients(dir, rows));
  for (const e of errors) io.stderr(`${PREFIX}: ${file}: line ${e.line}: ${oneLine(e.message)}\n`);
  const bad = errors.length === 0 ? '' : `, ${errors.length} ${errors.length === 1 ? 'row' : 'rows'} with errors not imported`;
  io.stdout(`${file}: ${counts.added} added, ${counts.updated} updated${bad}\n`);
  return errors.length === 0 ? 0 : 1;
}

function withDirectory<T>(openDirectory: OpenDirectory, config: string | undefined, fn: (dir: RecipientDirectory) => T): T {
  const { dir, close } = openDirectory(config);
  try {
    return fn(dir);
  } finally {
    close();
  }
}

function describe(r: Recipient): string {
  const parts = [`service ${r.service}`];
  if (r.channel !== '') parts.push(`channel ${r.channel}`);
  if (r.name !== '') parts.push(`name ${JSON.stringify(r.name)}`);
  if (r.language !== null) parts.push(`language ${r.language}`);
  if (r.faxResolution !== null) parts.push(`fax resolution ${r.faxResolution}`);
  if (r.quietHours !== null) parts.push(`quiet ${r.quietHours}`);
  return `${r.number}: ${parts.join(', ')}`;
}

function table(all: Recipient[]): string {
  const head = ['NUMBER', 'SERVICE', 'CHANNEL', 'NAME', 'LANGUAGE', 'FAX', 'QUIET'];
  const dash = (s: string | null) => (s === null || s === '' ? '-' : s);
  const body = all.map((r) => [r.number, r.service, dash(r.channel), dash(r.name), dash(r.language), dash(r.faxResolution), dash(r.quietHours)]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  return [head, ...body].map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd() + '\n').join('');
}

/** parseArgs reports unknown options and missing values as TypeErrors with an ERR_PARSE_ARGS_* code. */
function isParseArgsError(err: unknown): boolean {
  const code: unknown = err instanceof TypeError ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ');
}
