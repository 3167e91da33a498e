/**
 * The true outcome of S messages, driven the way a real Asterisk drives it:
 * app_sms deletes the mttx file when it reads it and writes a YOS/NOS line to
 * its own log; pbx_spool archives the call file with its Status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import type { Daemon } from '../../src/daemon.js';
import { startDaemon } from '../helpers/daemon.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile, appSmsLogLine } from '../fakes/app-sms.js';

const TOML = `[sms]\napp_log = "log/sms"\nretry_delay = 1\nretry_backoff = 1\nmax_attempts = 2\n`;

async function start(tree: SpoolTree) {
  const { daemon, stop } = await startDaemon(tree);
  daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
  daemon.directory.add({ number: '2002', service: 'S', channel: 'DAHDI/2' });
  return { daemon, stop };
}

function row(daemon: Daemon, id = 1) {
  return daemon.db.prepare(`SELECT state, attempts, last_error AS lastError FROM messages WHERE id = ?`).get(id) as { state: string; attempts: number; lastError: string | null } | undefined;
}

/** What app_sms and pbx_spool do with one call to `queue`: read (delete) its mttx files, log each, archive the call. */
function asteriskRuns(tree: SpoolTree, queue: string, status: 'Completed' | 'Expired' | 'Failed', answer: 'Y' | 'N' | 'none') {
  const logFile = tree.config.sms.appLog;
  mkdirSync(path.dirname(logFile), { recursive: true });
  const calls = visibleFiles(tree.outgoing).filter((n) => n.startsWith(`smsr-S-${queue}-`));
  assert.equal(calls.length, 1, `one pending call for ${queue}`);
  if (status === 'Completed') {
    for (const name of visibleFiles(tree.mttx).filter((n) => n.startsWith(`${queue}.`))) {
      const file = path.join(tree.mttx, name);
      const m = phoneReceivesFile(file);
      rmSync(file); // app_sms unlinks before it sends
      assert.ok(m.ok);
      if (answer !== 'none') {
        appendFileSync(logFile, appSmsLogLine('2026-11-22T04:17:17', answer, queue, m.message.oa, m.message.da, m.message.text));
      }
    }
  }
  const done = tree.config.spool.outgoingDone;
  mkdirSync(done, { recursive: true });
  // pbx_spool appends to the file where it is, then renames it: it is always in one of the two.
  appendFileSync(path.join(tree.outgoing, calls[0]!), `StartRetry: 17011 1 (1795321403)\nStatus: ${status}\n`);
  renameSync(path.join(tree.outgoing, calls[0]!), path.join(done, calls[0]!));
}

test('S: a YOS line in app_sms log delivers; Polish and newline texts match in their low-byte form; the call file is archived', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    mkdirSync(tree.config.spool.outgoingDone, { recursive: true });
    writeFileSync(path.join(tree.config.spool.outgoingDone, 'foreign.call'), 'Channel: X\nStatus: Completed\n');
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'Zażółć gęślą\njaźń \\ ok' }, false);
    await waitUntil(() => row(daemon)?.state === 'spooled', 10_000, 'spooled');
    asteriskRuns(tree, '2001', 'Completed', 'Y');
    await waitUntil(() => row(daemon)?.state === 'delivered', 15_000, 'delivered');
    assert.deepEqual(visibleFiles(tree.config.spool.outgoingDone), ['foreign.call']);
    assert.equal(visibleFiles(tree.config.spool.callArchive).length, 1);
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('S: NOS, then Completed without a log line, are retried on schedule (mttx written again), then a notice', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'refused twice' }, false);
    await waitUntil(() => row(daemon)?.state === 'spooled', 10_000, 'spooled');
    asteriskRuns(tree, '2001', 'Completed', 'N');
    await waitUntil(() => row(daemon)?.state === 'pending', 15_000, 'retry after NOS');
    assert.match(row(daemon)?.lastError!, /NOS/);
    // The retry writes the message again, with a new call.
    await waitUntil(() => row(daemon)?.state === 'spooled' && row(daemon)?.attempts === 2, 15_000, 'second attempt');
    assert.ok(visibleFiles(tree.mttx).some((n) => n.startsWith('2001.1-')));
    asteriskRuns(tree, '2001', 'Completed', 'none');
    await waitUntil(() => row(daemon)?.state === 'bounced', 15_000, 'given up');
    assert.equal(row(daemon)?.lastError?.startsWith('SMS_FAILED'), true);
    await waitUntil(() => visibleFiles(tree.mttx).some((n) => n.startsWith('2002.')), 10_000, 'notice to the sender');
    const notice = phoneReceivesFile(path.join(tree.mttx, visibleFiles(tree.mttx).find((n) => n.startsWith('2002.'))!));
    assert.ok(notice.ok);
    assert.equal(notice.message.text, 'Cannot deliver SMS to 2001. No answer after 2 attempts.');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('S: an Expired call is a failed attempt; its unread mttx files are removed until the retry writes them again', async () => {
  const tree = makeSpoolTree(TOML);
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'nobody picks up' }, false);
    await waitUntil(() => row(daemon)?.state === 'spooled', 10_000, 'spooled');
    asteriskRuns(tree, '2001', 'Expired', 'none');
    await waitUntil(() => row(daemon)?.state === 'pending' || row(daemon)?.attempts === 2, 15_000, 'failed attempt');
    assert.ok(row(daemon)?.lastError === 'no answer');
    await waitUntil(() => row(daemon)?.attempts === 2 && existsSync(path.join(tree.mttx, '2001.1-1')), 15_000, 'rewritten for attempt 2');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('S pacing: with max_concurrent_calls = 1 the second phone gets its call when the first call ends', async () => {
  const tree = makeSpoolTree(TOML.replace('[sms]\n', '[sms]\nmax_concurrent_calls = 1\n'));
  const { daemon, stop } = await start(tree);
  try {
    daemon.directory.add({ number: '2003', service: 'S', channel: 'DAHDI/3' });
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'first phone' }, false);
    writeMorx(tree.morx, { from: '2002', to: '2003', text: 'second phone' }, false);
    await waitUntil(() => visibleFiles(tree.mttx).length === 2, 10_000, 'both in mttx');
    await daemon.idle();
    assert.deepEqual(visibleFiles(tree.outgoing).map((n) => n.split('-')[2]), ['2001'], 'one call at a time');
    asteriskRuns(tree, '2001', 'Completed', 'Y');
    await waitUntil(() => visibleFiles(tree.outgoing).some((n) => n.startsWith('smsr-S-2003-')), 15_000, 'the second call');
    assert.equal(visibleFiles(tree.outgoing).length, 1);
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('S: Status Failed (our call file refused) fails the message at once with a notice', async () => {
  const tree = makeSpoolTree(TOML.replace('max_attempts = 2', 'max_attempts = 5'));
  const { daemon, stop } = await start(tree);
  try {
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'bad call file' }, false);
    await waitUntil(() => row(daemon)?.state === 'spooled', 10_000, 'spooled');
    asteriskRuns(tree, '2001', 'Failed', 'none');
    await waitUntil(() => row(daemon)?.state === 'bounced', 15_000, 'failed at once');
    assert.equal(row(daemon)?.attempts, 1);
    assert.match(row(daemon)!.lastError!, /refused by Asterisk/);
  } finally {
    await stop();
    tree.cleanup();
  }
});
