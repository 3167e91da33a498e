/**
 * Quiet hours: a call due inside the window is placed for the window's end,
 * by the call file's mtime (pbx_spool waits for a future mtime).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { writeMorx } from '../../src/cli/send.js';

test('a message arriving at 23:00 is called at the end of the 22:00-07:00 window, and the call file mtime says so', async () => {
  const tree = makeSpoolTree('[quiet]\nhours = "22:00-07:00"\ntime_zone = "Europe/Warsaw"\nservices = ["S", "F", "V"]\n');
  // 23:00 in Warsaw (UTC+1 in November).
  const clock = () => new Date('2026-11-22T22:00:00Z');
  const { daemon, stop } = await startDaemon(tree, [], { now: clock });
  try {
    daemon.directory.add({ number: '4001', service: 'V', channel: 'PJSIP/4001' });
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    daemon.directory.add({ number: '2003', service: 'S', channel: 'DAHDI/3', quietHours: '12:00-14:00' });
    writeMorx(tree.morx, { from: '2001', to: '4001', text: 'late news' }, false);
    writeMorx(tree.morx, { from: '4001', to: '2001', text: 'late sms' }, false);
    writeMorx(tree.morx, { from: '4001', to: '2003', text: 'night owl' }, false);
    await waitUntil(() => visibleFiles(tree.outgoing).length === 3, 20_000, 'three call files');
    const mtime = (prefix: string) => statSync(path.join(tree.outgoing, visibleFiles(tree.outgoing).find((n) => n.startsWith(prefix))!)).mtime.toISOString();
    // 07:00 in Warsaw the next morning.
    assert.equal(mtime('smsr-V-'), '2026-11-23T06:00:00.000Z');
    assert.equal(mtime('smsr-S-2001-'), '2026-11-23T06:00:00.000Z');
    // A recipient's own window wins: 2003 is quiet only at midday, so its call is not held.
    assert.ok(Date.parse(mtime('smsr-S-2003-')) <= Date.now() + 1000);
  } finally {
    await stop();
    tree.cleanup();
  }
});
