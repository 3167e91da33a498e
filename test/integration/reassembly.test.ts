/**
 * Long messages from phones arrive as parts (a concatenation UDH each). The
 * daemon keeps them in the journal until all are there, then routes the
 * joined text once: re-split for an S phone, whole for a fax.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { encodeSmsFile } from '../../src/spool/sms-file.js';
import { phoneReceivesFile } from '../fakes/app-sms.js';
import { splitMessage, joinParts } from '../../src/spool/encoding.js';

const GSM = 'Three parts of plain GSM text. '.repeat(12).trim(); // > 2 × 153 septets
const UCS2 = 'Zażółć gęślą jaźń, część druga. '.repeat(3).trim(); // > 67 UCS-2 characters

/** Writes parts as app_sms would after a phone sent them (one morx file each), in the given order. */
function phoneSends(tree: SpoolTree, from: string, to: string, text: string, reference: number, order: number[], bits: 8 | 16 = 8) {
  const parts = splitMessage(text, { reference, referenceBits: bits });
  order.forEach((i, k) => {
    const p = parts[i]!;
    writeFileSync(path.join(tree.morx, `.${from}.x-${to}-${reference}-${k}`), encodeSmsFile({ oa: from, da: to, udh: p.udh, text: p.text, dcs: p.dcs, scts: '2026-11-22T04:16:58' }, 'app_sms'));
    // renamed in, as app_sms does, so the daemon never sees half a file
    renameSync(path.join(tree.morx, `.${from}.x-${to}-${reference}-${k}`), path.join(tree.morx, `${from}.2026-11-22T04:16:58-${to}${reference}${k}`));
  });
  return parts;
}

function rows(daemon: Awaited<ReturnType<typeof startDaemon>>['daemon']) {
  return daemon.db.prepare(`SELECT id, source, da, state, route, text, detail FROM messages ORDER BY id`).all() as Array<{ id: number; source: string; da: string; state: string; route: string | null; text: string; detail: string | null }>;
}

test('a three-part GSM and a two-part UCS-2 message, out of order with a duplicate, reach an S phone re-split and a fax as one text', async () => {
  const tree = makeSpoolTree('[sms]\nreassembly_timeout = 60\n');
  const { daemon, stop } = await startDaemon(tree);
  try {
    daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
    daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax1' });
    // Each message, out of order with one part duplicated, to a phone and to a fax.
    const gsm = phoneSends(tree, '2002', '2001', GSM, 0x21, [2, 0, 2, 1]);
    phoneSends(tree, '2002', '3001', GSM, 0x21, [1, 2, 0, 0]);
    const ucs = phoneSends(tree, '2002', '3001', UCS2, 0x22, [1, 1, 0], 16);
    phoneSends(tree, '2002', '2001', UCS2, 0x22, [1, 0, 0], 16);
    assert.equal(gsm.length, 3);
    assert.equal(ucs.length, 2);
    await waitUntil(() => rows(daemon).filter((r) => r.source === 'concat').length === 4, 15_000, 'four joined messages');
    const joined = rows(daemon).filter((r) => r.source === 'concat');
    assert.deepEqual(joined.map((r) => [r.da, r.text]).sort(), [
      ['2001', GSM],
      ['2001', UCS2],
      ['3001', GSM],
      ['3001', UCS2],
    ]);
    // The parts are kept, each pointing at its message; the duplicates too.
    const parts = rows(daemon).filter((r) => r.route === 'concat');
    assert.equal(parts.length, 14);
    // Two duplicates came before their set was complete, two after it was joined: all four are ignored.
    const details = parts.map((r) => JSON.parse(r.detail!) as { duplicate?: boolean; duplicateOf?: number });
    assert.equal(details.filter((d) => d.duplicate).length, 2);
    assert.equal(details.filter((d) => d.duplicateOf !== undefined).length, 2);
    // To the phone: each re-split, joining back to its original; to the fax: one call per text.
    await waitUntil(() => visibleFiles(tree.mttx).length >= 5, 15_000, 'mttx parts');
    const sent = visibleFiles(tree.mttx).map((n) => ({ id: n.split('.')[1]!.split('-')[0], r: phoneReceivesFile(path.join(tree.mttx, n)) }));
    const byMessage = new Map<string, Array<{ udh?: string; text: string }>>();
    for (const { id, r } of sent) {
      assert.ok(r.ok);
      byMessage.set(id!, [...(byMessage.get(id!) ?? []), { udh: r.message.udh, text: r.message.text }]);
    }
    assert.deepEqual([...byMessage.values()].map((p) => joinParts(p)).sort(), [GSM, UCS2].sort());
    await waitUntil(() => daemon.db.prepare(`SELECT count(*) AS n FROM calls WHERE service = 'F'`).get() !== undefined && (daemon.db.prepare(`SELECT count(*) AS n FROM messages WHERE source = 'concat' AND da = '3001' AND state IN ('spooled', 'pending')`).get() as { n: number }).n === 2, 15_000, 'the fax messages');
    // One fax line: one call now, the other waits for it in the journal.
    assert.equal(visibleFiles(tree.outgoing).filter((n) => n.startsWith('smsr-F-')).length, 1);
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('a message missing its middle part is delivered after the timeout with a marker', async () => {
  const tree = makeSpoolTree('[sms]\nreassembly_timeout = 1\n');
  const { daemon, stop } = await startDaemon(tree);
  try {
    daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax1' });
    const parts = phoneSends(tree, '2002', '3001', GSM, 0x23, [0, 2]);
    await waitUntil(() => rows(daemon).filter((r) => r.source === 'concat').length === 1, 15_000, 'joined after the timeout');
    const [joined] = rows(daemon).filter((r) => r.source === 'concat');
    assert.match(joined!.text, /\[part 2 of 3 missing\]/);
    assert.ok(joined!.text.startsWith(parts[0]!.text.trimEnd()));
    assert.ok(joined!.text.endsWith(parts[2]!.text));
  } finally {
    await stop();
    tree.cleanup();
  }
});

test('a duplicate of a part that arrives after its message was joined is ignored', async () => {
  const tree = makeSpoolTree('[sms]\nreassembly_timeout = 60\n');
  const { daemon, stop } = await startDaemon(tree);
  try {
    daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax1' });
    phoneSends(tree, '2002', '3001', UCS2, 0x24, [0, 1]);
    await waitUntil(() => rows(daemon).filter((r) => r.source === 'concat').length === 1, 15_000, 'joined');
    phoneSends(tree, '2002', '3001', UCS2, 0x24, [1]);
    await waitUntil(() => rows(daemon).length === 4 && rows(daemon)[3]!.state === 'delivered', 15_000, 'late duplicate handled');
    assert.equal(rows(daemon).filter((r) => r.source === 'concat').length, 1, 'no second message');
    assert.deepEqual(JSON.parse(rows(daemon).at(-1)!.detail!), { duplicateOf: 2 });
  } finally {
    await stop();
    tree.cleanup();
  }
});
