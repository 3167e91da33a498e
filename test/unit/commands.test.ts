/** The command service (service letter C): parsing, built-ins, configured programs, rate limit. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseCommand } from '../../src/commands/parse.js';
import { RateLimiter } from '../../src/commands/rate-limit.js';
import {
  CommandService,
  DEFAULT_COMMAND_TEXTS,
  fitsOneSms,
  type CommandDeps,
  type CommandProgram,
  type CommandRequest,
  type CommandsConfig,
  type SelfServiceLetter,
} from '../../src/commands/service.js';
import type { Recipient } from '../../src/directory/recipients.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { SmsRouterError } from '../../src/errors.js';
import { openDatabase, type Db } from '../../src/journal/store.js';

// ─── Fixtures ────────────────────────────────────────────────────────────────

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'smsr-commands-'));
const opened: Db[] = [];
after(() => {
  opened.forEach((db) => db.close());
  fs.rmSync(TMP, { recursive: true, force: true });
});

let scriptCount = 0;
/** A `#!/bin/sh` script in the temp dir (run via its shebang; the service itself never uses a shell). */
function script(body: string): string {
  const file = path.join(TMP, `script-${++scriptCount}.sh`);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

function program(p: Partial<CommandProgram> & Pick<CommandProgram, 'keyword' | 'program'>): CommandProgram {
  return {
    name: p.keyword.toLowerCase(),
    numbers: ['*'],
    args: [],
    timeoutMs: 5_000,
    maxOutputBytes: 64 * 1024,
    description: '',
    ...p,
  };
}

function config(c: Partial<CommandsConfig> = {}): CommandsConfig {
  return {
    selfService: true,
    perSenderPerMinute: 1_000, // the rate-limit tests set their own
    builtinNumbers: ['*'],
    replyMaxChars: 160,
    texts: { ...DEFAULT_COMMAND_TEXTS },
    programs: [],
    ...c,
  };
}

interface LogLine {
  level: 'info' | 'warn';
  o: object;
  m: string;
}

const T0 = Date.parse('2025-03-01T12:00:00Z');

function harness(c: Partial<CommandsConfig> = {}, d: Partial<CommandDeps> = {}) {
  const clock = { ms: T0 };
  const logs: LogLine[] = [];
  const serviceCalls: Array<[string, SelfServiceLetter]> = [];
  const deps: CommandDeps = {
    now: () => new Date(clock.ms),
    daemonStartedAt: new Date(T0),
    systemUptimeSeconds: () => 0,
    journalCounts: () => ({ queued: 0, delivered: 0, failedToday: 0 }),
    setSenderService: (n, l) => void serviceCalls.push([n, l]),
    log: {
      info: (o, m) => void logs.push({ level: 'info', o, m }),
      warn: (o, m) => void logs.push({ level: 'warn', o, m }),
    },
    ...d,
  };
  const svc = new CommandService(config(c), deps);
  const send = (text: string, r: Partial<CommandRequest> = {}) =>
    svc.handle({ commandNumber: '2100', sender: '2001', senderEntry: undefined, text, ...r });
  return { svc, send, clock, logs, serviceCalls };
}

function entry(r: Partial<Recipient> = {}): Recipient {
  return { number: '2001', service: 'S', channel: 'DAHDI/1', name: 'Jan', language: null, faxResolution: null, quietHours: null, ...r };
}

// ─── parse ───────────────────────────────────────────────────────────────────

test('parse: first word upper-cased, other words verbatim, any whitespace', () => {
  assert.deepEqual(parseCommand('  weather\tKraków \n  jutro  '), { word: 'WEATHER', args: ['Kraków', 'jutro'], rest: 'Kraków \n  jutro' });
  assert.deepEqual(parseCommand('x ; rm -rf / $(id) `id` "a" \'b\''), {
    word: 'X',
    args: [';', 'rm', '-rf', '/', '$(id)', '`id`', '"a"', "'b'"],
    rest: '; rm -rf / $(id) `id` "a" \'b\'',
  });
  assert.deepEqual(parseCommand('Ping'), { word: 'PING', args: [], rest: '' });
  assert.deepEqual(parseCommand(' \n '), { word: '', args: [], rest: '' });
  // A no-break space separates words too, so it cannot smuggle one inside another.
  assert.deepEqual(parseCommand('help\u00a0status').args, ['status']);
});

// ─── rate limiter ────────────────────────────────────────────────────────────

test('rate limiter: N allowed, one too-many, then silent; fixed window; senders independent', () => {
  const clock = { ms: 1_000 };
  const rl = new RateLimiter({ limit: 3, now: () => clock.ms });
  const seen = Array.from({ length: 6 }, () => {
    clock.ms += 1_000;
    return rl.check('a');
  });
  assert.deepEqual(seen, ['allow', 'allow', 'allow', 'too-many', 'silent', 'silent']);
  assert.equal(rl.check('b'), 'allow');
  // 'a' started at 2 000: its window ends at 62 000 however often it kept sending.
  clock.ms = 61_999;
  assert.equal(rl.check('a'), 'silent');
  clock.ms = 62_000;
  assert.equal(rl.check('a'), 'allow');
});

test('rate limiter: memory stays bounded (stale senders dropped, hard cap)', () => {
  const clock = { ms: 0 };
  const rl = new RateLimiter({ limit: 1, now: () => clock.ms, maxSenders: 100 });
  for (let i = 0; i < 50; i++) rl.check(`s${i}`);
  assert.equal(rl.size, 50);
  clock.ms = 60_000;
  rl.check('late');
  assert.equal(rl.size, 1, 'stale senders are swept');
  for (let i = 0; i < 1_000; i++) rl.check(`flood${i}`);
  assert.ok(rl.size <= 100, `size ${rl.size}`);
  // A clock stepping back does not freeze anyone in a window "from the future".
  clock.ms = 1_000;
  assert.equal(rl.check('flood999'), 'allow');
});

// ─── built-ins ───────────────────────────────────────────────────────────────

test('HELP lists built-ins and this number\'s programs in one SMS', async () => {
  const programs = [
    program({ keyword: 'WEATHER', program: '/bin/true', description: 'forecast for a city: WEATHER <city>' }),
    program({ keyword: 'Bus', program: '/bin/true', numbers: ['2100'], description: 'next buses' }),
    program({ keyword: 'NEWS', program: '/bin/true', numbers: ['2100', '2101'] }),
    program({ keyword: 'LOTTO', program: '/bin/true', numbers: ['2102'] }),
    program({ keyword: 'TIDES', program: '/bin/true' }),
  ];
  const { send } = harness({ programs });
  const r = await send('help');
  assert.equal(r.outcome, 'ok');
  assert.equal(r.command, 'HELP');
  const reply = r.reply ?? '';
  assert.ok(fitsOneSms(reply) && reply.length <= 160, `${reply.length}: ${reply}`);
  const words = new Set(reply.replace(/[.:]/g, ' ').split(/\s+/));
  for (const k of ['HELP', 'PING', 'UPTIME', 'STATUS', 'WHOAMI', 'SERVICE', 'WEATHER', 'BUS', 'NEWS', 'TIDES']) {
    assert.ok(words.has(k), `${k} in ${reply}`);
  }
  assert.ok(!words.has('LOTTO'), 'another number\'s program is not listed');

  assert.match((await send('HELP weather')).reply ?? '', /^WEATHER: forecast for a city/);
  assert.match((await send('help Service')).reply ?? '', /^SERVICE /);
  assert.equal((await send('HELP LOTTO')).reply, DEFAULT_COMMAND_TEXTS.unknown);
});

test('HELP leaves out SERVICE when self-service is off; on a programs-only number it lists the programs', async () => {
  const programs = [program({ keyword: 'WEATHER', program: '/bin/true', numbers: ['2101'] })];
  const { send } = harness({ selfService: false, builtinNumbers: ['2100'], programs });
  const here = (await send('HELP')).reply ?? '';
  assert.ok(!/\bSERVICE\b/.test(here) && /\bSTATUS\b/.test(here), here);
  const there = (await send('HELP', { commandNumber: '2101' })).reply ?? '';
  assert.ok(/\bWEATHER\b/.test(there) && !/\bSTATUS\b/.test(there), there);
  assert.equal((await send('STATUS', { commandNumber: '2101' })).outcome, 'unknown');
});

test('PING and TEST echo the sender and the text, any case', async () => {
  const { send } = harness();
  assert.deepEqual(await send('PING hello  there'), { reply: 'PONG from 2001: hello  there', command: 'PING', outcome: 'ok' });
  assert.equal((await send('test 1 2 3', { sender: '2002' })).reply, 'PONG from 2002: 1 2 3');
  assert.equal((await send('pInG')).reply, 'PONG from 2001');
});

test('UPTIME gives the daemon\'s and the system\'s uptime compactly', async () => {
  const started = T0 - ((2 * 24 + 3) * 3600 + 4 * 60 + 5) * 1000;
  const { send } = harness({}, { daemonStartedAt: new Date(started), systemUptimeSeconds: () => 10 * 86_400 + 3_600 + 30 });
  assert.equal((await send('uptime')).reply, 'sms-router up 2d 3h 4m, system up 10d 1h');
  const fresh = harness({}, { systemUptimeSeconds: () => 42.7 });
  assert.equal((await fresh.send('UPTIME')).reply, 'sms-router up 0s, system up 42s');
});

test('STATUS reports the journal counts', async () => {
  const { send } = harness({}, { journalCounts: () => ({ queued: 3, delivered: 120, failedToday: 1 }) });
  assert.deepEqual(await send('Status'), { reply: 'Queued 3, delivered 120, failed today 1', command: 'STATUS', outcome: 'ok' });
});

test('WHOAMI shows the sender\'s own entry or says it is missing', async () => {
  const { send } = harness();
  assert.equal((await send('whoami', { senderEntry: entry({ service: 'F', name: 'Jan Kowalski' }) })).reply, '2001: service F, Jan Kowalski');
  assert.equal((await send('WHOAMI', { senderEntry: entry({ name: '' }) })).reply, '2001: service S');
  assert.equal((await send('WHOAMI', { sender: '2009' })).reply, '2009: not in the directory');
});

// ─── SERVICE ─────────────────────────────────────────────────────────────────

test('SERVICE F records the letter when self-service is on', async () => {
  const { send, serviceCalls, logs } = harness();
  const r = await send('service f', { senderEntry: entry() });
  assert.deepEqual(r, { reply: 'Your service is now F.', command: 'SERVICE', outcome: 'ok' });
  assert.deepEqual(serviceCalls, [['2001', 'F']]);
  assert.ok(logs.some((l) => l.level === 'info' && l.m.includes('service changed')));
});

test('SERVICE is refused when off, for unknown senders, bad letters, and command numbers', async () => {
  const off = harness({ selfService: false });
  const r = await off.send('SERVICE F', { senderEntry: entry() });
  assert.equal(r.outcome, 'refused');
  assert.match(r.reply ?? '', /not enabled/);
  assert.deepEqual(off.serviceCalls, []);

  const on = harness();
  for (const text of ['SERVICE', 'SERVICE C', 'SERVICE X', 'SERVICE FAX', 'SERVICE F V']) {
    const bad = await on.send(text, { senderEntry: entry() });
    assert.equal(bad.outcome, 'refused', text);
    assert.match(bad.reply ?? '', /S, F, V, T or N/, text);
  }
  const unknown = await on.send('SERVICE F', { sender: '2009' });
  assert.equal(unknown.outcome, 'refused');
  assert.match(unknown.reply ?? '', /^2009 is not in the directory/);
  assert.equal((await on.send('SERVICE S', { senderEntry: entry({ service: 'C' }) })).outcome, 'refused');
  assert.deepEqual(on.serviceCalls, []);
});

test('SERVICE: the directory refusing the letter (no channel) becomes a clear reply; other errors fail', async () => {
  const db = openDatabase(path.join(TMP, 'directory.db'));
  opened.push(db);
  const dir = new RecipientDirectory(db);
  dir.add({ number: '2001', service: 'N', name: 'No line' });
  const { send, logs } = harness({}, { setSenderService: (n, l) => void dir.set(n, { service: l }) });
  const r = await send('SERVICE F', { senderEntry: dir.get('2001') });
  assert.equal(r.outcome, 'refused');
  assert.match(r.reply ?? '', /needs a line/);
  assert.equal(dir.get('2001')?.service, 'N', 'entry unchanged');
  assert.ok(logs.some((l) => l.level === 'warn' && (l.o as { error?: string }).error === 'INVALID_CHANNEL'));
  assert.equal((await send('SERVICE T', { senderEntry: dir.get('2001') })).outcome, 'refused');

  const other = harness({}, { setSenderService: () => { throw new SmsRouterError('INVALID_RECIPIENT', 'nope'); } });
  assert.equal((await other.send('SERVICE V', { senderEntry: entry() })).outcome, 'refused');
  const broken = harness({}, { setSenderService: () => { throw new Error('disk gone'); } });
  assert.deepEqual(await broken.send('SERVICE V', { senderEntry: entry() }), {
    reply: DEFAULT_COMMAND_TEXTS.failed,
    command: 'SERVICE',
    outcome: 'failed',
  });
});

// ─── numbers and unknown commands ────────────────────────────────────────────

test('a number offering nothing is the wrong number; an unknown word is unknown', async () => {
  const programs = [program({ keyword: 'WEATHER', program: '/bin/true', numbers: ['2101'] })];
  const { send } = harness({ builtinNumbers: ['2100'], programs });
  assert.deepEqual(await send('HELP', { commandNumber: '2199' }), { reply: DEFAULT_COMMAND_TEXTS.wrongNumber, command: 'HELP', outcome: 'wrong-number' });
  assert.deepEqual(await send('frobnicate now'), { reply: DEFAULT_COMMAND_TEXTS.unknown, command: 'FROBNICATE', outcome: 'unknown' });
  assert.equal((await send('WEATHER'))?.outcome, 'unknown', 'a program of another number is unknown here');
  assert.equal((await send('')).outcome, 'unknown');
  const custom = harness({ texts: { ...DEFAULT_COMMAND_TEXTS, unknown: 'Nieznane polecenie.' } });
  assert.equal((await custom.send('xyz')).reply, 'Nieznane polecenie.');
});

// ─── configured programs ─────────────────────────────────────────────────────

test('a configured program gets shell metacharacters as literal arguments, never through a shell', async () => {
  const argvFile = path.join(TMP, 'argv.txt');
  const marker = path.join(TMP, 'MARKER');
  const redirected = path.join(TMP, 'REDIRECTED');
  const echo = script(`out="$1"; shift\nfor a in "$@"; do printf '%s\\n' "$a" >> "$out"; done\necho "got $# words"`);
  const { send } = harness({ programs: [program({ keyword: 'Echo', program: echo, args: [argvFile] })] });
  const words = [';', 'rm', '-rf', '/', '$(id)', '`id`', `$(touch\${IFS}${marker})`, `\`touch\${IFS}${marker}\``, `>${redirected}`, '&&', '|', "'\"\\"];
  const r = await send(`echo ${words.join(' ')}`);
  assert.deepEqual(r, { reply: `got ${words.length} words`, command: 'ECHO', outcome: 'ok' });
  assert.deepEqual(fs.readFileSync(argvFile, 'utf8').split('\n').slice(0, -1), words);
  assert.equal(fs.existsSync(marker), false, 'no command substitution happened');
  assert.equal(fs.existsSync(redirected), false, 'no redirection happened');
});

test('a configured program runs with PATH only; its output is trimmed and capped', async () => {
  process.env.SMS_ROUTER_TEST_SECRET = 'leak';
  try {
    const env = script('printf "%s|%s" "${SMS_ROUTER_TEST_SECRET-unset}" "${PATH:+path}"');
    const long = script(`printf '\\n  %s\\r\\n\\033[1m' "$1"`);
    const quiet = script('exit 0');
    const { send } = harness({
      replyMaxChars: 10,
      programs: [program({ keyword: 'ENV', program: env }), program({ keyword: 'LONG', program: long }), program({ keyword: 'QUIET', program: quiet })],
    });
    assert.equal((await send('env')).reply, 'unset|path');
    assert.equal((await send('long abcdefghijklmnop')).reply, 'abcdefghij');
    assert.equal((await send('long abc')).reply, 'abc');
    assert.deepEqual(await send('quiet'), { reply: 'Done.', command: 'QUIET', outcome: 'ok' });
  } finally {
    delete process.env.SMS_ROUTER_TEST_SECRET;
  }
});

test('a program that outlives its timeout is killed and the sender gets texts.failed', async () => {
  const pidFile = path.join(TMP, 'sleeper.pid');
  const stubbornPidFile = path.join(TMP, 'stubborn.pid');
  const sleeper = script(`echo $$ > "${pidFile}"\nexec sleep 30`);
  // Ignores SIGTERM: only the SIGKILL that follows stops it.
  const stubborn = script(`trap '' TERM\necho $$ > "${stubbornPidFile}"\nwhile :; do sleep 0.05; done`);
  const { send, logs } = harness({
    programs: [program({ keyword: 'SLOW', program: sleeper, timeoutMs: 200 }), program({ keyword: 'STUBBORN', program: stubborn, timeoutMs: 200 })],
  });
  for (const [word, file] of [['slow', pidFile], ['stubborn', stubbornPidFile]] as const) {
    const started = Date.now();
    const r = await send(`${word} secret-words`);
    assert.deepEqual(r, { reply: DEFAULT_COMMAND_TEXTS.failed, command: word.toUpperCase(), outcome: 'failed' });
    assert.ok(Date.now() - started < 10_000, 'well before the program would have ended');
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `${word} (pid ${pid}) is gone`);
  }
  const warns = logs.filter((l) => l.level === 'warn');
  assert.equal(warns.length, 2);
  for (const w of warns) {
    assert.equal((w.o as { error?: string }).error, 'PROCESS_TIMEOUT');
    assert.ok(!JSON.stringify(w).includes('secret-words'), 'the message text is never logged');
  }
});

test('non-zero exit and a missing program fail with texts.failed and a log line without the text', async () => {
  const failing = script('echo partial; exit 3');
  const { send, logs } = harness({
    programs: [program({ keyword: 'FAIL', program: failing }), program({ keyword: 'GONE', program: path.join(TMP, 'no-such-program') })],
  });
  assert.deepEqual(await send('FAIL private stuff'), { reply: DEFAULT_COMMAND_TEXTS.failed, command: 'FAIL', outcome: 'failed' });
  assert.deepEqual(await send('gone private stuff'), { reply: DEFAULT_COMMAND_TEXTS.failed, command: 'GONE', outcome: 'failed' });
  const [exit, missing] = logs.filter((l) => l.level === 'warn');
  assert.equal((exit?.o as { exitCode?: number }).exitCode, 3);
  assert.equal((missing?.o as { error?: string }).error, 'PROCESS_MISSING');
  assert.ok(!JSON.stringify(logs).includes('private'), 'the message text is never logged');
});

test('handle never throws, even when a dependency does', async () => {
  const { send } = harness({}, {
    journalCounts: () => { throw new Error('db closed'); },
    log: { info: () => { throw new Error('log'); }, warn: () => { throw new Error('log'); } },
  });
  assert.deepEqual(await send('STATUS'), { reply: DEFAULT_COMMAND_TEXTS.failed, command: 'STATUS', outcome: 'failed' });
});

// ─── rate limit through the service ──────────────────────────────────────────

test('100 commands in a minute: at most perSenderPerMinute replies plus one tooMany; others unaffected; new window', async () => {
  const ran: string[] = [];
  const run: CommandDeps['run'] = async (file) => {
    ran.push(file);
    return { code: 0, signal: null, stdout: Buffer.from('ok'), stderr: '' };
  };
  const limit = 5;
  const { send, clock } = harness({ perSenderPerMinute: limit, programs: [program({ keyword: 'RUN', program: '/bin/true' })] }, { run });
  const results = [];
  for (let i = 0; i < 100; i++) {
    clock.ms = T0 + i * 500; // 100 messages within 50 s
    results.push(await send(i % 2 === 0 ? 'PING' : 'RUN'));
    if (i === 50) assert.equal((await send('PING', { sender: '2002' })).outcome, 'ok', 'another sender is not affected');
  }
  const replies = results.filter((r) => r.reply !== null);
  assert.equal(results.filter((r) => r.outcome !== 'rate-limited').length, limit);
  assert.equal(replies.length, limit + 1);
  assert.equal(replies.filter((r) => r.reply === DEFAULT_COMMAND_TEXTS.tooMany).length, 1);
  assert.deepEqual(results[limit], { reply: DEFAULT_COMMAND_TEXTS.tooMany, command: limit % 2 === 0 ? 'PING' : 'RUN', outcome: 'rate-limited' });
  assert.ok(results.slice(limit + 1).every((r) => r.reply === null && r.outcome === 'rate-limited'));
  assert.ok(ran.length <= limit, 'over the limit, programs are not even started');

  clock.ms = T0 + 60_000; // the window that began at T0 is over
  assert.deepEqual(await send('PING again'), { reply: 'PONG from 2001: again', command: 'PING', outcome: 'ok' });
});
