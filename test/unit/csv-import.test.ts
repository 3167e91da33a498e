import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { importRecipients, parseRecipientsCsv, readCsvRecords, type CsvRow } from '../../src/directory/csv-import.js';

const opened: Db[] = [];
after(() => opened.forEach((db) => db.close()));

function freshDirectory(): RecipientDirectory {
  const db = openDatabase(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'smsr-')), 'smsr.db'));
  opened.push(db);
  return new RecipientDirectory(db);
}

const strip = (rows: CsvRow[]) => rows.map(({ line: _line, ...rest }) => rest);

test('the original suite\'s Account,Message,Extension export', () => {
  const { rows, errors } = parseRecipientsCsv('Account,Message,Extension\n1000,S,SIP/1000\n1001,F,SIP/1001\n1002,N,\n');
  assert.deepEqual(errors, []);
  assert.deepEqual(rows, [
    { number: '1000', service: 'S', channel: 'SIP/1000', name: '', line: 2 },
    { number: '1001', service: 'F', channel: 'SIP/1001', name: '', line: 3 },
    { number: '1002', service: 'N', channel: '', name: '', line: 4 },
  ]);
});

test('headers are case-insensitive; legacy extra columns are ignored; columns may come in any order', () => {
  const text = 'id,EXTENSION,account,Message,note\n7,PJSIP/1000,1000,v,"anything, really"\n';
  const { rows, errors } = parseRecipientsCsv(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(strip(rows), [{ number: '1000', service: 'V', channel: 'PJSIP/1000', name: '' }]);
});

test('number,service,channel,name with or without the name column', () => {
  const withName = parseRecipientsCsv('Number,Service,Channel,Name\n1000,T,PJSIP/1000,Ann\n1001,C,,Commands\n');
  assert.deepEqual(withName.errors, []);
  assert.deepEqual(strip(withName.rows), [
    { number: '1000', service: 'T', channel: 'PJSIP/1000', name: 'Ann' },
    { number: '1001', service: 'C', channel: '', name: 'Commands' },
  ]);
  const without = parseRecipientsCsv('number,service,channel\n1000,S,DAHDI/1');
  assert.deepEqual(without.errors, []);
  assert.deepEqual(strip(without.rows), [{ number: '1000', service: 'S', channel: 'DAHDI/1', name: '' }]);
});

test('our own format refuses unknown columns, so a misspelt one is not silently dropped', () => {
  const { rows, errors } = parseRecipientsCsv('number,service,channel,nmae\n1000,S,DAHDI/1,Ann\n');
  assert.deepEqual(rows, []);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.line, 1);
});

test('quoted fields: delimiters, doubled quotes and line breaks inside', () => {
  const text = [
    'number,service,channel,name',
    '"1000","S","DAHDI/1","Smith, John"',
    '1001,S,DAHDI/2,"The ""Boss"""',
    '1002,S,DAHDI/3,"two',
    'lines"',
    '1003,N,,"""quoted"" at start, and end ""x"""',
    '1004,N,,',
    '',
  ].join('\n');
  const { rows, errors } = parseRecipientsCsv(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(
    rows.map((r) => [r.number, r.name, r.line]),
    [
      ['1000', 'Smith, John', 2],
      ['1001', 'The "Boss"', 3],
      // A line break typed into a cell becomes a space; the next row still knows its line.
      ['1002', 'two lines', 4],
      ['1003', '"quoted" at start, and end "x"', 6],
      ['1004', '', 7],
    ],
  );
});

test('BOM, CRLF, a lone CR, blank lines and no final newline', () => {
  const crlf = '\uFEFFAccount,Message,Extension\r\n1000,S,SIP/1000\r\n\r\n1001,T,PJSIP/1001';
  const a = parseRecipientsCsv(crlf);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(
    a.rows.map((r) => [r.number, r.line]),
    [
      ['1000', 2],
      ['1001', 4],
    ],
  );
  const cr = parseRecipientsCsv('Account,Message,Extension\r1000,S,SIP/1000\r');
  assert.deepEqual(cr.errors, []);
  assert.deepEqual(strip(cr.rows), [{ number: '1000', service: 'S', channel: 'SIP/1000', name: '' }]);
  // CRLF inside quotes counts as one line too.
  const quoted = parseRecipientsCsv('number,service,channel,name\r\n1,N,,"a\r\nb"\r\n2,N,,c\r\n');
  assert.deepEqual(
    quoted.rows.map((r) => [r.number, r.name, r.line]),
    [
      ['1', 'a b', 2],
      ['2', 'c', 4],
    ],
  );
});

test('semicolon-separated exports are recognised from the header', () => {
  const text = '\uFEFF"Account";"Message";"Extension"\r\n1000;s;SIP/1000\r\n1001;F;"SIP/1001"\r\n';
  const { rows, errors } = parseRecipientsCsv(text);
  assert.deepEqual(errors, []);
  assert.deepEqual(strip(rows), [
    { number: '1000', service: 'S', channel: 'SIP/1000', name: '' },
    { number: '1001', service: 'F', channel: 'SIP/1001', name: '' },
  ]);
  const modern = parseRecipientsCsv('number;service;channel;name\n1000;N;;Kowalski, Jan\n');
  assert.deepEqual(modern.errors, []);
  assert.equal(modern.rows[0]!.name, 'Kowalski, Jan');
});

test('service letters are trimmed and upper-cased; other fields are trimmed', () => {
  const { rows, errors } = parseRecipientsCsv('number,service,channel,name\n 1000 , t , PJSIP/1000 ,  Ann  \n');
  assert.deepEqual(errors, []);
  assert.deepEqual(strip(rows), [{ number: '1000', service: 'T', channel: 'PJSIP/1000', name: 'Ann' }]);
});

test('a missing or unknown header is one error on line 1 naming the accepted headers', () => {
  for (const text of ['', '\n', '\uFEFF', '1000,S,SIP/1000\n1001,S,SIP/1001\n', 'Account,Message\n1000,S\n', 'Account,Account,Message,Extension\n']) {
    const { rows, errors } = parseRecipientsCsv(text);
    assert.deepEqual(rows, [], JSON.stringify(text));
    assert.equal(errors.length, 1, JSON.stringify(text));
    assert.equal(errors[0]!.line, 1);
    assert.match(errors[0]!.message, /Account,Message,Extension/);
    assert.match(errors[0]!.message, /number,service,channel/);
  }
});

test('bad rows are reported with their line and what was expected; good rows still come back', () => {
  const text = [
    'Account,Message,Extension', // 1
    '1000,S,SIP/1000', // 2 good
    '10/00,S,SIP/1000', // 3 bad number
    '1001,X,SIP/1001', // 4 unknown letter
    '1002,S,SIP 1002', // 5 bad channel
    '1003,S,', // 6 S needs a channel
    '1004,S', // 7 too few fields
    '1005,S,SIP/1005,extra', // 8 too many fields
    '1006,N,', // 9 good
    '1000,N,', // 10 duplicate of line 2
    '1007,"S"x,SIP/1007', // 11 text after a closing quote
    '1008,C,', // 12 good
    '1009,S,"SIP/1009', // 13 unterminated quote swallows the rest
    '1010,S,SIP/1010',
  ].join('\n');
  const { rows, errors } = parseRecipientsCsv(text);
  assert.deepEqual(
    rows.map((r) => [r.number, r.line]),
    [
      ['1000', 2],
      ['1006', 9],
      ['1008', 12],
    ],
  );
  assert.deepEqual(
    errors.map((e) => e.line),
    [3, 4, 5, 6, 7, 8, 10, 11, 13],
  );
  const at = (line: number) => errors.find((e) => e.line === line)!.message;
  assert.match(at(3), /invalid number "10\/00"/);
  assert.match(at(4), /unknown service letter "X".*S F V C T N/);
  assert.match(at(5), /invalid channel "SIP 1002"/);
  assert.match(at(6), /service S needs a channel/);
  assert.match(at(7), /expected 3 fields \(Account,Message,Extension\), found 2/);
  assert.match(at(8), /expected 3 fields .*found 4/);
  assert.match(at(10), /already appears on line 2/);
  assert.match(at(11), /after a closing quote/);
  assert.match(at(13), /never closed/);
});

test('readCsvRecords: fields and starting lines of raw records', () => {
  const records = [...readCsvRecords('a,b\n"x\ny",""\n\n,\n"",z', ',')];
  assert.deepEqual(records, [
    { line: 1, fields: ['a', 'b'] },
    { line: 2, fields: ['x\ny', ''] },
    { line: 5, fields: ['', ''] },
    { line: 6, fields: ['', 'z'] },
  ]);
  // A quote in the middle of an unquoted field is kept as it is.
  assert.deepEqual([...readCsvRecords('ab"c;d', ';')], [{ line: 1, fields: ['ab"c', 'd'] }]);
});

test('importRecipients adds and updates in one transaction, keeping fields the CSV does not carry', () => {
  const dir = freshDirectory();
  dir.add({ number: '1000', service: 'S', channel: 'DAHDI/1', name: 'Ann', language: 'pl', quietHours: '22:00-06:00' });
  const { rows, errors } = parseRecipientsCsv('Account,Message,Extension\n1000,F,SIP/1000\n1001,T,PJSIP/1001\n');
  assert.deepEqual(errors, []);
  assert.deepEqual(importRecipients(dir, rows), { added: 1, updated: 1 });
  assert.deepEqual(dir.get('1000'), {
    number: '1000',
    service: 'F',
    channel: 'SIP/1000',
    name: 'Ann', // the legacy export has no names: keep ours
    language: 'pl',
    faxResolution: null,
    quietHours: '22:00-06:00',
  });
  assert.equal(dir.get('1001')!.service, 'T');

  const renamed = parseRecipientsCsv('number,service,channel,name\n1001,N,,Bob\n');
  assert.deepEqual(importRecipients(dir, renamed.rows), { added: 0, updated: 1 });
  assert.deepEqual(dir.get('1001'), { ...dir.get('1001')!, service: 'N', channel: '', name: 'Bob' });
});

test('importRecipients writes nothing when one row is refused by the directory', () => {
  const dir = freshDirectory();
  const rows: CsvRow[] = [
    { number: '1', service: 'N', channel: '', name: '', line: 2 },
    { number: '2', service: 'S', channel: 'not a channel', name: '', line: 3 },
  ];
  assert.throws(() => importRecipients(dir, rows), { code: 'INVALID_CHANNEL' });
  assert.deepEqual(dir.list(), []);
});

test('a 10,000-row file parses and imports in one call', () => {
  const count = 10_000;
  const services = ['S', 'F', 'V', 'C', 'T', 'N'] as const;
  const lines = ['number,service,channel,name'];
  for (let i = 0; i < count; i++) {
    const service = services[i % services.length]!;
    lines.push(`+48${String(100000 + i)},${service},PJSIP/${i},"Subscriber ${i}, floor ${i % 7}"`);
  }
  const text = lines.join('\r\n') + '\r\n';
  const { rows, errors } = parseRecipientsCsv(text);
  assert.deepEqual(errors, []);
  assert.equal(rows.length, count);
  assert.equal(rows[count - 1]!.line, count + 1);

  const dir = freshDirectory();
  assert.deepEqual(importRecipients(dir, rows), { added: count, updated: 0 });
  const all = dir.list();
  assert.equal(all.length, count);
  assert.deepEqual(dir.get('+48100123'), {
    number: '+48100123',
    service: services[123 % 6],
    channel: 'PJSIP/123',
    name: `Subscriber 123, floor ${123 % 7}`,
    language: null,
    faxResolution: null,
    quietHours: null,
  });
  assert.deepEqual(importRecipients(dir, rows), { added: 0, updated: count });
});

test('errors quote at most 60 characters of a value, and say how long it was', () => {
  const huge = 'x'.repeat(1_000_000);
  const { rows, errors } = parseRecipientsCsv(`Account,Message,Extension\n${huge},S,SIP/1000\n1001,${huge},SIP/1001\n1002,S,${huge}\n`);
  assert.deepEqual(rows, []);
  assert.equal(errors.length, 3);
  for (const e of errors) {
    assert.ok(e.message.length < 300, `line ${e.line}: ${e.message.length} characters`);
    assert.match(e.message, /"x{60}"… \(1000000 characters\)/i); // the service letter is upper-cased first
  }
});
