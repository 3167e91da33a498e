/**
 * What the daemon does with bad files, hostile numbers, undeliverable
 * messages and a broken spool, on real directories and a real SQLite file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, runCli, visibleFiles, type SpoolTree } from '../helpers/spool-tree.js';
import { Daemon } from '../../src/daemon.js';
import { memoryLogger } from '../helpers/daemon.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';
import { parseCallFile } from '../../src/asterisk/call-file.js';
import { SpoolUnusableError } from '../../src/errors.js';
import { newMessage } from '../../src/journal/journal.js';

function mttxMessages(tree: SpoolTree) {
  return visibleFiles(tree.mttx).map((name) => {
    const r = phoneReceivesFile(path.join(tree.mttx, name));
    assert.ok(r.ok, name);
    return { name, ...r.message };
  });
}

test('bad files end in quarantine with a reason (a directory is skipped) while good files around them are delivered', async () => {
  const tree = makeSpoolTree();
  try {
    const daemon = new Daemon(tree.config, memoryLogger(), { fsync: false });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'PJSIP/2001' });
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'good before' }, false);
    const bad: Record<string, Buffer | string> = {
      '2002.2026-11-22T04:00:00-1': '',
      '2002.2026-11-22T04:00:00-2': Buffer.from([0x00, 0xff, 0x13, 0x37, 0x80, 0x00, 0x0a, 0xfe]),
      '2002.2026-11-22T04:00:00-3': 'oa=2002\nud=no destination\n',
      '2002.2026-11-22T04:00:00-4': 'oa=2002\nda=2001\nud#48656C6CZZ\n',
      '2002.2026-11-22T04:00:00-5': Buffer.alloc(11 * 1024 * 1024, 'a'),
    };
    for (const [name, body] of Object.entries(bad)) writeFileSync(path.join(tree.morx, name), body);
    mkdirSync(path.join(tree.morx, '2002.2026-11-22T04:00:00-6'));
    symlinkSync('/etc/passwd', path.join(tree.morx, '2002.2026-11-22T04:00:00-7'));
    writeMorx(tree.morx, { from: '2002', to: '2001', text: 'good after' }, false);

    const stats = await daemon.runOnce();
    await daemon.stop();

    assert.deepEqual(mttxMessages(tree).map((m) => m.text).sort(), ['good after', 'good before']);
    assert.deepEqual(visibleFiles(tree.morx), ['2002.2026-11-22T04:00:00-6'], 'only the directory stays');
    const q = visibleFiles(tree.quarantine);
    const reasons: Record<string, string> = {};
    for (const n of Object.keys(bad).concat('2002.2026-11-22T04:00:00-7')) {
      assert.ok(q.includes(n), `${n} quarantined`);
      assert.ok(q.includes(`${n}.reason`), `${n}.reason written`);
      reasons[n.slice(-1)] = readFileSync(path.join(tree.quarantine, `${n}.reason`), 'utf8');
    }
    assert.match(reasons['1']!, /SPOOL_PARSE.*empty/i);
    assert.match(reasons['2']!, /SPOOL_PARSE/);
    assert.match(reasons['3']!, /SPOOL_PARSE.*da/);
    assert.match(reasons['4']!, /SPOOL_PARSE.*line 3.*hex/i);
    assert.match(reasons['5']!, /SPOOL_TOO_LARGE/);
    assert.match(reasons['7']!, /SPOOL_NOT_A_FILE.*symbolic link/);
    // The quarantined bytes are the original bytes: nothing is deleted or rewritten.
    assert.equal(readFileSync(path.join(tree.quarantine, '2002.2026-11-22T04:00:00-4'), 'utf8'), bad['2002.2026-11-22T04:00:00-4']);
    assert.equal(stats.quarantined, 6);
  } finally {
    tree.cleanup();
  }
});

test('a recipient number with /, .. or a newline never produces a path outside mttx or a second line in a call file', async () => {
  const tree = makeSpoolTree();
  try {
    const daemon = new Daemon(tree.config, memoryLogger(), { fsync: false });
    daemon.directory.add({ number: '1234', service: 'S', channel: 'PJSIP/1234' });
    for (const hostile of ['../../1234', '12/34', '1234\n', '../1234']) {
      assert.throws(() => daemon.directory.add({ number: hostile, service: 'S', channel: 'PJSIP/x' }), /INVALID_NUMBER|invalid number/i);
    }
    assert.throws(() => daemon.directory.add({ number: '5678', service: 'S', channel: 'PJSIP/5678\nApplication: System' }));
    assert.throws(() => writeMorx(tree.morx, { from: '1', to: '../../etc/passwd', text: 'x' }, false));
    // A file written by something else with a hostile da: app_sms keeps only the digits, so do we.
    writeFileSync(path.join(tree.morx, '9.2026-11-22T04:00:00-0'), 'oa=9\nda=../../12/34\nud=into the tree?\n');
    writeFileSync(path.join(tree.morx, '9.2026-11-22T04:00:00-1'), 'oa=9\nda=12\n34\nud=two lines\n');
    await daemon.runOnce();
    await daemon.stop();
    const delivered = mttxMessages(tree);
    assert.deepEqual(delivered.map((m) => [m.name.split('.')[0], m.text]), [['1234', 'into the tree?']]);
    assert.deepEqual(readdirSync(tree.root).sort(), ['fax', 'outgoing', 'sms', 'tmp', 'voice'], 'nothing written beside the spool directories');
    for (const name of visibleFiles(tree.outgoing)) {
      const text = readFileSync(path.join(tree.outgoing, name), 'utf8');
      assert.deepEqual(parseCallFile(text).fields.map(([k]) => k), ['Channel', 'CallerID', 'MaxRetries', 'RetryTime', 'WaitTime', 'Archive', 'Application', 'Data']);
    }
  } finally {
    tree.cleanup();
  }
});

test('N and unknown numbers produce a notice to an S sender; a notice to an unknown sender produces nothing more', async () => {
  const tree = makeSpoolTree();
  try {
    const lines: string[] = [];
    const daemon = new Daemon(tree.config, memoryLogger(lines), { fsync: false });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'PJSIP/2001' });
    daemon.directory.add({ number: '1234', service: 'N' });
    writeMorx(tree.morx, { from: '2001', to: '1234', text: 'to a disabled number' }, false);
    writeMorx(tree.morx, { from: '2001', to: '5555', text: 'to nobody' }, false);
    writeMorx(tree.morx, { from: '7777', to: '5556', text: 'unknown to unknown' }, false);
    await daemon.runOnce();

    const notices = mttxMessages(tree);
    assert.deepEqual(
      notices.map((m) => ({ queue: m.name.split('.')[0], oa: m.oa, da: m.da, text: m.text })).sort((a, b) => a.text.localeCompare(b.text)),
      [
        { queue: '2001', oa: '1000', da: '2001', text: 'Cannot deliver SMS to 1234. Subscriber has disabled messaging service.' },
        { queue: '2001', oa: '1000', da: '2001', text: 'Cannot deliver SMS to 5555. Number does not exist.' },
      ],
    );
    const rows = daemon.db.prepare(`SELECT kind, parent_id AS parentId, da, state, last_error AS lastError FROM messages ORDER BY id`).all() as Array<Record<string, unknown>>;
    await daemon.stop();
    assert.equal(rows.length, 6, 'three messages and three notices, nothing more');
    const byState = rows.map((r) => `${r.kind}:${r.da}:${r.state}`);
    assert.deepEqual(byState.sort(), [
      'message:1234:bounced',
      'message:5555:bounced',
      'message:5556:bounced',
      'notice:2001:spooled',
      'notice:2001:spooled',
      'notice:7777:failed',
    ]);
    assert.ok(lines.some((l) => l.includes('a notice could not be delivered')));
  } finally {
    tree.cleanup();
  }
});

test('a message to a recipient whose route is not built yet waits as pending and is never dropped', async () => {
  const tree = makeSpoolTree();
  try {
    const daemon = new Daemon(tree.config, memoryLogger(), { fsync: false });
    daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax' });
    writeMorx(tree.morx, { from: '2001', to: '3001', text: 'to a fax' }, false);
    await daemon.runOnce();
    await daemon.runOnce(); // a second pass (a restart) keeps it pending, once
    const rows = daemon.db.prepare(`SELECT state, route FROM messages`).all();
    await daemon.stop();
    assert.deepEqual(rows, [{ state: 'pending', route: 'F' }]);
    assert.deepEqual(visibleFiles(tree.morx), []);
  } finally {
    tree.cleanup();
  }
});

test('a long message to an S phone is split with a per-recipient reference from the journal', async () => {
  const tree = makeSpoolTree();
  try {
    const daemon = new Daemon(tree.config, memoryLogger(), { fsync: false });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'PJSIP/2001' });
    // A notice template long enough to need three parts exercises the splitter through the daemon.
    const long = 'x'.repeat(400);
    for (let i = 0; i < 2; i++) {
      daemon.journal.recordReceived([
        newMessage({ kind: 'message', source: 'test', sourceName: `long-${i}`, contentHash: String(i), oa: '2002', da: '2001', text: long }),
      ]);
    }
    await daemon.routeStored('received');
    await daemon.stop();
    const parts = mttxMessages(tree);
    assert.equal(parts.length, 6);
    const refs = new Set(parts.map((p) => p.udh!.slice(4, 6)));
    assert.deepEqual([...refs].sort(), ['00', '01'], 'references increment per recipient');
    for (const p of parts) assert.ok(p.text.length <= 153);
  } finally {
    tree.cleanup();
  }
});

test('an unusable spool stops the daemon with a message naming the path and the fix', async () => {
  const missing = makeSpoolTree('', { createOutgoing: false });
  try {
    assert.throws(() => new Daemon(missing.config, memoryLogger()), (err: unknown) => {
      assert.ok(err instanceof SpoolUnusableError);
      assert.match(err.message, new RegExp(`${missing.outgoing.replace(/[/.]/g, '\\$&')}.*does not exist.*\\[spool\\] root`));
      return true;
    });
    const r = await runCli(['run', '--config', missing.configPath]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /outgoing is unusable: it does not exist; set \[spool\] root/);
  } finally {
    missing.cleanup();
  }
  // A spool path that is there but is not a directory (the same fail-stop as a permission error, and testable as root).
  const broken = makeSpoolTree();
  try {
    rmSync(broken.mttx, { recursive: true, force: true });
    mkdirSync(path.dirname(broken.mttx), { recursive: true });
    writeFileSync(broken.mttx, 'not a directory');
    assert.throws(() => new Daemon(broken.config, memoryLogger()), (err: unknown) => {
      assert.ok(err instanceof SpoolUnusableError);
      assert.equal(err.path, broken.mttx);
      assert.match(err.message, /cannot be created.*chown asterisk:asterisk/);
      return true;
    });
  } finally {
    broken.cleanup();
  }
});

test('a message older than its validity stops being retried and its sender gets a notice', async () => {
  const tree = makeSpoolTree('[sms]\nvalidity = 3600\n');
  try {
    const daemon = new Daemon(tree.config, memoryLogger(), { fsync: false });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'PJSIP/2001' });
    daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax' });
    // Two waiting messages: one past [sms] validity, one whose own vp (minutes) has not run out.
    daemon.journal.recordReceived([
      newMessage({ kind: 'message', source: 'test', sourceName: 'old', oa: '2001', da: '3001', text: 'too late' }),
      newMessage({ kind: 'message', source: 'test', sourceName: 'vp', oa: '2001', da: '3001', text: 'long-lived', vp: 7 * 24 * 60 }),
    ]);
    daemon.db.prepare(`UPDATE messages SET state = 'pending', attempts = 2, last_error = 'NO_CARRIER', received_at = ?`).run(new Date(Date.now() - 2 * 3600_000).toISOString());
    await daemon.runOnce();
    const rows = daemon.db.prepare(`SELECT id, kind, state FROM messages ORDER BY id`).all();
    await daemon.stop();
    assert.deepEqual(rows, [
      { id: 1, kind: 'message', state: 'bounced' },
      { id: 2, kind: 'message', state: 'pending' },
      { id: 3, kind: 'notice', state: 'spooled' },
    ]);
    assert.deepEqual(mttxMessages(tree).map((m) => m.text), ['Cannot deliver SMS to 3001. It expired after 2 attempts.']);
  } finally {
    tree.cleanup();
  }
});
