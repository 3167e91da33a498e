/**
 * Faults from the world around the daemon (issue 10): a full or forbidden
 * file system in the middle of a write, a journal locked by someone else, an
 * AMI that stops answering without closing, a FastAGI client that never
 * speaks, a clock that jumps back, a morx file that grows after it appeared,
 * and 10,000 files at once. Each time the daemon either stays up or stops
 * with a message that says what is wrong, and no message is lost: what was
 * not delivered is still in sms/morx or in the journal, and goes out later.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { MAIN, makeSpoolTree, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { connectFakeAgi } from '../fakes/agi-client.js';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { writeMorx } from '../../src/cli/send.js';
import { encodeSmsFile } from '../../src/spool/sms-file.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';

const FS_FAULTS = fileURLToPath(new URL('../fakes/fs-faults.js', import.meta.url));

/** The built daemon as its own process, optionally with the injected file-system fault preloaded. */
function runDaemon(tree: SpoolTree, options: { env?: Record<string, string>; preload?: boolean } = {}) {
  const args = [...(options.preload ? ['--import', FS_FAULTS] : []), MAIN, 'run', '--config', tree.configPath];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  const out: string[] = [];
  const err: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (c: string) => out.push(c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => err.push(c));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    exited,
    get stdout() {
      return out.join('');
    },
    get stderr() {
      return err.join('');
    },
    get running() {
      return !done;
    },
    async stop() {
      if (!done) child.kill('SIGTERM');
      return exited;
    },
  };
}

function addRecipients(tree: SpoolTree, add: (dir: RecipientDirectory) => void) {
  const db = openDatabase(tree.dbPath);
  try {
    add(new RecipientDirectory(db));
  } finally {
    db.close();
  }
}

function states(tree: SpoolTree): Record<string, number> {
  const db = new Database(tree.dbPath, { readonly: true });
  try {
    const rows = db.prepare(`SELECT state, count(*) AS n FROM messages GROUP BY state`).all() as Array<{ state: string; n: number }>;
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  } finally {
    db.close();
  }
}

/** Texts of the finished files in sms/mttx. */
function mttxTexts(tree: SpoolTree): string[] {
  return visibleFiles(tree.mttx)
    .map((n) => {
      const r = phoneReceivesFile(path.join(tree.mttx, n));
      assert.ok(r.ok, n);
      return r.message.text;
    })
    .sort();
}

/** The daemon in process, logged in to a fake AMI with a 1 s action timeout; 1001 is a softphone (T), 2001 a phone (S). */
async function startWithFakeAmi() {
  const fake = await FakeAmiServer.start();
  const tree = makeSpoolTree(`[ami]\nenabled = true\nhost = "127.0.0.1"\nport = ${fake.port}\nusername = "labami"\nsecret = "labsecret123"\naction_timeout = 1\n`);
  const lines: string[] = [];
  const { daemon, stop } = await startDaemon(tree, lines);
  daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
  daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
  await daemon.ami!.waitConnected(5_000);
  return { fake, tree, lines, daemon, stop };
}

function tryMountTmpfs(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
}

/** Fills the file system holding `dir` until a write fails with ENOSPC. */
function fill(dir: string): string {
  const filler = path.join(dir, '.filler');
  const fd = openSync(filler, 'w');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
  return filler;
}

test('ENOSPC in the middle of writing sms/mttx: the daemon stops saying so, nothing is lost, and a restart with space delivers each message once', { timeout: 60_000 }, async (t) => {
  const tree = makeSpoolTree();
  const mounted = tryMountTmpfs(tree.mttx, '256k');
  t.diagnostic(mounted ? 'sms/mttx is a real 256 KiB tmpfs, filled up' : 'mount not permitted here: ENOSPC comes from the injected fs layer (test/fakes/fs-faults.ts)');
  const flag = path.join(tree.dir, 'fault-on');
  try {
    addRecipients(tree, (d) => d.add({ number: '2001', service: 'S', channel: 'DAHDI/1' }));
    let filler: string | undefined;
    if (mounted) filler = fill(tree.mttx);
    else writeFileSync(flag, '');
    const texts = Array.from({ length: 12 }, (_, i) => `message ${i} before the disk filled up`);
    for (const [i, text] of texts.entries()) writeMorx(tree.morx, { from: '2002', to: '2001', text, now: new Date(Date.now() + i * 1000) }, false);

    const first = runDaemon(tree, mounted ? {} : { preload: true, env: { SMSR_FS_FAULT: `ENOSPC:${tree.mttx}`, SMSR_FS_FAULT_FLAG: flag } });
    const exit = await first.exited;
    assert.equal(exit.code, 1, `stops: ${first.stderr}`);
    assert.match(first.stderr, /no space left on device/);
    assert.match(first.stderr, /sms\/mttx|nothing is lost|started again/, first.stderr);
    // Every message is in the journal (its morx file gone only after the commit) and none is marked handed over.
    assert.deepEqual(visibleFiles(tree.morx), []);
    assert.deepEqual(states(tree), { received: texts.length });
    assert.deepEqual(visibleFiles(tree.mttx), [], 'no finished file in mttx');

    if (filler) rmSync(filler);
    rmSync(flag, { force: true });
    const second = runDaemon(tree);
    await waitUntil(() => (states(tree).spooled === texts.length && visibleFiles(tree.outgoing).length > 0) || !second.running, 20_000, 'all spooled').catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(states(tree))}\n${second.stderr}\n${second.stdout.split('\n').slice(-8).join('\n')}`);
    });
    assert.deepEqual(mttxTexts(tree), [...texts].sort(), 'each message in mttx exactly once');
    assert.equal(visibleFiles(tree.outgoing).length, 1, 'one call for the queue');
    assert.equal((await second.stop()).code, 0, second.stderr);
  } finally {
    if (mounted) spawnSync('umount', [tree.mttx]);
    tree.cleanup();
  }
});

test('EACCES while writing a call file: the daemon stops saying so; after the fix the call is placed and nothing is sent twice', { timeout: 60_000 }, async (t) => {
  // Root ignores permission bits and chattr gives EPERM: EACCES comes from the injected fs layer.
  t.diagnostic('EACCES comes from the injected fs layer (test/fakes/fs-faults.ts): root ignores modes');
  const tree = makeSpoolTree();
  const flag = path.join(tree.dir, 'fault-on');
  try {
    addRecipients(tree, (d) => d.add({ number: '2001', service: 'S', channel: 'DAHDI/1' }));
    writeFileSync(flag, '');
    const texts = ['first, before tmp/ became unwritable', 'second, same queue'];
    for (const [i, text] of texts.entries()) writeMorx(tree.morx, { from: '2002', to: '2001', text, now: new Date(Date.now() + i * 1000) }, false);
    const first = runDaemon(tree, { preload: true, env: { SMSR_FS_FAULT: `EACCES:${tree.config.spool.tmp}`, SMSR_FS_FAULT_FLAG: flag } });
    const exit = await first.exited;
    assert.equal(exit.code, 1, first.stderr);
    assert.match(first.stderr, /permission denied/);
    assert.match(first.stderr, /tmp/);
    assert.deepEqual(visibleFiles(tree.morx), []);
    assert.deepEqual(visibleFiles(tree.outgoing), [], 'no call file got in');

    rmSync(flag);
    const second = runDaemon(tree);
    await waitUntil(() => visibleFiles(tree.outgoing).length === 1 && states(tree).spooled === 2 && mttxTexts(tree).length === 2, 20_000, 'the call placed');
    assert.deepEqual(mttxTexts(tree), [...texts].sort(), 'each message in mttx exactly once');
    assert.equal((await second.stop()).code, 0, second.stderr);
  } finally {
    tree.cleanup();
  }
});

test('a journal locked by another connection: a short lock is waited for; a long one stops the daemon clearly and the morx files stay', { timeout: 60_000 }, async () => {
  const tree = makeSpoolTree();
  try {
    addRecipients(tree, (d) => d.add({ number: '2001', service: 'S', channel: 'DAHDI/1' }));
    const daemon = runDaemon(tree);
    await waitUntil(() => daemon.stdout.includes('watching the spool'), 20_000, 'daemon ready');

    // 1. Shorter than busy_timeout (5 s): the write waits and goes through.
    const holder = new Database(tree.dbPath);
    holder.exec('BEGIN EXCLUSIVE');
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'written while the journal was locked' }, false);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(visibleFiles(tree.morx).length, 1, 'not taken while locked');
    holder.exec('COMMIT');
    await waitUntil(() => states(tree).spooled === 1 && mttxTexts(tree).length === 1, 20_000, 'recorded after the lock');
    assert.ok(daemon.running, 'still up');

    // 2. Longer than busy_timeout: the daemon stops with a message naming the lock; the file stays in morx.
    holder.exec('BEGIN EXCLUSIVE');
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'written during a long lock' }, false);
    const exit = await daemon.exited;
    holder.exec('COMMIT');
    holder.close();
    assert.equal(exit.code, 1);
    assert.match(daemon.stderr, /locked/);
    assert.equal(visibleFiles(tree.morx).length, 1, 'the file waits in morx');

    const again = runDaemon(tree);
    await waitUntil(() => states(tree).spooled === 2 && mttxTexts(tree).length === 2, 20_000, 'recorded after a restart');
    assert.deepEqual(visibleFiles(tree.morx), []);
    assert.deepEqual(mttxTexts(tree), ['written during a long lock', 'written while the journal was locked']);
    assert.equal((await again.stop()).code, 0, again.stderr);
  } finally {
    tree.cleanup();
  }
});

test('AMI half-open: MessageSend unanswered times out, the message waits, and goes out once when AMI answers again or after a reconnect', { timeout: 60_000 }, async () => {
  const { fake, tree, lines, daemon, stop } = await startWithFakeAmi();
  try {
    const row = (id: number) => daemon.journal.get(id)!;

    // Stalls, the connection stays open; then answers again on the same connection.
    fake.stalled.add('messagesend');
    writeMorx(tree.morx, { from: '2001', to: '1001', text: 'over a stalled AMI' }, false);
    await waitUntil(() => row(1)?.lastError === 'AMI_TIMEOUT', 10_000, 'the action timed out');
    assert.equal(row(1).state, 'pending');
    assert.equal(fake.openConnections, 1, 'half-open: nobody closed anything');
    // The timeout made the client Ping; the PBX answers it, so the connection is alive and kept
    // (waited past the Ping's own 1 s timeout).
    await fake.waitFor(() => fake.actionsNamed('Ping').length >= 1, 10_000, 'the liveness Ping');
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(fake.connections.length, 1, 'a stalled MessageSend with Ping answered is not a dead connection');
    assert.equal(fake.openConnections, 1);
    fake.stalled.clear();
    await waitUntil(() => row(1).state === 'spooled', 10_000, 'sent when AMI answers again');

    // Stalls, then the PBX restarts (connections dropped): delivered after the reconnect.
    fake.stalled.add('messagesend');
    writeMorx(tree.morx, { from: '2001', to: '1001', text: 'over a PBX that restarted' }, false);
    await waitUntil(() => row(2)?.lastError === 'AMI_TIMEOUT', 10_000, 'the second action timed out');
    const connections = fake.connections.length;
    fake.stalled.clear();
    fake.dropConnections();
    await waitUntil(() => row(2).state === 'spooled', 10_000, 'sent after the reconnect');
    assert.ok(fake.connections.length > connections, 'reconnected');

    assert.deepEqual(fake.delivered.map((d) => d.body), ['over a stalled AMI', 'over a PBX that restarted'], 'each answered once');
    assert.equal(daemon.ami!.state, 'connected');
  } finally {
    await stop();
    await fake.close();
    tree.cleanup();
  }
});

test('AMI blackholed (held open, nothing answered, not even Ping): the timed-out MessageSend brings a Ping, the dead connection is closed and replaced, and the message goes out once', { timeout: 60_000 }, async (t) => {
  const { fake, tree, lines, daemon, stop } = await startWithFakeAmi();
  try {
    const row = (id: number) => daemon.journal.get(id)!;
    const logged = (pattern: RegExp) => lines.filter((l) => pattern.test(l));

    // The PBX hangs (or a firewall drops the flow): the connection stays open and answers nothing.
    fake.blackhole();
    const started = performance.now();
    writeMorx(tree.morx, { from: '2001', to: '1001', text: 'over a blackholed AMI' }, false);
    const first = fake.connections[0]!;
    await fake.waitFor(() => fake.actionsNamed('MessageSend').some((a) => a.conn === first.id), 10_000, 'MessageSend into the blackhole');
    // action_timeout (1 s) for the MessageSend, then 1 s for the Ping: generous bound, not a speed test.
    await waitUntil(() => first.closedAt !== undefined, 20_000, 'the client closed the dead connection');
    t.diagnostic(`dead connection closed ${Math.round(first.closedAt! - started)} ms after the blackhole (action_timeout 1 s + Ping 1 s)`);
    assert.equal(fake.actionsNamed('Ping').filter((a) => a.conn === first.id).length, 1, 'one liveness Ping, unanswered');
    await waitUntil(() => row(1)?.state === 'spooled', 20_000, 'sent over the new connection');

    assert.ok(logged(/"code":"AMI_TIMEOUT"/).some((l) => /MessageSend did not complete/.test(l)), 'the first attempt timed out');
    const warned = logged(/"msg":"AMI connection unresponsive/);
    assert.equal(warned.length, 1, `warned once: ${warned.join('')}`);
    assert.match(warned[0]!, /"level":"warn".*"code":"AMI_UNRESPONSIVE"/);
    assert.deepEqual(
      fake.delivered.map((d) => d.body),
      ['over a blackholed AMI'],
      'delivered exactly once',
    );
    assert.notEqual(fake.delivered[0]!.conn, first.id, 'over a new connection');
    assert.equal(row(1).lastError, null);
    assert.equal(daemon.ami!.state, 'connected');
    assert.equal(daemon.ami!.reconnects, 1);
    assert.equal(fake.openConnections, 1, 'the dead connection is not left behind');
  } finally {
    await stop();
    await fake.close();
    tree.cleanup();
  }
});

test('FastAGI clients that connect and never speak are dropped and leave no session behind; real sessions go on', { timeout: 60_000 }, async () => {
  const tree = makeSpoolTree();
  const { daemon, stop } = await startDaemon(tree);
  try {
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    const port = daemon.agiListening!.port;
    const silent = await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<{ closed: Promise<void> }>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port });
          s.on('error', () => undefined);
          s.once('connect', () => resolve({ closed: new Promise((r) => s.once('close', () => r())) }));
          s.once('error', reject);
        }),
      ),
    );
    // Meanwhile a softphone's message is taken as usual.
    const client = await connectFakeAgi({
      port,
      script: 'message',
      env: { agi_extension: '2001', agi_uniqueid: '1700000000.1', agi_channel: 'Message/ast_msg_queue' },
      answers: {
        'GET FULL VARIABLE ${MESSAGE(from)}': ['200 result=1 (<sip:1001@127.0.0.1:5098>)'],
        'GET FULL VARIABLE ${MESSAGE(to)}': ['200 result=1 (sip:2001@127.0.0.1)'],
        'GET FULL VARIABLE ${BASE64_ENCODE(${MESSAGE(body)})}': [`200 result=1 (${Buffer.from('still served').toString('base64')})`],
      },
    });
    await client.closed;
    assert.ok(client.commands.some((c) => c.line.startsWith('SET VARIABLE MSG_CHAN_OPT')));
    // The server gives up on each silent one (environment timeout) and closes it.
    await Promise.all(silent.map((s) => s.closed));
    await waitUntil(() => mttxTexts(tree).includes('still served'), 10_000, 'the real message delivered');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('the clock jumping back an hour between two attempts neither loses a fax nor sends it twice', { timeout: 60_000 }, async () => {
  const tree = makeSpoolTree(`[fax]\nretry_delay = 1\nretry_backoff = 1\nmax_attempts = 3\nresolution = "standard"\n`);
  let offset = 0;
  const { daemon, stop } = await startDaemon(tree, [], { now: () => new Date(Date.now() + offset) });
  try {
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax1' });
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'sent across a clock jump' }, false);
    const answer = async (attempt: number, status: string) => {
      const name = `smsr-F-1-a${attempt}.call`;
      await waitUntil(() => existsSync(path.join(tree.outgoing, name)), 20_000, name);
      rmSync(path.join(tree.outgoing, name));
      const client = await connectFakeAgi({
        port: daemon.agiListening!.port,
        script: 'fax/1',
        answers: {
          'EXEC SendFAX': ['200 result=-1', 'HANGUP'],
          'GET VARIABLE FAXSTATUS': [`200 result=1 (${status})`],
          'GET VARIABLE FAXERROR': ['200 result=1 (NO_CARRIER)'],
          'GET VARIABLE FAXPAGES': [`200 result=1 (${status === 'SUCCESS' ? 1 : 0})`],
        },
      });
      await client.closed;
      return client.commands.filter((c) => c.argv[1] === 'SendFAX').length;
    };
    const row = () => daemon.journal.get(1)!;
    let sent = await answer(1, 'FAILED');
    await waitUntil(() => row().state === 'pending', 10_000, 'retry scheduled');
    offset = -3_600_000; // the system clock is set back an hour (NTP, a wrong RTC)
    sent += await answer(2, 'SUCCESS');
    await waitUntil(() => row().state === 'delivered', 10_000, 'delivered');
    offset = 0;
    daemon.requestRouting('pending');
    await daemon.idle();
    assert.equal(sent, 2, 'one SendFAX per attempt');
    assert.deepEqual(visibleFiles(tree.outgoing), [], 'no third call');
    assert.equal(row().attempts, 2);
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('a morx file that grows after it appeared (written in place, with pauses) is read once complete, never half', { timeout: 60_000 }, async () => {
  const tree = makeSpoolTree();
  const lines: string[] = [];
  const { daemon, stop } = await startDaemon(tree, lines);
  try {
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    daemon.directory.add({ number: '2002', service: 'S', channel: 'DAHDI/2' });
    // app_sms renames a finished dot-file in; a writer that does not (a copy, a script) shows the file half-written.
    const whole = encodeSmsFile({ oa: '2002', da: '2001', text: 'a message written slowly, line by line, by something that is not app_sms' }, 'app_sms');
    const cuts = [6, 12, 40, whole.length];
    const file = path.join(tree.morx, '2002.2026-11-22T04:00:00-0');
    let from = 0;
    for (const cut of cuts) {
      writeFileSync(file, whole.subarray(from, cut), { flag: from === 0 ? 'w' : 'a' });
      from = cut;
      await new Promise((r) => setTimeout(r, 300));
    }
    await waitUntil(() => mttxTexts(tree).length === 1, 15_000, 'delivered');
    assert.deepEqual(mttxTexts(tree), ['a message written slowly, line by line, by something that is not app_sms']);
    assert.deepEqual(visibleFiles(tree.quarantine), [], 'nothing quarantined');
    const db = daemon.db.prepare(`SELECT da, text FROM messages`).all();
    assert.deepEqual(db, [{ da: '2001', text: 'a message written slowly, line by line, by something that is not app_sms' }], 'one row, whole');
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('10,000 files appearing at once (more than inotify queues): every one is recorded exactly once', { timeout: 120_000 }, async (t) => {
  const tree = makeSpoolTree();
  const { daemon, stop } = await startDaemon(tree);
  try {
    // T recipients without AMI: each row is recorded and waits as pending (cheap), which is all this test is about.
    daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
    const total = 10_000;
    const started = Date.now();
    for (let i = 0; i < total; i++) {
      const name = `2002.2026-11-22T04:00:00-${i}`;
      writeFileSync(path.join(tree.morx, `.${name}`), `oa=2002\nda=1001\nud=burst ${i}\n`);
      // rename in, as app_sms does
      renameSync(path.join(tree.morx, `.${name}`), path.join(tree.morx, name));
    }
    // Each file is 3-4 inotify events (create, modify, moved from/to) while this loop holds the event loop.
    const queued = readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim();
    t.diagnostic(`${total} files written in ${Date.now() - started} ms; inotify max_queued_events ${queued}: the watcher overflows, the rescan finds the rest`);
    await waitUntil(() => readdirSync(tree.morx).length === 0, 100_000, 'morx drained');
    await daemon.idle();
    const rows = daemon.db.prepare(`SELECT count(*) AS n, count(DISTINCT source_name) AS names, count(DISTINCT text) AS texts FROM messages`).get();
    assert.deepEqual(rows, { n: total, names: total, texts: total });
  } finally {
    await stop();
    tree.cleanup();
  }
});
