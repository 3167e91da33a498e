import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AmiError, type AmiState } from '../../src/asterisk/ami/client.js';
import { renderCallFile } from '../../src/asterisk/call-file.js';
import { keeperKey, keeperVariables, OutcomeKeeper, parseKeptOutcome, type KeeperAmi } from '../../src/asterisk/outcome-keeper.js';
import { memoryLogger } from '../helpers/daemon.js';

test('the handler value FAXSTATUS:FAXPAGES:PLAYBACKSTATUS:FAXERROR parses with FAXERROR as free text; anything else is not ours', () => {
  assert.deepEqual(parseKeptOutcome('SUCCESS:2::HANGUP'), { faxStatus: 'SUCCESS', faxPages: 2, playbackStatus: '', faxError: 'HANGUP' });
  assert.deepEqual(parseKeptOutcome('FAILED:0::The call dropped prematurely'), { faxStatus: 'FAILED', faxPages: 0, playbackStatus: '', faxError: 'The call dropped prematurely' });
  assert.deepEqual(parseKeptOutcome('::SUCCESS:'), { faxStatus: '', faxPages: 0, playbackStatus: 'SUCCESS', faxError: '' });
  assert.deepEqual(parseKeptOutcome(':::'), { faxStatus: '', faxPages: 0, playbackStatus: '', faxError: '' });
  assert.deepEqual(parseKeptOutcome('FAILED:0::a: b:c, (d)=e\nf'), { faxStatus: 'FAILED', faxPages: 0, playbackStatus: '', faxError: 'a: b:c, (d)=e\nf' });
  for (const bad of ['', 'SUCCESS', 'SUCCESS:1:', 'success:1::x', 'SUCCESS:one::x', 'SUCCESS:1:OK-ish:x', '1:SUCCESS:1::HANGUP', 'SUCCESS:12345678::x']) {
    assert.equal(parseKeptOutcome(bad), undefined, JSON.stringify(bad));
  }
});

test('keeper lines of a call file: SMSR_CALL (the name without .call) before the hangup handler, one line each', () => {
  assert.equal(keeperKey('smsr-F-12-a1.call'), 'smsr-F-12-a1');
  const text = renderCallFile({
    channel: 'PJSIP/fax1',
    callerId: 'Fax <1000>',
    maxRetries: 2,
    retryTime: 300,
    waitTime: 45,
    archive: true,
    application: 'AGI',
    data: 'agi://127.0.0.1:4573/fax/12',
    variables: keeperVariables('sms-router-outcome', 'smsr-F-12-a1.call'),
  });
  assert.match(text, /\nData: agi:\/\/127\.0\.0\.1:4573\/fax\/12\nSet: SMSR_CALL=smsr-F-12-a1\nSet: CHANNEL\(hangup_handler_push\)=sms-router-outcome,s,1\n$/);
});

/** An AMI client that logs in when told to. */
function fakeAmi(values: Record<string, string> = {}) {
  let state: AmiState = 'connecting';
  const waiters: Array<() => void> = [];
  const calls: string[] = [];
  const ami: KeeperAmi & { connect(): void } = {
    get state() {
      return state;
    },
    waitConnected(timeoutMs?: number) {
      if (state === 'connected') return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push(resolve);
        setTimeout(() => reject(new AmiError('AMI_TIMEOUT', 'not connected in time')), timeoutMs ?? 60_000).unref();
      });
    },
    async dbGet(family: string, key: string) {
      calls.push(`DBGet ${family}/${key}`);
      return values[`${family}/${key}`];
    },
    async dbDel(family: string, key: string) {
      calls.push(`DBDel ${family}/${key}`);
      return delete values[`${family}/${key}`];
    },
    connect() {
      state = 'connected';
      for (const w of waiters.splice(0)) w();
    },
  };
  return { ami, calls };
}

test('at start a lookup waits for AMI to log in (within the grace); later, AMI not connected means unavailable at once', async () => {
  const { ami, calls } = fakeAmi({ 'sms-router/smsr-F-1-a1': 'SUCCESS:1::HANGUP' });
  const keeper = new OutcomeKeeper({ ami, log: memoryLogger(), startupGraceMs: 60_000 });
  keeper.start();
  const pending = keeper.lookup('smsr-F-1-a1.call');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, [], 'nothing asked before the login');
  ami.connect();
  assert.deepEqual(await pending, { kind: 'found', outcome: { faxStatus: 'SUCCESS', faxPages: 1, playbackStatus: '', faxError: 'HANGUP' } });
  assert.deepEqual(await keeper.lookup('smsr-F-2-a1.call'), { kind: 'absent' });

  const down = fakeAmi();
  const late = new OutcomeKeeper({ ami: down.ami, log: memoryLogger(), startupGraceMs: 0 });
  late.start();
  const started = performance.now();
  assert.deepEqual(await late.lookup('smsr-F-1-a1.call'), { kind: 'unavailable', reason: 'AMI is not connected (connecting)' });
  assert.ok(performance.now() - started < 1_000);
  await late.forget('smsr-F-1-a1.call');
  assert.deepEqual(down.calls, [], 'nothing sent while down');
});

test('close() ends a wait for AMI at once, and a lookup in flight answers closed', async () => {
  const { ami } = fakeAmi({ 'sms-router/smsr-V-1-a1': '::SUCCESS:' });
  const keeper = new OutcomeKeeper({ ami, log: memoryLogger(), startupGraceMs: 60_000 });
  keeper.start();
  const waiting = keeper.lookup('smsr-V-1-a1.call');
  const started = performance.now();
  keeper.close();
  assert.deepEqual(await waiting, { kind: 'closed' });
  assert.ok(performance.now() - started < 1_000);
  ami.connect();
  assert.deepEqual(await keeper.lookup('smsr-V-1-a1.call'), { kind: 'closed' }, 'nothing is decided once closed');
});

test('AMI errors never escape: a failed DBGet is unavailable with its code, a failed DBDel is only logged', async () => {
  const { ami } = fakeAmi();
  ami.connect();
  ami.dbGet = () => Promise.reject(new AmiError('AMI_TIMEOUT', 'AMI DBGet got no response within 10 ms'));
  ami.dbDel = () => Promise.reject(new AmiError('AMI_DISCONNECTED', 'AMI connection closed'));
  const lines: string[] = [];
  const keeper = new OutcomeKeeper({ ami, log: memoryLogger(lines), startupGraceMs: 0 });
  keeper.start();
  assert.deepEqual(await keeper.lookup('smsr-F-1-a1.call'), { kind: 'unavailable', reason: 'DBGet failed (AMI_TIMEOUT: AMI DBGet got no response within 10 ms)' });
  await keeper.forget('smsr-F-1-a1.call');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /"code":"AMI_DISCONNECTED".*could not delete sms-router\/smsr-F-1-a1; it stays in AstDB/);
});

test('a key the hangup handler writes a moment after the archive is found; one that never comes is absent after the retries', async () => {
  const values: Record<string, string> = {};
  const { ami, calls } = fakeAmi(values);
  ami.connect();
  const keeper = new OutcomeKeeper({ ami, log: memoryLogger(), startupGraceMs: 0, absentRetryMs: [20, 40, 80] });
  keeper.start();
  const pending = keeper.lookup('smsr-F-3-a1.call');
  setTimeout(() => (values['sms-router/smsr-F-3-a1'] = 'SUCCESS:2::HANGUP'), 30);
  assert.deepEqual(await pending, { kind: 'found', outcome: { faxStatus: 'SUCCESS', faxPages: 2, playbackStatus: '', faxError: 'HANGUP' } });
  assert.ok(calls.filter((c) => c.endsWith('smsr-F-3-a1')).length >= 2, 'asked again after the first miss');

  calls.length = 0;
  assert.deepEqual(await keeper.lookup('smsr-F-4-a1.call'), { kind: 'absent' });
  assert.deepEqual(calls, Array(4).fill('DBGet sms-router/smsr-F-4-a1'), 'once, then once per retry');

  const closing = keeper.lookup('smsr-F-5-a1.call');
  keeper.close();
  assert.deepEqual(await closing, { kind: 'closed' }, 'stopping ends the retries');
});
