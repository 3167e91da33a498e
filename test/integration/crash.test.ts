/**
 * Crash safety: the real daemon is SIGKILLed again and again while it drains
 * a 1,000-message backlog, at different points (after N messages were
 * spooled, and at random moments between), and restarted each time. In the
 * end every message must be in sms/mttx exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { makeSpoolTree, spawnCli, runCli, visibleFiles } from '../helpers/spool-tree.js';
import { openDatabase } from '../../src/journal/store.js';
import { RecipientDirectory } from '../../src/directory/recipients.js';
import { writeMorx } from '../../src/cli/send.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';
import { mulberry32 } from '../helpers/random.js';

const TOTAL = 1000;

// Seeded, so a failing run can be replayed.
const SEED = 20261122;

test(`SIGKILL at 10+ points while draining ${TOTAL} messages loses and duplicates nothing (seed ${SEED})`, { timeout: 300_000 }, async (t) => {
  const random = mulberry32(SEED);
  // Small batches so kills land between, inside and around many transactions.
  const tree = makeSpoolTree('[spool]\nroot = "spool"\nfsync = false\nbatch_size = 16\n');
  try {
    const db = openDatabase(tree.dbPath);
    const dir = new RecipientDirectory(db);
    for (let r = 0; r < 25; r++) dir.add({ number: `30${String(r).padStart(2, '0')}`, service: 'S', channel: `PJSIP/30${String(r).padStart(2, '0')}` });
    db.close();
    const texts = new Set<string>();
    for (let i = 0; i < TOTAL; i++) {
      const text = i % 4 === 0 ? `Wiadomość numer ${i} ż` : `crash test message ${i}`;
      texts.add(text);
      writeMorx(tree.morx, { from: `4860011${String(1000 + (i % 50))}`, to: `30${String(i % 25).padStart(2, '0')}`, text }, false);
    }

    const kills: string[] = [];
    let spooledBefore = 0;
    for (let round = 0; round < 40 && kills.length < 14; round++) {
      const daemon = spawnCli(['run', '--config', tree.configPath]);
      await daemon.waitForLine((l) => l.includes('"starting"'));
      // Targets stay small so that 1,000 messages need many more than 10 runs (a fast machine must not drain them in a few).
      let point: string;
      if (round % 2 === 0) {
        // Kill once this run has spooled a random number of messages.
        const target = 1 + Math.floor(random() * 40);
        let seen = 0;
        try {
          await daemon.waitForLine((l) => l.includes('"outcome":"spooled"') && ++seen >= target, 20_000);
        } catch {
          /* drained before reaching the target: kill wherever it is */
        }
        point = `after ${seen} spooled in this run`;
      } else {
        // Kill at a random moment after the backlog scan began, most likely inside a batch
        // (between journal commit, unlink, mttx and call file).
        await daemon.waitForLine((l) => l.includes('watching the spool') || l.includes('"outcome":"spooled"'));
        const delay = Math.floor(random() * 30);
        await new Promise((r) => setTimeout(r, delay));
        point = `${delay} ms into the drain`;
      }
      daemon.child.kill('SIGKILL');
      const exit = await daemon.exited;
      assert.equal(exit.signal, 'SIGKILL');
      const check = new Database(tree.dbPath, { readonly: true });
      const spooled = (check.prepare(`SELECT count(*) AS n FROM messages WHERE state = 'spooled'`).get() as { n: number }).n;
      check.close();
      kills.push(`${point} (spooled ${spooledBefore} → ${spooled}, morx ${visibleFiles(tree.morx).length})`);
      spooledBefore = spooled;
      if (spooled === TOTAL && visibleFiles(tree.morx).length === 0) break;
    }
    // Whatever is left is finished by a last, uninterrupted run.
    const last = await runCli(['process', '--config', tree.configPath]);
    assert.equal(last.code, 0, last.stderr);

    t.diagnostic(`kill points:\n${kills.join('\n')}`);
    assert.ok(kills.length >= 10, `only ${kills.length} kills happened:\n${kills.join('\n')}`);
    assert.deepEqual(visibleFiles(tree.morx), []);
    const seen = new Map<string, number>();
    for (const name of visibleFiles(tree.mttx)) {
      const r = phoneReceivesFile(path.join(tree.mttx, name));
      assert.ok(r.ok);
      seen.set(r.message.text, (seen.get(r.message.text) ?? 0) + 1);
    }
    const missing = [...texts].filter((t) => !seen.has(t));
    const doubled = [...seen].filter(([, n]) => n !== 1);
    assert.deepEqual(missing, [], `lost messages after kills:\n${kills.join('\n')}`);
    assert.deepEqual(doubled, [], 'duplicated messages');
    assert.equal(seen.size, TOTAL);

    const check = new Database(tree.dbPath, { readonly: true });
    const rows = check.prepare(`SELECT state, count(*) AS n FROM messages GROUP BY state`).all();
    // One pending call per queue, whatever the kills did.
    const callsPerQueue = new Map<string, number>();
    for (const name of visibleFiles(tree.outgoing)) {
      const queue = name.split('-')[2]!;
      callsPerQueue.set(queue, (callsPerQueue.get(queue) ?? 0) + 1);
    }
    check.close();
    assert.deepEqual(rows, [{ state: 'spooled', n: TOTAL }]);
    assert.equal(callsPerQueue.size, 25);
    for (const [q, n] of callsPerQueue) assert.equal(n, 1, `queue ${q} has ${n} call files`);
  } finally {
    tree.cleanup();
  }
});
