/** The small CLI helpers, run as a user would run them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeSpoolTree, runCli, visibleFiles } from '../helpers/spool-tree.js';
import { decodeSmsFile } from '../../src/spool/sms-file.js';

const FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/', import.meta.url));

test('decode prints each file as one JSON line with every field, and the error for a bad file', async () => {
  const files = [path.join(FIXTURES, 'morx/02_newline.morx'), path.join(FIXTURES, 'morx/17_validity_period_and_reply_path.morx'), path.join(FIXTURES, 'bad/no_da.sms')];
  const r = await runCli(['decode', ...files]);
  assert.equal(r.code, 1, 'a bad file makes the exit code non-zero');
  const [newline, vp, bad] = r.stdout.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(newline, { file: files[0], oa: '48600111222', da: '447700900123', text: 'First line\nSecond line', udh: null, scts: '2026-11-22T04:17:43', mr: 1, dcs: null, pid: null, srr: false, rp: false, vp: null });
  assert.equal(vp!.vp, 90720);
  assert.equal(vp!.rp, true);
  assert.equal((bad!.error as { code: string }).code, 'SPOOL_PARSE');
});

test('send writes a morx file as app_sms names it, from an argument or standard input', async () => {
  const tree = makeSpoolTree();
  try {
    const a = await runCli(['send', '--config', tree.configPath, '--from', '+48600111222', '--to', '2001', 'Zażółć gęślą jaźń 😀']);
    assert.equal(a.code, 0, a.stderr);
    const b = await runCli(['send', '--config', tree.configPath, '--from', '2002', '--to', '2001'], 'line one\nline two\n');
    assert.equal(b.code, 0, b.stderr);
    const names = visibleFiles(tree.morx);
    assert.equal(names.length, 2);
    for (const n of names) assert.match(n, /^-?\d+\.\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-\d+$/);
    const decoded = names.map((n) => decodeSmsFile(readFileSync(path.join(tree.morx, n)))).map((d) => (d.ok ? d.message : undefined));
    const polish = decoded.find((m) => m?.oa === '+48600111222')!;
    assert.equal(polish.text, 'Zażółć gęślą jaźń ?', 'the emoji becomes the visible substitute');
    assert.ok(names.some((n) => n.startsWith('-48600111222.')), 'the queue is the number as app_sms sanitises it');
    assert.equal(decoded.find((m) => m?.oa === '2002')!.text, 'line one\nline two');
    const bad = await runCli(['send', '--config', tree.configPath, '--from', '2002', '--to', '../etc', 'x']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid number/);
    const usage = await runCli(['send', '--config', tree.configPath, '--to', '1', 'x']);
    assert.equal(usage.code, 2);
  } finally {
    tree.cleanup();
  }
});

test('--version and unknown commands', async () => {
  const v = await runCli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+$/);
  const u = await runCli(['frobnicate']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /unknown command/);
});
