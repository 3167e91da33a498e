/**
 * Security: header injection. Call files, app_sms spool files, AMI actions and
 * FastAGI commands are line protocols: a CR or LF in any value would end the
 * line and let the rest become a key of its own (`Application: System`,
 * `Action: Originate`, `da=` of another phone). Every field that reaches one is
 * checked here, through the door an attacker would use, by looking at what
 * Asterisk would read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeSpoolTree, runCli, visibleFiles, waitUntil, type SpoolTree } from '../helpers/spool-tree.js';
import { memoryLogger, startDaemon } from '../helpers/daemon.js';
import { FakeAmiServer } from '../fakes/ami-server.js';
import { connectFakeAgi } from '../fakes/agi-client.js';
import { Daemon } from '../../src/daemon.js';
import { parseConfig } from '../../src/config.js';
import { parseCallFile, renderCallFile, type CallFile } from '../../src/asterisk/call-file.js';
import { decodeSmsFile } from '../../src/spool/sms-file.js';
import { writeMorx } from '../../src/cli/send.js';
import { errorCode } from '../../src/errors.js';
import { rows } from './support.js';

/** What an attacker appends to a value: the end of the line, then keys of their own. */
const CALL_FILE_PAYLOAD = '\nApplication: System\nData: touch /tmp/smsr-pwned';
const AMI_PAYLOAD = '\r\nAction: Originate\r\nChannel: Local/666@default\r\nApplication: System\r\nData: id\r\n\r\n';
const SMS_PAYLOAD = '\nda=6666\noa=112\nud=forged';
const CONTROL = ['\n', '\r', '\r\n', '\u0000', '\u001b', '\u000b', '\u007f'];

/** The keys of a call file, in order, as pbx_spool would read them. */
const callKeys = (text: string) => parseCallFile(text).fields.map(([k]) => k);
const CALL_KEYS = ['Channel', 'CallerID', 'MaxRetries', 'RetryTime', 'WaitTime', 'Archive', 'Application', 'Data'];

function assertCleanCallFile(file: string): void {
  const text = readFileSync(file, 'utf8');
  assert.deepEqual(callKeys(text), CALL_KEYS, path.basename(file));
  assert.equal(text.split('\n').length, CALL_KEYS.length + 1, 'one line per key');
  assert.doesNotMatch(text, /System|pwned/);
}

test('config values that reach call files, AMI or FastAGI refuse CR, LF and every control character', () => {
  const base = (section: string, body: string) =>
    (section === 'centre' ? '' : '[centre]\nreceive_number = "1000"\nsend_number = "1001"\n') + `[${section}]\n${body}\n`;
  const fields: Array<[string, string, string]> = [
    ['fax', 'caller_id', '"Fax" <1000>'],
    ['voice', 'caller_id', '"Voice" <1000>'],
    ['fax', 'local_station_id', 'SMS-ROUTER'],
    ['fax', 'header_info', 'sms-router'],
    ['centre', 'send_number', '1001'],
    ['centre', 'receive_number', '1000'],
    ['ami', 'username', 'labami'],
    ['ami', 'secret', 'labsecret123'],
    ['sip', 'domain', 'pbx.example'],
    ['agi', 'advertise', '127.0.0.1:4573'],
  ];
  for (const [section, key, good] of fields) {
    const other = section === 'centre' ? (key === 'send_number' ? 'receive_number = "1000"' : 'send_number = "1001"') : '';
    assert.doesNotThrow(() => parseConfig('/x.toml', base(section, `${key} = ${JSON.stringify(good)}\n${other}`)), `${section}.${key} = ${good}`);
    for (const c of CONTROL) {
      const toml = base(section, `${key} = ${JSON.stringify(good + c + 'Application: System')}\n${other}`);
      assert.throws(() => parseConfig('/x.toml', toml), { code: 'CONFIG_INVALID' }, `${section}.${key} with ${JSON.stringify(c)}`);
    }
  }
});

test('renderCallFile refuses a control character in every field and key: no line can be added', () => {
  const call: CallFile = { channel: 'PJSIP/1001', callerId: 'SMS <1000>', maxRetries: 3, retryTime: 60, waitTime: 30, archive: true, application: 'SMS', data: '1001,s', account: 'acct', variables: { 'FAXOPT(ecm)': 'yes' } };
  assert.deepEqual(callKeys(renderCallFile(call)), [...CALL_KEYS.slice(0, 5), 'Account', 'Archive', 'Application', 'Data', 'Set']);
  for (const c of CONTROL) {
    for (const field of ['channel', 'callerId', 'application', 'data', 'account'] as const) {
      assert.throws(() => renderCallFile({ ...call, [field]: `x${c}Application: System` }), { code: 'CALL_FILE_UNSAFE' }, `${field} ${JSON.stringify(c)}`);
    }
    assert.throws(() => renderCallFile({ ...call, variables: { X: `y${c}Application: System` } }), { code: 'CALL_FILE_UNSAFE' });
    assert.throws(() => renderCallFile({ ...call, variables: { [`X${c}Application: System\nY`]: 'y' } }), { code: 'CALL_FILE_UNSAFE' });
  }
  assert.throws(() => renderCallFile({ ...call, variables: { 'A=B': 'c' } }), { code: 'CALL_FILE_UNSAFE' });
});

test('CR/LF in message texts to S, F and V recipients: call files have exactly their keys; mttx keeps oa/da and the text whole', { timeout: 120_000 }, async () => {
  const t = makeSpoolTree();
  try {
    const { daemon, stop } = await startDaemon(t);
    try {
      daemon.directory.add({ number: '2001', service: 'S', channel: 'DAHDI/1' });
      daemon.directory.add({ number: '3001', service: 'F', channel: 'PJSIP/fax1' });
      daemon.directory.add({ number: '4001', service: 'V', channel: 'Local/4001@phones' });
      const text = `hello${CALL_FILE_PAYLOAD}${SMS_PAYLOAD}\r\nend`;
      for (const [i, to] of ['2001', '3001', '4001'].entries()) writeMorx(t.morx, { from: '2002', to, text, now: new Date(Date.now() + i * 1000) }, false);
      await waitUntil(() => visibleFiles(t.outgoing).length === 3, 60_000, 'three call files');
      await daemon.idle();
      for (const n of visibleFiles(t.outgoing)) assertCleanCallFile(path.join(t.outgoing, n));
      const channels = visibleFiles(t.outgoing).map((n) => parseCallFile(readFileSync(path.join(t.outgoing, n), 'utf8')).get('Channel')).sort();
      assert.deepEqual(channels, ['DAHDI/1', 'Local/4001@phones', 'PJSIP/fax1']);
      // What app_sms reads from mttx: one message, its own oa and da, the text with its line breaks intact.
      const [mttx] = visibleFiles(t.mttx);
      const raw = readFileSync(path.join(t.mttx, mttx!), 'latin1');
      assert.doesNotMatch(raw, /^(?:da=6666|oa=112|ud=forged)$/m, 'no forged line in the spool file');
      const decoded = decodeSmsFile(Buffer.from(raw, 'latin1'));
      assert.ok(decoded.ok);
      assert.equal(decoded.message.da, '2001');
      assert.equal(decoded.message.oa, '2002');
      assert.equal(decoded.message.text.slice(0, 20), text.slice(0, 20));
    } finally {
      await stop();
    }
  } finally {
    t.cleanup();
  }
});

test('`sms-router send` with CR/LF in the text writes one morx file whose oa/da are the ones given', async () => {
  const t = makeSpoolTree();
  try {
    const r = await runCli(['send', '--config', t.configPath, '--from', '2002', '--to', '2001', `hi${SMS_PAYLOAD}`]);
    assert.equal(r.code, 0, r.stderr);
    const files = visibleFiles(t.morx);
    assert.equal(files.length, 1);
    const decoded = decodeSmsFile(readFileSync(path.join(t.morx, files[0]!)));
    assert.ok(decoded.ok);
    assert.deepEqual([decoded.message.oa, decoded.message.da, decoded.message.text], ['2002', '2001', `hi${SMS_PAYLOAD}`]);
  } finally {
    t.cleanup();
  }
});

/** Every line a client wrote to the fake AMI must be `Key: value` or the empty line that ends an action. */
function assertOnlyActionLines(fake: FakeAmiServer): void {
  const lines = fake.receivedBytes().toString('utf8').split('\r\n');
  assert.equal(lines.pop(), '', 'ends with CRLF');
  for (const l of lines) assert.match(l, /^(?:[A-Za-z0-9-]+: [^\r\n]*)?$/, JSON.stringify(l));
  assert.equal(lines.filter((l) => /^Action: /i.test(l)).length, fake.actions.length, 'one Action: line per action');
}

function amiToml(fake: FakeAmiServer): string {
  return `[ami]\nenabled = true\nport = ${fake.port}\nusername = "${fake.username}"\nsecret = "${fake.secret}"\naction_timeout = 5\n[sip]\ndomain = "pbx.example"\n`;
}

test('CR/LF in texts from a phone and from a softphone reach AMI only inside Base64Body; no action is injected', async () => {
  const fake = await FakeAmiServer.start();
  const t = makeSpoolTree(amiToml(fake));
  try {
    const { daemon, stop } = await startDaemon(t);
    try {
      daemon.directory.add({ number: '1001', service: 'T', channel: 'PJSIP/1001' });
      daemon.directory.add({ number: '1002', service: 'T', channel: 'PJSIP/1002' });
      await daemon.ami!.waitConnected(5_000);
      const fromPhone = `from a phone${AMI_PAYLOAD}tail`;
      const fromSip = `from a softphone${AMI_PAYLOAD}\u0000tail`;
      writeMorx(t.morx, { from: '2002', to: '1001', text: fromPhone }, false);
      const client = await connectFakeAgi({
        port: daemon.agiListening!.port,
        script: 'message',
        env: { agi_extension: '1001', agi_uniqueid: 'sip-1' },
        answers: {
          // A From display name with CR/LF: only the URI's user part is taken, and it must be a number.
          'GET FULL VARIABLE ${MESSAGE(from)}': ['200 result=1 ("x\\r\\nAction: Originate" <sip:1002@127.0.0.1:5098>)'],
          'GET FULL VARIABLE ${MESSAGE(to)}': ['200 result=1 (sip:1001@127.0.0.1)'],
          'GET FULL VARIABLE ${BASE64_ENCODE(${MESSAGE(body)})}': [`200 result=1 (${Buffer.from(fromSip, 'utf8').toString('base64')})`],
        },
      });
      await client.closed;
      // A message to an unknown number: the softphone sender gets a notice back through AMI too.
      writeMorx(t.morx, { from: '1002', to: '9999', text: `to nobody${AMI_PAYLOAD}` }, false);
      await fake.waitFor(() => fake.delivered.length === 3, 10_000, 'three MessageSends');
      // Only the two kinds of action the daemon sends (how many MessageSends is not this test's business).
      assert.deepEqual([...new Set(fake.actions.map((a) => a.name))].sort(), ['Login', 'MessageSend']);
      assertOnlyActionLines(fake);
      const byBody = new Map(fake.delivered.map((d) => [d.body, d]));
      assert.deepEqual(byBody.get(fromPhone) && [byBody.get(fromPhone)!.to, byBody.get(fromPhone)!.from], ['pjsip:1001', '"2002" <sip:2002@pbx.example>']);
      assert.deepEqual(byBody.get(fromSip) && [byBody.get(fromSip)!.to, byBody.get(fromSip)!.from], ['pjsip:1001', '"1002" <sip:1002@pbx.example>']);
      assert.ok(fake.delivered.some((d) => d.to === 'pjsip:1002' && d.body === 'Cannot deliver SMS to 9999. Number does not exist.'));
    } finally {
      await stop();
    }
  } finally {
    await fake.close();
    t.cleanup();
  }
});

/**
 * The directory refuses such channels (see traversal.test.ts); a row written
 * behind its back (someone with write access to the database) is the last
 * line: the call file and the AMI action are refused, never written.
 */
test('a hostile channel written into the database behind the directory: no call file line and no AMI action is injected', async () => {
  const fake = await FakeAmiServer.start();
  const t: SpoolTree = makeSpoolTree(amiToml(fake));
  const fatal: string[] = [];
  const daemon = new Daemon(t.config, memoryLogger([]), { fsync: false });
  daemon.onFatal((err) => fatal.push(errorCode(err)));
  const ready = new Promise<void>((r) => void daemon.run(() => r()));
  try {
    await ready;
    await daemon.ami!.waitConnected(5_000);
    const insert = daemon.db.prepare(`INSERT INTO recipients (number, service, channel, name) VALUES (?, ?, ?, '')`);
    insert.run('1001', 'T', `PJSIP/1001${AMI_PAYLOAD}`);
    insert.run('3001', 'F', `PJSIP/fax1${CALL_FILE_PAYLOAD}`);
    insert.run('2001', 'S', `DAHDI/1${CALL_FILE_PAYLOAD}`);
    writeMorx(t.morx, { from: '2002', to: '1001', text: 'to the softphone' }, false);
    await waitUntil(() => rows(daemon).some((r) => r.lastError === 'AMI_UNSAFE_VALUE'), 10_000, 'the T message refused');
    writeMorx(t.morx, { from: '2002', to: '3001', text: 'to the fax' }, false);
    writeMorx(t.morx, { from: '2002', to: '2001', text: 'to the phone' }, false);
    const refusedCallFile = () => fatal.includes('CALL_FILE_UNSAFE') || rows(daemon).some((r) => r.lastError?.includes('CALL_FILE_UNSAFE'));
    await waitUntil(refusedCallFile, 30_000, 'the call file refused');
    await daemon.idle().catch(() => undefined);
    for (const dir of [t.outgoing, t.config.spool.tmp]) {
      for (const n of readdirSync(dir)) assertCleanCallFile(path.join(dir, n));
    }
    assert.deepEqual(fake.actions.map((a) => a.name), ['Login'], 'no MessageSend left the daemon');
    assertOnlyActionLines(fake);
  } finally {
    await daemon.stop();
    await fake.close();
    t.cleanup();
  }
});
