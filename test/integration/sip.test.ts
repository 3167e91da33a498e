/**
 * SIP messages both ways, through the real daemon (in process) against the
 * protocol-faithful fakes: a fake Asterisk manager for MessageSend, and a
 * fake Asterisk side of FastAGI for inbound messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import { FakeAmiServer, TEXT } from '../fakes/ami-server.js';
import { connectFakeAgi, type AgiAnswer } from '../fakes/agi-client.js';
import type { Daemon } from '../../src/daemon.js';
import { startDaemon } from '../helpers/daemon.js';
import { newMessage } from '../../src/journal/journal.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';

function amiToml(fake: FakeAmiServer | { port: number }) {
  return `[ami]\nenabled = true\nhost = "127.0.0.1"\nport = ${fake.port}\nusername = "labami"\nsecret = "labsecret123"\naction_timeout = 5\n[sip]\ndomain = "pbx.example"\n`;
}

function rows(daemon: Daemon) {
  return daemon.db.prepare(`SELECT id, kind, oa, da, state, route, last_error AS lastError FROM messages ORDER BY id`).all() as Array<{
    id: number;
    kind: string;
    oa: string;
    da: string;
    state: string;
    route: string;
    lastError: string | null;
  }>;
}

function mttxTexts(tree: SpoolTree) {
  return visibleFiles(tree.mttx).map((n) => {
    const r = phoneReceivesFile(path.join(tree.mttx, n));
    assert.ok(r.ok);
    return { queue: n.split('.')[0], oa: r.message.oa, text: r.message.text };
  });
}

/** What Asterisk answers when the daemon reads an inbound MESSAGE (from the recorded session). */
function messageAnswers(from: string, to: string, body: string): Record<string, AgiAnswer> {
  return {
    'GET FULL VARIABLE ${MESSAGE(from)}': [`200 result=1 (<sip:${from}@127.0.0.1:5098>)`],
    'GET FULL VARIABLE ${MESSAGE(to)}': [`200 result=1 (sip:${to}@127.0.0.1:5070)`],
    'GET FULL VARIABLE ${BASE64_ENCODE(${MESSAGE(body)})}': [`200 result=1 (${Buffer.from(body, 'utf8').toString('base64')})`],
  };
}

async function inboundMessage(daemon: Daemon, from: string, to: string, body: string, extra: { closeAfter?: number; uniqueid?: string } = {}) {
  const client = await connectFakeAgi({
    port: daemon.agiListening!.port,
    script: 'message',
    env: { agi_extension: to, agi_uniqueid: extra.uniqueid ?? `${Date.now()}.${Math.random()}`, agi_channel: 'Message/ast_msg_queue' },
    answers: messageAnswers(from, to, body),
    closeAfter: extra.closeAfter,
  });
  await client.closed;
  return client;
}

test('T route: Polish letters, an emoji and a newline arrive byte-exact after Base64 decoding', async () => {
  const fake = await FakeAmiServer.start();
  const tree = makeSpoolTree(amiToml(fake));
  try {
    const { daemon, stop } = await startDaemon(tree);
    daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
    daemon.directory.add({ number: '1002', service: 'T', channel: 'PJSIP/1002' });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    const body = 'Zażółć gęślą jaźń 😀\ndruga linia; "q" $(id)\r\nend';
    const session = await inboundMessage(daemon, '1002', '1001', body);
    assert.ok(session.commands.some((c) => c.line === 'SET VARIABLE MSG_CHAN_OPT "T"'), 'MSG_CHAN_OPT tells the dialplan the service');
    writeMorx(tree.morx, { from: '2001', to: '1001', text: 'Z telefonu: żółw\nkoniec' }, false);
    await fake.waitFor(() => fake.delivered.length === 2, 10_000, 'two MessageSends');
    const [fromSip, fromPhone] = fake.delivered;
    assert.deepEqual(fromSip, { conn: fromSip!.conn, to: 'pjsip:1001', from: '"1002" <sip:1002@pbx.example>', body });
    assert.deepEqual({ to: fromPhone!.to, from: fromPhone!.from, body: fromPhone!.body }, { to: 'pjsip:1001', from: '"2001" <sip:2001@pbx.example>', body: 'Z telefonu: żółw\nkoniec' });
    // Nothing but Key: value lines reached the socket: the CR/LF of the body travelled inside Base64.
    for (const a of fake.actionsNamed('MessageSend')) {
      for (const [k, v] of a.message.fields) assert.ok(k !== '' && !/[\r\n]/.test(v), `clean field ${k}`);
    }
    await waitUntil(() => rows(daemon).every((r) => r.state === 'spooled'), 5_000, 'rows spooled');
    assert.deepEqual(rows(daemon).map((r) => [r.oa, r.da, r.route, r.state]), [
      ['1002', '1001', 'T', 'spooled'],
      ['2001', '1001', 'T', 'spooled'],
    ]);
    await stop();
  } finally {
    await fake.close();
    tree.cleanup();
  }
});

test('T route: an Error response produces a notice to an S sender in mttx', async () => {
  const fake = await FakeAmiServer.start();
  fake.messageSendErrors.set('pjsip:1001', TEXT.failed);
  const tree = makeSpoolTree(amiToml(fake));
  try {
    const { daemon, stop } = await startDaemon(tree);
    daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    await daemon.ami!.waitConnected(5_000);
    writeMorx(tree.morx, { from: '2001', to: '1001', text: 'are you there?' }, false);
    await waitUntil(() => mttxTexts(tree).length === 1, 10_000, 'the notice in mttx');
    assert.deepEqual(mttxTexts(tree), [{ queue: '2001', oa: '1000', text: 'Cannot deliver SMS to 1001. VoIP user not logged in.' }]);
    const [message, notice] = rows(daemon);
    assert.equal(message!.state, 'bounced');
    assert.match(message!.lastError!, /Message failed to send/);
    assert.equal(notice!.kind, 'notice');
    assert.equal(notice!.state, 'spooled');
    assert.equal(fake.delivered.length, 0);
    await stop();
  } finally {
    await fake.close();
    tree.cleanup();
  }
});

test('the AMI server dies with 100 MessageSends pending: each fails fast, waits, and reaches the fake exactly once after reconnect', async () => {
  const fake = await FakeAmiServer.start();
  fake.stalled.add('messagesend');
  const tree = makeSpoolTree(amiToml(fake));
  try {
    const lines: string[] = [];
    const { daemon, stop } = await startDaemon(tree, lines);
    daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
    await daemon.ami!.waitConnected(5_000);
    for (let i = 0; i < 100; i++) {
      daemon.journal.recordReceived([
        newMessage({ kind: 'message', source: 'test', sourceName: `m${i}`, contentHash: String(i), oa: '2001', da: '1001', text: `message ${i}` }),
      ]);
    }
    daemon.requestRouting('received');
    // The client sends a window at a time; wait until the server holds some unanswered, then kill it.
    await fake.waitFor(() => fake.actionsNamed('MessageSend').length >= 16, 10_000, 'MessageSends in flight');
    const killedAt = Date.now();
    await fake.stopListening();
    fake.dropConnections();
    await waitUntil(() => rows(daemon).every((r) => r.state === 'pending'), 5_000, 'all 100 waiting');
    const failFast = Date.now() - killedAt;
    assert.ok(failFast < 4_000, `pending actions failed in ${failFast} ms, before the 5 s action timeout`);
    assert.ok(rows(daemon).every((r) => r.lastError === 'AMI_DISCONNECTED' || r.lastError === 'AMI_NOT_CONNECTED'));
    // Asterisk comes back.
    fake.stalled.clear();
    await fake.listen();
    await waitUntil(() => rows(daemon).every((r) => r.state === 'spooled'), 20_000, 'all 100 sent after reconnect');
    const bodies = fake.delivered.map((d) => d.body);
    assert.equal(bodies.length, 100);
    assert.equal(new Set(bodies).size, 100, 'each message exactly once');
    assert.deepEqual(bodies, Array.from({ length: 100 }, (_, i) => `message ${i}`), 'in journal order');
    await stop();
  } finally {
    await fake.close();
    tree.cleanup();
  }
});

test('AMI unreachable at start: T messages wait in the journal and go out in order when it appears', async () => {
  const fake = new FakeAmiServer();
  await fake.listen();
  const port = fake.port;
  await fake.stopListening();
  const tree = makeSpoolTree(amiToml({ port }));
  try {
    const { daemon, stop } = await startDaemon(tree);
    daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
    for (let i = 0; i < 5; i++) writeMorx(tree.morx, { from: '2001', to: '1001', text: `queued ${i}`, now: new Date(Date.now() + i * 1000) }, false);
    await waitUntil(() => rows(daemon).length === 5 && rows(daemon).every((r) => r.state === 'pending'), 10_000, 'five pending');
    await fake.listen();
    await waitUntil(() => rows(daemon).every((r) => r.state === 'spooled'), 20_000, 'sent once AMI is up');
    assert.deepEqual(fake.delivered.map((d) => d.body), ['queued 0', 'queued 1', 'queued 2', 'queued 3', 'queued 4']);
    await stop();
  } finally {
    await fake.close();
    tree.cleanup();
  }
});

test('inbound SIP: to an S phone it arrives in mttx; to an unknown number the softphone gets a SIP notice back', async () => {
  const fake = await FakeAmiServer.start();
  const tree = makeSpoolTree(amiToml(fake));
  try {
    const { daemon, stop } = await startDaemon(tree);
    daemon.directory.add({ number: '1002', service: 'T', channel: 'PJSIP/1002' });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    await daemon.ami!.waitConnected(5_000);
    const long = `Cześć z softphona! ${'długa wiadomość '.repeat(8)}😀`;
    const toPhone = await inboundMessage(daemon, '1002', '2001', long);
    assert.ok(toPhone.commands.some((c) => c.line === 'SET VARIABLE MSG_CHAN_OPT "S"'));
    await waitUntil(() => mttxTexts(tree).length >= 2, 10_000, 'parts in mttx');
    const parts = mttxTexts(tree);
    assert.ok(parts.every((p) => p.queue === '2001' && p.oa === '1002'));
    const joined = visibleFiles(tree.mttx)
      .map((n) => phoneReceivesFile(path.join(tree.mttx, n)))
      .map((r) => (r.ok ? r.message : undefined)!)
      .sort((a, b) => a.udh!.localeCompare(b.udh!))
      .map((m) => m.text)
      .join('');
    assert.equal(joined, long.replace('😀', '?'), 'split for the phone, the emoji replaced visibly');

    const toNobody = await inboundMessage(daemon, '1002', '5555', 'hello?');
    assert.ok(toNobody.commands.some((c) => c.line === 'SET VARIABLE MSG_CHAN_OPT "U"'));
    await fake.waitFor(() => fake.delivered.length === 1, 10_000, 'the SIP notice');
    assert.deepEqual({ to: fake.delivered[0]!.to, from: fake.delivered[0]!.from, body: fake.delivered[0]!.body }, {
      to: 'pjsip:1002',
      from: '"1000" <sip:1000@pbx.example>',
      body: 'Cannot deliver SMS to 5555. Number does not exist.',
    });
    await stop();
  } finally {
    await fake.close();
    tree.cleanup();
  }
});

test('an AGI session that hangs up at each step leaves the daemon running and the message in a defined state', async () => {
  const tree = makeSpoolTree();
  try {
    const { daemon, stop } = await startDaemon(tree);
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    // The handler sends: GET from, GET to, GET body, SET MSG_CHAN_OPT. Close after 0..4 answers.
    for (let step = 0; step <= 4; step++) {
      await inboundMessage(daemon, '3003', '2001', `hang-up step ${step}`, { closeAfter: step, uniqueid: `step-${step}` });
    }
    await waitUntil(() => rows(daemon).filter((r) => r.state === 'spooled').length === 2, 5_000, 'the recorded ones routed');
    // Before the body was read nothing can be recorded (Asterisk already answered the softphone 202);
    // once it was read, the message is recorded and delivered even if the session is gone.
    assert.deepEqual(mttxTexts(tree).map((m) => m.text).sort(), ['hang-up step 3', 'hang-up step 4']);
    assert.ok(rows(daemon).every((r) => r.state === 'spooled'));
    // Still serving.
    await inboundMessage(daemon, '3003', '2001', 'after the hang-ups');
    await waitUntil(() => mttxTexts(tree).length === 3, 5_000, 'a later session works');
    await stop();
  } finally {
    tree.cleanup();
  }
});

test('a notice to a T sender is sent once: routing it from inside the work loop starts no second loop', async () => {
  const fake = await FakeAmiServer.start();
  const tree = makeSpoolTree(amiToml(fake));
  try {
    const { daemon, stop } = await startDaemon(tree);
    try {
      await waitUntil(() => daemon.ami!.state === 'connected', 10_000, 'AMI login');
      daemon.directory.add({ number: '3001', service: 'T', channel: 'PJSIP/3001' });
      // Unknown recipients: each bounce() asks for routing while the loop is in its first, synchronous stretch.
      for (let i = 0; i < 5; i++) writeMorx(tree.morx, { from: '3001', to: `999${i}`, text: `to nobody ${i}` }, false);
      await waitUntil(() => rows(daemon).filter((r) => r.kind === 'notice' && r.state === 'spooled').length === 5, 10_000, 'five notices handed to AMI');
      await daemon.idle();
      // Any second loop would have sent its copies by now: every action is answered at once by the fake.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(fake.actionsNamed('MessageSend').length, 5);
      assert.deepEqual(fake.delivered.map((d) => d.to).sort(), Array(5).fill('pjsip:3001'));
    } finally {
      await stop();
    }
  } finally {
    await fake.close();
    tree.cleanup();
  }
});
