/**
 * Non-ASCII SMS through app_sms as the real one reads our files (issue 15).
 *
 * On a real Asterisk 20 every S message with a non-ASCII letter arrived
 * damaged: we wrote `ud=` as UTF-8, app_sms reads that line byte by byte
 * (`zażółć €` reached the phone as `zaż¼ó³łć €¬`), logged YOS with the mangled
 * text, the matcher did not recognise it, the message was sent again and
 * finally bounced. The fake app_sms (test/fakes/app-sms.ts) now reads `ud=`
 * the way the real one does, so this test fails with that writer: the phone
 * must get each text exactly, once, and the sender no notice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../helpers/ports.js';
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { FakeAsterisk } from '../fakes/asterisk.js';
import { writeMorx } from '../../src/cli/send.js';
import { appSmsMisreads, decodeSmsFile, encodeSmsFile } from '../../src/spool/sms-file.js';

const PHONE = '2001';
const SENDER = '447700900123';
const SOFTPHONE = '1001';

const TEXTS = [
  'Real FSK loop zażółć €',
  'Привет, мир! Как дела?',
  'GSM-7 extension: ^{}[]~|\\ and €5',
  'café crème, Ça va? ñ ß Ø',
  // Long UCS-2: joined from nothing, re-split by the daemon into 67-character parts.
  'Zażółć gęślą jaźń. '.repeat(9),
];

test('S: Polish, Cyrillic, €, the GSM extension table and a long UCS-2 text reach the phone exactly, once, through app_sms as the real one reads files; no notice', async () => {
  const agiPort = await freePort();
  const tree = makeSpoolTree(
    `[agi]\nlisten = "127.0.0.1:${agiPort}"\n` + `[sms]\napp_log = "log/sms"\nretry_delay = 1\nretry_backoff = 1\nmax_attempts = 2\n`,
  );
  const asterisk = new FakeAsterisk({ config: tree.config, agiPort });
  const { daemon, stop } = await startDaemon(tree);
  try {
    daemon.directory.add({ number: PHONE, service: 'S', channel: 'DAHDI/1' });
    daemon.directory.add({ number: SENDER, service: 'S', channel: 'DAHDI/2' });
    daemon.directory.add({ number: SOFTPHONE, service: 'T', channel: 'PJSIP/1001' });
    asterisk.start();
    for (const text of TEXTS) writeMorx(tree.morx, { from: SENDER, to: PHONE, text }, false);
    const sipText = 'Cześć z softphone’a: żółw';
    asterisk.sendSipMessage({ from: SOFTPHONE, to: PHONE, body: sipText, uniqueid: '1700000000.1' });

    const db = new Database(tree.dbPath, { readonly: true });
    type Row = { id: number; kind: string; oa: string; da: string; text: string; state: string; route: string | null };
    const rows = () => db.prepare(`SELECT id, kind, oa, da, text, state, route FROM messages ORDER BY id`).all() as Row[];
    // Final: delivered, or (with a writer app_sms misreads) failed after its two attempts. The
    // long text's three morx parts are rows of their own (route concat), joined into one more.
    const settled = () => {
      const messages = rows().filter((r) => r.kind === 'message' && r.route !== 'concat');
      return messages.length === TEXTS.length + 1 && messages.every((r) => ['delivered', 'failed', 'bounced'].includes(r.state)) && asterisk.idle;
    };
    await waitUntil(settled, 120_000, 'every message to be delivered or failed');

    const all = rows();
    assert.deepEqual(
      all.filter((r) => r.kind === 'notice'),
      [],
      'no notice: the phone acknowledged every message the first time',
    );
    for (const text of [...TEXTS, sipText]) {
      const row = all.find((r) => r.text === text && r.route !== 'concat');
      assert.ok(row, `journal row for ${JSON.stringify(text)}`);
      assert.equal(row.state, 'delivered', `${JSON.stringify(text)} is delivered`);
      const received = asterisk.mttx.filter((m) => m.id === row.id).sort((a, b) => a.part - b.part);
      const parts = new Set(received.map((m) => m.part));
      assert.equal(parts.size, received.length, `each part of ${JSON.stringify(text)} reached the phone once`);
      assert.equal(received.map((m) => m.text).join(''), text, 'the phone got the text exactly');
      assert.ok(received.every((m) => m.queue === PHONE && m.da === PHONE));
    }
    const long = all.find((r) => r.text === TEXTS[4])!;
    assert.equal(asterisk.mttx.filter((m) => m.id === long.id).length, 3, 'the 171-character UCS-2 text went as three parts');
    db.close();
  } finally {
    await asterisk.stop();
    await stop();
    tree.cleanup();
  }
});

test('after an upgrade: a waiting mttx file in the old ud= UTF-8 form is written again as ud##, and the phone gets the text exactly, once', async () => {
  const agiPort = await freePort();
  const tree = makeSpoolTree(`[agi]\nlisten = "127.0.0.1:${agiPort}"\n[sms]\napp_log = "log/sms"\nretry_delay = 1\nretry_backoff = 1\nmax_attempts = 2\n`);
  const text = 'Real FSK loop zażółć €';
  try {
    // The old daemon: the message is spooled for the phone, its call waits in outgoing/.
    let file: string;
    {
      const { daemon, stop } = await startDaemon(tree);
      daemon.directory.add({ number: PHONE, service: 'S', channel: 'DAHDI/1' });
      daemon.directory.add({ number: SENDER, service: 'S', channel: 'DAHDI/2' });
      writeMorx(tree.morx, { from: SENDER, to: PHONE, text }, false);
      await waitUntil(() => visibleFiles(tree.mttx).length === 1, 30_000, 'the mttx file');
      await stop();
      file = path.join(tree.mttx, visibleFiles(tree.mttx)[0]!);
    }
    // ... as the old writer had written it.
    const decoded = decodeSmsFile(readFileSync(file), { requireDa: false });
    assert.ok(decoded.ok);
    writeFileSync(file, encodeSmsFile(decoded.message, 'app_sms'));
    assert.equal(appSmsMisreads(readFileSync(file)), true);

    const lines: string[] = [];
    const asterisk = new FakeAsterisk({ config: tree.config, agiPort });
    const { stop } = await startDaemon(tree, lines);
    try {
      assert.equal(appSmsMisreads(readFileSync(file)), false, 'rewritten at start, before any call could take it');
      asterisk.start();
      const db = new Database(tree.dbPath, { readonly: true });
      const row = () => db.prepare(`SELECT id, state FROM messages WHERE kind = 'message' AND text = ?`).get(text) as { id: number; state: string };
      await waitUntil(() => row().state === 'delivered' && asterisk.idle, 60_000, 'delivery');
      assert.deepEqual(
        asterisk.mttx.map((m) => m.text),
        [text],
        'the phone got the text once, exactly',
      );
      assert.equal((db.prepare(`SELECT count(*) AS n FROM messages WHERE kind = 'notice'`).get() as { n: number }).n, 0);
      assert.ok(lines.some((l) => l.includes('written again as ud#/ud##')));
      db.close();
    } finally {
      await asterisk.stop();
      await stop();
    }
  } finally {
    tree.cleanup();
  }
});
