/**
 * Security: shell metacharacters and option injection wherever a process is
 * started. No shell ever sees a message: command programs (service C) get the
 * message's words as separate argv entries after their fixed arguments;
 * espeak-ng and the gtts worker get the text on standard input, never in argv,
 * so a text starting with `-` cannot be an option; every program gets an
 * environment of PATH only, so the daemon's secrets do not leak into it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeSpoolTree, runCli, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { writeMorx } from '../../src/cli/send.js';
import { decodeSmsFile } from '../../src/spool/sms-file.js';
import { espeakEngine, fetchGttsMp3, Speech } from '../../src/render/speech.js';
import { isAsteriskWav, readWavInfo } from '../../src/render/wav.js';
import { dropMorx, rows } from './support.js';

const ENV_SECRET = 'SMSR_SECURITY_TEST_SECRET';
const ENV_SECRET_VALUE = 'env-secret-9b3f1c';

function scratch(): string {
  return mkdtempSync(path.join(tmpdir(), 'smsr-proc-'));
}

function script(file: string, body: string): string {
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/**
 * Words an attacker sends after the keyword (a message is split at whitespace,
 * so ${IFS} stands for the space): run by any shell, each would create its marker.
 */
function hostileWords(dir: string): string[] {
  const m = (name: string) => path.join(dir, name);
  return [
    '-rf',
    `--output=${m('opt-out')}`,
    '--',
    `$(touch\${IFS}${m('m-dollar')})`,
    `\`touch\${IFS}${m('m-backtick')}\``,
    `;touch\${IFS}${m('m-semicolon')}`,
    `|tee\${IFS}${m('m-pipe')}`,
    `&&touch\${IFS}${m('m-and')}`,
    `>${m('m-redirect')}`,
    '$HOME',
    '*',
    "'quoted'",
    '"dq"',
    '\\',
  ];
}

test('service C: hostile words reach the program as literal argv entries after the operator\'s "--"; nothing runs; no secret in its environment', async () => {
  const dir = scratch();
  const record = script(path.join(dir, 'record'), `printf '%s\\n' "$@" > "${dir}/argv"\nenv > "${dir}/env"\necho "got $# arguments"`);
  const t = makeSpoolTree(
    `[commands]\nper_sender_per_minute = 50\n` +
      // The operator ends the fixed arguments with "--": whatever the message says is an operand, never an option.
      `[commands.safe]\nkeyword = "SAFE"\nprogram = "${record}"\nargs = ["--fixed", "--"]\n`,
  );
  process.env[ENV_SECRET] = ENV_SECRET_VALUE;
  try {
    const { daemon, stop } = await startDaemon(t);
    try {
      daemon.directory.add({ number: '5000', service: 'C' });
      daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
      const words = hostileWords(dir);
      writeMorx(t.morx, { from: '2001', to: '5000', text: `safe ${words.join(' ')}` }, false);
      await waitUntil(() => visibleFiles(t.mttx).length === 1, 20_000, 'the reply');
      const reply = decodeSmsFile(readFileSync(path.join(t.mttx, visibleFiles(t.mttx)[0]!)));
      assert.ok(reply.ok);
      assert.equal(reply.message.text, `got ${words.length + 2} arguments`);
      assert.deepEqual(readFileSync(path.join(dir, 'argv'), 'utf8').split('\n').slice(0, -1), ['--fixed', '--', ...words]);
      for (const marker of ['m-dollar', 'm-backtick', 'm-semicolon', 'm-pipe', 'm-and', 'm-redirect', 'opt-out']) {
        assert.ok(!existsSync(path.join(dir, marker)), `${marker}: nothing executed or written`);
      }
      const env = readFileSync(path.join(dir, 'env'), 'utf8').split('\n').filter(Boolean);
      // PATH from the daemon; PWD is what sh itself adds.
      assert.deepEqual(env.map((l) => l.split('=')[0]).filter((k) => k !== 'PWD'), ['PATH']);
      assert.ok(!env.some((l) => l.includes(ENV_SECRET_VALUE)));
    } finally {
      await stop();
    }
  } finally {
    delete process.env[ENV_SECRET];
    t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('espeak-ng gets the text on standard input only: a text of options (-w FILE, --stdout) is spoken, not obeyed', { timeout: 60_000 }, async () => {
  const dir = scratch();
  try {
    const evil = path.join(dir, 'evil.wav');
    // Records every call's argv and standard input, then runs the real espeak-ng with the same arguments.
    const wrapper = script(
      path.join(dir, 'espeak-ng'),
      `printf '%s\\n' "$@" "=== end of call" >> "${dir}/argv"\ncat > "${dir}/stdin.$$"\nexec /usr/bin/espeak-ng "$@" < "${dir}/stdin.$$"`,
    );
    process.env[ENV_SECRET] = ENV_SECRET_VALUE;
    const text = `-w${evil} --stdout -v xx $(touch ${path.join(dir, 'marker')}); hello`;
    const out = path.join(dir, 'out.wav');
    const log = { info: () => {}, warn: () => {} };
    const speech = new Speech({ engine: 'espeak', defaultLanguage: 'en', log, engines: { espeak: espeakEngine({ espeakBin: wrapper }) } });
    const result = await speech.synthesize({ text, language: 'en', outFile: out });
    assert.equal(result.engine, 'espeak');
    assert.ok(isAsteriskWav(readWavInfo(readFileSync(out))), 'a playable WAV was written where asked');
    assert.ok(!existsSync(evil), '-w in the text was not an option');
    assert.ok(!existsSync(path.join(dir, 'marker')));
    const argv = readFileSync(path.join(dir, 'argv'), 'utf8');
    assert.ok(!argv.includes(evil) && !argv.includes('hello'), `the text is in no argv entry:\n${argv}`);
    const inputs = readdirSync(dir).filter((n) => n.startsWith('stdin.')).map((n) => readFileSync(path.join(dir, n), 'utf8'));
    assert.ok(inputs.includes(text), 'the text went in on standard input, unchanged');
  } finally {
    delete process.env[ENV_SECRET];
    rmSync(dir, { recursive: true, force: true });
  }
});

test('route V end to end: a message with no sender whose text is espeak-ng options becomes speech, and only the WAV is written', { timeout: 60_000 }, async () => {
  const t = makeSpoolTree();
  try {
    const evil = path.join(t.dir, 'evil.wav');
    const { daemon, stop } = await startDaemon(t);
    try {
      daemon.directory.add({ number: '4001', service: 'V', channel: 'PJSIP/4001', language: 'en' });
      // No oa: the spoken text is the message alone, so it starts with "-" (no "Message from" before it).
      dropMorx(t.morx, 'nobody.1', `da=4001\nud=-w${evil} --stdout\n`);
      await waitUntil(() => visibleFiles(t.outgoing).length === 1, 30_000, 'the voice call');
      const [message] = rows(daemon);
      assert.equal(message!.oa, '');
      assert.ok(isAsteriskWav(readWavInfo(readFileSync(path.join(t.config.voice.dir, `${message!.id}.wav`)))));
      assert.ok(!existsSync(evil), 'the text was not taken as -w FILE');
    } finally {
      await stop();
    }
  } finally {
    t.cleanup();
  }
});

test('`sms-router say` with a text of options after "--" writes only --out', { timeout: 60_000 }, async () => {
  const dir = scratch();
  try {
    const evil = path.join(dir, 'evil.wav');
    const out = path.join(dir, 'out.wav');
    const r = await runCli(['say', '--out', out, '--', `-w${evil}`, '--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(isAsteriskWav(readWavInfo(readFileSync(out))));
    assert.ok(!existsSync(evil));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the gtts worker gets the text on standard input and PATH as its environment; an option-like language never reaches it', async () => {
  const dir = scratch();
  try {
    const recordFile = path.join(dir, 'record.json');
    const worker = path.join(dir, 'fake-worker.mjs');
    writeFileSync(
      worker,
      `import { readFileSync, writeFileSync } from 'node:fs';\n` +
        `const stdin = readFileSync(0, 'utf8');\n` +
        `writeFileSync(${JSON.stringify(recordFile)}, JSON.stringify({ argv: process.argv.slice(2), stdin, env: process.env }));\n` +
        `writeFileSync(process.argv[4], Buffer.concat([Buffer.from('ID3'), Buffer.alloc(200)]));\n`,
    );
    process.env[ENV_SECRET] = ENV_SECRET_VALUE;
    const text = `--help -o ${path.join(dir, 'evil')} $(id)`;
    const mp3 = path.join(dir, 'out.mp3');
    await fetchGttsMp3(text, 'en', mp3, { workerScript: worker, timeoutMs: 20_000, url: 'http://127.0.0.1:9/' });
    const seen = JSON.parse(readFileSync(recordFile, 'utf8')) as { argv: string[]; stdin: string; env: Record<string, string> };
    assert.deepEqual(seen.argv, ['fetch', 'en', mp3, 'http://127.0.0.1:9/']);
    assert.equal(seen.stdin, text);
    assert.deepEqual(Object.keys(seen.env).filter((k) => k !== 'PWD'), ['PATH']);
    rmSync(recordFile);
    for (const language of ['--help', '-o/tmp/x', 'en --x', '../en']) {
      await assert.rejects(fetchGttsMp3('hi', language, mp3, { workerScript: worker, timeoutMs: 20_000 }), { code: 'SPEECH_LANGUAGE' });
    }
    assert.ok(!existsSync(recordFile), 'the worker never ran for them');
  } finally {
    delete process.env[ENV_SECRET];
    rmSync(dir, { recursive: true, force: true });
  }
});
