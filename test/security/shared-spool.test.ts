/**
 * Security: a local user who shares Asterisk's group can write in sms/mttx,
 * tmp/ and the quarantine, and our temporary names there are predictable
 * (.QUEUE.ID-N, smsr-S-QUEUE-CALL.call, NAME.reason). A symbolic or hard link
 * planted under such a name must never make the daemon write through it into
 * a file of the daemon's user (the database, Asterisk's configuration).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { writeMorx } from '../../src/cli/send.js';
import { decodeSmsFile } from '../../src/spool/sms-file.js';
import { parseCallFile } from '../../src/asterisk/call-file.js';
import { dropMorx, rows } from './support.js';

test('links planted under the temporary names in mttx, tmp/ and the quarantine are replaced, never written through', async () => {
  const t = makeSpoolTree();
  try {
    const { daemon, stop } = await startDaemon(t);
    try {
      daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
      // The daemon user's own files, outside the spool, that the planted links point at.
      const own = path.join(t.dir, 'private');
      mkdirSync(own);
      const precious = path.join(own, 'precious.db');
      const hardLinked = path.join(own, 'extensions.conf');
      const callTarget = path.join(own, 'manager.conf');
      writeFileSync(precious, 'PRECIOUS');
      writeFileSync(hardLinked, 'HARD-LINKED');
      writeFileSync(callTarget, 'CALL-TARGET');
      const created = [path.join(own, 'created-by-mttx'), path.join(own, 'created-by-reason')];

      // The names the S route writes for messages 1..3 before renaming them in, and the first call's staging name.
      symlinkSync(created[0]!, path.join(t.mttx, '.2001.1-1')); // dangling: would create a file
      symlinkSync(precious, path.join(t.mttx, '.2001.2-1')); // would truncate and overwrite
      linkSync(hardLinked, path.join(t.mttx, '.2001.3-1')); // same inode: would overwrite in place
      symlinkSync(callTarget, path.join(t.config.spool.tmp, 'smsr-S-2001-1.call'));
      // The quarantine's reason file for a bad morx file.
      symlinkSync(created[1]!, path.join(t.quarantine, 'bad.1.reason'));

      for (let i = 1; i <= 3; i++) writeMorx(t.morx, { from: '2002', to: '2001', text: `message ${i}`, now: new Date(Date.now() + i * 1000) }, false);
      dropMorx(t.morx, 'bad.1', 'not a spool file\n');
      await waitUntil(() => rows(daemon).filter((r) => r.state === 'spooled').length === 3 && visibleFiles(t.morx).length === 0, 20_000, 'three messages spooled');
      await daemon.idle();

      assert.equal(readFileSync(precious, 'utf8'), 'PRECIOUS');
      assert.equal(readFileSync(hardLinked, 'utf8'), 'HARD-LINKED');
      assert.equal(readFileSync(callTarget, 'utf8'), 'CALL-TARGET');
      for (const f of created) assert.ok(!existsSync(f), `${path.basename(f)} not created`);

      // What Asterisk finds are our own regular files, with the right content.
      const texts = visibleFiles(t.mttx).map((n) => {
        const file = path.join(t.mttx, n);
        assert.ok(lstatSync(file).isFile(), `${n} is a regular file`);
        assert.equal(lstatSync(file).nlink, 1, `${n} has no other name`);
        const r = decodeSmsFile(readFileSync(file));
        assert.ok(r.ok);
        return r.message.text;
      });
      assert.deepEqual(texts.sort(), ['message 1', 'message 2', 'message 3']);
      const [call] = visibleFiles(t.outgoing);
      assert.equal(call, 'smsr-S-2001-1.call');
      assert.ok(lstatSync(path.join(t.outgoing, call)).isFile());
      assert.equal(parseCallFile(readFileSync(path.join(t.outgoing, call), 'utf8')).get('Data'), '2001,s');
      // The bad file is quarantined beside the planted link, with a reason of its own.
      assert.ok(lstatSync(path.join(t.quarantine, 'bad.1.reason')).isSymbolicLink(), 'the planted link is left alone');
      assert.match(readFileSync(path.join(t.quarantine, 'bad.1.1.reason'), 'utf8'), /SPOOL_PARSE/);
      assert.equal(readFileSync(path.join(t.quarantine, 'bad.1.1'), 'utf8'), 'not a spool file\n');
    } finally {
      await stop();
    }
  } finally {
    t.cleanup();
  }
});

test('a symbolic link dropped into morx is quarantined as a link: the file it points at is neither read, sent nor changed', async () => {
  const t = makeSpoolTree();
  try {
    const { daemon, stop } = await startDaemon(t);
    try {
      daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
      const secret = path.join(t.dir, 'shadow');
      writeFileSync(secret, 'oa=2002\nda=2001\nud=root:$6$secret-hash\n', { mode: 0o600 });
      symlinkSync(secret, path.join(t.morx, '2002.2024-01-01T00:00:00-0'));
      await waitUntil(() => visibleFiles(t.quarantine).length === 2, 10_000, 'the link quarantined');
      await daemon.idle();
      assert.deepEqual(rows(daemon), [], 'nothing recorded');
      assert.deepEqual(visibleFiles(t.mttx), []);
      const q = path.join(t.quarantine, '2002.2024-01-01T00:00:00-0');
      assert.ok(lstatSync(q).isSymbolicLink(), 'the link itself was moved');
      assert.match(readFileSync(`${q}.reason`, 'utf8'), /SPOOL_NOT_A_FILE: a symbolic link/);
      assert.equal(lstatSync(secret).mode & 0o777, 0o600, 'its target keeps its mode (never chmod through a link)');
    } finally {
      await stop();
    }
  } finally {
    t.cleanup();
  }
});
