/**
 * Security: at the default level (info) the logs hold neither the AMI secret
 * nor any message text (texts are private, and attacker-controlled). Message
 * texts may appear only with --log-level debug; the secret never does, at any
 * level (logger.ts redacts `secret` always and `text` below debug, as a second
 * line of defence behind code that does not log them in the first place).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, runCli, spawnCli, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { memoryLogger } from '../helpers/daemon.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { connectFakeAgi } from '../fakes/agi-client.js';
import { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';
import { writeMorx } from '../../src/cli/send.js';
import { dropMorx } from './support.js';

const SECRET = 'Ami-S3cret-7f2e9d41';

/** Texts that must never be logged at info, each distinctive enough to be found anywhere in a line. */
const TEXTS = {
  s: 'TXTs-a81f to the kitchen phone',
  t: 'TXTt-b72c to the softphone',
  c: 'PING TXTc-c63d',
  unknown: 'TXTu-d54e to nobody',
  f: 'TXTf-e45f by fax',
  v: 'TXTv-f36a spoken',
  sip: 'TXTsip-0a1b from a softphone',
  quarantined: 'TXTq-9c8d in a broken file',
};

/** Every way a text could show up in a log line: as is, its distinctive token alone, or Base64 (AMI). */
function needles(): string[] {
  return Object.values(TEXTS).flatMap((t) => [t, /TXT\w+-\w+/.exec(t)![0], Buffer.from(t).toString('base64')]);
}

function assertClean(lines: readonly string[], forbidden: readonly string[]): void {
  assert.ok(lines.length > 0);
  for (const line of lines) {
    for (const f of forbidden) assert.ok(!line.includes(f), `${JSON.stringify(f)} logged:\n${line}`);
  }
}

function flowToml(fake: FakeAmiServer): string {
  return `[ami]\nenabled = true\nport = ${fake.port}\nusername = "${fake.username}"\nsecret = "${SECRET}"\naction_timeout = 5\n[commands]\nper_sender_per_minute = 50\n`;
}

test('a full flow (S, T, C, F, V, notices, inbound SIP, a quarantined file) through the real daemon at the default level logs no text and no AMI secret', { timeout: 120_000 }, async () => {
  const fake = await FakeAmiServer.start();
  fake.secret = SECRET;
  const t = makeSpoolTree(flowToml(fake));
  try {
    const csv = path.join(t.dir, 'numbers.csv');
    writeFileSync(csv, 'number,service,channel,name\n2001,S,DAHDI/1,Kitchen\n1001,T,PJSIP/1001,Soft\n5000,C,,Desk\n3001,F,PJSIP/fax1,Fax\n4001,V,PJSIP/4001,Voice\n');
    const seed = await runCli(['users', 'import', '--config', t.configPath, csv]);
    assert.equal(seed.code, 0, seed.stderr);
    const daemon = spawnCli(['run', '--config', t.configPath]);
    try {
      const listening = await daemon.waitForLine((l) => l.includes('FastAGI service listening'));
      const agiPort = Number((JSON.parse(listening) as { agi: string }).agi.split(':').pop());
      await daemon.waitForLine((l) => l.includes('AMI connected'));
      const sends: Array<[string, string, string]> = [
        ['2002', '2001', TEXTS.s],
        ['2001', '1001', TEXTS.t],
        ['2001', '5000', TEXTS.c],
        ['2001', '9999', TEXTS.unknown],
        ['2001', '3001', TEXTS.f],
        ['2001', '4001', TEXTS.v],
      ];
      sends.forEach(([from, to, text], i) => writeMorx(t.morx, { from, to, text, now: new Date(Date.now() + i * 1000) }, false));
      dropMorx(t.morx, 'broken.1', `oa=2001\nda=2001\nud=${TEXTS.quarantined}\nthis line has no equals sign\n`);
      const sip = await connectFakeAgi({
        port: agiPort,
        script: 'message',
        env: { agi_extension: '2001', agi_uniqueid: 'log-1' },
        answers: {
          'GET FULL VARIABLE ${MESSAGE(from)}': ['200 result=1 (<sip:1001@127.0.0.1:5098>)'],
          'GET FULL VARIABLE ${MESSAGE(to)}': ['200 result=1 (sip:2001@127.0.0.1)'],
          'GET FULL VARIABLE ${BASE64_ENCODE(${MESSAGE(body)})}': [`200 result=1 (${Buffer.from(TEXTS.sip).toString('base64')})`],
        },
      });
      await sip.closed;
      // S message, PING reply, notice for 9999 and the SIP message in mttx; the T message at the fake; F and V calls placed.
      await waitUntil(() => visibleFiles(t.mttx).length === 4 && visibleFiles(t.outgoing).filter((n) => /^smsr-[FV]-/.test(n)).length === 2, 60_000, 'every route done');
      await fake.waitFor(() => fake.delivered.some((d) => d.body === TEXTS.t), 10_000, 'the T message');
      await waitUntil(() => visibleFiles(t.quarantine).length === 2, 10_000, 'the quarantined file');
    } finally {
      daemon.child.kill('SIGTERM');
      assert.equal((await daemon.exited).code, 0, daemon.stderr.join(''));
    }
    // The flow really happened, and was logged: one line per message with its outcome.
    const outcomes = daemon.lines.map((l) => (JSON.parse(l) as { outcome?: string }).outcome).filter(Boolean);
    for (const o of ['spooled', 'bounced', 'calling', 'delivered', 'received']) assert.ok(outcomes.includes(o), `an ${o} line`);
    assert.ok(daemon.lines.some((l) => l.includes('spool file quarantined')));
    assertClean([...daemon.lines, ...daemon.stderr], [SECRET, ...needles()]);
  } finally {
    await fake.close();
    t.cleanup();
  }
});

test('at debug level the AMI secret is still never logged: a good login, T messages, and a refused login', { timeout: 60_000 }, async () => {
  const fake = await FakeAmiServer.start();
  fake.secret = SECRET;
  const t = makeSpoolTree(flowToml(fake));
  const lines: string[] = [];
  try {
    const daemon = new Daemon(t.config, memoryLogger(lines, 'debug'), { fsync: false });
    const ready = new Promise<void>((r) => void daemon.run(() => r()));
    try {
      await ready;
      await daemon.ami!.waitConnected(5_000);
      daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
      writeMorx(t.morx, { from: '2001', to: '1001', text: TEXTS.t }, false);
      await fake.waitFor(() => fake.delivered.length === 1, 10_000, 'the T message');
      // Asterisk's manager.conf changes under us: the same secret is now refused.
      fake.loginAccepted = false;
      fake.dropConnections();
      await waitUntil(() => lines.some((l) => l.includes('AMI login refused')), 10_000, 'a refused login');
    } finally {
      await daemon.stop();
    }
    assert.ok(lines.some((l) => l.includes('"level":"debug"')), 'debug lines were written');
    assertClean(lines, [SECRET]);
  } finally {
    await fake.close();
    t.cleanup();
  }
});

test('logger.ts redacts `secret` at every level and `text` below debug, at the top level and one level down', () => {
  const capture = (level: 'info' | 'debug') => {
    const out: string[] = [];
    const log = createLogger(level, new Writable({ write: (c, _e, cb) => (out.push(String(c)), cb()) }));
    log.info({ text: 'TOP-TEXT', secret: 'TOP-SECRET', message: { text: 'NESTED-TEXT' }, ami: { secret: 'NESTED-SECRET' } }, 'x');
    return out.join('');
  };
  const info = capture('info');
  for (const v of ['TOP-TEXT', 'TOP-SECRET', 'NESTED-TEXT', 'NESTED-SECRET']) assert.ok(!info.includes(v), `info: ${v}`);
  const debug = capture('debug');
  for (const v of ['TOP-SECRET', 'NESTED-SECRET']) assert.ok(!debug.includes(v), `debug: ${v}`);
  assert.ok(debug.includes('TOP-TEXT'), 'texts are for --log-level debug');
});
