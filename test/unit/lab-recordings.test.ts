/**
 * The fakes against what a real Asterisk 20 did (issue 15). Everything under
 * spool-fixtures/lab/ was recorded on the lab (../shared/asterisk-lab, branch
 * 20 @ 516d2c60ac) by `npm run test:asterisk -- --record DIR`, or by hand
 * where its README says so. A fake is only as good as what it was recorded
 * from: each test here holds a fake (or our reading of Asterisk) to one of
 * those recordings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { phoneReceives, appSmsLogLine, readSmsLog } from '../fakes/app-sms.js';
import { answerCallCommand, inboundMessageAnswers, type CallChannelState } from '../fakes/asterisk.js';
import { decodeSmsFile, encodeSmsFile, appLogText, textAppSmsSends } from '../../src/spool/sms-file.js';
import { parseSmsLogLine } from '../../src/asterisk/sms-log.js';
import { DeliveryMatcher } from '../../src/asterisk/sms-log-match.js';
import { parseArchivedCall } from '../../src/asterisk/outgoing-done.js';

const LAB = fileURLToPath(new URL('../../../spool-fixtures/lab/', import.meta.url));
const read = (...p: string[]) => readFileSync(path.join(LAB, ...p));
const files = (...p: string[]) => readdirSync(path.join(LAB, ...p)).sort();


/** The lab run's busy and unanswered lines: their files were written, never taken. */
const UNREACHABLE = ['2100', '2200'];

const mtrxText = (bytes: Buffer) => {
  const r = decodeSmsFile(bytes, { requireDa: false });
  assert.ok(r.ok);
  return r.message;
};

test('ud= as the old writer wrote it: the fake app_sms mangles it exactly as the real phone received it, and logs the same line', () => {
  const fake = phoneReceives(read('ud-equals', 'old_ud_equals_utf8.mttx'));
  assert.ok(fake.ok);
  const real = mtrxText(read('ud-equals', 'old_ud_equals_utf8.mtrx'));
  assert.equal(fake.message.text, real.text);
  assert.equal(real.text, 'Real FSK loop zaż\u00bcó\u00b3ł\u0082ć\u0087 €\u0082\u00ac');
  const [line] = readSmsLog(read('ud-equals', 'old_ud_equals_utf8.app_sms.log')).filter((e) => e.role === 'S');
  assert.ok(line);
  assert.deepEqual(line.text, appLogText(fake.message.text), 'the YOS line holds the mangled text, in its low-byte form');
  assert.notDeepEqual(line.text, appLogText('Real FSK loop zażółć €'), 'so matching the queued text never sees it acknowledged');
});

test('ud## as smsq writes it: the real phone received the text exactly, and so does the fake', () => {
  const mttx = read('ud-equals', 'new_ud_hash_hash.mttx');
  const real = mtrxText(read('ud-equals', 'new_ud_hash_hash.mtrx'));
  const fake = phoneReceives(mttx);
  assert.ok(fake.ok);
  assert.equal(real.text, 'Real FSK loop zażółć €');
  assert.equal(fake.message.text, real.text);
  // What our writer produces for that text today is that file's text line.
  assert.equal(encodeSmsFile({ oa: '447700900123', da: '2001', text: real.text, dcs: 8 }, 'smsq').toString(), mttx.toString());
});

test("every mttx file the daemon wrote in the lab run reaches the fake phone as the real phone got it, and app_sms's real YOS lines match the fake's", () => {
  const all = files('run', 'mttx').map((name) => {
    const r = phoneReceives(read('run', 'mttx', name));
    assert.ok(r.ok, name);
    return { name, ...r.message };
  });
  // The busy (2100) and the unanswered (2200) line never took theirs.
  const mttx = all.filter((m) => !UNREACHABLE.some((q) => m.name.startsWith(`${q}.`)));
  assert.equal(all.length - mttx.length, 2);
  const received = files('run', 'mtrx').map((name) => ({ name, ...mtrxText(read('run', 'mtrx', name)) }));
  assert.ok(mttx.length >= 15 && received.length >= 15, 'the run sent GSM-7, 8-bit, UCS-2, long messages and notices');
  // Each file the daemon wrote is one the phone received, with the same text and sender, and the other way round.
  for (const m of mttx) assert.ok(received.some((r) => r.text === m.text && r.oa === m.oa), `${m.name}: ${JSON.stringify(m.text)} reached the phone as written`);
  for (const r of received) assert.ok(mttx.some((m) => m.text === r.text && m.oa === r.oa), `${r.name} came from one of our files`);

  const real = readSmsLog(read('run', 'app_sms.log')).filter((e) => e.role === 'S' && e.direction === 'O');
  assert.equal(real.length, mttx.length, 'one YOS line per file');
  for (const m of mttx) {
    const queue = m.name.slice(0, m.name.indexOf('.'));
    const fakeLine = parseSmsLogLine(appSmsLogLine('2026-12-08T01:39:08', 'Y', queue, m.oa, m.da, m.text).subarray(0, -1))!;
    assert.ok(
      real.some((e) => e.status === 'Y' && e.queue === queue && e.oa === fakeLine.oa && e.da === fakeLine.da && e.text.equals(fakeLine.text)),
      `${m.name}: the real log has the fake's line`,
    );
  }
});

test("the daemon's log matcher credits every part of the lab run from app_sms's real log lines", () => {
  const matcher = new DeliveryMatcher();
  const names = files('run', 'mttx').filter((name) => !UNREACHABLE.some((q) => name.startsWith(`${q}.`)));
  names.forEach((name, i) => {
    const r = phoneReceives(read('run', 'mttx', name));
    assert.ok(r.ok);
    const queue = name.slice(0, name.indexOf('.'));
    matcher.add({ id: i + 1, part: 1, queue, oa: r.message.oa!, da: r.message.da, logText: appLogText(textAppSmsSends(r.message.text)) });
  });
  let credited = 0;
  for (const e of readSmsLog(read('run', 'app_sms.log'))) {
    const m = matcher.match(e);
    if (m) {
      assert.equal(m.acknowledged, true);
      credited++;
    }
  }
  assert.equal(credited, names.length);
  assert.equal(matcher.size, 0);
});

test('archived call files of the lab run: answered S and F calls Completed, a busy and an unanswered line Expired', () => {
  const status = new Map(files('run', 'calls').map((name) => [name, parseArchivedCall(name, read('run', 'calls', name).toString())?.status]));
  assert.equal(status.get('smsr-S-447700900123-1.call'), 'Completed');
  assert.equal(status.get('smsr-S-2100-7.call'), 'Expired', 'Busy()');
  assert.equal(status.get('smsr-S-2200-12.call'), 'Expired', 'Ringing() + Wait(300) past WaitTime');
  assert.equal(status.get('smsr-F-14-a1.call'), 'Completed', 'the fax went through');
  assert.equal(status.get('smsr-F-15-a1.call'), 'Completed', 'answered without a fax: still Completed (SPEC §1)');
});

/** A recorded FastAGI session: the environment, then each command with the lines Asterisk sent until the next one. */
function session(name: string): { env: Map<string, string>; exchanges: { command: string; reply: string[] }[] } {
  const chunks = read('run', name)
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { dir: string; b64: string });
  const env = new Map<string, string>();
  const exchanges: { command: string; reply: string[] }[] = [];
  let inEnv = true;
  let pending = '';
  for (const c of chunks) {
    const text = Buffer.from(c.b64, 'base64').toString('utf8');
    if (c.dir === 'to-asterisk') {
      for (const line of text.split('\n').filter(Boolean)) exchanges.push({ command: line, reply: [] });
      continue;
    }
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (inEnv) {
        if (line === '') inEnv = false;
        else env.set(line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2));
      } else exchanges.at(-1)!.reply.push(line);
    }
  }
  return { env, exchanges };
}

/** Command words as Asterisk reads them (the daemon quotes every argument). */
const argv = (command: string) => [...command.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);

for (const [name, pages] of [
  ['fastagi_sendfax.jsonl', 1],
  ['fastagi_playback.jsonl', 0],
] as const) {
  test(`the fake Asterisk answers the daemon's commands as the real one did (${name})`, () => {
    const { env, exchanges } = session(name);
    assert.match(env.get('agi_request') ?? '', /^agi:\/\/127\.0\.0\.1:4573\/(fax|voice)\/\d+$/);
    const channel: CallChannelState = { executed: false, dead: false };
    const world = { exists: () => true, faxPages: () => pages };
    let hangups = { real: 0, fake: 0 };
    for (const { command, reply } of exchanges) {
      const fake = answerCallCommand(argv(command), channel, world);
      assert.ok(Array.isArray(fake));
      // The unsolicited HANGUP comes when the far end hangs up: the real one sent it a moment
      // after EXEC's reply (before the next reply), the fake with EXEC's reply. Either is Asterisk.
      const strip = (lines: readonly string[]) => lines.filter((l) => l !== 'HANGUP');
      hangups = { real: hangups.real + reply.length - strip(reply).length, fake: hangups.fake + fake.length - strip(fake as string[]).length };
      assert.deepEqual(strip(fake as string[]), strip(reply), command);
    }
    assert.equal(hangups.fake, hangups.real, 'as many unsolicited HANGUPs');
  });
}

test('the fake Asterisk hands an inbound SIP MESSAGE over as the real one did (fastagi_message.jsonl)', () => {
  const { env, exchanges } = session('fastagi_message.jsonl');
  assert.equal(env.get('agi_channel'), 'Message/ast_msg_queue');
  assert.equal(env.get('agi_callerid'), 'unknown');
  const body = Buffer.from(/\((.*)\)/.exec(exchanges.find((e) => e.command.includes('BASE64_ENCODE'))!.reply[0]!)![1]!, 'base64').toString('utf8');
  const fake = inboundMessageAnswers({ from: '1001', to: env.get('agi_extension')!, body });
  for (const { command, reply } of exchanges.filter((e) => e.command.startsWith('GET FULL VARIABLE'))) {
    assert.deepEqual(fake[command], reply, command);
  }
  assert.equal(body, 'l15 Cześć z softphone: żółw €');
});
