import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory, type Recipient } from '../../src/directory/recipients.js';
import { runUsersCommand, type CliIo } from '../../src/cli/users.js';
import { DatabaseError } from '../../src/errors.js';

/** A temp database, an io that records output, and an openDirectory that counts opens and closes. */
function harness() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smsr-'));
  const dbFile = path.join(tmp, 'smsr.db');
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (s) => out.push(s), stderr: (s) => err.push(s) };
  const configs: (string | undefined)[] = [];
  let closes = 0;
  const openDirectory = (configPath: string | undefined) => {
    configs.push(configPath);
    const db = openDatabase(dbFile);
    return {
      dir: new RecipientDirectory(db),
      close: () => {
        closes++;
        db.close();
      },
    };
  };
  const run = async (...args: string[]) => {
    out.length = 0;
    err.length = 0;
    return runUsersCommand(args, io, openDirectory);
  };
  /** Reads the directory independently of the CLI. */
  const peek = <T>(fn: (dir: RecipientDirectory) => T): T => {
    const db = openDatabase(dbFile);
    try {
      return fn(new RecipientDirectory(db));
    } finally {
      db.close();
    }
  };
  return {
    tmp,
    run,
    peek,
    stdout: () => out.join(''),
    stderr: () => err.join(''),
    configs,
    opens: () => configs.length,
    closes: () => closes,
  };
}

/** Expected errors: exactly one line, prefixed, no stack trace. */
function assertOneErrorLine(stderr: string, pattern: RegExp) {
  const lines = stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, /^sms-router users: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

test('add, then get it back; options map to fields', async () => {
  const h = harness();
  const code = await h.run(
    'add',
    '1001',
    '--service',
    's',
    '--channel',
    'DAHDI/1',
    '--name',
    'Ann Smith',
    '--language',
    'pl',
    '--fax-resolution',
    'fine',
    '--quiet',
    '22:00-07:00',
  );
  assert.equal(code, 0, h.stderr());
  assert.match(h.stdout(), /^added 1001: /);
  assert.deepEqual(
    h.peek((d) => d.get('1001')),
    {
      number: '1001',
      service: 'S',
      channel: 'DAHDI/1',
      name: 'Ann Smith',
      language: 'pl',
      faxResolution: 'fine',
      quietHours: '22:00-07:00',
    },
  );
  assert.equal(h.closes(), h.opens());
});

test('add: validation errors exit 1 with one line, and the directory is still closed', async () => {
  const h = harness();
  assert.equal(await h.run('add', '1001', '--service', 'N'), 0);
  const cases: [string[], RegExp][] = [
    [['add', '1001', '--service', 'N'], /already in the directory/],
    [['add', '10/01', '--service', 'N'], /invalid number/],
    [['add', '1002', '--service', 'S'], /needs a channel/],
    [['add', '1003', '--service', 'S', '--channel', 'SIP/1,2'], /invalid channel/],
    [['add', '1004', '--service', 'Q'], /invalid service "Q"/],
    [['add', '1005', '--service', 'N', '--quiet', '25:00-07:00'], /invalid quiet hours/],
    [['add', '1006', '--service', 'N', '--language', 'Polish'], /invalid language/],
    [['add', '1007', '--service', 'F', '--channel', 'DAHDI/3', '--fax-resolution', 'ultra'], /invalid fax resolution/],
  ];
  for (const [args, pattern] of cases) {
    assert.equal(await h.run(...args), 1, args.join(' '));
    assertOneErrorLine(h.stderr(), pattern);
  }
  assert.equal(h.closes(), h.opens());
  assert.deepEqual(
    h.peek((d) => d.list().map((r) => r.number)),
    ['1001'],
  );
});

test('set changes the given fields; empty values clear optional ones', async () => {
  const h = harness();
  await h.run('add', '1001', '--service', 'V', '--channel', 'DAHDI/1', '--language', 'en', '--quiet', '21:00-08:00');
  assert.equal(await h.run('set', '1001', '--service', 'T', '--channel', 'PJSIP/1001', '--language', ''), 0, h.stderr());
  assert.match(h.stdout(), /^changed 1001: service T, channel PJSIP\/1001/);
  const r = h.peek((d) => d.get('1001'))!;
  assert.equal(r.service, 'T');
  assert.equal(r.channel, 'PJSIP/1001');
  assert.equal(r.language, null);
  assert.equal(r.quietHours, '21:00-08:00');

  assert.equal(await h.run('set', '2002', '--name', 'x'), 1);
  assertOneErrorLine(h.stderr(), /2002 is not in the directory/);
  assert.equal(await h.run('set', '1001', '--channel', ''), 1);
  assertOneErrorLine(h.stderr(), /service T needs a channel/);
});

test('remove, and removing an absent number is an error', async () => {
  const h = harness();
  await h.run('add', '1001', '--service', 'N');
  assert.equal(await h.run('remove', '1001'), 0);
  assert.equal(h.stdout(), 'removed 1001\n');
  assert.equal(h.peek((d) => d.get('1001')), undefined);
  assert.equal(await h.run('remove', '1001'), 1);
  assertOneErrorLine(h.stderr(), /1001 is not in the directory/);
  assert.equal(await h.run('remove', '../x'), 1);
  assertOneErrorLine(h.stderr(), /invalid number/);
});

test('list prints an aligned table with a header, ordered by number', async () => {
  const h = harness();
  await h.run('add', '2002', '--service', 'C');
  await h.run('add', '1001', '--service', 'S', '--channel', 'Local/1001@phones', '--name', 'Ann');
  await h.run('add', '+4812345', '--service', 'F', '--channel', 'DAHDI/2', '--fax-resolution', 'superfine');
  assert.equal(await h.run('list'), 0);
  const lines = h.stdout().trimEnd().split('\n');
  assert.equal(lines.length, 4);
  const header = lines[0]!;
  for (const col of ['NUMBER', 'SERVICE', 'CHANNEL', 'NAME', 'LANGUAGE', 'FAX', 'QUIET']) assert.ok(header.includes(col), col);
  const expected = h.peek((d) => d.list());
  assert.deepEqual(
    lines.slice(1).map((l) => l.split(/\s+/)[0]),
    expected.map((r) => r.number),
  );
  // Every value starts in its header's column.
  const starts = ['SERVICE', 'CHANNEL', 'NAME', 'FAX'].map((c) => header.indexOf(c));
  lines.slice(1).forEach((line, i) => {
    const r = expected[i]!;
    const values = [r.service, r.channel || '-', r.name || '-', r.faxResolution ?? '-'];
    values.forEach((v, k) => assert.equal(line.slice(starts[k], starts[k]! + v.length), v, `${line} / ${v}`));
  });
});

test('list on an empty directory prints the header only', async () => {
  const h = harness();
  assert.equal(await h.run('list'), 0);
  assert.equal(h.stdout().trimEnd().split('\n').length, 1);
  assert.match(h.stdout(), /^NUMBER/);
});

test('list --json prints a JSON array of recipients', async () => {
  const h = harness();
  assert.equal(await h.run('list', '--json'), 0);
  assert.deepEqual(JSON.parse(h.stdout()), []);
  await h.run('add', '1001', '--service', 'T', '--channel', 'PJSIP/1001', '--name', 'Ann "A" Smith');
  await h.run('add', '1000', '--service', 'N', '--quiet', '00:00-06:00');
  assert.equal(await h.run('list', '--json'), 0);
  const parsed = JSON.parse(h.stdout()) as Recipient[];
  assert.deepEqual(
    parsed,
    h.peek((d) => d.list()),
  );
  assert.equal(parsed.length, 2);
  assert.equal(parsed[1]!.name, 'Ann "A" Smith');
});

test('import: good rows imported, each bad row reported with its line, exit 1', async () => {
  const h = harness();
  await h.run('add', '1000', '--service', 'S', '--channel', 'DAHDI/1', '--name', 'Ann');
  const file = path.join(h.tmp, 'PBXNumbers.csv');
  fs.writeFileSync(file, 'Account,Message,Extension\r\n1000,t,SIP/1000\r\n1001,S,SIP/1001\r\nabc,S,SIP/1\r\n1002,Z,SIP/1002\r\n');
  assert.equal(await h.run('import', file), 1);
  assert.match(h.stdout(), /1 added, 1 updated, 2 rows with errors/);
  const errLines = h.stderr().trimEnd().split('\n');
  assert.equal(errLines.length, 2);
  assert.match(errLines[0]!, /^sms-router users: .*PBXNumbers\.csv: line 4: invalid number "abc"/);
  assert.match(errLines[1]!, /line 5: unknown service letter "Z"/);
  assert.deepEqual(
    h.peek((d) => d.list().map((r) => [r.number, r.service, r.channel, r.name])),
    [
      ['1000', 'T', 'SIP/1000', 'Ann'],
      ['1001', 'S', 'SIP/1001', ''],
    ],
  );
  assert.equal(h.closes(), h.opens());
});

test('import of a clean file exits 0; a second import only updates', async () => {
  const h = harness();
  const file = path.join(h.tmp, 'dir.csv');
  fs.writeFileSync(file, 'number;service;channel;name\n1;N;;One\n2;C;;Two\n');
  assert.equal(await h.run('import', file), 0, h.stderr());
  assert.match(h.stdout(), /2 added, 0 updated\n$/);
  assert.equal(h.stderr(), '');
  assert.equal(await h.run('import', file), 0);
  assert.match(h.stdout(), /0 added, 2 updated/);
});

test('import: unreadable, non-UTF-8 and headerless files', async () => {
  const h = harness();
  const missing = path.join(h.tmp, 'nope.csv');
  assert.equal(await h.run('import', missing), 1);
  assertOneErrorLine(h.stderr(), /cannot read .*nope\.csv/);

  const latin2 = path.join(h.tmp, 'latin2.csv');
  fs.writeFileSync(latin2, Buffer.from([...Buffer.from('number,service,channel,name\n1,N,,'), 0xb3, 0x0a]));
  assert.equal(await h.run('import', latin2), 1);
  assertOneErrorLine(h.stderr(), /not UTF-8/);

  const headerless = path.join(h.tmp, 'headerless.csv');
  fs.writeFileSync(headerless, '1000,S,SIP/1000\n');
  assert.equal(await h.run('import', headerless), 1);
  assertOneErrorLine(h.stderr(), /line 1: unrecognised header.*Account,Message,Extension/);
  // Nothing to import, so the database was not even opened.
  assert.equal(h.opens(), 0);
});

test('--config is accepted anywhere and passed to openDirectory', async () => {
  const h = harness();
  assert.equal(await h.run('--config', '/etc/a.toml', 'list'), 0);
  assert.equal(await h.run('list', '--config=/etc/b.toml', '--json'), 0);
  assert.equal(await h.run('add', '1', '--config', 'c.toml', '--service', 'N'), 0);
  assert.equal(await h.run('remove', '1', '--config', 'd.toml'), 0);
  assert.equal(await h.run('list'), 0);
  assert.deepEqual(h.configs, ['/etc/a.toml', '/etc/b.toml', 'c.toml', 'd.toml', undefined]);
  assert.equal(h.closes(), h.opens());
});

test('usage errors exit 2 with one line and never open the directory', async () => {
  const h = harness();
  const cases: [string[], RegExp][] = [
    [[], /missing subcommand/],
    [['frobnicate'], /unknown subcommand "frobnicate"/],
    [['list', 'extra'], /list takes no arguments/],
    [['remove'], /remove takes NUMBER, got none/],
    [['remove', '1', '2'], /remove takes NUMBER/],
    [['import'], /import takes FILE/],
    [['remove', '1', '--json'], /remove does not take --json/],
    [['list', '--service', 'S'], /list does not take --service/],
    [['add', '1'], /add needs --service/],
    [['set', '1'], /set needs at least one of/],
    [['add', '1', '--bogus', 'x', '--service', 'N'], /bogus/],
    [['add', '1', '--service'], /service/],
    [['list', '--json=yes'], /json/],
    [['list', '--config', 'a', '--config', 'b'], /--config given more than once/],
  ];
  for (const [args, pattern] of cases) {
    assert.equal(await h.run(...args), 2, JSON.stringify(args));
    assertOneErrorLine(h.stderr(), pattern);
    assert.equal(h.stdout(), '');
  }
  assert.equal(h.opens(), 0);
});

test('--help prints the usage and exits 0', async () => {
  const h = harness();
  assert.equal(await h.run('--help'), 0);
  for (const sub of ['add', 'set', 'remove', 'list', 'import', '--config']) assert.ok(h.stdout().includes(sub), sub);
  assert.equal(await h.run('list', '-h'), 0);
  assert.equal(h.opens(), 0);
});

test('a directory that cannot be opened is one error line, exit 1', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runUsersCommand(['list'], { stdout: (s) => out.push(s), stderr: (s) => err.push(s) }, (config) => {
    throw new DatabaseError(`cannot open database /nowhere/db for ${config}: SQLITE_CANTOPEN`);
  });
  assert.equal(code, 1);
  assert.deepEqual(out, []);
  assertOneErrorLine(err.join(''), /cannot open database \/nowhere\/db/);
});
