/**
 * One call at a time per app_sms queue, with real SQLite and real directories.
 * A call is in flight from the moment its file is renamed into outgoing/ until
 * its archived copy in outgoing_done/ has been read (the daemon then moves it
 * away): pbx_spool keeps the file in outgoing/ during the call and renames it
 * into outgoing_done/ at the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { SmsCallSpool } from '../../src/asterisk/call-spool.js';
import { Journal } from '../../src/journal/journal.js';
import { openDatabase } from '../../src/journal/store.js';
import { makeSpoolTree, visibleFiles } from '../helpers/spool-tree.js';

function setUp() {
  const tree = makeSpoolTree();
  const db = openDatabase(tree.dbPath);
  const journal = new Journal(db);
  const calls = new SmsCallSpool(tree.config, journal, { fsync: false });
  mkdirSync(tree.config.spool.outgoingDone, { recursive: true });
  mkdirSync(tree.config.spool.tmp, { recursive: true }); // the daemon makes it at start
  /** What pbx_spool does when the call is over (Archive: yes): one rename. */
  const archive = (name: string) => renameSync(path.join(tree.outgoing, name), path.join(tree.config.spool.outgoingDone, name));
  return { tree, db, journal, calls, archive };
}

test('a queue gets no second call while its finished call waits unread in outgoing_done/', () => {
  const { tree, db, journal, calls, archive } = setUp();
  try {
    const first = calls.ensureCall('2001', 'DAHDI/1', null);
    assert.ok(first);
    assert.equal(calls.ensureCall('2001', 'DAHDI/1', null), undefined, 'its file waits in outgoing/');
    archive(first);
    // Before the fix the call counted as over here, and a second call took new files whose
    // YOS lines were not written yet when the first call's Completed was read: sent twice.
    assert.equal(calls.ensureCall('2001', 'DAHDI/1', null), undefined, 'archived but not read yet');
    assert.deepEqual(visibleFiles(tree.outgoing), []);
    // The daemon reads it: the row gets its status, the file goes away; now the queue may get a call.
    journal.finishCallRow(journal.callNamed(first)!.id, 'Completed');
    rmSync(path.join(tree.config.spool.outgoingDone, first));
    const second = calls.ensureCall('2001', 'DAHDI/1', null);
    assert.ok(second);
    assert.notEqual(second, first);
  } finally {
    db.close();
    tree.cleanup();
  }
});

test('a call row whose file is in neither directory is over (a crash before the file was written)', () => {
  const { tree, db, calls } = setUp();
  try {
    const first = calls.ensureCall('2001', 'DAHDI/1', null)!;
    rmSync(path.join(tree.outgoing, first));
    assert.equal(calls.hasPendingCall('2001'), false);
    assert.ok(calls.ensureCall('2001', 'DAHDI/1', null));
  } finally {
    db.close();
    tree.cleanup();
  }
});

test('otherCallInFlight: an archived call read again after a crash knows a later call of its queue is still going', () => {
  const { tree, db, journal, calls, archive } = setUp();
  try {
    const first = calls.ensureCall('2001', 'DAHDI/1', null)!;
    archive(first);
    // Read once (row finished), then killed before it was moved away: it is still in outgoing_done/.
    journal.finishCallRow(journal.callNamed(first)!.id, 'Completed');
    assert.equal(calls.otherCallInFlight('2001', first), false);
    const second = calls.ensureCall('2001', 'DAHDI/1', null)!;
    assert.equal(calls.otherCallInFlight('2001', first), true, 'the later call is in outgoing/');
    archive(second);
    assert.equal(calls.otherCallInFlight('2001', first), true, 'the later call is archived, not read yet');
    assert.equal(calls.otherCallInFlight('2001', second), false, 'the latest call itself');
    assert.equal(calls.otherCallInFlight('2002', first), false, 'another queue');
  } finally {
    db.close();
    tree.cleanup();
  }
});
