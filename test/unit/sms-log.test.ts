import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSmsLogLine, splitLogLine, SmsLogFollower, type FollowPosition, type SmsLogEntry } from '../../src/asterisk/sms-log.js';
import { DeliveryMatcher, type QueuedSms } from '../../src/asterisk/sms-log-match.js';
import { appLogText, decodeSmsFile } from '../../src/spool/sms-file.js';

const FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/', import.meta.url));
const LOG = fs.readFileSync(FIXTURES + 'sms_app_log.txt');
const QUEUE = '48600111222';
const OA = '447700900123';

/** The fixture's lines as bytes (it is not UTF-8: never go through a UTF-8 string). */
function fixtureLines(): Buffer[] {
  const lines: Buffer[] = [];
  for (let start = 0; start < LOG.length; ) {
    const nl = LOG.indexOf(0x0a, start);
    assert.ok(nl >= 0, 'the fixture ends with a newline');
    lines.push(LOG.subarray(start, nl));
    start = nl + 1;
  }
  return lines;
}

function parsed(line: Buffer): SmsLogEntry {
  const entry = parseSmsLogLine(line);
  assert.ok(entry, `parses: ${line.toString('latin1')}`);
  return entry;
}

const fixtureEntries = (): SmsLogEntry[] => fixtureLines().map(parsed);
const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');

/** A log line as sms_log() writes it, around text bytes. */
function logLine(head: string, text: Buffer): Buffer {
  return Buffer.concat([latin1(`2026-11-22T05:00:00 ${head} `), text]);
}

function mttxText(name: string): string {
  const r = decodeSmsFile(fs.readFileSync(FIXTURES + 'mttx/' + name), { requireDa: false });
  assert.ok(r.ok);
  return r.message.text;
}

// ------------------------------------------------------------------ parser

test('every line of the real app_sms log parses, and its fields rebuild the line byte for byte', () => {
  const lines = fixtureLines();
  assert.ok(lines.length > 50);
  for (const line of lines) {
    const e = parsed(line);
    const mr = e.mr === undefined ? '' : e.mr.toString(16).toUpperCase().padStart(2, '0');
    const head = `${e.time} ${e.status}${e.direction}${e.role}${mr} ${e.queue} ${e.oa ?? '-'} ${e.da ?? '-'} `;
    assert.deepEqual(Buffer.concat([latin1(head), e.text]), line);
    assert.deepEqual(e.raw, line);
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    assert.notEqual(e.oa, '-');
    assert.notEqual(e.da, '-');
  }
});

test('fields: status, direction, role, mr in hex, queue, "-" addresses', () => {
  const entries = fixtureEntries();
  // Phone-side lines (YIS/YOM pairs from the phone) carry mr 00..17 hex in order, per pair.
  const mrs = entries.filter((e) => e.direction === 'I' && e.role === 'S').map((e) => e.mr);
  const upToRestart = mrs.slice(0, mrs.lastIndexOf(0));
  assert.deepEqual(upToRestart, upToRestart.map((_, i) => i));
  assert.ok(upToRestart.length > 16, 'mr beyond 0x0F is read as hex');

  const first = entries[0]!;
  assert.equal(first.status, 'Y');
  assert.equal(first.direction, 'I');
  assert.equal(first.role, 'S');
  assert.equal(first.queue, QUEUE);
  assert.equal(first.oa, QUEUE);
  assert.equal(first.da, OA);
  const yom = entries[1]!;
  assert.equal(yom.direction, 'O');
  assert.equal(yom.role, 'M');
  assert.equal(yom.oa, undefined);
  assert.equal(yom.da, OA);

  const refused = entries.filter((e) => e.status === 'N');
  assert.equal(refused.length, 2);
  assert.ok(refused.every((e) => e.mr === 0x0e));

  const yos = entries.filter((e) => e.direction === 'O' && e.role === 'S');
  assert.equal(yos.length, 2);
  for (const e of yos) {
    assert.equal(e.status, 'Y');
    assert.equal(e.mr, undefined, 'no mr: nothing after the role letter');
    assert.equal(e.queue, QUEUE);
    assert.equal(e.oa, OA);
    assert.equal(e.da, undefined);
  }
  const labphone = entries.filter((e) => e.queue === 'labphone');
  assert.ok(labphone.length >= 2 && labphone.every((e) => e.role === 'M' && e.direction === 'I'));
});

test('text bytes are app_sms low bytes: Polish, newline, backslash, euro', () => {
  const entries = fixtureEntries();
  const byMr = (mr: number): SmsLogEntry => entries.find((e) => e.role === 'S' && e.direction === 'I' && e.mr === mr)!;
  assert.deepEqual(byMr(1).text, appLogText('First line\nSecond line'));
  assert.deepEqual(byMr(3).text, appLogText('GSM ext: € ^ { } [ ] ~ \\ | end'));
  assert.deepEqual(byMr(5).text, appLogText('Zażółć gęślą jaźń. ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż'));
  assert.ok(byMr(5).text.includes(latin1('Za|\xf3B\x07')), 'ż is |, ó is 0xF3, ł is B, ć is 0x07');
  assert.ok(byMr(1).text.includes(latin1('line\\nSecond')));
});

test('anything that is not a log line gives undefined, never an exception', () => {
  const bad = [
    '',
    'hello',
    '2026-11-22T04:17:17',
    '2026-11-22T04:17:17 XOS q 1 - text',
    '2026-11-22T04:17:17 YXS q 1 - text',
    '2026-11-22T04:17:17 YOX q 1 - text',
    '2026-11-22T04:17:17 YOS0 q 1 - text',
    '2026-11-22T04:17:17 YOSzz q 1 - text',
    '2026-11-22 04:17:17 YOS q 1 - text',
    '2026-11-22T04:17:17 YOS q 1',
    ' 2026-11-22T04:17:17 YOS q 1 - text',
  ];
  for (const s of bad) assert.equal(parseSmsLogLine(latin1(s)), undefined, s);
  assert.equal(parseSmsLogLine(Buffer.alloc(100_000, 0xbf)), undefined);
  const empty = parseSmsLogLine(latin1('2026-11-22T04:17:17 ?OS q 1 - '));
  assert.equal(empty?.status, '?');
  assert.equal(empty?.text.length, 0);
});

test('raw CR bytes (č is 0x0D) stay in the text; a 0x00-cut line glued to the next is split again', () => {
  const cr = parsed(logLine(`YOS ${QUEUE} ${OA} -`, appLogText('čas')));
  assert.deepEqual(cr.text, latin1('\x0das'));

  // 一 (U+4E00) has low byte 0: strlen() ends the write there, without '\n'.
  const cut = logLine(`YOS ${QUEUE} ${OA} -`, latin1('ok '));
  const next = logLine(`YIS01 ${QUEUE} ${QUEUE} ${OA}`, latin1('next one'));
  const parts = splitLogLine(Buffer.concat([cut, next]));
  assert.deepEqual(parts, [cut, next]);
  assert.deepEqual(splitLogLine(next), [next]);
  assert.deepEqual(splitLogLine(latin1('garbage')), [latin1('garbage')]);
});

// ------------------------------------------------------------------ matcher

let nextId = 1;
function queued(text: string, more: Partial<QueuedSms> = {}): QueuedSms {
  return { id: nextId++, part: 1, queue: QUEUE, oa: OA, da: undefined, logText: appLogText(text), ...more };
}

test('the two real YOS lines match the real mttx files we wrote', () => {
  const yos = fixtureEntries().filter((e) => e.role === 'S' && e.direction === 'O');
  const m = new DeliveryMatcher();
  const plain = queued(mttxText('01_mt_plain.mttx'));
  const polish = queued(mttxText('02_mt_polish_ucs2_via_smsq.mttx'));
  m.add(plain);
  m.add(polish);
  assert.deepEqual(m.match(yos[1]!), { sms: polish, acknowledged: true });
  assert.deepEqual(m.match(yos[0]!), { sms: plain, acknowledged: true });
  assert.equal(m.size, 0);
});

test('Polish text and a text with a newline match through appLogText, on the real logged bytes', () => {
  const entries = fixtureEntries();
  const textOf = (mr: number): Buffer => entries.find((e) => e.role === 'S' && e.direction === 'I' && e.mr === mr)!.text;
  const m = new DeliveryMatcher();
  const polish = queued('Zażółć gęślą jaźń. ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż');
  const newline = queued('First line\nSecond line');
  m.add(newline);
  m.add(polish);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} -`, textOf(5))))?.sms, polish);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} -`, textOf(1))))?.sms, newline);
});

test('repeats of one text are matched oldest first; NOS and ?OS are not acknowledged', () => {
  const m = new DeliveryMatcher();
  const a = queued('same');
  const b = queued('same');
  const c = queued('same');
  m.add(a);
  m.add(b);
  m.add(c);
  const line = (status: string): SmsLogEntry => parsed(logLine(`${status}OS ${QUEUE} ${OA} -`, latin1('same')));
  assert.deepEqual(m.match(line('N')), { sms: a, acknowledged: false });
  assert.deepEqual(m.match(line('Y')), { sms: b, acknowledged: true });
  assert.deepEqual(m.match(line('?')), { sms: c, acknowledged: false });
  assert.equal(m.match(line('Y')), undefined);
});

test('entries of other roles and directions, queues, senders or texts are ignored and remove nothing', () => {
  const m = new DeliveryMatcher();
  const s = queued('hello');
  m.add(s);
  for (const head of [`YOM ${QUEUE} ${OA} -`, `YIS ${QUEUE} ${OA} -`, `YIM ${QUEUE} ${OA} -`, `YOS other ${OA} -`, `YOS ${QUEUE} 999 -`]) {
    assert.equal(m.match(parsed(logLine(head, latin1('hello')))), undefined, head);
  }
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} -`, latin1('hello!')))), undefined);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} 123`, latin1('hello')))), undefined, 'da differs');
  assert.equal(m.size, 1);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} -`, latin1('hello'))))?.sms, s);
});

test('da is compared when the entry has one; oa is compared as app_sms logs it', () => {
  const m = new DeliveryMatcher();
  const withDa = queued('x', { da: '123' });
  const plusOa = queued('y', { oa: '+44 7700 900123' });
  m.add(withDa);
  m.add(plusOa);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} 123`, latin1('x'))))?.sms, withDa);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} +${OA} -`, latin1('y'))))?.sms, plusOa);
});

test('a text cut by a 0x00 or 0x0A low byte still matches its part', () => {
  const m = new DeliveryMatcher();
  const zero = queued('ok 一 rest'); // U+4E00: low byte 0x00
  const lf = queued('go 上 up'); // U+4E0A: low byte 0x0A, a raw newline
  m.add(zero);
  m.add(lf);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} -`, latin1('go '))))?.sms, lf);
  assert.equal(m.match(parsed(logLine(`YOS ${QUEUE} ${OA} -`, latin1('ok '))))?.sms, zero);
});

test('the n option (udl=N) matches on length only when exactly one part has it', () => {
  const m = new DeliveryMatcher();
  const five = queued('a\\b\nc'); // 5 characters, 7 log bytes
  const four = queued('abcd');
  const otherFour = queued('wxyz');
  m.add(five);
  m.add(four);
  m.add(otherFour);
  const udl = (n: number): SmsLogEntry => parsed(logLine(`YOS ${QUEUE} ${OA} -`, latin1(`udl=${n}`)));
  assert.equal(m.match(udl(4)), undefined, 'two parts are 4 long');
  assert.deepEqual(m.match(udl(5)), { sms: five, acknowledged: true });
  assert.equal(m.match(udl(9)), undefined);
  m.remove(otherFour.id);
  assert.equal(m.match(udl(4))?.sms, four);
  // A real text "udl=5" matches by text first; an explicit udl wins over the derived one.
  const literal = queued('udl=5');
  const given = queued('Ŝ', { udl: 5 });
  m.add(given);
  m.add(literal);
  assert.equal(m.match(udl(5))?.sms, literal);
  assert.equal(m.match(udl(5))?.sms, given);
});

test('remove, pendingFor and size', () => {
  const m = new DeliveryMatcher();
  const p1 = queued('part one', { id: 900, part: 1 });
  const p2 = queued('part two', { id: 900, part: 2 });
  const other = queued('other', { queue: 'q2' });
  m.add(p1);
  m.add(other);
  m.add(p2);
  assert.equal(m.size, 3);
  assert.deepEqual(m.pendingFor(QUEUE), [p1, p2]);
  assert.deepEqual(m.pendingFor('q2'), [other]);
  assert.deepEqual(m.pendingFor('none'), []);
  m.remove(900);
  assert.equal(m.size, 1);
  assert.deepEqual(m.pendingFor(QUEUE), []);
  m.remove(12345);
  assert.equal(m.size, 1);
});

// ------------------------------------------------------------------ follower

class MemoryStore {
  position: FollowPosition | undefined;
  saves = 0;
  load(): FollowPosition | undefined {
    return this.position && { ...this.position };
  }
  save(p: FollowPosition): void {
    this.position = { ...p };
    this.saves++;
  }
}

interface Harness {
  dir: string;
  file: string;
  store: MemoryStore;
  seen: string[];
  warnings: string[];
  follower: () => SmsLogFollower;
}

function harness(t: { after(fn: () => void): void }): Harness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sms-log-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const h: Harness = {
    dir,
    file: path.join(dir, 'sms'),
    store: new MemoryStore(),
    seen: [],
    warnings: [],
    follower: () =>
      new SmsLogFollower({
        file: h.file,
        store: h.store,
        onEntries: (entries) => h.seen.push(...entries.map((e) => e.text.toString('latin1'))),
        log: { warn: (_o, msg) => void h.warnings.push(msg) },
      }),
  };
  return h;
}

const line = (text: string): Buffer => Buffer.concat([logLine(`YOS ${QUEUE} ${OA} -`, latin1(text)), latin1('\n')]);
const append = (file: string, ...texts: string[]): void => fs.appendFileSync(file, Buffer.concat(texts.map(line)));

test('follower: appended lines are delivered once, and the position is saved after delivery', (t) => {
  const h = harness(t);
  append(h.file, 'one', 'two');
  const f = h.follower();
  assert.equal(f.readNew(), 2);
  assert.equal(f.readNew(), 0);
  append(h.file, 'three');
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['one', 'two', 'three']);
  assert.deepEqual(h.store.position, { inode: fs.statSync(h.file).ino, offset: fs.statSync(h.file).size });
});

test('follower: a partial last line waits for its newline', (t) => {
  const h = harness(t);
  const whole = line('split in two');
  fs.writeFileSync(h.file, whole.subarray(0, 30));
  const f = h.follower();
  assert.equal(f.readNew(), 0);
  fs.appendFileSync(h.file, whole.subarray(30, whole.length - 1));
  assert.equal(f.readNew(), 0);
  fs.appendFileSync(h.file, whole.subarray(whole.length - 1));
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['split in two']);
});

test('follower: a restart resumes at the stored position; a failed delivery is given again', (t) => {
  const h = harness(t);
  append(h.file, 'a', 'b');
  assert.equal(h.follower().readNew(), 2);
  const again = h.follower();
  assert.equal(again.readNew(), 0);
  append(h.file, 'c');
  assert.equal(again.readNew(), 1);
  assert.deepEqual(h.seen, ['a', 'b', 'c']);

  append(h.file, 'd');
  let fail = true;
  const flaky = new SmsLogFollower({
    file: h.file,
    store: h.store,
    onEntries: (entries) => {
      if (fail) throw new Error('database busy');
      h.seen.push(...entries.map((e) => e.text.toString('latin1')));
    },
  });
  assert.throws(() => flaky.readNew(), /database busy/);
  fail = false;
  assert.equal(flaky.readNew(), 1);
  assert.deepEqual(h.seen, ['a', 'b', 'c', 'd']);
});

test('follower: rename rotation finishes sms.1 before the new sms, losing nothing', (t) => {
  const h = harness(t);
  append(h.file, 'before');
  const f = h.follower();
  assert.equal(f.readNew(), 1);
  append(h.file, 'just before rotation 1', 'just before rotation 2');
  fs.renameSync(h.file, h.file + '.1');
  append(h.file, 'after rotation');
  assert.equal(f.readNew(), 3);
  assert.deepEqual(h.seen, ['before', 'just before rotation 1', 'just before rotation 2', 'after rotation']);
  assert.equal(h.store.position?.inode, fs.statSync(h.file).ino);

  // A restart right after the rotation reads nothing twice.
  const restarted = h.follower();
  assert.equal(restarted.readNew(), 0);
  append(h.file, 'later');
  assert.equal(restarted.readNew(), 1);
  assert.equal(h.seen.length, 5);
  assert.deepEqual(h.warnings, []);
});

test('follower: rotation without a new file (app_sms creates it on its next line)', (t) => {
  const h = harness(t);
  const f = h.follower();
  append(h.file, 'x');
  assert.equal(f.readNew(), 1);
  append(h.file, 'y');
  fs.renameSync(h.file, h.file + '.1');
  assert.equal(f.readNew(), 1);
  assert.equal(f.readNew(), 0);
  append(h.file, 'z');
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['x', 'y', 'z']);
});

test('follower: a rotated file ending in a 0x00-cut line gives that line too', (t) => {
  const h = harness(t);
  const f = h.follower();
  append(h.file, 'first');
  assert.equal(f.readNew(), 1);
  fs.appendFileSync(h.file, logLine(`YOS ${QUEUE} ${OA} -`, latin1('cut ')));
  assert.equal(f.readNew(), 0, 'waits: it may still be written');
  fs.renameSync(h.file, h.file + '.1');
  append(h.file, 'new file');
  assert.equal(f.readNew(), 2);
  assert.deepEqual(h.seen, ['first', 'cut ', 'new file']);
});

test('follower: a 0x00-cut line glued to the next gives both entries', (t) => {
  const h = harness(t);
  fs.writeFileSync(h.file, Buffer.concat([logLine(`YOS ${QUEUE} ${OA} -`, latin1('ok ')), line('next')]));
  assert.equal(h.follower().readNew(), 2);
  assert.deepEqual(h.seen, ['ok ', 'next']);
});

test('follower: copytruncate (same inode, shorter) starts again at 0', (t) => {
  const h = harness(t);
  const f = h.follower();
  append(h.file, 'old 1', 'old 2', 'old 3');
  assert.equal(f.readNew(), 3);
  const inode = fs.statSync(h.file).ino;
  fs.truncateSync(h.file, 0);
  append(h.file, 'fresh');
  assert.equal(fs.statSync(h.file).ino, inode);
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['old 1', 'old 2', 'old 3', 'fresh']);
  assert.equal(h.warnings.length, 1);
});

test('follower: a missing file is fine until it appears', (t) => {
  const h = harness(t);
  const f = h.follower();
  assert.equal(f.readNew(), 0);
  assert.equal(f.readNew(), 0);
  assert.equal(h.store.position, undefined);
  append(h.file, 'hello');
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['hello']);
});

test('follower: a log replaced with no .1 warns once and reads the new file', (t) => {
  const h = harness(t);
  const f = h.follower();
  append(h.file, 'a');
  assert.equal(f.readNew(), 1);
  fs.rmSync(h.file);
  assert.equal(f.readNew(), 0);
  assert.equal(f.readNew(), 0);
  assert.equal(h.warnings.length, 1);
  append(h.file, 'b');
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['a', 'b']);
});

test('follower: reads in chunks across 64 KiB boundaries and skips an absurdly long line', (t) => {
  const h = harness(t);
  const texts = Array.from({ length: 1500 }, (_, i) => `message number ${i} `.padEnd(80, '.'));
  append(h.file, ...texts.slice(0, 700));
  fs.appendFileSync(h.file, Buffer.alloc(200 * 1024, 0x41));
  fs.appendFileSync(h.file, latin1('\n'));
  append(h.file, ...texts.slice(700));
  const f = h.follower();
  assert.equal(f.readNew(), 1500);
  assert.deepEqual(h.seen, texts);
  assert.ok(h.store.saves > 2, 'saved after each chunk');
  assert.deepEqual(h.warnings, [`skipped a line longer than ${64 * 1024} bytes in the app_sms log`]);
});

test('follower: an over-long line still being written is skipped up to its newline, across calls', (t) => {
  const h = harness(t);
  const f = h.follower();
  fs.writeFileSync(h.file, Buffer.alloc(100 * 1024, 0x42));
  assert.equal(f.readNew(), 0);
  fs.appendFileSync(h.file, Buffer.concat([Buffer.alloc(1000, 0x42), latin1('\n'), line('after')]));
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['after']);
  assert.equal(h.warnings.length, 1);
});

test('follower: a failed delivery right after an over-long line neither loses nor misreads a line', (t) => {
  const h = harness(t);
  fs.writeFileSync(h.file, Buffer.concat([line('before'), Buffer.alloc(100 * 1024, 0x42)]));
  let fail = false;
  const f = new SmsLogFollower({
    file: h.file,
    store: h.store,
    onEntries: (entries) => {
      if (fail) throw new Error('database busy');
      h.seen.push(...entries.map((e) => e.text.toString('latin1')));
    },
    log: { warn: (_o, msg) => void h.warnings.push(msg) },
  });
  assert.equal(f.readNew(), 1);
  fs.appendFileSync(h.file, Buffer.concat([Buffer.alloc(1000, 0x42), latin1('\n'), line('after')]));
  fail = true;
  assert.throws(() => f.readNew(), /database busy/);
  fail = false;
  assert.equal(f.readNew(), 1);
  assert.deepEqual(h.seen, ['before', 'after']);
  assert.ok(h.warnings.length > 0 && h.warnings.every((w) => w.startsWith('skipped a line longer')), h.warnings.join('; '));
});

test('follower: start() notices appends by itself, before and after the file exists', async (t) => {
  const h = harness(t);
  const f = new SmsLogFollower({
    file: h.file,
    store: h.store,
    pollMs: 50,
    onEntries: (entries) => h.seen.push(...entries.map((e) => e.text.toString('latin1'))),
  });
  f.start();
  t.after(() => f.stop());
  const until = async (cond: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out; seen ${JSON.stringify(h.seen)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  append(h.file, 'first');
  await until(() => h.seen.length === 1);
  append(h.file, 'second');
  await until(() => h.seen.length === 2);
  f.stop();
  assert.deepEqual(h.seen, ['first', 'second']);
});

test('of two parts with the same text, the one app_sms has taken (its file gone) is credited', () => {
  const m = new DeliveryMatcher();
  const waiting = queued('Cannot deliver SMS to 7001.');
  const sent = queued('Cannot deliver SMS to 7001.');
  m.add(waiting);
  m.add(sent);
  const line = parsed(logLine(`YOS ${QUEUE} ${OA} -`, latin1('Cannot deliver SMS to 7001.')));
  assert.equal(m.match(line, (s) => s === sent)?.sms, sent);
  // The same line again (read twice after a crash): the part still waiting is not credited.
  assert.equal(m.match(line, (s) => s === sent), undefined);
  // Without the file test, oldest first.
  assert.equal(m.match(line)?.sms, waiting);
});

test('with the file test, a `udl=N` line credits only a part app_sms has taken', () => {
  const m = new DeliveryMatcher();
  const waiting = queued('12345');
  m.add(waiting);
  const line = parsed(logLine(`YOS ${QUEUE} ${OA} -`, latin1('udl=5')));
  assert.equal(m.match(line, () => false), undefined);
  assert.equal(m.match(line, () => true)?.sms, waiting);
});
