/**
 * The S route end to end, on a temporary spool with a real SQLite file and
 * the real daemon process: a backlog and live arrivals, then a look at what
 * Asterisk would find in sms/mttx and outgoing/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { makeSpoolTree, spawnCli, runCli, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';
import { parseCallFile } from '../../src/asterisk/call-file.js';

const RECIPIENTS = Array.from({ length: 10 }, (_, i) => `20${String(i).padStart(2, '0')}`);
const SENDERS = Array.from({ length: 10 }, (_, i) => `48600111${String(200 + i)}`);

function seedDirectory(dbPath: string): void {
  const db = openDatabase(dbPath);
  const dir = new RecipientDirectory(db);
  RECIPIENTS.forEach((n, i) => dir.add({ number: n, service: 'S', channel: i % 2 ? `PJSIP/${n}` : `Local/${n}@phones`, name: `Phone ${n}` }));
  SENDERS.forEach((n) => dir.add({ number: n, service: 'S', channel: `DAHDI/${n.slice(-1)}` }));
  db.close();
}

function textFor(i: number): string {
  // Mix GSM and UCS-2 texts; every text is unique so each can be found exactly once.
  return i % 3 === 0 ? `Zażółć gęślą jaźń #${i}` : i % 3 === 1 ? `Hello from the lab, message ${i} €` : `msg ${i}: [a] {b} ~c~ ^d^`;
}

test('400 messages (200 backlog, 200 via `send` while running) reach mttx exactly once with one call file per queue', { timeout: 180_000 }, async () => {
  const tree = makeSpoolTree();
  try {
    seedDirectory(tree.dbPath);
    const expected = new Map<string, { oa: string; da: string; text: string }>();
    for (let i = 0; i < 200; i++) {
      const m = { oa: SENDERS[i % SENDERS.length]!, da: RECIPIENTS[i % RECIPIENTS.length]!, text: textFor(i) };
      writeMorx(tree.morx, { from: m.oa, to: m.da, text: m.text }, false);
      expected.set(m.text, m);
    }
    assert.equal(visibleFiles(tree.morx).length, 200);

    const daemon = spawnCli(['run', '--config', tree.configPath]);
    await daemon.waitForLine((l) => l.includes('watching the spool'));

    // 200 more arrive while it runs, each written by the `send` command, 8 at a time.
    const live = Array.from({ length: 200 }, (_, k) => {
      const i = 200 + k;
      return { oa: SENDERS[i % SENDERS.length]!, da: RECIPIENTS[(i * 7) % RECIPIENTS.length]!, text: textFor(i) };
    });
    for (let k = 0; k < live.length; k += 8) {
      const batch = live.slice(k, k + 8);
      const results = await Promise.all(
        batch.map((m) => runCli(['send', '--config', tree.configPath, '--from', m.oa, '--to', m.da, m.text])),
      );
      results.forEach((r) => assert.equal(r.code, 0, r.stderr));
      batch.forEach((m) => expected.set(m.text, m));
    }

    const spooled = () => {
      const db = new Database(tree.dbPath, { readonly: true });
      try {
        return (db.prepare(`SELECT count(*) AS n FROM messages WHERE state = 'spooled' AND route = 'S'`).get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    await waitUntil(() => spooled() === 400 && visibleFiles(tree.morx).length === 0, 60_000, '400 spooled rows');

    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    assert.equal(exit.code, 0, `daemon exit: ${JSON.stringify(exit)} ${daemon.stderr.join('')}`);

    // What Asterisk would find: every message exactly once, with its oa, da and text.
    const seen = new Map<string, number>();
    for (const name of visibleFiles(tree.mttx)) {
      const queue = name.slice(0, name.indexOf('.'));
      const r = phoneReceivesFile(path.join(tree.mttx, name));
      assert.ok(r.ok, `mttx/${name} must decode`);
      const m = r.message;
      const want = expected.get(m.text);
      assert.ok(want, `unexpected text in mttx/${name}: ${m.text}`);
      assert.equal(m.oa, want.oa);
      assert.equal(m.da, want.da);
      assert.equal(queue, want.da, 'the queue is the recipient number');
      if (/[^\x00-\x7f€\[\]{}~^]/.test(m.text)) assert.equal(m.dcs, 8, 'UCS-2 texts carry dcs=8 so app_sms does not send 8-bit data');
      seen.set(m.text, (seen.get(m.text) ?? 0) + 1);
    }
    assert.equal(seen.size, 400);
    for (const [text, n] of seen) assert.equal(n, 1, `${text} appears ${n} times`);

    // Exactly one pending call file per recipient queue, with the fields Asterisk needs.
    const calls = visibleFiles(tree.outgoing);
    const byQueue = new Map<string, string[]>();
    for (const name of calls) {
      const call = parseCallFile(readFileSync(path.join(tree.outgoing, name), 'utf8'));
      const [queue, option] = call.get('Data')!.split(',');
      byQueue.set(queue!, [...(byQueue.get(queue!) ?? []), name]);
      assert.equal(option, 's');
      assert.equal(call.get('Application'), 'SMS');
      assert.equal(call.get('CallerID'), 'SMS <1001>');
      assert.equal(call.get('MaxRetries'), '3');
      assert.equal(call.get('RetryTime'), '60');
      assert.equal(call.get('WaitTime'), '30');
      assert.equal(call.get('Archive'), 'yes');
      const i = RECIPIENTS.indexOf(queue!);
      assert.ok(i >= 0, `call for unknown queue ${queue}`);
      assert.equal(call.get('Channel'), i % 2 ? `PJSIP/${queue}` : `Local/${queue}@phones`);
    }
    assert.deepEqual([...byQueue.keys()].sort(), [...RECIPIENTS].sort());
    for (const [queue, files] of byQueue) assert.equal(files.length, 1, `queue ${queue} has ${files.length} call files`);
    assert.deepEqual(visibleFiles(path.join(tree.root, 'tmp')), [], 'nothing left in tmp/');

    // The journal: 400 rows delivered to the spool, nothing else.
    const db = new Database(tree.dbPath, { readonly: true });
    const states = db.prepare(`SELECT state, count(*) AS n FROM messages GROUP BY state`).all();
    db.close();
    assert.deepEqual(states, [{ state: 'spooled', n: 400 }]);

    // One log line per message, with id, from, to, route and outcome, and no text at the default level.
    const logged = daemon.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.outcome === 'spooled');
    assert.equal(logged.length, 400);
    for (const l of logged) {
      assert.equal(typeof l.msgId, 'number');
      assert.equal(l.route, 'S');
      assert.ok(typeof l.from === 'string' && typeof l.to === 'string');
    }
    assert.ok(!daemon.lines.some((l) => l.includes('Hello from the lab')), 'message texts are not logged at info');
  } finally {
    tree.cleanup();
  }
});
