/**
 * The recipient directory: for every number, the service letter that decides
 * how a message reaches it (SPEC §3) and the channel to dial. The router asks
 * `get` once per message; the `users` CLI and the CSV importer write.
 *
 * Every write validates the whole resulting record, because channels and
 * numbers from here end up in call files and spool file names.
 */
import type { Statement } from 'better-sqlite3';
import { InvalidChannelError, SmsRouterError, quoted } from '../errors.js';
import type { Db } from '../journal/store.js';
import { assertChannel, assertNumber } from '../numbers.js';

export type ServiceLetter = 'S' | 'F' | 'V' | 'C' | 'T' | 'N';
export const SERVICE_LETTERS: readonly ServiceLetter[] = ['S', 'F', 'V', 'C', 'T', 'N'];

export function isServiceLetter(x: string): x is ServiceLetter {
  return (SERVICE_LETTERS as readonly string[]).includes(x);
}

export type FaxResolution = 'standard' | 'fine' | 'superfine';
export const FAX_RESOLUTIONS: readonly FaxResolution[] = ['standard', 'fine', 'superfine'];

export interface Recipient {
  number: string;
  service: ServiceLetter;
  channel: string;
  name: string;
  language: string | null;
  faxResolution: FaxResolution | null;
  quietHours: string | null;
}

export type RecipientInput = Pick<Recipient, 'number' | 'service'> & Partial<Omit<Recipient, 'number' | 'service'>>;
export type RecipientChanges = Partial<Omit<Recipient, 'number'>>;

/** A field other than number or channel is wrong: the directory cannot hold it. */
export class InvalidRecipientError extends SmsRouterError {
  constructor(
    readonly field: string,
    readonly value: unknown,
    expected: string,
  ) {
    super('INVALID_RECIPIENT', `invalid ${field} ${quoted(value)}: expected ${expected}`);
  }
}

/** Services that dial the recipient, so a channel is needed; C and N never call anyone. */
const NEEDS_CHANNEL: ReadonlySet<ServiceLetter> = new Set(['S', 'F', 'V', 'T']);
const HHMM = '(?:[01][0-9]|2[0-3]):[0-5][0-9]';
const QUIET_HOURS = new RegExp(`^${HHMM}-${HHMM}$`);
const LANGUAGE = /^[a-z]{2,3}(-[A-Za-z]{2,4})?$/;
// Names go into fax headers and call-file caller IDs: no control characters,
// and the original suite's columns were varchar(100).
const NAME_MAX = 100;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Throws the first rule the record breaks; returns it unchanged otherwise. */
export function validateRecipient(r: Recipient): Recipient {
  assertNumber(r.number);
  if (typeof r.service !== 'string' || !isServiceLetter(r.service)) {
    throw new InvalidRecipientError('service', r.service, `one of ${SERVICE_LETTERS.join(' ')}`);
  }
  if (r.channel === '') {
    if (NEEDS_CHANNEL.has(r.service)) {
      throw new SmsRouterError(
        'INVALID_CHANNEL',
        `service ${r.service} needs a channel such as PJSIP/1001, DAHDI/2 or Local/1001@phones`,
      );
    }
  } else if (typeof r.channel !== 'string') {
    throw new InvalidChannelError(String(r.channel));
  } else {
    assertChannel(r.channel);
  }
  if (typeof r.name !== 'string' || r.name.length > NAME_MAX || CONTROL.test(r.name)) {
    throw new InvalidRecipientError('name', r.name, `at most ${NAME_MAX} characters without control characters`);
  }
  if (r.language !== null && (typeof r.language !== 'string' || !LANGUAGE.test(r.language))) {
    throw new InvalidRecipientError('language', r.language, 'a language tag such as pl, en or pt-BR');
  }
  if (r.faxResolution !== null && !(FAX_RESOLUTIONS as readonly unknown[]).includes(r.faxResolution)) {
    throw new InvalidRecipientError('fax resolution', r.faxResolution, FAX_RESOLUTIONS.join(', '));
  }
  if (r.quietHours !== null && (typeof r.quietHours !== 'string' || !QUIET_HOURS.test(r.quietHours))) {
    throw new InvalidRecipientError('quiet hours', r.quietHours, 'HH:MM-HH:MM in 24-hour time, such as 22:00-07:00');
  }
  return r;
}

interface Row {
  number: string;
  service: ServiceLetter;
  channel: string;
  name: string;
  language: string | null;
  fax_resolution: FaxResolution | null;
  quiet_hours: string | null;
}

function fromRow(row: Row): Recipient {
  return {
    number: row.number,
    service: row.service,
    channel: row.channel,
    name: row.name,
    language: row.language,
    faxResolution: row.fax_resolution,
    quietHours: row.quiet_hours,
  };
}

const COLUMNS = 'number, service, channel, name, language, fax_resolution, quiet_hours';
const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

export class RecipientDirectory {
  // Prepared once: `get` runs for every routed message.
  readonly #get: Statement<[string], Row>;
  readonly #insert: Statement<[Row]>;
  readonly #update: Statement<[Row]>;
  readonly #delete: Statement<[string]>;
  readonly #list: Statement<[], Row>;

  constructor(private readonly db: Db) {
    this.#get = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM recipients WHERE number = ?`);
    this.#insert = db.prepare<[Row]>(
      `INSERT INTO recipients (${COLUMNS})
       VALUES (@number, @service, @channel, @name, @language, @fax_resolution, @quiet_hours)`,
    );
    this.#update = db.prepare<[Row]>(
      `UPDATE recipients SET service = @service, channel = @channel, name = @name, language = @language,
         fax_resolution = @fax_resolution, quiet_hours = @quiet_hours, updated_at = ${NOW}
       WHERE number = @number`,
    );
    this.#delete = db.prepare<[string]>('DELETE FROM recipients WHERE number = ?');
    this.#list = db.prepare<[], Row>(`SELECT ${COLUMNS} FROM recipients ORDER BY number`);
  }

  /** Never throws for a malformed number: hostile input is simply not in the directory. */
  get(number: string): Recipient | undefined {
    const row = this.#get.get(number);
    return row ? fromRow(row) : undefined;
  }

  add(r: RecipientInput): Recipient {
    return this.transaction(() => {
      const rec = validateRecipient(complete(r));
      if (this.#get.get(rec.number)) {
        throw new SmsRouterError('DIRECTORY_CONFLICT', `number ${rec.number} is already in the directory`);
      }
      this.#insert.run(toRow(rec));
      return rec;
    });
  }

  set(number: string, changes: RecipientChanges): Recipient {
    return this.transaction(() => {
      assertNumber(number);
      const current = this.get(number);
      if (!current) throw new SmsRouterError('UNKNOWN_NUMBER', `number ${number} is not in the directory`);
      const rec = validateRecipient(merge(current, changes));
      this.#update.run(toRow(rec));
      return rec;
    });
  }

  /** Adds, or changes the fields given and keeps the others. */
  upsert(r: RecipientInput): Recipient {
    return this.transaction(() => {
      assertNumber(r.number);
      if (!this.#get.get(r.number)) return this.add(r);
      const { number, ...changes } = r;
      return this.set(number, changes);
    });
  }

  remove(number: string): boolean {
    assertNumber(number);
    return this.#delete.run(number).changes > 0;
  }

  list(): Recipient[] {
    return this.#list.all().map(fromRow);
  }

  /** Runs `fn` in one transaction (nested calls become savepoints), e.g. a whole CSV import. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}

function complete(r: RecipientInput): Recipient {
  return {
    number: r.number,
    service: r.service,
    channel: r.channel ?? '',
    name: r.name ?? '',
    language: r.language ?? null,
    faxResolution: r.faxResolution ?? null,
    quietHours: r.quietHours ?? null,
  };
}

/** `undefined` means "leave as is"; `null` clears an optional field. */
// Only these keys are copied, so a stray `number` (or anything else) in the changes is ignored.
const CHANGEABLE = ['service', 'channel', 'name', 'language', 'faxResolution', 'quietHours'] as const;

function merge(current: Recipient, changes: RecipientChanges): Recipient {
  const next: Record<string, unknown> = { ...current };
  for (const key of CHANGEABLE) {
    if (changes[key] !== undefined) next[key] = changes[key];
  }
  return next as unknown as Recipient;
}

function toRow(r: Recipient): Row {
  return {
    number: r.number,
    service: r.service,
    channel: r.channel,
    name: r.name,
    language: r.language,
    fax_resolution: r.faxResolution,
    quiet_hours: r.quietHours,
  };
}
