/**
 * Security: files are written with the modes Asterisk needs and no wider,
 * whatever the umask (THREATS.md, "file modes"):
 *   0640  mttx, morx (`send`), fax TIFF, voice WAV, quarantined file and its .reason: Asterisk's group reads them
 *   0660  call files: pbx_spool appends StartRetry/EndRetry/Status lines to them
 *   0750  the fax and voice directories we create: Asterisk's group reads, nobody else writes
 *   0640  [log] file (in a 0750 directory we create): nobody else writes or reads it
 * The daemon runs in this process with umask 0000, the CLI as a child with umask 0000
 * (children inherit it): if a writer relied on the umask, these modes would be 0664/0666/0777.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, renameSync, statSync } from 'node:fs';
import { openLogFile } from '../../src/logger.js';
import path from 'node:path';
import { makeSpoolTree, runCli, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { writeMorx } from '../../src/cli/send.js';
import { dropMorx, rows } from './support.js';

const mode = (file: string) => statSync(file).mode & 0o7777;
const octal = (m: number) => `0${m.toString(8).padStart(3, '0')}`;

function assertMode(file: string, expected: number): void {
  assert.equal(octal(mode(file)), octal(expected), path.basename(file));
}

/** Runs `fn` with `mask` as this process's umask (children inherit it), then restores the old one. */
async function withUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

test('with umask 0000: mttx 0640, call files 0660, quarantined file and .reason 0640, fax TIFF and voice WAV 0640, their directories 0750', { timeout: 120_000 }, async () => {
  await withUmask(0, async () => {
    const t = makeSpoolTree(`[fax]\nkeep = true\n[voice]\nkeep = true\n`);
    try {
      const { daemon, stop } = await startDaemon(t);
      try {
        daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
        daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax1' });
        daemon.directory.add({ number: '4001', service: 'V', channel: 'PJSIP/4001', language: 'en' });
        writeMorx(t.morx, { from: '2002', to: '2001', text: 'to the phone' }, false);
        writeMorx(t.morx, { from: '2002', to: '3001', text: 'to the fax' }, false);
        writeMorx(t.morx, { from: '2002', to: '4001', text: 'to the voice line' }, false);
        dropMorx(t.morx, 'broken.1', 'this is not a spool file\n');
        await waitUntil(() => visibleFiles(t.outgoing).length === 3, 60_000, 'three call files');
        await waitUntil(() => visibleFiles(t.quarantine).length === 2, 10_000, 'the quarantined file');

        for (const n of visibleFiles(t.mttx)) assertMode(path.join(t.mttx, n), 0o640);
        assert.equal(visibleFiles(t.mttx).length, 1);
        for (const n of visibleFiles(t.outgoing)) assertMode(path.join(t.outgoing, n), 0o660);
        assertMode(path.join(t.quarantine, 'broken.1'), 0o640);
        assertMode(path.join(t.quarantine, 'broken.1.reason'), 0o640);

        const byDa = new Map(rows(daemon).map((r) => [r.da, r.id]));
        const { fax, voice } = t.config;
        assertMode(path.join(fax.dir, `${byDa.get('3001')}.tif`), 0o640);
        assertMode(path.join(voice.dir, `${byDa.get('4001')}.wav`), 0o640);
        const prompts = readdirSync(voice.dir).filter((n) => n.startsWith('prompt-'));
        assert.ok(prompts.length > 0, 'the "press 1" prompt');
        for (const n of prompts) assertMode(path.join(voice.dir, n), 0o640);
        assertMode(fax.dir, 0o750);
        assertMode(voice.dir, 0o750);
      } finally {
        await stop();
      }
    } finally {
      t.cleanup();
    }
  });
});

// 0077 too: a umask that would hide the files from Asterisk's group must not either (the mode is set exactly).
for (const mask of [0o000, 0o077]) {
  test(`with umask ${octal(mask)}: \`sms-router send\` writes its morx file 0640`, async () => {
    await withUmask(mask, async () => {
      const t = makeSpoolTree();
      try {
        const r = await runCli(['send', '--config', t.configPath, '--from', '2002', '--to', '2001', 'hello']);
        assert.equal(r.code, 0, r.stderr);
        const [name] = visibleFiles(t.morx);
        assert.ok(name);
        assertMode(path.join(t.morx, name), 0o640);
        assert.ok(!readdirSync(t.morx).some((n) => n.startsWith('.')), 'no dot-file left behind');
      } finally {
        t.cleanup();
      }
    });
  });

  test(`with umask ${octal(mask)}: an S message is 0640 in mttx, its call file (held by quiet hours) 0660 with its future mtime`, async () => {
    await withUmask(mask, async () => {
      const t = makeSpoolTree(`[quiet]\nhours = "00:00-23:59"\nservices = ["S"]\n`);
      try {
        // Noon on a day far ahead: the window ends at 23:59 that day, after any real clock running this test.
        const { daemon, stop } = await startDaemon(t, [], { now: () => new Date(2099, 0, 1, 12, 0, 0) });
        try {
          daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
          writeMorx(t.morx, { from: '2002', to: '2001', text: 'at night' }, false);
          await waitUntil(() => visibleFiles(t.outgoing).length === 1, 10_000, 'the call file');
          const file = path.join(t.outgoing, visibleFiles(t.outgoing)[0]!);
          assertMode(file, 0o660);
          assert.equal(visibleFiles(t.mttx).length, 1);
          for (const m of visibleFiles(t.mttx)) assertMode(path.join(t.mttx, m), 0o640);
          // pbx_spool holds a call file until its mtime: set through the descriptor, it survived the rename.
          assert.equal(new Date(statSync(file).mtimeMs).getFullYear(), 2099, 'mtime at the end of the window');
        } finally {
          await stop();
        }
      } finally {
        t.cleanup();
      }
    });
  });
}

test('with umask 0000: [log] file is 0640 in a 0750 directory, and stays 0640 when SIGHUP reopens it after logrotate', async () => {
  const t = makeSpoolTree();
  try {
    await withUmask(0o000, async () => {
      const file = path.join(t.dir, 'log', 'sms-router', 'sms-router.log');
      const destination = openLogFile(file);
      destination.write('{"msg":"one"}\n');
      assertMode(file, 0o640);
      assertMode(path.dirname(file), 0o750);
      renameSync(file, `${file}.1`);
      destination.reopen();
      destination.write('{"msg":"two"}\n');
      assertMode(file, 0o640);
      destination.end();
    });
  } finally {
    t.cleanup();
  }
});
