/**
 * Service C through the real daemon: commands from an S phone are answered in
 * sms/mttx, from a T softphone through the fake AMI; configured programs get
 * the message's words as literal arguments; replies are rate-limited.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import type { Daemon } from '../../src/daemon.js';
import { startDaemon } from '../helpers/daemon.js';
import { newMessage } from '../../src/journal/journal.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';

function scripts() {
  const dir = mkdtempSync(path.join(tmpdir(), 'smsr-cmd-'));
  const echo = path.join(dir, 'echo-args');
  writeFileSync(echo, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > "${dir}/argv"\necho "got $# words"\n`);
  const slow = path.join(dir, 'slow');
  writeFileSync(slow, '#!/bin/sh\nexec sleep 30\n');
  chmodSync(echo, 0o755);
  chmodSync(slow, 0o755);
  return { dir, echo, slow };
}

async function start(tree: SpoolTree) {
  const { daemon, stop } = await startDaemon(tree);
  daemon.directory.add({ number: '5000', service: 'C', name: 'Service desk' });
  daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1', name: 'Kitchen' });
  daemon.directory.add({ number: '1002', service: 'T', channel: 'PJSIP/1002' });
  return { daemon, stop };
}

function replies(tree: SpoolTree) {
  return visibleFiles(tree.mttx)
    .map((n) => {
      const r = phoneReceivesFile(path.join(tree.mttx, n));
      assert.ok(r.ok);
      return { id: Number(n.split('.')[1]!.split('-')[0]), oa: r.message.oa, da: r.message.da, text: r.message.text, udh: r.message.udh };
    })
    .sort((a, b) => a.id - b.id);
}

test('every built-in answers an S sender in mttx and a T sender through AMI; programs get literal words; timeouts fail cleanly', async () => {
  const s = scripts();
  const fake = await FakeAmiServer.start();
  const tree = makeSpoolTree(
    `[ami]\nenabled = true\nport = ${fake.port}\nusername = "labami"\nsecret = "labsecret123"\n` +
      `[commands]\nself_service = true\nper_sender_per_minute = 50\n` +
      `[commands.echoargs]\nkeyword = "ECHOARGS"\nprogram = "${s.echo}"\ntimeout = 5\ndescription = "echo"\n` +
      `[commands.slow]\nkeyword = "SLOW"\nprogram = "${s.slow}"\ntimeout = 1\n`,
  );
  const { daemon, stop } = await start(tree);
  try {
    await daemon.ami!.waitConnected(5_000);
    const commands = ['HELP', 'ping hello there', 'TEST', 'UPTIME', 'status', 'WHOAMI', 'FROBNICATE'];
    const expect: RegExp[] = [/HELP.*PING.*UPTIME.*STATUS.*WHOAMI.*SERVICE.*ECHOARGS.*SLOW/, /2001|1002/, /./, /up/, /Queued \d+, delivered \d+, failed today \d+/, /2001|1002/, /^Unknown command\. Send HELP\.$/];
    for (const [i, c] of commands.entries()) writeMorx(tree.morx, { from: '2001', to: '5000', text: c, now: new Date(Date.now() + i * 1000) }, false);
    await waitUntil(() => replies(tree).length === commands.length, 20_000, 'S replies');
    const sReplies = replies(tree);
    sReplies.forEach((r, i) => {
      assert.equal(r.oa, '5000', 'the reply comes from the command number');
      assert.equal(r.da, '2001');
      assert.match(r.text, expect[i]!, `${commands[i]} → ${r.text}`);
    });
    assert.match(sReplies[1]!.text, /hello there/);
    assert.match(sReplies[5]!.text, /2001.*S.*Kitchen/);
    assert.ok(sReplies[0]!.text.length <= 160, 'HELP fits one SMS');

    // The same commands from a softphone come back as SIP messages.
    for (const c of commands) {
      daemon.journal.recordReceived([
        newMessage({ kind: 'message', source: 'sip', sourceName: `t-${c}`, contentHash: c, oa: '1002', da: '5000', text: c }),
      ]);
    }
    daemon.requestRouting('received');
    await fake.waitFor(() => fake.delivered.length === commands.length, 20_000, 'T replies');
    fake.delivered.forEach((d, i) => {
      assert.equal(d.to, 'pjsip:1002');
      assert.equal(d.from, '"5000" <sip:5000@localhost>');
      assert.match(d.body, expect[i]!);
    });

    // A configured program: every word arrives as one literal argument; nothing is executed.
    const hostile = 'ECHOARGS ; rm -rf / $(id) `id` $(touch MARKER) && | > out';
    writeMorx(tree.morx, { from: '2001', to: '5000', text: hostile }, false);
    await waitUntil(() => replies(tree).length === commands.length + 1, 20_000, 'program reply');
    assert.equal(replies(tree).at(-1)!.text, 'got 12 words');
    assert.deepEqual(readFileSync(path.join(s.dir, 'argv'), 'utf8').split('\n').slice(0, -1), [';', 'rm', '-rf', '/', '$(id)', '`id`', '$(touch', 'MARKER)', '&&', '|', '>', 'out']);
    assert.ok(!existsSync(path.join(s.dir, 'MARKER')) && !existsSync('MARKER') && !existsSync(path.join(s.dir, 'out')));

    // A program that outlives its timeout is killed and the sender is told.
    const before = Date.now();
    writeMorx(tree.morx, { from: '2001', to: '5000', text: 'slow please' }, false);
    await waitUntil(() => replies(tree).length === commands.length + 2, 20_000, 'timeout reply');
    assert.equal(replies(tree).at(-1)!.text, 'Unable to complete the order. Please try again in a few minutes.');
    assert.ok(Date.now() - before < 10_000);

    // SERVICE F with self-service on changes the sender's own entry.
    writeMorx(tree.morx, { from: '2001', to: '5000', text: 'SERVICE F' }, false);
    await waitUntil(() => daemon.directory.get('2001')!.service === 'F', 20_000, 'service changed');
  } finally {
    await stop();
    await fake.close();
    tree.cleanup();
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test('100 commands in a minute from one sender get at most the limit plus one "too many"; SERVICE is refused when self-service is off', async () => {
  const tree = makeSpoolTree(`[commands]\nper_sender_per_minute = 3\nself_service = false\n`);
  const { daemon, stop } = await start(tree);
  try {
    for (let i = 0; i < 100; i++) {
      daemon.journal.recordReceived([
        newMessage({ kind: 'message', source: 'test', sourceName: `flood-${i}`, contentHash: String(i), oa: '2001', da: '5000', text: `PING ${i}` }),
      ]);
    }
    daemon.requestRouting('received');
    await waitUntil(() => (daemon.db.prepare(`SELECT count(*) AS n FROM messages WHERE kind = 'message' AND state = 'delivered'`).get() as { n: number }).n === 100, 20_000, '100 commands handled');
    await daemon.idle();
    const texts = replies(tree).map((r) => r.text);
    assert.equal(texts.filter((t) => t.startsWith('PONG')).length, 3);
    assert.deepEqual(texts.filter((t) => !t.startsWith('PONG')), ['Too many requests. Please wait a minute.']);
  } finally {
    await stop();
    tree.cleanup();
  }
  const off = makeSpoolTree();
  const second = await start(off);
  try {
    writeMorx(off.morx, { from: '2001', to: '5000', text: 'SERVICE F' }, false);
    await waitUntil(() => replies(off).length === 1, 20_000, 'refusal');
    assert.equal(second.daemon.directory.get('2001')!.service, 'S');
    assert.doesNotMatch(replies(off)[0]!.text, /now F/);
  } finally {
    await second.stop();
    off.cleanup();
  }
});
