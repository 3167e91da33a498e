/**
 * Importing the recipient directory from CSV, so an installation of the
 * original Python suite can bring its MySQL `PBXNumbers` table along
 * (`Account,Message,Extension`), and a new one can keep its directory in a
 * spreadsheet (`number,service,channel,name`).
 *
 * Parsing is pure and collects every problem with its line, so one typo does
 * not hide the next; importing is a single transaction, so a directory is
 * never left half-updated.
 */
import { errorMessage, quoted } from '../errors.js';
import {
  isServiceLetter,
  validateRecipient,
  SERVICE_LETTERS,
  type RecipientDirectory,
  type ServiceLetter,
} from './recipients.js';

export interface CsvRow {
  number: string;
  service: ServiceLetter;
  channel: string;
  name: string;
  /** 1-based line of the file on which the row starts. */
  line: number;
}

export interface CsvError {
  line: number;
  message: string;
}

export interface CsvRecord {
  /** 1-based line on which the record starts (a quoted field may span several). */
  line: number;
  fields: string[];
  /** Set when the record is malformed; its fields are then unreliable. */
  error?: string;
}

type Delimiter = ',' | ';';

/**
 * RFC 4180 records: quoted fields with doubled quotes, delimiters and line
 * breaks inside quotes, CRLF, LF or a lone CR between records. Blank lines
 * are skipped. The text must already be without its BOM.
 */
export function* readCsvRecords(text: string, delimiter: Delimiter): Generator<CsvRecord> {
  const n = text.length;
  const isEnd = (c: string | undefined) => c === delimiter || c === '\r' || c === '\n' || c === undefined;
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let error: string | undefined;
    let quotedAny = false;
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        quotedAny = true;
        i++;
        let closed = false;
        while (i < n) {
          const c = text[i]!;
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === '\n' || (c === '\r' && text[i + 1] !== '\n')) line++;
          field += c;
          i++;
        }
        if (!closed) error ??= 'a quoted field is never closed (a " without its closing ")';
        if (!isEnd(text[i])) {
          error ??= `unexpected text after a closing quote: expected "${delimiter}" or the end of the line`;
          while (!isEnd(text[i])) field += text[i++];
        }
      } else {
        // A quote inside an unquoted field is kept literally, as spreadsheets do.
        while (!isEnd(text[i])) field += text[i++];
      }
      fields.push(field);
      if (text[i] === delimiter) {
        i++;
        continue;
      }
      // End of record: CRLF, LF, a lone CR, or the end of the text.
      if (text[i] === '\r') i++;
      if (text[i] === '\n') i++;
      line++;
      break;
    }
    const blank = fields.length === 1 && fields[0]!.trim() === '' && !quotedAny;
    if (!blank) yield error === undefined ? { line: start, fields } : { line: start, fields, error };
  }
}

interface Layout {
  width: number;
  number: number;
  service: number;
  channel: number;
  name: number | undefined;
}

const LEGACY = ['account', 'message', 'extension'] as const;
const MODERN = ['number', 'service', 'channel'] as const;
const ACCEPTED_HEADERS =
  'Account,Message,Extension (the original suite\'s PBXNumbers export) or number,service,channel[,name], separated by commas or semicolons';

/** Which format a header names, or undefined if neither. */
function layoutOf(header: CsvRecord): Layout | undefined {
  if (header.error !== undefined) return undefined;
  const names = header.fields.map((f) => f.trim().toLowerCase());
  if (new Set(names).size !== names.length) return undefined;
  const at = (name: string) => names.indexOf(name);
  if (LEGACY.every((c) => names.includes(c))) {
    // The MySQL table may carry more columns (ids, notes): they are ignored.
    return { width: names.length, number: at('account'), service: at('message'), channel: at('extension'), name: undefined };
  }
  // Our own format is strict, so that a misspelt "nmae" column is not silently dropped.
  if (MODERN.every((c) => names.includes(c)) && names.every((c) => [...MODERN, 'name'].includes(c))) {
    const name = at('name');
    return { width: names.length, number: at('number'), service: at('service'), channel: at('channel'), name: name < 0 ? undefined : name };
  }
  return undefined;
}

export function parseRecipientsCsv(text: string): { rows: CsvRow[]; errors: CsvError[] } {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  // The delimiter is whichever one makes the first record a known header:
  // Excel and MySQL exports in some locales use semicolons.
  let records: Generator<CsvRecord> | undefined;
  let header: CsvRecord | undefined;
  let layout: Layout | undefined;
  for (const delimiter of [',', ';'] as const) {
    records = readCsvRecords(text, delimiter);
    header = records.next().value ?? undefined;
    layout = header && layoutOf(header);
    if (layout) break;
  }
  if (!layout || !records || !header) {
    const firstLine = text.split(/\r\n|\r|\n/, 1)[0] ?? '';
    const shown = firstLine.length > 80 ? `${firstLine.slice(0, 80)}…` : firstLine;
    const what = firstLine.trim() === '' ? 'missing header' : `unrecognised header ${JSON.stringify(shown)}`;
    return { rows: [], errors: [{ line: header?.line ?? 1, message: `${what}: expected ${ACCEPTED_HEADERS}` }] };
  }

  const rows: CsvRow[] = [];
  const errors: CsvError[] = [];
  const seen = new Map<string, number>();
  const columns = header.fields.map((f) => f.trim()).join(',');
  for (const record of records) {
    const { line, fields } = record;
    if (record.error !== undefined) {
      errors.push({ line, message: record.error });
      continue;
    }
    if (fields.length !== layout.width) {
      errors.push({ line, message: `expected ${layout.width} fields (${columns}), found ${fields.length}` });
      continue;
    }
    const number = fields[layout.number]!.trim();
    const service = fields[layout.service]!.trim().toUpperCase();
    const channel = fields[layout.channel]!.trim();
    // A line break typed into a spreadsheet cell must not reach a fax header.
    const name = layout.name === undefined ? '' : fields[layout.name]!.replace(/\s+/g, ' ').trim();
    if (!isServiceLetter(service)) {
      errors.push({ line, message: `unknown service letter ${quoted(service)}: expected one of ${SERVICE_LETTERS.join(' ')}` });
      continue;
    }
    try {
      validateRecipient({ number, service, channel, name, language: null, faxResolution: null, quietHours: null });
    } catch (err) {
      errors.push({ line, message: errorMessage(err) });
      continue;
    }
    // Two rows for one number is a mistake in the source: say so rather than silently keep either.
    const earlier = seen.get(number);
    if (earlier !== undefined) {
      errors.push({ line, message: `number ${number} already appears on line ${earlier}; this row is ignored` });
      continue;
    }
    seen.set(number, line);
    rows.push({ number, service, channel, name, line });
  }
  return { rows, errors };
}

/**
 * Adds new numbers and updates known ones in one transaction. Language, fax
 * resolution and quiet hours are not in the CSV and are kept; an empty name
 * keeps the existing one too, because the PBXNumbers export has no names.
 */
export function importRecipients(dir: RecipientDirectory, rows: CsvRow[]): { added: number; updated: number } {
  return dir.transaction(() => {
    let added = 0;
    let updated = 0;
    for (const row of rows) {
      const exists = dir.get(row.number) !== undefined;
      dir.upsert({
        number: row.number,
        service: row.service,
        channel: row.channel,
        ...(row.name === '' ? {} : { name: row.name }),
      });
      if (exists) updated++;
      else added++;
    }
    return { added, updated };
  });
}
