/**
 * Fuzzing the recipient CSV import (src/directory/csv-import.ts, and `users import` around it).
 *
 * Seeded and reproducible: every test name carries the seed. Knobs (see fuzz-support.ts):
 * FUZZ_SEED, FUZZ_PATH, FUZZ_RUNS (run multiplier), FUZZ_TIME_MS (time per property), FUZZ_LONG=1.
 * Regression inputs: test/fuzz/corpus/csv/ (raw files, replayed every run through the
 * parser and through `sms-router users import` into an in-memory directory).
 *
 * Properties: parsing never throws; every data record becomes exactly one row or
 * one error with its line; every row is a valid recipient (number, service,
 * channel, name) and no number appears twice; importing the rows never throws;
 * `users import` of any bytes exits 0 or 1 with one line per problem, and the
 * directory afterwards holds only valid numbers.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { importRecipients, parseRecipientsCsv, readCsvRecords, type CsvRecord } from '../../src/directory/csv-import.js';
import { RecipientDirectory, validateRecipient } from '../../src/directory/recipients.js';
import { openDatabase, type Db } from '../../src/journal/store.js';
import { isValidNumber } from '../../src/numbers.js';
import { runUsersCommand } from '../../src/cli/users.js';
import { SmsRouterError } from '../../src/errors.js';
import { SEED_TAG, check, checkAsync, corpus, mutate, mutation } from './fuzz-support.js';

const dbs: Db[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'smsr-fuzz-csv-'));
after(() => {
  for (const db of dbs) db.close();
  rmSync(tmp, { recursive: true, force: true });
});

function directory(): RecipientDirectory {
  const db = openDatabase(':memory:');
  dbs.push(db);
  return new RecipientDirectory(db);
}

function nonBlankRecords(text: string, delimiter: ',' | ';'): CsvRecord[] {
  return [...readCsvRecords(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, delimiter)];
}

/** The invariants of parseRecipientsCsv for any text; imports the rows into `dir` when given. */
function parseChecked(text: string, dir?: RecipientDirectory): void {
  let result: ReturnType<typeof parseRecipientsCsv>;
  try {
    result = parseRecipientsCsv(text);
  } catch (err) {
    assert.fail(`parseRecipientsCsv threw ${err instanceof Error ? err.stack : String(err)}`);
  }
  const { rows, errors } = result;
  const physicalLines = text.split(/\r\n|\r|\n/).length;
  for (const e of errors) {
    assert.ok(Number.isInteger(e.line) && e.line >= 1 && e.line <= physicalLines, `error line ${e.line} of ${physicalLines}`);
    assert.ok(typeof e.message === 'string' && e.message.length > 0);
  }
  const seen = new Set<string>();
  for (const r of rows) {
    assert.ok(isValidNumber(r.number), `an invalid number was accepted: ${JSON.stringify(r.number)}`);
    assert.doesNotThrow(() => validateRecipient({ ...r, language: null, faxResolution: null, quietHours: null }));
    assert.ok(!seen.has(r.number), `number ${r.number} accepted twice`);
    seen.add(r.number);
    assert.ok(r.line >= 2 && r.line <= physicalLines);
  }
  // Every record after the header is exactly one row or one error (or the header is the one error).
  const header = ([',', ';'] as const).map((d) => ({ d, records: nonBlankRecords(text, d) }));
  if (rows.length > 0 || errors.some((e) => !/header/.test(e.message))) {
    assert.ok(
      header.some(({ records }) => records.length - 1 === rows.length + errors.length),
      `${rows.length} rows + ${errors.length} errors for ${header.map((h) => h.records.length - 1).join(' or ')} records`,
    );
  } else {
    assert.equal(rows.length, 0);
    assert.ok(errors.length <= 1);
  }
  if (dir) {
    assert.doesNotThrow(() => importRecipients(dir, rows));
    for (const r of rows) assert.deepEqual([dir.get(r.number)?.service, dir.get(r.number)?.channel], [r.service, r.channel]);
  }
}

/** `sms-router users import FILE` on raw bytes: exit 0/1, one line per message, never a throw. */
async function cliImport(bytes: Uint8Array, name: string): Promise<void> {
  const file = path.join(tmp, name);
  writeFileSync(file, bytes);
  const db = openDatabase(':memory:');
  try {
    const dir = new RecipientDirectory(db);
    const out: string[] = [];
    const err: string[] = [];
    let code: number;
    try {
      code = await runUsersCommand(['import', file], { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) }, () => ({ dir, close: () => {} }));
    } catch (e) {
      // Only a file that is not UTF-8 may end this way, and classified.
      assert.ok(e instanceof SmsRouterError && e.code === 'CSV_INVALID', `users import threw ${e instanceof Error ? e.stack : String(e)}`);
      return;
    }
    assert.ok(code === 0 || code === 1, `exit ${code}`);
    for (const line of [...out, ...err]) assert.match(line, /^[^\n]*\n$/, 'one line per message');
    assert.equal(code === 0, err.length === 0);
    for (const r of dir.list()) assert.ok(isValidNumber(r.number));
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------- generators

const numberLike = fc.oneof(
  { weight: 6, arbitrary: fc.oneof(fc.stringMatching(/^\+?[0-9]{1,19}$/), fc.constantFrom('1000', '1001', '+48600111222')) },
  { weight: 1, arbitrary: fc.stringMatching(/^[+ 0-9a-z().-]{0,24}$/) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('', '+', '++1', '1'.repeat(20), '+' + '1'.repeat(19), ' 1000 ', '\u00a01000', '\ufeff1000', '١٢٣', '１２３', '1e3', '0x10', '-1', '10 00', '1000\u0000', 'NaN', 'Infinity', '1000\n'),
  },
);
const serviceLike = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('S', 'F', 'V', 'C', 'T', 'N', 's', ' n ') },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('', 'X', 'SS', 'ſ', 'Ｓ', 'S\n'), fc.string({ maxLength: 3 })) },
);
const channelLike = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('PJSIP/1001', 'DAHDI/2', 'Local/1001@phones', ' SIP/x ') },
  { weight: 2, arbitrary: fc.constantFrom('', 'SIP/../etc', 'PJSIP/a b', 'PJSIP/1,2', 'x', '/1', 'PJSIP/' + 'a'.repeat(121), 'PJSIP/1\n2') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const nameLike = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', 'Ann "A", floor 2', 'line\nbreak', 'tab\there', 'x'.repeat(101), '\u0085', '\u2028', 'a;b'));
const junk = fc.oneof(fc.string({ maxLength: 10 }), fc.string({ unit: 'binary', maxLength: 10 }));

/** A field as a spreadsheet would write it: bare, quoted with doubled quotes, or (rarely) broken. */
function render(value: string, how: number, delimiter: string): string {
  if (how < 50) return /[",;\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
  if (how < 90) return `"${value.replace(/"/g, '""')}"`;
  if (how < 95) return value; // bare even with quotes, delimiters or line breaks inside
  return ['"' + value, value + '"x', `"${value}"${delimiter}`, `"${value}"junk`, `"${value}`][how % 5]!;
}

type Column = 'number' | 'service' | 'channel' | 'name' | 'extra';
const LAYOUTS: Array<[string, Column[]]> = [
  ['number,service,channel,name', ['number', 'service', 'channel', 'name']],
  ['number,service,channel', ['number', 'service', 'channel']],
  ['Account,Message,Extension', ['number', 'service', 'channel']],
  ['id,Account,Message,Extension,notes', ['extra', 'number', 'service', 'channel', 'extra']],
  ['NUMBER , Service ,channel', ['number', 'service', 'channel']],
  ['channel,name,service,number', ['channel', 'name', 'service', 'number']],
  ['"number","service","channel"', ['number', 'service', 'channel']],
  // Headers that must be refused.
  ['number,service,channel,nmae', ['number', 'service', 'channel', 'name']],
  ['number,number,service,channel', ['number', 'number', 'service', 'channel']],
  ['number,service', ['number', 'service']],
  ['', ['number', 'service', 'channel']],
];
const row = fc.record({ number: numberLike, service: serviceLike, channel: channelLike, name: nameLike, extra: junk });
const csvText = fc
  .tuple(
    fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...LAYOUTS) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((h): [string, Column[]] => [h, ['number', 'service', 'channel']]) }),
    fc.constantFrom(',', ';'),
    fc.array(fc.tuple(row, fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 6, maxLength: 6 }), fc.integer({ min: -1, max: 20 })), { maxLength: 12 }),
    fc.constantFrom('\n', '\r\n', '\r'),
    fc.boolean(),
    fc.boolean(),
    fc.integer({ min: 0, max: 3 }),
  )
  .map(([[head, columns], delimiter, rows, eol, bom, finalEol, blankLines]) => {
    const body = rows.map(([r, how, width]) => {
      let fields = columns.map((c, i) => render(r[c], how[i % how.length]!, delimiter));
      // Now and then a row with a field too few or too many.
      if (width === 0) fields = fields.slice(0, -1);
      if (width === 1) fields.push('');
      return fields.join(delimiter);
    });
    const header = head.replace(/,/g, delimiter);
    return (bom ? '\ufeff' : '') + eol.repeat(blankLines) + [header, ...body].join(eol) + (finalEol ? eol : '');
  });

// ---------------------------------------------------------------- corpus

for (const { name, bytes } of corpus('csv')) {
  test(`csv corpus ${name}`, async () => {
    parseChecked(bytes.toString('utf8'), directory());
    await cliImport(bytes, name);
  });
}

// ---------------------------------------------------------------- properties

test(`csv: random CSV (quotes, separators, BOM, CRLF, bad numbers) parses to valid rows or classified errors ${SEED_TAG}`, () => {
  const dir = directory();
  check([csvText], (text) => parseChecked(text, dir), 20000);
  for (const r of dir.list()) assert.ok(isValidNumber(r.number), `the directory holds ${JSON.stringify(r.number)}`);
});

test(`csv: arbitrary unicode text and mutated CSV ${SEED_TAG}`, () => {
  const good = Buffer.from('number,service,channel,name\n+48600111222,S,PJSIP/1001,"Ann, ""A"""\r\n1001,N,,\n1002,F,DAHDI/2,Fax\n');
  check(
    [fc.oneof(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.array(mutation, { minLength: 1, maxLength: 6 }).map((m) => mutate(good, m).toString('utf8')))],
    (text) => parseChecked(text),
    20000,
  );
});

test(`csv: huge fields, many columns and unclosed quotes ${SEED_TAG}`, () => {
  check(
    [fc.integer({ min: 1, max: 1024 * 1024 }), fc.constantFrom('number', 'name', 'quoted-name', 'unclosed', 'columns', 'lines'), fc.constantFrom('\n', '\r\n')],
    (size, where, eol) => {
      const big = 'x'.repeat(size);
      const rows: Record<string, string> = {
        number: `${'9'.repeat(size)},S,PJSIP/1`,
        name: `1000,S,PJSIP/1,${big}`,
        'quoted-name': `1000,S,PJSIP/1,"${big.replace(/x{1000}/g, (m) => m + '""' + eol)}"`,
        unclosed: `1000,S,PJSIP/1,"${big}`,
        columns: `1000,S,PJSIP/1,${','.repeat(Math.min(size, 200_000))}`,
        lines: `1000,S,PJSIP/1,a${eol}`.repeat(Math.min(Math.ceil(size / 20), 20_000)),
      };
      parseChecked(`number,service,channel,name${eol}${rows[where]}${eol}1001,N,,ok${eol}`);
    },
    20,
  );
});

test(`csv: users import of random bytes (invalid UTF-8 included) exits 0 or 1 and keeps the directory valid ${SEED_TAG}`, async () => {
  let n = 0;
  await checkAsync(
    [fc.oneof(csvText.map((t) => Buffer.from(t, 'utf8')), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)))],
    (bytes) => cliImport(bytes, `f${n++}.csv`),
    500,
  );
});
