/**
 * What systemd and logrotate do to the running daemon: readiness on
 * NOTIFY_SOCKET (received by a real Unix datagram socket, as systemd would),
 * SIGHUP re-reading the config and reopening the log file, and the unit file
 * passing `systemd-analyze verify`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSpoolTree, spawnCli, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

// systemd's side of sd_notify: a datagram socket that prints what it gets and
// closes the file descriptors systemd-notify passes for its barrier.
const RECEIVER = `
import socket, sys, os, array
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    msg, anc, flags, addr = s.recvmsg(4096, socket.CMSG_SPACE(64))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % 4])
            for fd in fds:
                os.close(fd)
    print(msg.decode().replace("\\n", "|"), flush=True)
`;

test('readiness: READY=1 reaches NOTIFY_SOCKET once the daemon watches the spool', { timeout: 60_000 }, async () => {
  const tree = makeSpoolTree();
  const socketPath = path.join(tree.dir, 'notify.sock');
  const receiver = spawn('python3', ['-c', RECEIVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const received: string[] = [];
  receiver.stdout.setEncoding('utf8');
  receiver.stdout.on('data', (c: string) => received.push(...c.split('\n').filter(Boolean)));
  try {
    await waitUntil(() => received.includes('bound'), 10_000, 'the notify socket');
    process.env.NOTIFY_SOCKET = socketPath;
    const daemon = spawnCli(['run', '--config', tree.configPath]);
    delete process.env.NOTIFY_SOCKET;
    try {
      await waitUntil(() => received.some((l) => l.startsWith('READY=1')), 20_000, 'READY=1');
      const ready = received.find((l) => l.startsWith('READY=1'))!;
      assert.match(ready, /STATUS=watching the spool/);
      // Ready came after the backlog scan began, never before.
      assert.ok(daemon.lines.some((l) => l.includes('"watching the spool"')));
    } finally {
      daemon.child.kill('SIGTERM');
      assert.equal((await daemon.exited).code, 0);
    }
  } finally {
    receiver.kill();
    tree.cleanup();
  }
});

test('SIGHUP applies new notice texts and log level, names what needs a restart, reopens the log file', { timeout: 60_000 }, async () => {
  const extra = (notice: string, level: string, rescan: number) =>
    `[spool]\nroot = "spool"\nfsync = false\nrescan_interval = ${rescan}\n[notices]\nunknown = "${notice}"\n[log]\nlevel = "${level}"\nfile = "log/sms-router.log"\n`;
  const tree = makeSpoolTree(extra('OLD: {to} is unknown', 'info', 1));
  const logFile = path.join(tree.dir, 'log', 'sms-router.log');
  const logLines = (file = logFile) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  const db = openDatabase(tree.dbPath);
  new RecipientDirectory(db).add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
  db.close();
  const daemon = spawnCli(['run', '--config', tree.configPath]);
  try {
    await waitUntil(() => logLines().some((l) => l.includes('"watching the spool"')), 20_000, 'daemon start (in the log file)');
    assert.equal(daemon.lines.length, 0, 'with [log] file nothing goes to standard output');

    // logrotate moves the file away, then the config changes and SIGHUP comes.
    renameSync(logFile, `${logFile}.1`);
    const base = readFileSync(tree.configPath, 'utf8');
    writeFileSync(tree.configPath, base.replace(extra('OLD: {to} is unknown', 'info', 1), extra('NEW: {to} is unknown', 'debug', 2)));
    daemon.child.kill('SIGHUP');
    await waitUntil(() => logLines().some((l) => l.includes('SIGHUP: config re-read')), 20_000, 'the reload line in a new log file');
    const reload = JSON.parse(logLines().find((l) => l.includes('SIGHUP: config re-read'))!) as { applied: string[]; needRestart: string[] };
    assert.deepEqual(reload.applied.sort(), ['log', 'notices']);
    assert.deepEqual(reload.needRestart, ['spool']);
    assert.ok(!logLines(`${logFile}.1`).some((l) => l.includes('SIGHUP')), 'the rotated file got nothing after the reopen');

    // The new notice text is used, and debug lines now appear.
    writeMorx(tree.morx, { from: '2001', to: '7777', text: 'to nobody' }, false);
    await waitUntil(() => visibleFiles(tree.mttx).length === 1, 20_000, 'the notice in mttx');
    const notice = phoneReceivesFile(path.join(tree.mttx, visibleFiles(tree.mttx)[0]!));
    assert.ok(notice.ok);
    assert.equal(notice.message.text, 'NEW: 7777 is unknown');
    assert.ok(logLines().some((l) => l.includes('"level":"debug"')), 'the new log level is in force');

    // A broken config on SIGHUP is reported and the daemon keeps running on what it had.
    writeFileSync(tree.configPath, `${readFileSync(tree.configPath, 'utf8')}\n[spool]\nbatch_size = "many"\n`);
    daemon.child.kill('SIGHUP');
    await waitUntil(() => logLines().some((l) => l.includes('keeping the running settings')), 20_000, 'the refusal');
    assert.equal(daemon.child.exitCode, null);
  } finally {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
    tree.cleanup();
  }
});

test('systemd-analyze verify accepts the unit file', () => {
  const r = spawnSync('systemd-analyze', ['verify', path.join(REPO, 'systemd', 'sms-router.service')], { encoding: 'utf8' });
  assert.equal(r.error, undefined, 'systemd-analyze is installed (.ci/run installs systemd)');
  // Warnings (unknown keys, bad values) go to stderr with exit 0: none allowed either.
  assert.deepEqual({ status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() }, { status: 0, stdout: '', stderr: '' });
});
