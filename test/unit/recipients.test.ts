import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Db } from '../../src/journal/store.js';
import {
  RecipientDirectory,
  SERVICE_LETTERS,
  isServiceLetter,
  type Recipient,
  type RecipientInput,
} from '../../src/directory/recipients.js';
import { SmsRouterError } from '../../src/errors.js';
import { isValidNumber } from '../../src/numbers.js';

const opened: Db[] = [];
after(() => opened.forEach((db) => db.close()));

function fresh(): { db: Db; dir: RecipientDirectory } {
  const db = openDatabase(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'smsr-')), 'smsr.db'));
  opened.push(db);
  return { db, dir: new RecipientDirectory(db) };
}

function hasCode(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof SmsRouterError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  };
}

test('service letters', () => {
  assert.deepEqual([...SERVICE_LETTERS], ['S', 'F', 'V', 'C', 'T', 'N']);
  for (const l of SERVICE_LETTERS) assert.equal(isServiceLetter(l), true);
  for (const x of ['s', 'X', '', 'SF', ' S']) assert.equal(isServiceLetter(x), false, x);
});

test('add fills defaults and get returns the same record', () => {
  const { dir } = fresh();
  const added = dir.add({ number: '1001', service: 'S', channel: 'DAHDI/1' });
  const expected: Recipient = {
    number: '1001',
    service: 'S',
    channel: 'DAHDI/1',
    name: '',
    language: null,
    faxResolution: null,
    quietHours: null,
  };
  assert.deepEqual(added, expected);
  assert.deepEqual(dir.get('1001'), expected);

  const full: Recipient = {
    number: '+48221234567',
    service: 'F',
    channel: 'Local/2002@faxes',
    name: 'Biuro Łódź',
    language: 'pl',
    faxResolution: 'fine',
    quietHours: '22:00-07:00',
  };
  assert.deepEqual(dir.add(full), full);
  assert.deepEqual(dir.get(full.number), full);
});

test('get: unknown and hostile numbers are simply absent', () => {
  const { dir } = fresh();
  assert.equal(dir.get('1001'), undefined);
  for (const hostile of ['../etc/passwd', '1\n2', "1' OR '1'='1", '']) assert.equal(dir.get(hostile), undefined);
});

test('add refuses an existing number with DIRECTORY_CONFLICT and keeps the original', () => {
  const { dir } = fresh();
  dir.add({ number: '1001', service: 'S', channel: 'DAHDI/1' });
  assert.throws(() => dir.add({ number: '1001', service: 'N' }), hasCode('DIRECTORY_CONFLICT'));
  assert.equal(dir.get('1001')!.service, 'S');
});

test('set changes only the given fields, null clears, and updated_at moves', () => {
  const { db, dir } = fresh();
  dir.add({ number: '1001', service: 'S', channel: 'DAHDI/1', name: 'Ann', language: 'en', quietHours: '23:00-06:30' });
  db.prepare("UPDATE recipients SET updated_at = '2000-01-01T00:00:00.000Z' WHERE number = '1001'").run();

  const changed = dir.set('1001', { service: 'V', name: 'Ann B', language: null, faxResolution: 'superfine' });
  assert.deepEqual(changed, {
    number: '1001',
    service: 'V',
    channel: 'DAHDI/1',
    name: 'Ann B',
    language: null,
    faxResolution: 'superfine',
    quietHours: '23:00-06:30',
  });
  assert.deepEqual(dir.get('1001'), changed);
  const stamps = db.prepare("SELECT created_at, updated_at FROM recipients WHERE number = '1001'").get() as {
    created_at: string;
    updated_at: string;
  };
  assert.notEqual(stamps.updated_at, '2000-01-01T00:00:00.000Z');
  assert.ok(stamps.updated_at >= stamps.created_at);
});

test('set: the number itself cannot be changed through the changes object', () => {
  const { dir } = fresh();
  dir.add({ number: '1001', service: 'N' });
  dir.set('1001', { name: 'x', number: '2002' } as never);
  assert.equal(dir.get('2002'), undefined);
  assert.equal(dir.get('1001')!.name, 'x');
});

test('set on an absent number is UNKNOWN_NUMBER; on an invalid one INVALID_NUMBER', () => {
  const { dir } = fresh();
  assert.throws(() => dir.set('1001', { name: 'x' }), hasCode('UNKNOWN_NUMBER'));
  assert.throws(() => dir.set('10/01', { name: 'x' }), hasCode('INVALID_NUMBER'));
});

test('set validates the resulting record: C to S needs a channel', () => {
  const { dir } = fresh();
  dir.add({ number: '1001', service: 'C' });
  assert.throws(() => dir.set('1001', { service: 'S' }), hasCode('INVALID_CHANNEL'));
  assert.equal(dir.get('1001')!.service, 'C');
  assert.equal(dir.set('1001', { service: 'S', channel: 'PJSIP/1001' }).channel, 'PJSIP/1001');
});

test('upsert adds, then updates the given fields and keeps the rest', () => {
  const { dir } = fresh();
  dir.upsert({ number: '1001', service: 'S', channel: 'DAHDI/1', language: 'de' });
  assert.equal(dir.get('1001')!.language, 'de');
  const after = dir.upsert({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
  assert.deepEqual(after, { ...dir.get('1001')!, service: 'T', channel: 'PJSIP/1001', language: 'de' });
  assert.equal(dir.list().length, 1);
  assert.throws(() => dir.upsert({ number: '1;2', service: 'N' }), hasCode('INVALID_NUMBER'));
});

test('remove reports whether something was removed', () => {
  const { dir } = fresh();
  dir.add({ number: '1001', service: 'N' });
  assert.equal(dir.remove('1001'), true);
  assert.equal(dir.get('1001'), undefined);
  assert.equal(dir.remove('1001'), false);
  assert.throws(() => dir.remove('../1001'), hasCode('INVALID_NUMBER'));
});

test('list is ordered by number', () => {
  const { dir } = fresh();
  const numbers = ['300', '+4812', '1001', '20', '1000'];
  for (const n of numbers) dir.add({ number: n, service: 'N' });
  assert.deepEqual(
    dir.list().map((r) => r.number),
    [...numbers].sort(),
  );
});

test('numbers: path, control and separator characters are refused', () => {
  const { dir } = fresh();
  const bad = ['', 'abc', '12/3', '..', '../1', '1..2', '1\n2', '1\r', '1;2', '1 2', '++1', '1+', '-1', '１２３'];
  for (const number of bad) {
    assert.throws(() => dir.add({ number, service: 'N' }), hasCode('INVALID_NUMBER'), JSON.stringify(number));
  }
  for (const number of ['1', '+1', '+48221234567']) {
    assert.equal(dir.add({ number, service: 'N' }).number, number);
  }
  assert.equal(dir.list().length, 3);
});

test('numbers: the directory applies exactly the rule of numbers.ts, length limit included', () => {
  const { dir } = fresh();
  // Lengths around any plausible limit; which ones pass is numbers.ts's business.
  for (let len = 15; len <= 22; len++) {
    for (const number of ['9'.repeat(len), `+${'9'.repeat(len - 1)}`]) {
      if (isValidNumber(number)) assert.equal(dir.add({ number, service: 'N' }).number, number);
      else assert.throws(() => dir.add({ number, service: 'N' }), hasCode('INVALID_NUMBER'), number);
    }
  }
});

test('service must be one of the six upper-case letters', () => {
  const { dir } = fresh();
  for (const service of ['X', 's', '', 'SS', 'n']) {
    assert.throws(() => dir.add({ number: '1', service } as RecipientInput), hasCode('INVALID_RECIPIENT'), service);
  }
  assert.equal(dir.get('1'), undefined);
});

test('channel: required for S F V T, optional for C and N, always well-formed', () => {
  const { dir } = fresh();
  let n = 100;
  for (const service of ['S', 'F', 'V', 'T'] as const) {
    assert.throws(() => dir.add({ number: String(n++), service }), hasCode('INVALID_CHANNEL'), service);
    assert.throws(() => dir.add({ number: String(n++), service, channel: '' }), hasCode('INVALID_CHANNEL'), service);
    assert.equal(dir.add({ number: String(n++), service, channel: 'PJSIP/1001' }).channel, 'PJSIP/1001');
  }
  for (const service of ['C', 'N'] as const) {
    assert.equal(dir.add({ number: String(n++), service }).channel, '');
    assert.equal(dir.add({ number: String(n++), service, channel: 'Local/1@cmd' }).channel, 'Local/1@cmd');
  }
  const bad = ['PJSIP/10\n01', 'PJSIP/1001,tr', 'PJSIP', '/1001', 'PJSIP/../x', 'PJSIP/10 01', 'PJSIP/1|2', 'PJSIP/1;2', '1PJSIP/1'];
  for (const channel of bad) {
    assert.throws(() => dir.add({ number: String(n++), service: 'S', channel }), hasCode('INVALID_CHANNEL'), JSON.stringify(channel));
    assert.throws(() => dir.add({ number: String(n++), service: 'C', channel }), hasCode('INVALID_CHANNEL'), JSON.stringify(channel));
  }
});

test('quiet hours: HH:MM-HH:MM in 24-hour time, or null', () => {
  const { dir } = fresh();
  let n = 1;
  for (const quietHours of ['22:00-07:00', '00:00-23:59', '13:30-14:45', null]) {
    assert.equal(dir.add({ number: String(n++), service: 'N', quietHours }).quietHours, quietHours);
  }
  for (const quietHours of ['24:00-07:00', '22:60-07:00', '7:00-8:00', '22:00', '22:00-07:00 ', '22.00-07.00', '', '22:00–07:00']) {
    assert.throws(() => dir.add({ number: String(n++), service: 'N', quietHours }), hasCode('INVALID_RECIPIENT'), quietHours);
  }
});

test('language: a short tag or null', () => {
  const { dir } = fresh();
  let n = 1;
  for (const language of ['pl', 'en-GB', 'pt-br', 'fil', 'zh-Hant', null]) {
    assert.equal(dir.add({ number: String(n++), service: 'N', language }).language, language);
  }
  for (const language of ['PL', 'p', 'polish', 'en_GB', 'en-', 'en-GBRXX', '', 'pl\n']) {
    assert.throws(() => dir.add({ number: String(n++), service: 'N', language }), hasCode('INVALID_RECIPIENT'), language);
  }
});

test('fax resolution: standard, fine, superfine or null', () => {
  const { dir } = fresh();
  let n = 1;
  for (const faxResolution of ['standard', 'fine', 'superfine', null] as const) {
    assert.equal(dir.add({ number: String(n++), service: 'F', channel: 'DAHDI/3', faxResolution }).faxResolution, faxResolution);
  }
  for (const faxResolution of ['Fine', 'high', '']) {
    assert.throws(
      () => dir.add({ number: String(n++), service: 'F', channel: 'DAHDI/3', faxResolution } as RecipientInput),
      hasCode('INVALID_RECIPIENT'),
    );
  }
});

test('name: no control characters, at most 100 characters', () => {
  const { dir } = fresh();
  assert.equal(dir.add({ number: '1', service: 'N', name: 'x'.repeat(100) }).name.length, 100);
  assert.throws(() => dir.add({ number: '2', service: 'N', name: 'x'.repeat(101) }), hasCode('INVALID_RECIPIENT'));
  assert.throws(() => dir.add({ number: '3', service: 'N', name: 'Ann\nBob' }), hasCode('INVALID_RECIPIENT'));
  assert.throws(() => dir.add({ number: '4', service: 'N', name: 'Ann\u0000' }), hasCode('INVALID_RECIPIENT'));
});

test('a rejected write leaves nothing behind', () => {
  const { dir } = fresh();
  assert.throws(() => dir.add({ number: '1', service: 'S' }));
  assert.throws(() => dir.upsert({ number: '2', service: 'V', channel: 'bad channel' }));
  assert.deepEqual(dir.list(), []);
});

test('transaction rolls back every write when the callback throws', () => {
  const { dir } = fresh();
  assert.throws(() =>
    dir.transaction(() => {
      dir.add({ number: '1', service: 'N' });
      dir.add({ number: '1', service: 'N' });
    }),
  );
  assert.equal(dir.get('1'), undefined);
});
