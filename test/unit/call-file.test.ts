import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCallFile, renderCallFile } from '../../src/asterisk/call-file.js';
import { assertChannel, assertNumber, queueForNumber } from '../../src/numbers.js';

const base = { channel: 'PJSIP/1001', callerId: 'SMS <1000>', maxRetries: 3, retryTime: 60, waitTime: 30, archive: true, application: 'SMS', data: '1001,s' };

test('a call file has one key per line, in the order pbx_spool documents', () => {
  const text = renderCallFile(base);
  assert.equal(text, 'Channel: PJSIP/1001\nCallerID: SMS <1000>\nMaxRetries: 3\nRetryTime: 60\nWaitTime: 30\nArchive: yes\nApplication: SMS\nData: 1001,s\n');
  assert.equal(parseCallFile(text).get('data'), '1001,s');
});

test('no CR, LF or other control character reaches a call file', () => {
  for (const bad of ['PJSIP/1\nApplication: System', 'x\r', 'a\u0000b', 'a\u001bb']) {
    assert.throws(() => renderCallFile({ ...base, channel: bad }), /CALL_FILE_UNSAFE|control character/);
    assert.throws(() => renderCallFile({ ...base, data: bad }), /control character/);
    assert.throws(() => renderCallFile({ ...base, variables: { X: bad } }), /control character/);
  }
  assert.throws(() => renderCallFile({ ...base, variables: { 'A=B': 'c' } }));
});

test('numbers and channels are validated before they become names or values', () => {
  for (const bad of ['', '12/34', '..', '../1', '1\n2', '1 2', '+', '12345678901234567890', '١٢٣']) assert.throws(() => assertNumber(bad), /invalid number/);
  assert.equal(assertNumber('+48600111222'), '+48600111222');
  assert.equal(queueForNumber('+48600111222'), '-48600111222', 'app_sms turns every non-alphanumeric into -');
  for (const bad of ['PJSIP', 'PJSIP/', 'PJSIP/1 2', 'PJSIP/1,2', 'PJSIP/1\n', 'Local/../x', 'PJSIP/a|b']) assert.throws(() => assertChannel(bad));
  for (const ok of ['PJSIP/1001', 'DAHDI/2', 'Local/1001@phones', 'SIP/peer', 'PJSIP/1001/sip:1001@10.0.0.2:5060', 'DAHDI/g1/123']) assert.equal(assertChannel(ok), ok);
});

test('real archived call files parse, with their Status and retry lines', () => {
  const dir = fileURLToPath(new URL('../../../spool-fixtures/outgoing_done/', import.meta.url));
  const statuses = readdirSync(dir).map((n) => [n, parseCallFile(readFileSync(dir + n, 'utf8')).get('Status')]);
  assert.ok(statuses.length >= 9);
  for (const [name, status] of statuses) {
    const expected = /completed/.test(name!) ? 'Completed' : /expired/.test(name!) ? 'Expired' : 'Failed';
    assert.equal(status, expected, name);
  }
});
