/**
 * `sms-router messages …`: looking into the journal and nudging single
 * messages by hand (retry one that failed, cancel one that should not go out).
 *
 * Exit codes: 0 done, 1 the journal refused (unknown id, a state that does not
 * allow the change, a database error), 2 the command line itself was wrong.
 *
 * Every change is one UPDATE guarded by the states it may start from, so a
 * change the running daemon made a moment earlier is never overwritten: the
 * command reports "changed" only when the row was actually updated, and
 * otherwise says what state the row is in now.
 */
import { parseArgs } from 'node:util';
import { DatabaseError, SmsRouterError, UsageError, errorMessage } from '../errors.js';
import { MESSAGE_STATES, type MessageState } from '../journal/journal.js';
import type { Db } from '../journal/store.js';
import type { CliIo } from './users.js';

export type { CliIo } from './users.js';

export type OpenJournal = (configPath: string | undefined) => { db: Db; close(): void };

const PREFIX = 'sms-router messages';
const DEFAULT_LIMIT = 50;
const TEXT_PREVIEW = 40;
export const CANCELLED_ERROR = 'CANCELLED by operator';

/** The states each change may start from (the WHERE guard of its UPDATE). */
export const RETRYABLE_STATES: readonly MessageState[] = ['failed', 'bounced', 'pending'];
export const CANCELLABLE_STATES: readonly MessageState[] = ['received', 'pending', 'spooled'];

export const MESSAGES_USAGE = `usage:
  sms-router messages list [--state S[,S...]] [--to NUMBER] [--from NUMBER] [--since T] [--limit N] [--no-text] [--json]
      newest first, ${DEFAULT_LIMIT} by default; --since takes an ISO date or date-time (local time unless it
      ends in Z or an offset) or a relative age such as 30s, 15m, 2h, 3d, 1w, and compares the time received
  sms-router messages show ID [--no-text] [--json]
      every field of the message, its calls, its notices and replies, and its parent
  sms-router messages retry ID [--reset-attempts]
      a failed, bounced or pending message becomes pending, due now (attempts kept unless --reset-attempts)
  sms-router messages cancel ID
      a received, pending or spooled message becomes failed ("${CANCELLED_ERROR}")
states: ${MESSAGE_STATES.join(', ')}
every subcommand accepts --config FILE
`;

const OPTIONS = {
  state: { type: 'string' },
  to: { type: 'string' },
  from: { type: 'string' },
  since: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  'no-text': { type: 'boolean' },
  'reset-attempts': { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
type OptionName = keyof typeof OPTIONS;
type Values = { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const COMMANDS: Record<string, { positionals: string[]; options: OptionName[] }> = {
  list: { positionals: [], options: ['state', 'to', 'from', 'since', 'limit', 'json', 'no-text'] },
  show: { positionals: ['ID'], options: ['json', 'no-text'] },
  retry: { positionals: ['ID'], options: ['reset-attempts'] },
  cancel: { positionals: ['ID'], options: [] },
};
const COMMAND_NAMES = 'list, show, retry or cancel';

interface ListFilter {
  states: MessageState[];
  to: string | undefined;
  from: string | undefined;
  /** ISO time in the journal's own format (toISOString), compared with received_at. */
  since: string | undefined;
  limit: number;
}

type Parsed =
  | { command: 'help'; values: Values }
  | { command: 'list'; values: Values; filter: ListFilter }
  | { command: 'show' | 'retry' | 'cancel'; values: Values; id: number };

/** A journal row as JSON: the columns in camelCase, srr/rp booleans, detail parsed when it is JSON. */
export type JsonRow = Record<string, unknown>;

export async function runMessagesCommand(args: string[], io: CliIo, openJournal: OpenJournal): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(args, new Date());
  } catch (err) {
    if (err instanceof UsageError || isParseArgsError(err)) {
      io.stderr(`${PREFIX}: ${oneLine(errorMessage(err))}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.command === 'help') {
    io.stdout(MESSAGES_USAGE);
    return 0;
  }

  const v = parsed.values;
  try {
    switch (parsed.command) {
      case 'list': {
        const filter = parsed.filter;
        return withJournal(openJournal, v.config, (db) => list(db, filter, v, io));
      }
      case 'show': {
        const id = parsed.id;
        return withJournal(openJournal, v.config, (db) => show(db, id, v, io));
      }
      case 'retry': {
        const id = parsed.id;
        return withJournal(openJournal, v.config, (db) => retry(db, id, v['reset-attempts'] === true, io));
      }
      case 'cancel': {
        const id = parsed.id;
        return withJournal(openJournal, v.config, (db) => cancel(db, id, io));
      }
    }
  } catch (err) {
    if (err instanceof SmsRouterError) {
      io.stderr(`${PREFIX}: ${oneLine(err.message)}\n`);
      return 1;
    }
    if (isSqliteError(err)) {
      // SQLITE_BUSY (the daemon held the lock too long), SQLITE_READONLY, a damaged file: one line, exit 1.
      io.stderr(`${PREFIX}: database error: ${oneLine(errorMessage(err))}\n`);
      return 1;
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Command line

function parse(args: string[], now: Date): Parsed {
  // One strict parse with every option so --config may stand anywhere; then
  // each subcommand refuses the options it has no use for.
  const { values, positionals, tokens } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: true, tokens: true });
  const v = values as Values;
  const given = tokens.flatMap((t) => (t.kind === 'option' ? [t.name as OptionName] : []));
  const twice = given.find((name, i) => given.indexOf(name) !== i);
  if (twice) throw new UsageError(`--${twice} given more than once`);
  if (v.help) return { command: 'help', values: v };

  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError(`missing subcommand: expected ${COMMAND_NAMES} (see --help)`);
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown subcommand ${JSON.stringify(command)}: expected ${COMMAND_NAMES}`);
  if (rest.length !== spec.positionals.length) {
    const wanted = spec.positionals.length === 0 ? 'no arguments' : spec.positionals.join(' ');
    throw new UsageError(`${command} takes ${wanted}, got ${rest.length === 0 ? 'none' : rest.map((a) => JSON.stringify(a)).join(' ')}`);
  }
  const stray = given.find((name) => name !== 'config' && name !== 'help' && !spec.options.includes(name));
  if (stray) throw new UsageError(`${command} does not take --${stray}`);

  if (command === 'list') {
    return {
      command,
      values: v,
      filter: {
        states: v.state === undefined ? [] : parseStates(v.state),
        to: v.to === undefined ? undefined : nonEmpty('--to', v.to),
        from: v.from === undefined ? undefined : nonEmpty('--from', v.from),
        since: v.since === undefined ? undefined : parseSince(v.since, now).toISOString(),
        limit: v.limit === undefined ? DEFAULT_LIMIT : parseLimit(v.limit),
      },
    };
  }
  return { command: command as 'show' | 'retry' | 'cancel', values: v, id: parseId(rest[0]!) };
}

function parseStates(value: string): MessageState[] {
  const states = value.split(',').map((s) => s.trim().toLowerCase());
  for (const s of states) {
    if (!(MESSAGE_STATES as readonly string[]).includes(s)) {
      throw new UsageError(`--state ${JSON.stringify(s)} is not a state: expected ${MESSAGE_STATES.join(', ')}`);
    }
  }
  return [...new Set(states)] as MessageState[];
}

function nonEmpty(option: string, value: string): string {
  const trimmed = value.trim();
  if (trimmed === '') throw new UsageError(`${option} needs a number`);
  return trimmed;
}

function parseLimit(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--limit ${JSON.stringify(value)}: expected a whole number of at least 1`);
  }
  return Number(value);
}

function parseId(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${JSON.stringify(value)} is not a message id: expected a whole number such as 42`);
  }
  return n;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * `--since`: a relative age (`15m` = fifteen minutes before now) or an ISO
 * date / date-time. Without Z or an offset it is local time, as people at a
 * shell prompt mean it; a bare date is local midnight.
 */
export function parseSince(value: string, now: Date): Date {
  const v = value.trim();
  const rel = /^(\d+)\s*([smhdw])$/i.exec(v);
  if (rel) {
    const ms = Number(rel[1]) * UNIT_MS[rel[2]!.toLowerCase()]!;
    const at = new Date(now.getTime() - ms);
    if (!Number.isNaN(at.getTime())) return at;
  }
  const m = ISO_TIME.exec(v);
  if (m) {
    const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((x) => Number(x ?? 0)) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
    const zone = m[8];
    // A zone needs a time: "2024-05-01Z" is nobody's way of writing a date.
    const zoneWithoutTime = zone !== undefined && m[4] === undefined;
    if (!zoneWithoutTime && validParts(year, month, day, hour, minute, second)) {
      if (zone === undefined) return new Date(year, month - 1, day, hour, minute, second, ms);
      const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
      if (zone.toUpperCase() === 'Z') return new Date(utc);
      const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
      const offset = (Number(z[2]) * 60 + Number(z[3])) * 60_000 * (z[1] === '-' ? -1 : 1);
      if (Number(z[2]) <= 23 && Number(z[3]) <= 59) return new Date(utc - offset);
    }
  }
  throw new UsageError(
    `--since ${JSON.stringify(value)}: expected an ISO date or date-time (2024-05-01, 2024-05-01T14:30, 2024-05-01T12:30:00Z) or an age such as 15m, 2h, 3d`,
  );
}

function validParts(year: number, month: number, day: number, hour: number, minute: number, second: number): boolean {
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return day <= daysInMonth;
}

// ---------------------------------------------------------------------------
// list and show

function list(db: Db, filter: ListFilter, v: Values, io: CliIo): number {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.states.length > 0) {
    where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
    params.push(...filter.states);
  }
  if (filter.to !== undefined) {
    where.push('da = ?');
    params.push(filter.to);
  }
  if (filter.from !== undefined) {
    where.push('oa = ?');
    params.push(filter.from);
  }
  if (filter.since !== undefined) {
    // received_at is strftime('%Y-%m-%dT%H:%M:%fZ'), the same shape as toISOString: text order is time order.
    where.push('received_at >= ?');
    params.push(filter.since);
  }
  const sql = `SELECT * FROM messages ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
  // One more than asked, only to tell whether there are more.
  const raw = db.prepare(sql).all(...params, filter.limit + 1) as Array<Record<string, unknown>>;
  const more = raw.length > filter.limit;
  const rows = raw.slice(0, filter.limit).map(toJsonRow);
  const hideText = v['no-text'] === true;

  if (v.json) {
    io.stdout(`${JSON.stringify(rows.map((r) => (hideText ? withoutText(r) : r)), null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    io.stdout('no messages match\n');
    return 0;
  }
  const head = ['ID', 'STATE', 'ROUTE', 'FROM', 'TO', 'ATTEMPTS', 'UPDATED'];
  if (!hideText) head.push('TEXT');
  const body = rows.map((r) => {
    const cells = [String(r['id']), cell(r['state']), cell(r['route']), cell(r['oa']), cell(r['da']), cell(r['attempts']), time(r['updatedAt'])];
    if (!hideText) cells.push(preview(r['text']));
    return cells;
  });
  io.stdout(table(head, body));
  if (more) io.stderr(`${PREFIX}: showing the newest ${filter.limit}; more match (use --limit)\n`);
  return 0;
}

function show(db: Db, id: number, v: Values, io: CliIo): number {
  const raw = db.prepare('SELECT * FROM messages WHERE id = ?').get(id) as Record<string, unknown> | undefined;
  if (raw === undefined) throw unknownMessage(id);
  const message = toJsonRow(raw);
  const calls = (db.prepare('SELECT * FROM calls WHERE message_id = ? ORDER BY id').all(id) as Array<Record<string, unknown>>).map(camelKeys);
  const parentRaw = raw['parent_id'] == null ? undefined : (db.prepare('SELECT * FROM messages WHERE id = ?').get(raw['parent_id']) as Record<string, unknown> | undefined);
  const parent = parentRaw === undefined ? null : toJsonRow(parentRaw);
  const notices = (db.prepare('SELECT * FROM messages WHERE parent_id = ? ORDER BY id').all(id) as Array<Record<string, unknown>>).map(toJsonRow);
  const hideText = v['no-text'] === true;

  if (v.json) {
    const t = (r: JsonRow) => (hideText ? withoutText(r) : r);
    io.stdout(`${JSON.stringify({ message: t(message), calls, parent: parent && t(parent), notices: notices.map(t) }, null, 2)}\n`);
    return 0;
  }

  const out: string[] = [];
  const fields = Object.entries(message).filter(([k]) => !(hideText && k === 'text'));
  const width = Math.max(...fields.map(([k]) => k.length));
  out.push(`message ${id}\n`);
  for (const [k, value] of fields) {
    const shown = k === 'text' ? quote(String(value)) : k === 'detail' && value !== null ? clean(typeof value === 'string' ? value : JSON.stringify(value)) : cell(value);
    out.push(`  ${`${k}:`.padEnd(width + 1)} ${shown}\n`);
  }

  out.push(`\nparent: ${parent === null ? (raw['parent_id'] == null ? 'none' : `#${String(raw['parent_id'])} (not in the journal)`) : summary(parent, hideText)}\n`);

  if (calls.length === 0) {
    out.push('\ncalls: none\n');
  } else {
    out.push(`\ncalls (${calls.length}):\n`);
    const head = ['ID', 'FILE', 'SERVICE', 'ATTEMPT', 'STATE', 'OUTCOME', 'CREATED', 'FINISHED'];
    const body = calls.map((c) => [
      String(c['id']),
      cell(c['fileName']),
      cell(c['service']),
      cell(c['attempt']),
      cell(c['state']),
      // A pending call has no outcome yet; a finished one without a status is said so rather than shown blank.
      c['state'] === 'pending' ? '(waiting)' : c['status'] == null ? '(no status)' : cell(c['status']),
      time(c['createdAt']),
      time(c['finishedAt']),
    ]);
    out.push(indent(table(head, body)));
  }

  if (notices.length === 0) {
    out.push('\nnotices and replies: none\n');
  } else {
    out.push(`\nnotices and replies (${notices.length}):\n`);
    for (const n of notices) out.push(`  ${summary(n, hideText)}\n`);
  }
  io.stdout(out.join(''));
  return 0;
}

/** One line for a related message: id, kind, state, from -> to, when, and a text preview. */
function summary(r: JsonRow, hideText: boolean): string {
  const text = hideText ? '' : `  ${quote(preview(r['text']).trimEnd())}`;
  return `#${String(r['id'])} ${cell(r['kind'])} ${cell(r['state'])} ${cell(r['oa'])} -> ${cell(r['da'])} updated ${time(r['updatedAt'])}${text}`;
}

// ---------------------------------------------------------------------------
// retry and cancel

const NOW_SQL = `strftime('%Y-%m-%dT%H:%M:%fZ','now')`;

interface Snapshot {
  state: MessageState;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
}

function retry(db: Db, id: number, resetAttempts: boolean, io: CliIo): number {
  const now = new Date().toISOString();
  const guard = RETRYABLE_STATES.map((s) => `'${s}'`).join(', ');
  const update = db.prepare(
    `UPDATE messages SET state = 'pending', next_attempt_at = @now,
       attempts = CASE WHEN @reset THEN 0 ELSE attempts END,
       updated_at = ${NOW_SQL}
     WHERE id = @id AND state IN (${guard})`,
  );
  const { before, after, changed } = guardedChange(db, id, () => update.run({ id, now, reset: resetAttempts ? 1 : 0 }).changes);
  if (!changed) throw refused(id, 'retry', before.state);

  const lines = [`message ${id}: retry scheduled`];
  lines.push(...describeChanges(before, after));
  if (!resetAttempts) lines.push(`  attempts kept at ${after.attempts} (--reset-attempts starts again from 0)`);
  if (after.last_error !== null) lines.push(`  last error kept: ${clean(after.last_error)}`);
  io.stdout(`${lines.join('\n')}\n`);
  return 0;
}

function cancel(db: Db, id: number, io: CliIo): number {
  const guard = CANCELLABLE_STATES.map((s) => `'${s}'`).join(', ');
  const update = db.prepare(
    `UPDATE messages SET state = 'failed', last_error = @error, next_attempt_at = NULL, updated_at = ${NOW_SQL}
     WHERE id = @id AND state IN (${guard})`,
  );
  const { before, after, changed } = guardedChange(db, id, () => update.run({ id, error: CANCELLED_ERROR }).changes);
  if (!changed) throw refused(id, 'cancel', before.state);

  const lines = [`message ${id}: cancelled`, ...describeChanges(before, after)];
  if (before.state === 'spooled') {
    lines.push('  note: it had already been handed to Asterisk; a call that is already queued or under way may still deliver it');
  }
  io.stdout(`${lines.join('\n')}\n`);
  return 0;
}

/**
 * Reads the row, runs the guarded UPDATE and reads it again, in one IMMEDIATE
 * transaction: the before/after shown are exactly what this command changed.
 * The state guard in the UPDATE is what decides; the reads only explain.
 */
function guardedChange(db: Db, id: number, run: () => number): { before: Snapshot; after: Snapshot; changed: boolean } {
  const read = db.prepare('SELECT state, attempts, next_attempt_at, last_error FROM messages WHERE id = ?');
  return db
    .transaction(() => {
      const before = read.get(id) as Snapshot | undefined;
      if (before === undefined) throw unknownMessage(id);
      const changed = run() === 1;
      const after = read.get(id) as Snapshot;
      return { before, after, changed };
    })
    .immediate();
}

function describeChanges(before: Snapshot, after: Snapshot): string[] {
  const lines: string[] = [];
  const row = (name: string, a: unknown, b: unknown) => {
    if (a !== b) lines.push(`  ${name}: ${cell(a)} -> ${cell(b)}`);
  };
  row('state', before.state, after.state);
  row('attempts', before.attempts, after.attempts);
  row('next attempt', before.next_attempt_at, after.next_attempt_at);
  row('last error', before.last_error, after.last_error);
  return lines;
}

const REFUSALS: Record<'retry' | 'cancel', Partial<Record<MessageState, string>>> = {
  retry: {
    delivered: 'it was already delivered',
    spooled: 'it is in Asterisk\'s hands (a call is queued or under way); wait for its outcome, or cancel it',
    received: 'the daemon has not routed it yet; it will be tried without help',
  },
  cancel: {
    delivered: 'it was already delivered',
    failed: 'it has already failed; nothing will deliver it',
    bounced: 'it has already bounced and its sender was told; nothing will deliver it',
  },
};

function refused(id: number, action: 'retry' | 'cancel', state: MessageState): SmsRouterError {
  const allowed = action === 'retry' ? RETRYABLE_STATES : CANCELLABLE_STATES;
  const why = REFUSALS[action][state] ?? `only a ${allowed.join(', ').replace(/, ([^,]*)$/, ' or $1')} message can be ${action === 'retry' ? 'retried' : 'cancelled'}`;
  return new SmsRouterError('DATABASE', `cannot ${action} message ${id}: it is ${state}: ${why}; nothing changed`);
}

function unknownMessage(id: number): SmsRouterError {
  return new DatabaseError(`no message ${id} in the journal`);
}

// ---------------------------------------------------------------------------
// Rows and text

function camel(column: string): string {
  return column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function camelKeys(raw: Record<string, unknown>): JsonRow {
  return Object.fromEntries(Object.entries(raw).map(([k, value]) => [camel(k), value]));
}

/** Every column, so a column added by a later migration shows up without changing this file. */
export function toJsonRow(raw: Record<string, unknown>): JsonRow {
  const row = camelKeys(raw);
  for (const flag of ['srr', 'rp']) if (typeof row[flag] === 'number') row[flag] = row[flag] !== 0;
  if (typeof row['detail'] === 'string') row['detail'] = parseMaybeJson(row['detail']);
  return row;
}

function parseMaybeJson(s: string): unknown {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return s;
  }
}

function withoutText(r: JsonRow): JsonRow {
  const { text: _text, ...rest } = r;
  return rest;
}

/** C0, DEL, C1, line/paragraph separators and bidi controls: nothing a terminal should act on. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function clean(s: string): string {
  return s.replace(CONTROL, ' ');
}

function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  return clean(String(value));
}

/** The first characters of a text (code points, never half a surrogate pair), control characters as spaces. */
export function preview(text: unknown): string {
  if (typeof text !== 'string') return '';
  return clean(Array.from(text).slice(0, TEXT_PREVIEW).join(''));
}

/** A full text, quoted, with every control character escaped so it cannot act on the terminal. */
function quote(text: string): string {
  return JSON.stringify(text).replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Journal times without the milliseconds: 2024-05-01T10:00:00Z. */
function time(value: unknown): string {
  if (typeof value !== 'string' || value === '') return '-';
  return clean(value.replace(/\.\d+Z$/, 'Z'));
}

function table(head: string[], body: string[][]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((row) => Array.from(row[c] ?? '').length)));
  return [head, ...body]
    .map((row) => row.map((value, c) => value + ' '.repeat(Math.max(0, widths[c]! - Array.from(value).length))).join('  ').trimEnd() + '\n')
    .join('');
}

function indent(s: string): string {
  return s.replace(/^(?=.)/gm, '  ');
}

function withJournal<T>(openJournal: OpenJournal, config: string | undefined, fn: (db: Db) => T): T {
  const { db, close } = openJournal(config);
  try {
    return fn(db);
  } finally {
    close();
  }
}

/** parseArgs reports unknown options and missing values as TypeErrors with an ERR_PARSE_ARGS_* code. */
function isParseArgsError(err: unknown): boolean {
  const code: unknown = err instanceof TypeError ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

function isSqliteError(err: unknown): boolean {
  const code: unknown = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ');
}
