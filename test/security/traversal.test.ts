/**
 * Security: path traversal through numbers, queue names and message ids.
 *
 * Everything that names a file (sms/mttx/QUEUE.ID-N, outgoing/smsr-….call, the
 * fax and voice artefacts, agi://…/fax/ID) is derived from a directory number
 * that passed numbers.ts or from a journal id, never from what a phone, a SIP
 * client or a command line sent. These tests send hostile values through every
 * door (a morx file, `send`, `users`, inbound SIP, FastAGI script names,
 * `messages`) and look at the disk: nothing outside the spool, bad input
 * quarantined or refused with a code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, runCli, visibleFiles, waitUntil } from '../helpers/spool-tree.js';
import { startDaemon } from '../helpers/daemon.js';
import { connectFakeAgi, type AgiAnswer } from '../fakes/agi-client.js';
import { queueForNumber } from '../../src/numbers.js';
import { dropMorx, rows, type Row, SAFE_CALL_NAME, SAFE_MTTX_NAME, sentinelPath, traversalTo, tree, writtenOutside } from './support.js';

/** Where the daemon may write under a test tree: the spool directories it owns, and the database. */
const ALLOWED = ['spool/sms/mttx', 'spool/outgoing', 'spool/sms/morx-rejected', 'db'];

test('hostile oa/da in morx files: nothing is written outside the spool; bad files are quarantined with a code, the rest bounce as unknown', async () => {
  const t = makeSpoolTree();
  const sentinel = sentinelPath('morx');
  try {
    const { daemon, stop } = await startDaemon(t);
    let messages: Row[];
    const before = tree(t.dir);
    const files: Record<string, string | Buffer> = {
      // Quarantined: no digits left once app_sms's numcpy() rule is applied, or binary.
      'q-da-dots.1': 'oa=2002\nda=../../etc/x\nud=hello\n',
      'q-da-arabic.1': 'oa=2002\nda=\u0662\u0660\u0660\u0661\nud=hello\n', // ٢٠٠١: Unicode digits are not digits here
      'q-da-fullwidth.1': 'oa=2002\nda=\uff12\uff10\uff10\uff11\nud=hello\n',
      'q-oa-dots.1': 'oa=../../../x\nda=2001\nud=hello\n',
      'q-da-nul.1': Buffer.from('oa=2002\nda=20\u000001\nud=hello\n', 'latin1'),
      // Read like app_sms reads them (digits only), then routed by the directory: unknown numbers bounce.
      'b-da-slash.1': 'oa=2002\nda=1/../2\nud=hello\n',
      'b-da-plusdots.1': 'oa=2002\nda=+48..\nud=hello\n',
      'b-da-abs.1': `oa=2002\nda=${traversalTo(sentinel)}\nud=hello\n`, // only its digits are kept
      'b-da-long.1': `oa=2002\nda=${'9'.repeat(300)}\nud=hello\n`,
      // A hostile oa toward a real phone: delivered, but only the digits survive.
      'd-oa-slash.1': 'oa=1/../2/../../x\nda=2001\nud=for the kitchen\n',
      'd-plus.1': 'oa=2002\nda=+48600111222\nud=to a + number\n',
    };
    try {
      daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
      daemon.directory.add({ number: '+48600111222', service: 'S', channel: 'DAHDI/2' });
      for (const [name, content] of Object.entries(files)) dropMorx(t.morx, name, content);
      await waitUntil(() => visibleFiles(t.morx).length === 0 && rows(daemon).length >= 6, 20_000, 'every file taken');
      await daemon.idle();
      messages = rows(daemon).filter((r) => r.kind === 'message');
    } finally {
      await stop();
    }

    assert.ok(!existsSync(sentinel), 'the absolute traversal reached nothing');
    assert.deepEqual(writtenOutside(t.dir, before, ALLOWED), [], 'files only in mttx, outgoing, the quarantine and the database');
    for (const n of visibleFiles(t.mttx)) assert.match(n, SAFE_MTTX_NAME);
    for (const n of visibleFiles(t.outgoing)) assert.match(n, SAFE_CALL_NAME);
    assert.deepEqual(visibleFiles(t.mttx).map((n) => n.split('.')[0]).sort(), ['-48600111222', '2001']);

    const quarantined = Object.keys(files).filter((n) => n.startsWith('q-'));
    assert.deepEqual(visibleFiles(t.quarantine).filter((n) => !n.endsWith('.reason')).sort(), quarantined.sort());
    for (const n of quarantined) {
      assert.match(readFileSync(path.join(t.quarantine, `${n}.reason`), 'utf8'), /^\d{4}-\d\d-\d\dT\S+ SPOOL_PARSE: line \d+: (?:[od]a has no digits|NUL byte)\n$/, n);
    }
    const summary = (list: Array<Array<string | null>>) => list.map((x) => JSON.stringify(x)).sort();
    assert.deepEqual(
      summary(messages.map((r) => [r.oa, r.da, r.state, r.lastError?.split(':')[0] ?? null])),
      summary([
        ['2002', '12', 'bounced', 'UNKNOWN_NUMBER'],
        ['2002', '+48', 'bounced', 'UNKNOWN_NUMBER'],
        ['2002', '9'.repeat(300), 'bounced', 'UNKNOWN_NUMBER'],
        ['2002', traversalTo(sentinel).replace(/[^0-9]/g, ''), 'bounced', 'UNKNOWN_NUMBER'],
        ['12', '2001', 'spooled', null],
        ['2002', '+48600111222', 'spooled', null],
      ]),
    );
  } finally {
    t.cleanup();
  }
});

test('queue names: only numbers that passed validation become app_sms queue names', () => {
  assert.equal(queueForNumber('2001'), '2001');
  assert.equal(queueForNumber('+48600111222'), '-48600111222');
  for (const bad of ['../x', '1/../2', '+48..', '20\u000001', '9'.repeat(20), '\u0662\u0660', '', '-1', '1 2', '1\n2']) {
    assert.throws(() => queueForNumber(bad), { code: 'INVALID_NUMBER' }, JSON.stringify(bad));
  }
});

test('`sms-router send` refuses hostile --from/--to with INVALID_NUMBER and writes nothing', async () => {
  const t = makeSpoolTree();
  const sentinel = sentinelPath('send');
  try {
    const before = tree(t.dir);
    const hostile = ['../../etc/x', traversalTo(sentinel), '1/../2', '+48..', '9'.repeat(20), '\u0662\u0660\u0660\u0661', '2001\nda=666', '-1'];
    for (const bad of hostile) {
      for (const [from, to] of [
        [bad, '2001'],
        ['2001', bad],
      ]) {
        const r = await runCli(['send', '--config', t.configPath, `--from=${from}`, `--to=${to}`, 'hello']);
        assert.equal(r.code, 1, `${JSON.stringify([from, to])}: ${r.stderr}`);
        assert.match(r.stderr, /invalid number/);
      }
    }
    assert.ok(!existsSync(sentinel));
    assert.deepEqual(writtenOutside(t.dir, before, []), [], 'not even a morx file');
  } finally {
    t.cleanup();
  }
});

test('`sms-router users` refuses hostile numbers and channels (command line and CSV) and the directory stays empty', async () => {
  const t = makeSpoolTree();
  try {
    const add = (number: string, channel = 'PJSIP/2001') => runCli(['users', 'add', '--config', t.configPath, '--service', 'S', `--channel=${channel}`, '--', number]);
    for (const bad of ['../../etc/x', '1/../2', '+48..', '9'.repeat(20), '\u0662\u0660\u0660\u0661', '2001\n2002', '-1']) {
      const r = await add(bad);
      assert.equal(r.code, 1, `${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, /invalid number/);
    }
    for (const bad of ['Local/../../x@phones', 'PJSIP/../../etc', 'PJSIP/2001\nApplication: System', 'PJSIP/2001,,1', 'DAHDI/1|x', 'PJSIP/a b', '../x/y']) {
      const r = await add('2001', bad);
      assert.equal(r.code, 1, `${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, /invalid channel/);
    }
    const csv = path.join(t.dir, 'hostile.csv');
    writeFileSync(csv, 'number,service,channel,name\n../../x,S,PJSIP/1,a\n2001,S,Local/../x@y,b\n2002,S,"PJSIP/1\nApplication: System",c\n');
    const imported = await runCli(['users', 'import', '--config', t.configPath, csv]);
    assert.equal(imported.code, 1, imported.stderr);
    const list = await runCli(['users', 'list', '--json', '--config', t.configPath]);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), []);
  } finally {
    t.cleanup();
  }
});

/** What Asterisk answers when the daemon reads an inbound MESSAGE. */
function messageAnswers(fromUri: string, body: string): Record<string, AgiAnswer> {
  return {
    'GET FULL VARIABLE ${MESSAGE(from)}': [`200 result=1 (${fromUri})`],
    'GET FULL VARIABLE ${MESSAGE(to)}': ['200 result=1 (sip:2001@127.0.0.1:5070)'],
    'GET FULL VARIABLE ${BASE64_ENCODE(${MESSAGE(body)})}': [`200 result=1 (${Buffer.from(body, 'utf8').toString('base64')})`],
  };
}

test('inbound SIP with hostile From/extension is refused (MSG_CHAN_OPT=U), nothing recorded, nothing written', async () => {
  const t = makeSpoolTree();
  const sentinel = sentinelPath('sip');
  try {
    const { daemon, stop } = await startDaemon(t);
    const before = tree(t.dir);
    const cases: Array<[string, string]> = [
      ['<sip:..%2F..%2Fetc%2Fx@127.0.0.1>', '2001'],
      [`<sip:${encodeURIComponent(traversalTo(sentinel))}@h>`, '2001'],
      ['<sip:1002%0D%0AAction:%20Originate@h>', '2001'],
      ['<sip:1002%00@h>', '2001'],
      [`<sip:${'9'.repeat(40)}@h>`, '2001'],
      ['<sip:%D9%A2%D9%A0@h>', '2001'], // Arabic-Indic digits
      ['<sip:%E0%A4%A@h>', '2001'], // a malformed %-escape must be refused, not crash the session
      ['<sip:1002@h>', '../../etc/x'],
      ['<sip:1002@h>', traversalTo(sentinel)],
      ['<sip:1002@h>', '1/../2'],
      ['<sip:1002@h>', '\u0662\u0660\u0660\u0661'],
    ];
    const answered: string[][] = [];
    let recorded: Row[];
    try {
      daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
      for (const [i, [fromUri, extension]] of cases.entries()) {
        const client = await connectFakeAgi({
          port: daemon.agiListening!.port,
          script: 'message',
          env: { agi_extension: extension, agi_uniqueid: `hostile-${i}` },
          answers: messageAnswers(fromUri, 'hello'),
        });
        await client.closed;
        answered.push(client.commands.map((c) => c.line));
      }
      await daemon.idle();
      recorded = rows(daemon);
    } finally {
      await stop();
    }
    cases.forEach(([fromUri, extension], i) => {
      assert.ok(answered[i]!.includes('SET VARIABLE MSG_CHAN_OPT "U"'), `${fromUri} → ${extension}: refused as unknown`);
    });
    assert.deepEqual(recorded, [], 'nothing recorded');
    assert.ok(!existsSync(sentinel));
    assert.deepEqual(writtenOutside(t.dir, before, ['db']), []);
  } finally {
    t.cleanup();
  }
});

test('FastAGI script names other than message, fax/ID and voice/ID are refused before any command', async () => {
  const t = makeSpoolTree();
  try {
    const { daemon, stop } = await startDaemon(t);
    const before = tree(t.dir);
    const scripts = ['fax/../../x', 'voice/123abc', 'fax/1/../../../etc/passwd', 'voice/1;id', 'fax/-1', 'fax/1e3', 'voice/0x10', `fax/${'9'.repeat(16)}`, 'fax/', '../fax/1x', 'message/../../x', 'fax/%2e%2e/x'];
    const sent: Array<[string, string[]]> = [];
    try {
      for (const script of scripts) {
        // Once through agi_request (a URL), once through agi_network_script alone (not a URL).
        for (const env of [{}, { agi_request: 'not a url', agi_network_script: script }] as Array<Record<string, string>>) {
          const client = await connectFakeAgi({ port: daemon.agiListening!.port, script, env: { ...env, agi_uniqueid: script } });
          await client.closed;
          sent.push([script, client.commands.map((c) => c.line)]);
        }
      }
    } finally {
      await stop();
    }
    for (const [script, commands] of sent) assert.deepEqual(commands, [], `${script}: no command sent`);
    assert.deepEqual(writtenOutside(t.dir, before, ['db']), []);
  } finally {
    t.cleanup();
  }
});

test('`sms-router messages` takes only whole-number ids: path-like or option-like ids are usage errors', async () => {
  const t = makeSpoolTree();
  try {
    for (const [command, id] of [
      ['show', '../x'],
      ['show', '1/../2'],
      ['show', '\u0661'],
      ['retry', '1;id'],
      ['cancel', '-1'],
      ['show', '0x1'],
      ['show', '1e3'],
      ['retry', ' 1'],
    ] as const) {
      const r = await runCli(['messages', command, '--config', t.configPath, '--', id]);
      assert.equal(r.code, 2, `${command} ${JSON.stringify(id)}: ${r.stderr}`);
      assert.match(r.stderr, /is not a message id/);
    }
  } finally {
    t.cleanup();
  }
});
