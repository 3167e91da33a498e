/**
 * Speech with the real espeak-ng and sox (Debian packages, installed in CI):
 * every WAV must be what Asterisk's format_wav plays (SPEC §5), text must
 * never reach a shell, and gtts (no network here) must never take the
 * process down.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProcessError, runProcess } from '../../src/render/exec.js';
import { leadingSilenceMs, readWavInfo, type WavInfo } from '../../src/render/wav.js';
import { DEFAULT_WORDING, Speech, SpeechError, espeakEngine, fetchGttsMp3, gttsEngine, spokenText, type SpeechLog } from '../../src/render/speech.js';
import { runSayCommand } from '../../src/cli/say.js';

const DIR = mkdtempSync(path.join(tmpdir(), 'speech-test-'));
after(() => rmSync(DIR, { recursive: true, force: true }));
let serial = 0;
const out = (name = 'out') => path.join(DIR, `${name}-${++serial}.wav`);

/** A log that remembers its warnings. */
function memoryLog(): SpeechLog & { warnings: Array<{ o: object; m: string }> } {
  const warnings: Array<{ o: object; m: string }> = [];
  return { warnings, info: () => {}, warn: (o, m) => warnings.push({ o, m }) };
}

/** Everything format_wav demands, measured from the file itself. */
function assertPlayable(file: string): WavInfo {
  const buf = readFileSync(file);
  assert.equal(buf.toString('latin1', 0, 4), 'RIFF');
  assert.equal(buf.toString('latin1', 8, 12), 'WAVE');
  const info = readWavInfo(buf);
  assert.ok(info, `${file} is a WAV`);
  assert.equal(info.formatTag, 1, 'PCM');
  assert.equal(info.channels, 1);
  assert.equal(info.sampleRate, 8000);
  assert.equal(info.bitsPerSample, 16);
  const silence = leadingSilenceMs(buf);
  assert.ok(silence >= 900 && silence <= 1300, `leading silence ${silence} ms`);
  assert.ok(info.durationMs > silence, 'there is sound after the silence');
  return info;
}

const LONG =
  'The meeting with the plumber is moved to Thursday at half past ten; please leave the back door open and the dog inside. Call me back if that does not suit you.';

test('English and Polish are spoken; the WAV is 8 kHz mono 16-bit PCM with 1 s of silence, and grows with the text', async () => {
  const log = memoryLog();
  const speech = new Speech({ engine: 'espeak', defaultLanguage: 'en', log });
  const short = await speech.synthesize({ text: 'Hello.', language: 'en', outFile: out() });
  const long = await speech.synthesize({ text: LONG, language: 'en', outFile: out() });
  const polish = await speech.synthesize({ text: 'Zażółć gęślą jaźń. Spotkanie jest przeniesione na czwartek.', language: 'pl', outFile: out() });
  for (const r of [short, long, polish]) {
    const info = assertPlayable(r.file);
    assert.equal(r.durationMs, info.durationMs);
    assert.equal(r.engine, 'espeak');
    assert.equal(r.fellBack, undefined);
  }
  assert.equal(polish.language, 'pl');
  assert.equal(short.language, 'en');
  assert.ok(short.durationMs < long.durationMs, `${short.durationMs} < ${long.durationMs}`);
  assert.deepEqual(log.warnings, []);
  assert.deepEqual(readdirSync(DIR).filter((n) => n.startsWith('.')), [], 'no temporary file is left beside the output');
});

test('a regional tag uses the base voice; an unknown or malformed language falls back to the default with a warning', async () => {
  const log = memoryLog();
  const speech = new Speech({ engine: 'espeak', defaultLanguage: 'pl', log });
  const regional = await speech.synthesize({ text: 'Guten Tag.', language: 'de-AT', outFile: out() });
  assert.equal(regional.language, 'de-AT');
  assert.equal(log.warnings.length, 0);
  for (const language of ['xq', '-w/etc/passwd']) {
    const r = await speech.synthesize({ text: 'Dzień dobry.', language, outFile: out() });
    assertPlayable(r.file);
    assert.equal(r.language, 'pl');
    assert.match(r.fellBack ?? '', /language/);
    const warning = log.warnings.pop();
    assert.ok(warning, `a warning for ${language}`);
    assert.deepEqual(warning.o, { engine: 'espeak', language, defaultLanguage: 'pl' });
  }
});

test('text with quotes, $( ), ; and backticks is spoken as text and never runs', async () => {
  const marker = path.join(DIR, 'MARKER');
  const hostile = `He said "hello" and 'bye'; $(touch ${marker}) \`touch ${marker}2\` && rm -rf / | cat\n$(rm -rf /)\n-v xx --help; echo $HOME > ${marker}3`;
  const speech = new Speech({ engine: 'espeak', defaultLanguage: 'en', log: memoryLog() });
  const dot = await speech.synthesize({ text: '.', language: 'en', outFile: out() });
  const spoken = await speech.synthesize({ text: hostile, language: 'en', outFile: out() });
  assertPlayable(spoken.file);
  assert.ok(spoken.durationMs > dot.durationMs + 2000, `${spoken.durationMs} ms for the hostile text vs ${dot.durationMs} ms for "."`);
  const viaCli = out('cli');
  const code = await runSayCommand(['--out', viaCli, '--from', '+48600111222', '--', hostile], { stdout: () => {}, stderr: () => {} });
  assert.equal(code, 0);
  assertPlayable(viaCli);
  for (const suffix of ['', '2', '3']) assert.equal(existsSync(marker + suffix), false, `MARKER${suffix} was never created`);
});

test('spokenText reads the sender digit by digit, a leading + as the language says it, then the text', () => {
  const from = '+48600111222';
  const digits = from.slice(1).split('');
  const en = spokenText({ from, text: 'See you.', language: 'en' });
  assert.ok(en.startsWith(`${DEFAULT_WORDING.en!.messageFrom} ${DEFAULT_WORDING.en!.plus} ${digits.join(' ')}.`), en);
  assert.ok(en.endsWith(' See you.'));
  const pl = spokenText({ from: '2001', text: 'Cześć', language: 'pl-PL', reference: 42, date: '22 listopada' });
  assert.equal(pl, `${DEFAULT_WORDING.pl!.messageFrom} 2 0 0 1. ${DEFAULT_WORDING.pl!.date} 22 listopada. ${DEFAULT_WORDING.pl!.reference} 4 2. Cześć`);
  // Unknown language: English words, still digit by digit.
  assert.ok(spokenText({ from: '123', text: 'x', language: 'xq' }).includes('1 2 3'));
  // Every digit of the number appears, separated, in order.
  assert.match(spokenText({ from, text: '', language: 'de' }), new RegExp(digits.join(' ')));
});

test('a missing espeak-ng or sox is an error naming the Debian package to install', async () => {
  const noEspeak = new Speech({ engine: 'espeak', defaultLanguage: 'en', log: memoryLog(), engines: { espeak: espeakEngine({ espeakBin: '/nonexistent/espeak-ng' }) } });
  await assert.rejects(noEspeak.synthesize({ text: 'Hello', language: 'en', outFile: out() }), (err: unknown) => {
    assert.ok(err instanceof SpeechError);
    assert.equal(err.code, 'SPEECH_ENGINE_MISSING');
    assert.match(err.message, /\/nonexistent\/espeak-ng/);
    assert.match(err.message, /Debian package espeak-ng/);
    return true;
  });
  const target = out();
  const noSox = new Speech({ engine: 'espeak', defaultLanguage: 'en', log: memoryLog(), engines: { espeak: espeakEngine({ soxBin: '/nonexistent/sox' }) } });
  await assert.rejects(noSox.synthesize({ text: 'Hello', language: 'en', outFile: target }), (err: unknown) => {
    assert.ok(err instanceof SpeechError);
    assert.equal(err.code, 'SPEECH_ENGINE_MISSING');
    assert.match(err.message, /Debian package sox/);
    return true;
  });
  assert.equal(existsSync(target), false, 'no output on failure');
  // gtts configured and espeak-ng missing: the last engine's error is the one reported.
  const neither = new Speech({
    engine: 'gtts',
    defaultLanguage: 'en',
    log: memoryLog(),
    engines: { espeak: espeakEngine({ espeakBin: '/nonexistent/espeak-ng' }), gtts: gttsEngine({ url: await closedPortUrl(), timeoutMs: 5000 }) },
  });
  await assert.rejects(neither.synthesize({ text: 'Hello', language: 'en', outFile: out() }), /Debian package espeak-ng/);
});

// ─── gtts ────────────────────────────────────────────────────────────────────

async function listen(handler: (req: IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/translate_tts` };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A local address where nothing listens: "no network" that does not depend on the machine's network. */
async function closedPortUrl(): Promise<string> {
  const { server, url } = await listen(() => {});
  await close(server);
  return url;
}

const codeOf = (err: unknown) => (err instanceof SpeechError ? err.code : `not a SpeechError: ${String(err)}`);

test('gtts configured but unusable: espeak-ng speaks instead, with a warning, and this process carries on', async () => {
  const log = memoryLog();
  const speech = new Speech({ engine: 'gtts', defaultLanguage: 'en', log, engines: { gtts: gttsEngine({ url: await closedPortUrl(), timeoutMs: 10_000 }) } });
  const r = await speech.synthesize({ text: 'Przesyłka czeka na poczcie.', language: 'pl', outFile: out() });
  assertPlayable(r.file);
  assert.equal(r.engine, 'espeak');
  assert.equal(r.language, 'pl');
  assert.match(r.fellBack ?? '', /^gtts failed/);
  assert.equal(log.warnings.length, 1);
  assert.equal((log.warnings[0]!.o as { engine: string }).engine, 'gtts');
  assert.equal((log.warnings[0]!.o as { fallback: string }).fallback, 'espeak');
});

test('gtts with the real address: whatever the network, a playable WAV comes out and a fallback is logged', async () => {
  const log = memoryLog();
  const speech = new Speech({ engine: 'gtts', defaultLanguage: 'en', log, engines: { gtts: gttsEngine({ timeoutMs: 15_000 }) } });
  const r = await speech.synthesize({ text: 'Hello from the message centre.', language: 'en', outFile: out() });
  assertPlayable(r.file);
  if (r.engine === 'espeak') assert.equal(log.warnings.length, 1);
  else assert.equal(r.fellBack, undefined);
  // The package itself, without network, crashes its process: only the worker's.
  const settled = await fetchGttsMp3('Hello', 'en', path.join(DIR, 'real.mp3'), { timeoutMs: 15_000 }).then(
    () => 'ok',
    (err: unknown) => codeOf(err),
  );
  assert.ok(['ok', 'SPEECH_FAILED', 'SPEECH_TIMEOUT'].includes(settled), settled);
});

test('the gtts worker: refused connection, an error page, a hang and a crash are rejections; real MP3 is kept', async () => {
  const mp3 = path.join(DIR, 'worker.mp3');
  await assert.rejects(fetchGttsMp3('Hello', 'en', mp3, { url: await closedPortUrl(), timeoutMs: 10_000 }), (err) => codeOf(err) === 'SPEECH_FAILED');

  const seen: string[] = [];
  const fakeMp3 = Buffer.concat([Buffer.from('ID3\x04\x00\x00\x00\x00\x00\x00', 'latin1'), Buffer.alloc(300, 0x55)]);
  const pages = await listen((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    seen.push(`${q.get('tl')}:${q.get('q')}`);
    if (q.get('q') === 'page') res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Our systems have detected unusual traffic</body></html>'.padEnd(400));
    else res.writeHead(200, { 'content-type': 'audio/mpeg' }).end(fakeMp3);
  });
  try {
    await assert.rejects(fetchGttsMp3('page', 'pl', mp3, { url: pages.url, timeoutMs: 10_000 }), /not MP3/);
    await fetchGttsMp3('Dzień dobry', 'pl', mp3, { url: pages.url, timeoutMs: 10_000 });
    assert.deepEqual(readFileSync(mp3), fakeMp3);
    assert.deepEqual(seen, ['pl:page', 'pl:Dzień dobry'], 'the text travelled to the server as data');
  } finally {
    await close(pages.server);
  }

  const hang = await listen(() => {});
  try {
    const started = Date.now();
    await assert.rejects(fetchGttsMp3('Hello', 'en', mp3, { url: hang.url, timeoutMs: 800 }), (err) => codeOf(err) === 'SPEECH_TIMEOUT');
    assert.ok(Date.now() - started < 5000, 'the deadline holds');
  } finally {
    await close(hang.server);
  }

  const crash = path.join(DIR, 'crash-worker.mjs');
  writeFileSync(crash, "setTimeout(() => { throw new Error('boom from the package'); }, 5);\n");
  await assert.rejects(fetchGttsMp3('Hello', 'en', mp3, { workerScript: crash, timeoutMs: 10_000 }), (err) => codeOf(err) === 'SPEECH_FAILED');
  const crashing = new Speech({ engine: 'gtts', defaultLanguage: 'en', log: memoryLog(), engines: { gtts: gttsEngine({ workerScript: crash }) } });
  assertPlayable((await crashing.synthesize({ text: 'Still here.', language: 'en', outFile: out() })).file);
});

// ─── The say command ─────────────────────────────────────────────────────────

test('say writes what a V recipient hears: with --from it is longer by the sender; text from stdin works', async () => {
  const lines: string[] = [];
  const io = { stdout: (s: string) => lines.push(s), stderr: (s: string) => lines.push(`ERR ${s}`) };
  const plain = out('say');
  assert.equal(await runSayCommand(['--language', 'pl', '--out', plain, 'Dzień', 'dobry.'], io), 0);
  const withFrom = out('say');
  assert.equal(await runSayCommand(['--language', 'pl', '--from', '+48600111222', '--out', withFrom], { ...io, readStdin: async () => 'Dzień dobry.\n' }), 0);
  const a = assertPlayable(plain);
  const b = assertPlayable(withFrom);
  assert.ok(b.durationMs > a.durationMs + 1500, `${b.durationMs} vs ${a.durationMs}`);
  const result = JSON.parse(lines[0]!) as { file: string; engine: string; language: string };
  assert.deepEqual([result.file, result.engine, result.language], [plain, 'espeak', 'pl']);
  assert.equal(lines.filter((l) => l.startsWith('ERR')).length, 0);
});

test('say: a wrong command line is one line on stderr and exit 2; a speech failure exit 1', async () => {
  for (const args of [['Hello'], ['--out', out(), '--engine', 'festival', 'Hello'], ['--bogus', '--out', out(), 'x'], ['--out', out(), '--language', '../x', 'Hi'], ['--out']]) {
    const err: string[] = [];
    assert.equal(await runSayCommand(args, { stdout: () => {}, stderr: (s) => err.push(s) }), 2, args.join(' '));
    assert.equal(err.length, 1);
    assert.equal(err[0]!.split('\n').length, 2, 'one line');
  }
  const err: string[] = [];
  const code = await runSayCommand(['--out', path.join(DIR, 'no-such-dir', 'x.wav'), 'Hello'], { stdout: () => {}, stderr: (s) => err.push(s) });
  assert.equal(code, 1);
  assert.match(err.join(''), /SPEECH_FAILED/);
});

// ─── Running programs ────────────────────────────────────────────────────────

const node = process.execPath;

test('runProcess: arguments arrive verbatim, the environment is PATH only, and input goes to stdin', async () => {
  const args = ['$(touch x)', '; rm -rf /', '"quoted" \'single\'', '`id`', '-v'];
  const r = await runProcess(node, ['-e', 'process.stdout.write(JSON.stringify([process.argv.slice(1), Object.keys(process.env)]))', '--', ...args], { timeoutMs: 10_000 });
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout.toString()), [args, ['PATH']]);
  const echo = await runProcess(node, ['-e', 'process.stdin.pipe(process.stdout)'], { timeoutMs: 10_000, input: 'zażółć\n$(x)' });
  assert.equal(echo.stdout.toString('utf8'), 'zażółć\n$(x)');
  // A program that exits without reading a large input: its status, not an EPIPE crash.
  const early = await runProcess(node, ['-e', 'process.exit(3)'], { timeoutMs: 10_000, input: Buffer.alloc(8 * 1024 * 1024) });
  assert.equal(early.code, 3);
});

test('runProcess: a program ignoring SIGTERM is killed at the deadline; output and abort are bounded; missing is typed', async () => {
  const pidFile = path.join(DIR, 'stubborn.pid');
  const started = Date.now();
  await assert.rejects(
    runProcess(node, ['-e', `require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);`], { timeoutMs: 400 }),
    (err) => err instanceof ProcessError && err.code === 'PROCESS_TIMEOUT',
  );
  assert.ok(Date.now() - started < 5000);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the program is gone');

  await assert.rejects(
    runProcess(node, ['-e', 'setInterval(() => process.stdout.write("x".repeat(65536)), 1)'], { timeoutMs: 10_000, maxOutputBytes: 100_000 }),
    (err) => err instanceof ProcessError && err.code === 'PROCESS_OUTPUT_LIMIT',
  );
  const controller = new AbortController();
  const running = runProcess(node, ['-e', 'setInterval(() => {}, 1000)'], { timeoutMs: 10_000, signal: controller.signal });
  setImmediate(() => controller.abort());
  await assert.rejects(running, (err) => err instanceof ProcessError && err.code === 'PROCESS_ABORTED');
  await assert.rejects(runProcess('/nonexistent/program', [], { timeoutMs: 1000 }), (err) => err instanceof ProcessError && err.code === 'PROCESS_MISSING');
});

test('several messages at once each get their own correct file', async () => {
  const speech = new Speech({ engine: 'espeak', defaultLanguage: 'en', log: memoryLog() });
  const texts = ['One.', 'Two is a longer sentence than one.', 'Trzy.', LONG];
  const results = await Promise.all(texts.map((text, k) => speech.synthesize({ text, language: k === 2 ? 'pl' : 'en', outFile: out('par') })));
  for (const r of results) assertPlayable(r.file);
  assert.ok(results[3]!.durationMs > results[1]!.durationMs && results[1]!.durationMs > results[0]!.durationMs);
});
