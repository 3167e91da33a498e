/**
 * `sms-router doctor`, run as a user would run it (a child process) against
 * real directories, a real SQLite file, the fake AMI and real espeak-ng/sox.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { makeSpoolTree, runCli, type SpoolTree } from '../helpers/spool-tree.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { startDaemon } from '../helpers/daemon.js';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { findExecutable } from '../../src/cli/doctor.js';

function amiToml(fake: FakeAmiServer): string {
  return `[ami]\nenabled = true\nhost = "127.0.0.1"\nport = ${fake.port}\nusername = "labami"\nsecret = "labsecret123"\n`;
}

/** A spool tree whose app_sms log exists, as on a PBX that has made its first SMS call. */
function makeTree(extraToml = ''): SpoolTree {
  const t = makeSpoolTree(`${extraToml}\n[sms]\napp_log = "log/sms"\n`);
  mkdirSync(path.join(t.dir, 'log'));
  writeFileSync(path.join(t.dir, 'log', 'sms'), '');
  return t;
}

/** A directory holding only `programs` (links to the installed ones): the whole PATH doctor gets. */
function binDir(tree: SpoolTree, programs: string[]): string {
  const dir = path.join(tree.dir, 'bin');
  mkdirSync(dir);
  for (const program of programs) {
    const real = findExecutable(program, process.env.PATH ?? '');
    assert.ok(real, `${program} must be installed for these tests (apt-get install espeak-ng sox)`);
    symlinkSync(real, path.join(dir, program));
  }
  return dir;
}

function doctor(tree: SpoolTree, bin: string, options: { config?: string; uid?: number; gid?: number } = {}) {
  return runCli(['doctor', '--config', options.config ?? tree.configPath], undefined, { env: { PATH: bin }, uid: options.uid, gid: options.gid });
}

/** The result lines (everything but the summary), by check name. */
function results(stdout: string): Map<string, string> {
  const lines = stdout.split('\n').filter((l) => /^(PASS|WARN|FAIL) /.test(l));
  return new Map(lines.map((l) => [/^\S+ ([^:]+):/.exec(l)![1]!, l]));
}

/** Every path under `dir`, to show doctor created and left nothing. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

const SUMMARY = /^doctor: (\d+) checks? passed, (\d+) warnings?, (\d+) failed$/m;

test('doctor: a good setup passes every check, leaves nothing behind and never prints the AMI secret', async () => {
  const fake = await FakeAmiServer.start();
  const t = makeTree(amiToml(fake));
  try {
    const db = openDatabase(t.dbPath);
    new RecipientDirectory(db).add({ number: '2001', service: 'S', channel: 'PJSIP/2001' });
    db.close();
    const bin = binDir(t, ['espeak-ng', 'sox']);
    const before = tree(t.dir);

    const r = await doctor(t, bin);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const lines = r.stdout.split('\n');
    const summary = lines.pop()!;
    for (const l of lines) assert.match(l, /^(PASS|WARN) /);
    const [, passed, warnings, failed] = SUMMARY.exec(summary)!;
    assert.equal(Number(passed) + Number(warnings), lines.length);
    assert.equal(failed, '0');

    const by = results(r.stdout);
    assert.deepEqual(
      [...by.keys()],
      ['config', 'user', 'spool root', 'spool outgoing', 'spool sms/morx', 'spool sms/mttx', 'spool tmp', 'spool quarantine', 'spool outgoing_done', 'spool file system', 'database', 'ami', 'fastagi', 'http', 'fax dir', 'voice dir', 'call archive', 'app_sms log', 'speech programs', 'fax rendering', 'directory'],
      'every check, in order',
    );
    // Only running as root earns a warning: its permission checks prove little for the daemon's user.
    assert.match(by.get('user')!, process.getuid!() === 0 ? /^WARN user: running as root.* — fix: .*asterisk/ : /^PASS user:/);
    assert.match(by.get('database')!, /^PASS database: .* schema version \d+ is current/);
    assert.match(by.get('ami')!, /^PASS ami: logged in to 127\.0\.0\.1:\d+ as labami/);
    assert.match(by.get('speech programs')!, new RegExp(`espeak-ng ${bin}/espeak-ng, sox ${bin}/sox`));
    assert.match(by.get('fax rendering')!, /^PASS fax rendering: a test fax rendered to a \d+-byte fine g4 TIFF of 1 page$/);
    assert.match(by.get('directory')!, /^PASS directory: 1 recipient; all 1 that are dialled \(S, F, V, T\) have a valid channel$/);

    assert.equal(fake.actionsNamed('Login').length, 1);
    assert.equal(fake.actionsNamed('Logoff').length, 1, 'doctor logs off again');
    assert.doesNotMatch(r.stdout + r.stderr, /labsecret123/);
    // Read-only: the missing spool directories are not created, no probe is left, the database is as it was.
    assert.deepEqual(tree(t.dir), before);
  } finally {
    t.cleanup();
    await fake.close();
  }
});

test('doctor: outgoing/ that cannot be written, a refused AMI login and a missing espeak-ng are each a FAIL with its fix', async () => {
  const fake = await FakeAmiServer.start();
  fake.loginAccepted = false;
  const t = makeTree(amiToml(fake));
  try {
    // A plain file where outgoing/ should be: no call file can go there, whoever runs the daemon (root included).
    rmSync(t.outgoing, { recursive: true });
    writeFileSync(t.outgoing, '');
    const bin = binDir(t, ['sox']);

    const r = await doctor(t, bin);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const by = results(r.stdout);
    assert.match(by.get('spool outgoing')!, new RegExp(`^FAIL spool outgoing: ${t.outgoing} is not a directory — fix: move it away and create the directory: mkdir ${t.outgoing}`));
    assert.match(by.get('ami')!, /^FAIL ami: 127\.0\.0\.1:\d+ refused the login as labami: Authentication failed — fix: check \[ami\] username and secret in .* manager\.conf/);
    assert.match(by.get('speech programs')!, new RegExp(`^FAIL speech programs: espeak-ng not found in PATH ${bin}; .* — fix: apt-get install espeak-ng sox$`));
    // The rest still ran and passed.
    assert.match(by.get('spool root')!, /^PASS /);
    assert.match(by.get('fax rendering')!, /^PASS /);
    assert.match(r.stdout, /^doctor: \d+ checks passed, \d+ warnings?, 3 failed$/m);
    assert.doesNotMatch(r.stdout + r.stderr, /labsecret123/);
  } finally {
    t.cleanup();
    await fake.close();
  }
});

test('doctor: a spool directory the daemon user may not write fails, as that user', async () => {
  const t = makeTree();
  try {
    const bin = binDir(t, ['espeak-ng', 'sox']);
    // Mode bits do not stop root; as root, run doctor as nobody on a tree nobody owns.
    const asRoot = process.getuid!() === 0;
    const nobody = { uid: 65534, gid: 65534 };
    if (asRoot) {
      for (const p of [t.dir, ...tree(t.dir).map((rel) => path.join(t.dir, rel))]) chownSync(p, nobody.uid, nobody.gid);
    }
    chmodSync(t.outgoing, 0o555);

    const r = await doctor(t, bin, asRoot ? nobody : {});
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const by = results(r.stdout);
    assert.match(by.get('user')!, /^PASS user: running as /);
    assert.match(by.get('spool outgoing')!, new RegExp(`^FAIL spool outgoing: ${t.outgoing} is not writable by this user \\(EACCES from access\\(\\)\\) — fix: chown asterisk:asterisk ${t.outgoing}`));
    assert.match(by.get('spool root')!, /^PASS /);
    assert.match(r.stdout, /^doctor: \d+ checks passed, 0 warnings, 1 failed$/m);
  } finally {
    t.cleanup();
  }
});

test('doctor: every dialled recipient with an invalid channel is named, with the command that fixes it', async () => {
  const t = makeTree();
  try {
    const db = openDatabase(t.dbPath);
    const dir = new RecipientDirectory(db);
    dir.add({ number: '2001', service: 'S', channel: 'PJSIP/2001' });
    dir.add({ number: '2009', service: 'C' }); // commands call nobody: no channel needed
    // The directory refuses these; an old import or a hand-edited database may still hold them.
    const insert = db.prepare('INSERT INTO recipients (number, service, channel) VALUES (?, ?, ?)');
    insert.run('2002', 'S', 'PJSIP 2002');
    insert.run('2003', 'F', '');
    db.close();
    assert.throws(() => new RecipientDirectory(openDatabase(t.dbPath)).add({ number: '2004', service: 'V', channel: 'PJSIP 2004' }), { code: 'INVALID_CHANNEL' });

    const r = await doctor(t, binDir(t, ['espeak-ng', 'sox']));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const bad = r.stdout.split('\n').filter((l) => l.startsWith('FAIL '));
    assert.deepEqual(bad, [
      `FAIL directory 2002: service S needs a channel to call, and "PJSIP 2002" is not one; messages to it cannot be delivered — fix: sms-router users set 2002 --channel TECH/RESOURCE --config ${t.configPath} (such as PJSIP/1001, DAHDI/2 or Local/1001@phones)`,
      `FAIL directory 2003: service F needs a channel to call, and it has none; messages to it cannot be delivered — fix: sms-router users set 2003 --channel TECH/RESOURCE --config ${t.configPath} (such as PJSIP/1001, DAHDI/2 or Local/1001@phones)`,
    ]);
  } finally {
    t.cleanup();
  }
});

test('doctor: a config error is reported with the file and the key, and nothing else runs', async () => {
  const t = makeTree();
  try {
    const bad = path.join(t.dir, 'bad.toml');
    writeFileSync(bad, readFileSync(t.configPath, 'utf8') + '\n[ami]\nenabled = "yes"\n');
    const r = await doctor(t, binDir(t, ['espeak-ng', 'sox']), { config: bad });
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      `FAIL config: ${bad}: ami.enabled: expected true or false, found a string — fix: edit ${bad} at ami.enabled (config/sms-router.example.toml documents every key)\n` +
        'doctor: 0 checks passed, 0 warnings, 1 failed; the other checks need a valid config',
    );
    const missing = await doctor(t, '/nonexistent', { config: path.join(t.dir, 'nope.toml') });
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, new RegExp(`^FAIL config: ${t.dir}/nope\\.toml: \\(file\\): a readable TOML file \\(ENOENT\\) — fix: create ${t.dir}/nope\\.toml `));
  } finally {
    t.cleanup();
  }
});

test('doctor: a FastAGI port held by a running sms-router passes, one held by another program fails', async () => {
  const t = makeTree();
  const daemonLog: string[] = [];
  const running = await startDaemon(t, daemonLog);
  const foreign = createServer((socket) => socket.end('hello\r\n'));
  try {
    const bin = binDir(t, ['espeak-ng', 'sox']);
    const ours = running.daemon.agiListening!.port;
    const withPort = (port: number, name: string) => {
      const file = path.join(t.dir, name);
      const text = readFileSync(t.configPath, 'utf8');
      assert.match(text, /listen = "127\.0\.0\.1:0"/);
      writeFileSync(file, text.replace('listen = "127.0.0.1:0"', `listen = "127.0.0.1:${port}"`));
      return file;
    };

    const r = await doctor(t, bin, { config: withPort(ours, 'ours.toml') });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(results(r.stdout).get('fastagi')!, new RegExp(`^PASS fastagi: 127\\.0\\.0\\.1:${ours} is in use by a running sms-router`));
    // The daemon has the database open (WAL): doctor reads it in place, beside it.
    assert.match(results(r.stdout).get('database')!, /^PASS database: .* schema version \d+ is current/);
    // The probe touched no message: the daemon only logged that it hung up on a call for message 0.
    assert.equal((running.daemon.db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n, 0);
    assert.ok(daemonLog.some((l) => l.includes('"msgId":0') && l.includes('hanging up')), daemonLog.join(''));

    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    const port = (foreign.address() as { port: number }).port;
    const f = await doctor(t, bin, { config: withPort(port, 'foreign.toml') });
    assert.equal(f.code, 1);
    assert.match(
      results(f.stdout).get('fastagi')!,
      new RegExp(`^FAIL fastagi: 127\\.0\\.0\\.1:${port} is in use by another program \\(it answered a FastAGI request with "hello"\\) — fix: stop that program \\(ss -ltnp 'sport = :${port}' names it\\), or set \\[agi\\] listen in `),
    );
    assert.ok(statSync(t.dbPath).isFile());
  } finally {
    foreign.close();
    await running.stop();
    t.cleanup();
  }
});
