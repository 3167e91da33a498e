/**
 * F and V delivery end to end: the real daemon (in process) writes a call
 * file, and a fake Asterisk side of FastAGI, written from the recorded
 * SendFAX and Playback sessions, plays the answered call. The outcome comes
 * from FAXSTATUS / PLAYBACKSTATUS, never from the call's "Completed".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import type { Daemon } from '../../src/daemon.js';
import { startDaemon } from '../helpers/daemon.js';
import { answer, faxAnswers, played, takeCall } from '../helpers/calls.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';

const TOML = `[fax]\nretry_delay = 1\nmax_attempts = 3\nretry_backoff = 1\ncaller_id = "Fax <1000>"\n[voice]\nretry_delay = 1\nmax_attempts = 2\nretry_backoff = 1\nrepeats = 2\n`;

async function start(tree: SpoolTree) {
  const { daemon, stop } = await startDaemon(tree);
  daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
  daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax1', faxResolution: 'standard' });
  daemon.directory.add({ number: '4001', service: 'V', channel: 'PJSIP/4001', language: 'pl' });
  return { daemon, stop };
}

function state(daemon: Daemon, id = 1) {
  return daemon.db.prepare(`SELECT state, attempts, last_error AS lastError, detail FROM messages WHERE id = ?`).get(id) as {
    state: string;
    attempts: number;
    lastError: string | null;
    detail: string | null;
  };
}

function notices(tree: SpoolTree) {
  return visibleFiles(tree.mttx).map((n) => {
    const r = phoneReceivesFile(path.join(tree.mttx, n));
    assert.ok(r.ok);
    return r.message.text;
  });
}

test('fax: SUCCESS with every page is delivered; FAXOPTs are set and SendFAX gets the rendered TIFF', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'Faks <script>&amp; z tekstem' }, false);
    const { call, port, script } = await takeCall(tree, 'F', 1, 1);
    assert.equal(call.get('Channel'), 'PJSIP/fax1');
    assert.equal(call.get('CallerID'), 'Fax <1000>');
    assert.equal(script, 'fax/1');
    assert.equal(call.get('Set'), undefined, 'no outcome keeper lines while [ami] outcome_keeper is off');
    const session = await answer(port, script, faxAnswers('SUCCESS', 'HANGUP', 1));
    await waitUntil(() => state(daemon).state === 'delivered', 10_000, 'delivered');
    const lines = session.commands.map((c) => c.line);
    for (const opt of ['localstationid', 'headerinfo', 'ecm', 'minrate', 'maxrate']) assert.ok(lines.some((l) => l.startsWith(`SET VARIABLE FAXOPT(${opt})`)), opt);
    const sendfax = session.commands.find((c) => c.argv[0] === 'EXEC' && c.argv[1] === 'SendFAX')!;
    assert.ok(sendfax.argv[2]!.endsWith(`${path.sep}1.tif`));
    const detail = JSON.parse(state(daemon).detail!) as Record<string, unknown>;
    assert.equal(detail.faxStatus, 'SUCCESS');
    assert.equal(detail.faxPages, 1);
    assert.equal(detail.faxBitrate, 14400);
    assert.ok(!existsSync(sendfax.argv[2]!), 'the TIFF is removed once the message is final');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('fax: FAILED then SUCCESS is delivered after two attempts; a hang-up mid-fax is a failed attempt', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'second time lucky' }, false);
    const first = await takeCall(tree, 'F', 1, 1);
    // The far end hangs up in the middle of SendFAX: the socket closes before any outcome.
    await answer(first.port, first.script, { 'EXEC SendFAX': 'close' });
    await waitUntil(() => state(daemon).state === 'pending', 10_000, 'retry scheduled after the hang-up');
    assert.match(state(daemon).lastError!, /before the fax outcome was known/);
    const second = await takeCall(tree, 'F', 1, 2);
    await answer(second.port, second.script, faxAnswers('FAILED', 'RETRAIN_FAILED', 0));
    await waitUntil(() => state(daemon).state === 'pending' && state(daemon).attempts === 2, 10_000, 'second failure');
    assert.equal(state(daemon).lastError, 'RETRAIN_FAILED');
    const third = await takeCall(tree, 'F', 1, 3);
    await answer(third.port, third.script, faxAnswers('SUCCESS', 'HANGUP', 1));
    await waitUntil(() => state(daemon).state === 'delivered', 10_000, 'delivered on the third attempt');
    assert.equal(state(daemon).attempts, 3);
    assert.deepEqual(notices(tree), [], 'no notice for a message that got through');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('fax: FAILED every time ends in a notice to the sender naming the reason', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'never arrives' }, false);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const c = await takeCall(tree, 'F', 1, attempt);
      await answer(c.port, c.script, faxAnswers('FAILED', 'NO_CARRIER', 0));
    }
    await waitUntil(() => notices(tree).length === 1, 10_000, 'the notice');
    assert.deepEqual(notices(tree), ['Cannot deliver SMS to 3001. Fax failed after 3 attempts: NO_CARRIER.']);
    assert.equal(state(daemon).state, 'bounced');
    assert.equal(visibleFiles(tree.outgoing).filter((n) => n.startsWith('smsr-F-')).length, 0, 'no fourth attempt');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('voice: played to the end is delivered; digit 1 plays it again', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '4001', text: 'Cześć, tu wiadomość głosowa' }, false);
    const c = await takeCall(tree, 'V', 1, 1);
    assert.equal(c.script, 'voice/1');
    let presses = 0;
    // The listener presses 1 during the first "press 1" prompt, then nothing.
    const session = await answer(c.port, c.script, (cmd) => {
      if (cmd.argv[0] === 'STREAM') return [`200 result=${presses++ === 0 ? 49 : 0} endpos=4000`];
      if (cmd.argv[0] === 'GET') return ['200 result=1 (SUCCESS)'];
      if (cmd.argv[0] === 'HANGUP') return ['200 result=1', 'HANGUP'];
      return ['200 result=0'];
    });
    await waitUntil(() => state(daemon).state === 'delivered', 10_000, 'delivered');
    const playbacks = session.commands.filter((x) => x.argv[0] === 'EXEC' && x.argv[1] === 'Playback');
    assert.equal(playbacks.length, 2, 'played, then again after 1');
    assert.ok(playbacks[0]!.argv[2]!.endsWith(`${path.sep}1`), 'Playback gets the path without extension');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('voice: PLAYBACKSTATUS=FAILED is retried, then the sender is told; a hang-up during the message is a failed attempt', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '4001', text: 'nobody hears this' }, false);
    const first = await takeCall(tree, 'V', 1, 1);
    await answer(first.port, first.script, { 'EXEC Playback': ['200 result=-1', 'HANGUP'] });
    await waitUntil(() => state(daemon).state === 'pending', 10_000, 'retry after hang-up');
    assert.equal(state(daemon).lastError, 'hang-up before the end of the message');
    const second = await takeCall(tree, 'V', 1, 2);
    await answer(second.port, second.script, played('FAILED'));
    await waitUntil(() => notices(tree).length === 1, 10_000, 'the notice');
    assert.match(notices(tree)[0]!, /^Cannot deliver SMS to 4001\. No answer after 2 attempts: Asterisk could not play the message \(PLAYBACKSTATUS=FAILED\)\.$/);
    assert.equal(state(daemon).state, 'bounced');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('a call for a message that is not waiting for one is hung up without touching the journal', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    const port = daemon.agiListening!.port;
    const session = await answer(port, 'fax/999', faxAnswers('SUCCESS', 'HANGUP', 1));
    assert.deepEqual(session.commands.map((c) => c.line), ['HANGUP']);
    assert.deepEqual(daemon.db.prepare('SELECT count(*) AS n FROM messages').get(), { n: 0 });
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('an archived Expired call counts as a failed attempt; Failed (our call file refused) fails at once with a notice', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'nobody home' }, false);
    await takeCall(tree, 'F', 1, 1);
    assert.equal(daemon.recordCallFinished('not-ours.call', 'Expired'), false, 'a foreign file is not ours');
    assert.equal(daemon.recordCallFinished('smsr-F-1-a1.call', 'Expired'), true);
    assert.equal(state(daemon).state, 'pending');
    assert.equal(state(daemon).lastError, 'no answer');
    assert.equal(daemon.recordCallFinished('smsr-F-1-a1.call', 'Expired'), false, 'settled once');
    await takeCall(tree, 'F', 1, 2);
    assert.equal(daemon.recordCallFinished('smsr-F-1-a2.call', 'Failed'), true);
    await waitUntil(() => notices(tree).length === 1, 10_000, 'the notice');
    assert.equal(state(daemon).state, 'bounced');
    assert.match(notices(tree)[0]!, /the call file was refused by Asterisk/);
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('outgoing_done: our archived call is read (Expired = a failed attempt) and moved to our archive; foreign files stay', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'ring ring' }, false);
    const { call } = await takeCall(tree, 'F', 1, 1);
    const done = tree.config.spool.outgoingDone;
    mkdirSync(done, { recursive: true });
    // What Asterisk archives after an unanswered call (the real file, with our keys in front).
    const real = readFileSync(new URL('../../../spool-fixtures/outgoing_done/archive_expired_noanswer.call', import.meta.url), 'utf8');
    const ours = call.fields.map(([k, v]) => `${k}: ${v}`).join('\n') + '\n' + real.slice(real.indexOf('\nStartRetry') + 1);
    writeFileSync(path.join(done, 'foreign.call'), real);
    writeFileSync(path.join(done, 'smsr-F-99-a1.call'), real);
    writeFileSync(path.join(done, '.smsr-F-1-a1.call'), ours);
    renameSync(path.join(done, '.smsr-F-1-a1.call'), path.join(done, 'smsr-F-1-a1.call'));
    await waitUntil(() => state(daemon).state === 'pending', 15_000, 'the Expired call read');
    assert.equal(state(daemon).lastError, 'no answer');
    assert.deepEqual(visibleFiles(done), ['foreign.call', 'smsr-F-99-a1.call'], 'files that are not ours are left alone');
    assert.deepEqual(visibleFiles(tree.config.spool.callArchive), ['smsr-F-1-a1.call']);
    assert.equal(readFileSync(path.join(done, 'foreign.call'), 'utf8'), real);
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('pacing: 20 messages to one V recipient never have two calls outstanding; fax calls never exceed max_concurrent_calls', async () => {
  const tree = makeSpoolTree(TOML.replace('[fax]\n', '[fax]\nmax_concurrent_calls = 2\n').replace('repeats = 2', 'repeats = 0'));
  const { daemon, stop } = await start(tree);
  try {
    for (let i = 0; i < 20; i++) writeMorx(tree.morx, { from: '2001', to: '4001', text: `voice ${i}`, now: new Date(Date.now() + i * 1000) }, false);
    const calls = () => visibleFiles(tree.outgoing);
    for (let done = 0; done < 20; done++) {
      await waitUntil(() => calls().length > 0, 20_000, `call ${done + 1}`);
      assert.equal(calls().length, 1, 'never two calls to one channel');
      const name = calls()[0]!;
      const c = await takeCall(tree, 'V', Number(name.split('-')[2]), 1);
      await answer(c.port, c.script, played('SUCCESS'));
    }
    await waitUntil(() => (daemon.db.prepare(`SELECT count(*) AS n FROM messages WHERE state = 'delivered'`).get() as { n: number }).n === 20, 20_000, 'all 20 heard');

    for (let i = 0; i < 10; i++) daemon.directory.add({ number: `31${String(i).padStart(2, '0')}`, service: 'F', channel: `PJSIP/fax${i + 10}` });
    for (let i = 0; i < 10; i++) writeMorx(tree.morx, { from: '2001', to: `31${String(i).padStart(2, '0')}`, text: `fax ${i}` }, false);
    let faxed = 0;
    let most = 0;
    while (faxed < 10) {
      await waitUntil(() => calls().length > 0, 20_000, 'fax calls');
      // Give the daemon every chance to (wrongly) place more calls before looking.
      await daemon.idle();
      most = Math.max(most, calls().length);
      assert.ok(calls().length <= 2, `${calls().length} fax calls outstanding`);
      for (const name of calls()) {
        const c = await takeCall(tree, 'F', Number(name.split('-')[2]), 1);
        await answer(c.port, c.script, faxAnswers('SUCCESS', 'HANGUP', 1));
        faxed++;
      }
    }
    assert.equal(most, 2, 'two lines were used at once');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('a restart in the middle of a retry schedule makes the next attempt at the recorded time, not sooner, not twice', async () => {
  const tree = makeSpoolTree(TOML.replace('retry_delay = 1\nmax_attempts = 3', 'retry_delay = 3\nmax_attempts = 3'));
  let first: Awaited<ReturnType<typeof start>> | undefined = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'try again later' }, false);
    const c = await takeCall(tree, 'F', 1, 1);
    await answer(c.port, c.script, faxAnswers('FAILED', 'NO_CARRIER', 0));
    await waitUntil(() => state(first!.daemon).state === 'pending', 10_000, 'retry scheduled');
    const due = new Date((first.daemon.db.prepare('SELECT next_attempt_at AS t FROM messages WHERE id = 1').get() as { t: string }).t).getTime();
    await first.stop();
    first = undefined;
    const second = await startDaemon(tree);
    try {
      const a2 = path.join(tree.outgoing, 'smsr-F-1-a2.call');
      // Not sooner: nothing until the recorded time.
      while (Date.now() < due - 250) {
        assert.ok(!existsSync(a2), 'the second attempt came before its time');
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitUntil(() => existsSync(a2), 10_000, 'the second attempt');
      assert.ok(Date.now() >= due - 250);
      // Not twice: routing passes after it write nothing more.
      second.daemon.requestRouting('pending');
      await second.daemon.idle();
      assert.deepEqual(visibleFiles(tree.outgoing), ['smsr-F-1-a2.call']);
      assert.equal(state(second.daemon).attempts, 2);
    } finally {
      await second.stop();
    }
  } finally {
    await first?.stop();
    tree.cleanup();
  }
});
