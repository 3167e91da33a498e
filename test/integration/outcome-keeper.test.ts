/**
 * The outcome keeper ([ami] outcome_keeper), with the real daemon in process,
 * a fake AMI that keeps an AstDB, and the Asterisk side of each call played
 * by hand (test/helpers/calls.ts): the call file pushes the hangup handler;
 * the handler's value (written here into the fake's AstDB, as the dialplan
 * in docs/asterisk/outcome-keeper.conf would) settles an answered call whose
 * FastAGI session never reported, exactly as the session would have; the key
 * is deleted once the journal has the outcome; and without a value, with AMI
 * down or refusing, the daemon does what it does without the keeper.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { answer, archiveCall, faxAnswers, takeCall } from '../helpers/calls.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { writeMorx } from '../../src/cli/send.js';
import type { Daemon } from '../../src/daemon.js';

const CONTEXT = 'sms-router-outcome';

function keeperToml(fake: FakeAmiServer, keeper = CONTEXT): string {
  return (
    `[ami]\nenabled = true\nhost = "127.0.0.1"\nport = ${fake.port}\nusername = "labami"\nsecret = "labsecret123"\naction_timeout = 2\noutcome_keeper = "${keeper}"\n` +
    `[fax]\nretry_delay = 1\nmax_attempts = 3\nretry_backoff = 1\nmax_concurrent_calls = 4\n[voice]\nretry_delay = 1\nmax_attempts = 3\nretry_backoff = 1\nrepeats = 0\n`
  );
}

/** A fake AMI and a spool tree; `run()` starts a daemon on them. Everything is stopped and removed after the test, last first. */
async function setup(t: TestContext) {
  const fake = await FakeAmiServer.start();
  const tree = makeSpoolTree(keeperToml(fake));
  const stops: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop(); // stop() may be called twice: a test stops a daemon to restart
    await fake.close();
    tree.cleanup();
  });
  const run = async (lines: string[] = []) => {
    const started = await start(tree, lines);
    stops.push(started.stop);
    return started;
  };
  return { fake, tree, run };
}

async function start(tree: SpoolTree, lines: string[]) {
  const started = await startDaemon(tree, lines);
  const { directory } = started.daemon;
  // The directory is in the database: a restarted daemon has it already.
  if (!directory.get('3001')) {
    for (const n of ['3001', '3002', '3003']) directory.add({ number: n, service: 'F', channel: `PJSIP/fax${n}`, faxResolution: 'standard' });
    for (const n of ['4001', '4002']) directory.add({ number: n, service: 'V', channel: `PJSIP/${n}` });
  }
  return started;
}

interface Row {
  state: string;
  attempts: number;
  lastError: string | null;
  detail: Record<string, unknown>;
  updatedAt: string;
}

function row(daemon: Daemon, id: number): Row {
  const r = daemon.db.prepare(`SELECT state, attempts, last_error AS lastError, detail, updated_at AS updatedAt FROM messages WHERE id = ?`).get(id) as Omit<Row, 'detail'> & { detail: string | null };
  return { ...r, detail: r.detail ? (JSON.parse(r.detail) as Record<string, unknown>) : {} };
}

const setLines = (text: string) => text.split('\n').filter((l) => l.startsWith('Set: '));
const keeperLog = (lines: string[]) => lines.filter((l) => l.includes('outcome read from the outcome keeper'));

test('keeper on: F and V call files carry SMSR_CALL and push the hangup handler', async (t) => {
  const { tree, run } = await setup(t);
  await run();
  writeMorx(tree.morx, { from: '2001', to: '3001', text: 'fax with a keeper' }, false);
  writeMorx(tree.morx, { from: '2001', to: '4001', text: 'voice with a keeper' }, false);
  const fax = await takeCall(tree, 'F', 1, 1);
  const voice = await takeCall(tree, 'V', 2, 1);
  assert.deepEqual(setLines(fax.text), ['Set: SMSR_CALL=smsr-F-1-a1', `Set: CHANNEL(hangup_handler_push)=${CONTEXT},s,1`]);
  assert.deepEqual(setLines(voice.text), ['Set: SMSR_CALL=smsr-V-2-a1', `Set: CHANNEL(hangup_handler_push)=${CONTEXT},s,1`]);
});

test('an answered fax whose session never reported (the daemon was down) is delivered from AstDB after the restart, once; the key is deleted; reading it again changes nothing', async (t) => {
  const { fake, tree, run } = await setup(t);
  const first = await run();
  writeMorx(tree.morx, { from: '2001', to: '3001', text: 'the fax went through without us' }, false);
  const taken = await takeCall(tree, 'F', 1, 1);
  await first.stop();
  // While the daemon is down, Asterisk finishes the fax; the hangup handler records it, then pbx_spool archives the call.
  fake.astdb.set('sms-router/smsr-F-1-a1', 'SUCCESS:1::HANGUP');
  archiveCall(tree, taken, 'Completed');

  const lines: string[] = [];
  const { daemon } = await run(lines);
  await waitUntil(() => row(daemon, 1).state === 'delivered', 10_000, 'delivered from the keeper');
  const r = row(daemon, 1);
  assert.equal(r.attempts, 1);
  assert.deepEqual(r.detail, { faxStatus: 'SUCCESS', faxError: 'HANGUP', faxPages: 1, outcomeFrom: 'outcome-keeper', expectedPages: 1 });
  await waitUntil(() => fake.astdb.size === 0, 10_000, 'the key deleted');
  assert.deepEqual(fake.actions.filter((a) => a.name.startsWith('DB')).map((a) => [a.name, a.message.get('Family'), a.message.get('Key')]), [
    ['DBGet', 'sms-router', 'smsr-F-1-a1'],
    ['DBDel', 'sms-router', 'smsr-F-1-a1'],
  ]);
  assert.equal(keeperLog(lines).length, 1, 'the log says the outcome came from the keeper');
  await waitUntil(() => visibleFiles(tree.config.spool.callArchive).includes('smsr-F-1-a1.call'), 10_000, 'the call file put away');
  assert.ok(!existsSync(path.join(tree.config.fax.dir, '1.tif')), 'the TIFF is removed once the message is final');
  await daemon.idle();
  assert.deepEqual(visibleFiles(tree.outgoing), [], 'no second call');

  // A crash between the commit and the DBDel (or the put-away) leaves both behind: read again, nothing changes.
  const before = row(daemon, 1);
  fake.astdb.set('sms-router/smsr-F-1-a1', 'SUCCESS:1::HANGUP');
  archiveCall(tree, taken, 'Completed');
  await waitUntil(() => fake.astdb.size === 0 && visibleFiles(tree.config.spool.outgoingDone).length === 0, 10_000, 'read again and put away');
  assert.deepEqual(row(daemon, 1), before, 'the journal is the truth: the settled call is not recorded twice');
  assert.equal(keeperLog(lines).length, 1, 'no second lookup for a settled call');
  assert.equal(fake.actionsNamed('DBGet').length, 1);
});

test('what the keeper recorded is judged as the session judges it: FAILED and too few pages are failed attempts with their reason, played V is delivered, unplayed V is not', async (t) => {
  const { fake, tree, run } = await setup(t);
  const lines: string[] = [];
  const { daemon } = await run(lines);
  const cases = [
    { to: '3001', letter: 'F', value: 'FAILED:0::The call dropped prematurely', state: 'pending', lastError: 'The call dropped prematurely' },
    { to: '3002', letter: 'F', value: 'SUCCESS:0::HANGUP', state: 'pending', lastError: 'only 0 of 1 pages went through' },
    { to: '4001', letter: 'V', value: '::SUCCESS:', state: 'delivered', lastError: null },
    { to: '4002', letter: 'V', value: ':::', state: 'pending', lastError: 'Asterisk could not play the message (PLAYBACKSTATUS=unset)' },
  ] as const;
  cases.forEach((c, i) => writeMorx(tree.morx, { from: '2001', to: c.to, text: `case ${i}`, now: new Date(Date.now() + i * 1000) }, false));
  for (const [i, c] of cases.entries()) {
    const taken = await takeCall(tree, c.letter, i + 1, 1);
    fake.astdb.set(`sms-router/${taken.name.replace('.call', '')}`, c.value);
    archiveCall(tree, taken, 'Completed');
  }
  for (const [i, c] of cases.entries()) {
    await waitUntil(() => row(daemon, i + 1).state === c.state && row(daemon, i + 1).lastError === c.lastError, 10_000, `case ${i}: ${c.state}`);
    assert.equal(row(daemon, i + 1).detail.outcomeFrom, 'outcome-keeper', `case ${i}`);
  }
  assert.equal(keeperLog(lines).length, 4);
  await waitUntil(() => fake.astdb.size === 0, 10_000, 'every key deleted');
  // The failed attempts are retried as usual: a new call for each.
  await takeCall(tree, 'F', 1, 2);
  await takeCall(tree, 'F', 2, 2);
  await takeCall(tree, 'V', 4, 2);
});

test('without a usable record (no key, DBGet refused, a value of another format, AMI down) an answered call is a failed attempt as without the keeper, and the daemon goes on', async (t) => {
  const { fake, tree, run } = await setup(t);
  const lines: string[] = [];
  const { daemon } = await run(lines);
  const asToday = 'the call was answered but the FastAGI session never reported';
  const settle = async (id: number, to: string, prepare: (key: string) => void) => {
    writeMorx(tree.morx, { from: '2001', to, text: `message ${id}`, now: new Date(Date.now() + id * 1000) }, false);
    const taken = await takeCall(tree, 'F', id, 1);
    prepare(`sms-router/${taken.name.replace('.call', '')}`);
    archiveCall(tree, taken, 'Completed');
    await waitUntil(() => row(daemon, id).lastError === asToday, 15_000, `message ${id} settled as without the keeper`);
    assert.equal(row(daemon, id).state, 'pending', 'a retry is scheduled');
  };
  await daemon.ami!.waitConnected(5_000);
  await settle(1, '3001', () => undefined);
  fake.denied.add('dbget');
  await settle(2, '3002', (key) => fake.astdb.set(key, 'SUCCESS:1::HANGUP'));
  fake.denied.clear();
  await settle(3, '3003', (key) => fake.astdb.set(key, 'delivered!'));
  const warnings = lines.filter((l) => l.includes('outcome keeper: nothing known'));
  assert.equal(warnings.length, 3);
  assert.match(warnings[0]!, /no AstDB entry for the call/);
  assert.match(warnings[1]!, /DBGet failed \(AMI_ACTION_FAILED: AMI DBGet refused: Permission denied\)/);
  assert.match(warnings[2]!, /is not FAXSTATUS:FAXPAGES:PLAYBACKSTATUS:FAXERROR/);
  await waitUntil(() => !fake.astdb.has('sms-router/smsr-F-2-a1') && !fake.astdb.has('sms-router/smsr-F-3-a1'), 10_000, 'keys deleted after the outcome');

  // AMI down: nothing to ask; the value stays in AstDB, and the next attempt is placed as usual.
  await fake.stopListening();
  await waitUntil(() => daemon.ami!.state !== 'connected', 5_000, 'AMI seen down');
  const again = await takeCall(tree, 'F', 1, 2);
  fake.astdb.set('sms-router/smsr-F-1-a2', 'SUCCESS:1::HANGUP');
  archiveCall(tree, again, 'Completed');
  await waitUntil(() => row(daemon, 1).attempts === 2 && row(daemon, 1).state === 'pending', 15_000, 'second attempt settled');
  assert.match(lines.filter((l) => l.includes('outcome keeper: nothing known')).at(-1)!, /AMI is not connected/);
  assert.ok(lines.some((l) => l.includes('stays in AstDB')), 'the key it could not delete is named');
  assert.equal(fake.astdb.get('sms-router/smsr-F-1-a2'), 'SUCCESS:1::HANGUP');
  assert.equal(keeperLog(lines).length, 0);
});

test('after a session recorded the outcome, the archived call deletes the key the handler wrote; an Expired call deletes its key too', async (t) => {
  const { fake, tree, run } = await setup(t);
  const { daemon } = await run();
  writeMorx(tree.morx, { from: '2001', to: '3001', text: 'a normal fax' }, false);
  writeMorx(tree.morx, { from: '2001', to: '3002', text: 'nobody answers', now: new Date(Date.now() + 1000) }, false);
  const taken = await takeCall(tree, 'F', 1, 1);
  await answer(taken.port, taken.script, faxAnswers('SUCCESS', 'HANGUP', 1));
  await waitUntil(() => row(daemon, 1).state === 'delivered', 10_000, 'delivered by the session');
  fake.astdb.set('sms-router/smsr-F-1-a1', 'SUCCESS:1::HANGUP');
  archiveCall(tree, taken, 'Completed');
  const unanswered = await takeCall(tree, 'F', 2, 1);
  fake.astdb.set('sms-router/smsr-F-2-a1', ':::');
  archiveCall(tree, unanswered, 'Expired');
  await waitUntil(() => fake.astdb.size === 0, 10_000, 'both keys deleted');
  assert.deepEqual(fake.actionsNamed('DBGet'), [], 'nothing to look up: the session recorded one outcome, the other call was never answered');
  assert.equal(row(daemon, 2).lastError, 'no answer');
  assert.equal(row(daemon, 1).detail.outcomeFrom, undefined);
});

test('stopping while a DBGet is unanswered decides nothing: the call file stays, and the next start records it from AstDB', async (t) => {
  const { fake, tree, run } = await setup(t);
  const first = await run();
  writeMorx(tree.morx, { from: '2001', to: '4001', text: 'stop in the middle' }, false);
  const taken = await takeCall(tree, 'V', 1, 1);
  fake.stalled.add('dbget');
  fake.astdb.set('sms-router/smsr-V-1-a1', '::SUCCESS:');
  archiveCall(tree, taken, 'Completed');
  await fake.waitFor(() => fake.actionsNamed('DBGet').length === 1, 10_000, 'the DBGet');
  const started = performance.now();
  await first.stop();
  assert.ok(performance.now() - started < 2_000, 'stop() does not wait for the DBGet to time out');
  assert.deepEqual(visibleFiles(tree.config.spool.outgoingDone), ['smsr-V-1-a1.call'], 'left for the next start');
  assert.equal(fake.astdb.size, 1);

  fake.stalled.clear();
  const { daemon } = await run();
  await waitUntil(() => row(daemon, 1).state === 'delivered', 10_000, 'delivered after the restart');
  assert.equal(row(daemon, 1).detail.outcomeFrom, 'outcome-keeper');
  await waitUntil(() => fake.astdb.size === 0, 10_000, 'key deleted');
});
