import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  AgiReader,
  MAX_COMMAND_BYTES,
  encodeCommand,
  parseReplyLine,
  replyOk,
  type AgiItem,
  type AgiReply,
} from '../../src/asterisk/fastagi/framing.js';
import { AGI_FIXTURES, asteriskBytes, loadTranscript, parseAgiArgs, recordedEnvironment } from '../fakes/agi-client.js';

const SESSIONS = [
  'fastagi_transcript.txt',
  'fastagi_sendfax_transcript.txt',
  'fastagi_playback_transcript.txt',
  'fastagi_inbound_message_transcript.txt',
];

/** What Asterisk wrote in a recorded session; transcripts that only quote agi_request/agi_channel get the lab block with those values. */
function sessionBytes(name: string): Buffer {
  const t = loadTranscript(name);
  const env = new Map(t.environment.length > 10 ? [] : recordedEnvironment());
  for (const [k, v] of t.environment) env.set(k, v);
  return Buffer.from(asteriskBytes([...env], t.exchanges), 'utf8');
}

/** Feeds `bytes` cut at `cuts` and returns every item. */
function parse(bytes: Uint8Array, cuts: readonly number[] = [], options?: { maxLineBytes?: number }): AgiItem[] {
  const reader = new AgiReader(options);
  const items: AgiItem[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    items.push(...reader.push(bytes.subarray(at, cut)));
    at = cut;
  }
  return items;
}

function replies(items: AgiItem[]): AgiReply[] {
  return items.flatMap((i) => (i.type === 'reply' ? [i.reply] : []));
}

const ENV = 'agi_network: yes\nagi_request: agi://127.0.0.1:4573/x\n\n';

// A small deterministic PRNG so a failure can be replayed.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('the recorded environment parses to its keys and values, ":" inside values included', () => {
  const text = readFileSync(AGI_FIXTURES + 'fastagi_transcript.txt', 'utf8');
  const recordedKeys = [...text.matchAll(/^< (agi_\w+):/gm)].map((m) => m[1]);
  const [first, ...rest] = parse(sessionBytes('fastagi_transcript.txt'));
  assert.equal(first?.type, 'environment');
  if (first?.type !== 'environment') return;
  assert.deepEqual(Object.keys(first.env), recordedKeys);
  assert.equal(first.env.agi_request, 'agi://127.0.0.1:4573/labscript?foo=bar');
  assert.equal(first.env.agi_network_script, 'labscript?foo=bar');
  assert.equal(first.env.agi_channel, 'Local/peer@agi-00000000;1');
  assert.equal(first.env.agi_extension, 'fast');
  assert.equal(first.env.agi_calleridname, 'AGI Tester');
  assert.equal(first.env.agi_arg_2, 'arg two');
  assert.equal(first.env.agi_accountcode, '', 'recorded as "agi_accountcode: " with nothing after');
  assert.equal(rest.length, 5);

  const [message] = parse(sessionBytes('fastagi_inbound_message_transcript.txt'));
  assert.equal(message?.type, 'environment');
  if (message?.type !== 'environment') return;
  assert.equal(message.env.agi_channel, 'Message/ast_msg_queue');
  assert.equal(message.env.agi_callerid, 'unknown');
  assert.equal(message.env.agi_extension, '447700900123');
  assert.equal(message.env.agi_request, 'agi://127.0.0.1:4573/message');
});

test('environment edge cases: first ": " splits, empty values, CRLF, junk keys refused', () => {
  const items = parse(Buffer.from('agi_a: x: y: z\r\nagi_b:\nagi_c: \n__proto__: polluted\nno colon here\nagi_d: 1\n\n'));
  const errors = items.filter((i) => i.type === 'error');
  assert.equal(errors.length, 2, 'the __proto__ line and the line without a colon');
  const env = items.find((i) => i.type === 'environment');
  assert.ok(env?.type === 'environment');
  assert.deepEqual(env.env, { agi_a: 'x: y: z', agi_b: '', agi_c: '', agi_d: '1' });
  assert.equal(Object.getPrototypeOf(env.env), Object.prototype);

  // An endless environment is refused once and not stored.
  const endless = Buffer.from(Array.from({ length: 3000 }, (_, i) => `agi_k${i}: v\n`).join('') + '\n');
  const out = parse(endless);
  assert.equal(out.filter((i) => i.type === 'error').length, 1);
  const big = out.find((i) => i.type === 'environment');
  assert.ok(big?.type === 'environment' && Object.keys(big.env).length <= 1024);
});

test('every split point of every recorded session parses like the whole', () => {
  for (const name of SESSIONS) {
    const bytes = sessionBytes(name);
    const whole = parse(bytes);
    const t = loadTranscript(name);
    // Each exchange's reply is one reply item (a spilled value included) plus its HANGUP lines.
    const expectedReplies = t.exchanges.filter((e) => e.reply.some((l) => l !== 'HANGUP')).length;
    const expectedHangups = t.exchanges.flatMap((e) => e.reply).filter((l) => l === 'HANGUP').length;
    assert.equal(whole[0]?.type, 'environment', name);
    assert.equal(replies(whole).length, expectedReplies, name);
    assert.equal(whole.filter((i) => i.type === 'hangup').length, expectedHangups, name);
    assert.equal(whole.filter((i) => i.type === 'error').length, 0, name);
    for (let cut = 1; cut < bytes.length; cut++) assert.deepEqual(parse(bytes, [cut]), whole, `${name} cut at ${cut}`);
    const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    assert.deepEqual(parse(bytes, everyByte), whole, `${name} byte by byte`);
    const random = prng(bytes.length);
    for (let round = 0; round < 50; round++) {
      const cuts = Array.from({ length: 6 }, () => Math.floor(random() * bytes.length)).sort((a, b) => a - b);
      assert.deepEqual(parse(bytes, cuts), whole, `${name} cuts ${cuts.join(',')}`);
    }
  }
});

test('SendFAX: the HANGUP after EXEC is an event and later replies stay in step', () => {
  const t = loadTranscript('fastagi_sendfax_transcript.txt');
  const items = parse(sessionBytes('fastagi_sendfax_transcript.txt'));
  assert.deepEqual(
    items.map((i) => i.type),
    ['environment', 'reply', 'reply', 'hangup', 'reply', 'reply', 'reply', 'reply'],
  );
  const got = replies(items).map((r) => [r.code, r.result, r.data]);
  assert.deepEqual(got, [
    [200, '1', undefined], // SET VARIABLE FAXOPT(localstationid)
    [200, '-1', undefined], // EXEC SendFAX: the channel hung up, not a failed fax
    [200, '1', 'SUCCESS'], // FAXSTATUS
    [200, '1', 'HANGUP'], // FAXERROR
    [200, '1', '2'], // FAXPAGES
    [200, '1', '14400'], // FAXBITRATE
  ]);
  // The same order as the commands in the transcript.
  assert.deepEqual(
    t.exchanges.map((e) => e.command.split(' ').slice(0, 3).join(' ')),
    ['SET VARIABLE FAXOPT(localstationid)', 'EXEC SendFAX "/var/spool/fax-test/fax_good_2p_g4.tif"', 'GET VARIABLE FAXSTATUS', 'GET VARIABLE FAXERROR', 'GET VARIABLE FAXPAGES', 'GET VARIABLE FAXBITRATE'],
  );
});

test('the recorded MESSAGE(body) that spilled over two lines is one reply, equal to its BASE64 twin', () => {
  const items = replies(parse(sessionBytes('fastagi_inbound_message_transcript.txt')));
  const [from, to, base64, exten, body] = items;
  assert.equal(from?.data, '<sip:1001@127.0.0.1:5098>');
  assert.equal(to?.data, 'sip:447700900123@127.0.0.1:5070');
  assert.equal(exten?.data, '447700900123');
  assert.equal(body?.lines.length, 2);
  assert.equal(body?.data, Buffer.from(base64?.data ?? '', 'base64').toString('utf8'));
  assert.match(body?.data ?? '', /\n/);
  assert.equal(items.length, 5);
});

test('a spilled value that looks like a reply cannot pose as the next one', () => {
  const bytes = Buffer.from(ENV + '200 result=1 (x\n200 result=1 (SUCCESS))\n200 result=1 (real)\n');
  const whole = replies(parse(bytes));
  assert.deepEqual(whole.map((r) => r.data), ['x\n200 result=1 (SUCCESS)', 'real']);
  for (let cut = 1; cut < bytes.length; cut++) assert.deepEqual(replies(parse(bytes, [cut])), whole);
});

test('a 520 usage block is one reply, however it is split, and the next reply follows', () => {
  const block = [
    '520-Invalid command syntax.  Proper usage follows:',
    ' Usage: DATABASE DEL <family> <key>',
    '        Deletes an entry in the Asterisk database for a',
    'HANGUP',
    '200 result=1 (not a reply: a usage line)',
    ' Example return code: 200 result=1 (testvariable)',
    '520 End of proper usage.',
  ];
  const bytes = Buffer.from(ENV + block.join('\n') + '\n200 result=1 (after)\n');
  const whole = parse(bytes);
  assert.deepEqual(whole.map((i) => i.type), ['environment', 'reply', 'reply']);
  const [usage, after] = replies(whole);
  assert.equal(usage?.code, 520);
  assert.equal(usage && replyOk(usage), false);
  assert.deepEqual(usage?.lines, block);
  assert.match(usage?.data ?? '', /^Invalid command syntax\.[\s\S]*DATABASE DEL[\s\S]*End of proper usage\.$/);
  assert.equal(after?.data, 'after');
  for (let cut = 1; cut < bytes.length; cut++) assert.deepEqual(parse(bytes, [cut]), whole);

  const single = replies(parse(Buffer.from(ENV + '520 Invalid command syntax.  Proper usage not available.\n')));
  assert.deepEqual(single.map((r) => [r.code, r.data]), [[520, 'Invalid command syntax.  Proper usage not available.']]);
});

test('reply lines: data with spaces and parentheses, endpos, error codes', () => {
  const table: Array<[string, Partial<AgiReply> | undefined]> = [
    ['200 result=1 (<sip:1001@127.0.0.1:5098>)', { code: 200, result: '1', data: '<sip:1001@127.0.0.1:5098>' }],
    ['200 result=1 ("AGI Tester" <48600111222>)', { code: 200, result: '1', data: '"AGI Tester" <48600111222>' }],
    ['200 result=1 (Local/peer@agi-00000000;1)', { code: 200, result: '1', data: 'Local/peer@agi-00000000;1' }],
    ['200 result=1 (a (b) c)', { code: 200, result: '1', data: 'a (b) c' }],
    ['200 result=1 ((x))', { code: 200, result: '1', data: '(x)' }],
    ['200 result=1 ()', { code: 200, result: '1', data: '' }],
    ['200 result=0', { code: 200, result: '0' }],
    ['200 result=-1', { code: 200, result: '-1' }],
    ['200 result=6', { code: 200, result: '6' }],
    ['200 result=0 endpos=61712', { code: 200, result: '0', endpos: 61712 }],
    ['200 result=1 (timeout) endpos=12345', { code: 200, result: '1', data: 'timeout', endpos: 12345 }],
    ['200 result=1 (speech) endpos=1234 results=1 score0=900 text0=hello world', { code: 200, result: '1', data: 'speech', endpos: 1234 }],
    ['200 result= (timeout)', { code: 200, result: '', data: 'timeout' }],
    ['200 result=1 (SUCCESS)\r', { code: 200, result: '1', data: 'SUCCESS' }],
    ['510 Invalid or unknown command', { code: 510, result: '', data: 'Invalid or unknown command' }],
    ['511 Command Not Permitted on a dead channel or intercept routine', { code: 511, result: '', data: 'Command Not Permitted on a dead channel or intercept routine' }],
    ['HANGUP', undefined],
    ['', undefined],
    ['garbage', undefined],
    ['20 result=1', undefined],
    ['2000 result=1', undefined],
    ['520-Invalid command syntax.  Proper usage follows:', undefined],
    ['Druga linia: a;b=c "q")', undefined],
  ];
  for (const [line, expected] of table) {
    const got = parseReplyLine(line);
    if (expected === undefined) {
      assert.equal(got, undefined, line);
      continue;
    }
    assert.ok(got, line);
    const { lines, ...fields } = got;
    assert.deepEqual(fields, expected, line);
    assert.deepEqual(lines, [line.replace(/\r$/, '')]);
    assert.equal(replyOk(got), expected.code === 200, line);
  }
});

test('a line that is neither a reply nor HANGUP is an error item, and reading goes on', () => {
  const items = parse(Buffer.from(ENV + 'Druga linia: a;b=c "q")\n\n200 result=1 (ok)\n'));
  assert.deepEqual(items.map((i) => i.type), ['environment', 'error', 'reply']);
});

test('encodeCommand quotes arguments the way res_agi reads them back', () => {
  const fax = loadTranscript('fastagi_sendfax_transcript.txt').exchanges;
  assert.equal(encodeCommand('SET VARIABLE FAXOPT(localstationid)', ['SMSROUTER']), fax[0]!.command + '\n');
  assert.equal(encodeCommand('EXEC SendFAX', ['/var/spool/fax-test/fax_good_2p_g4.tif']), fax[1]!.command + '\n');
  assert.equal(encodeCommand('GET VARIABLE FAXSTATUS'), 'GET VARIABLE FAXSTATUS\n');
  const values = ['plain', 'two words', 'quote " inside', 'back\\slash', 'trailing\\', '\\"', '""', '', ' \t tab ', 'Cześć ${X} $[1+1] ;,|&', "it's", '(a) <b>'];
  for (const value of values) {
    const line = encodeCommand('SET VARIABLE X', [value]);
    assert.ok(line.endsWith('\n') && line.indexOf('\n') === line.length - 1);
    assert.deepEqual(parseAgiArgs(line.slice(0, -1)), ['SET', 'VARIABLE', 'X', value], JSON.stringify(value));
  }
  assert.deepEqual(parseAgiArgs(encodeCommand('EXEC Dial', ['a b', 'c"d']).slice(0, -1)), ['EXEC', 'Dial', 'a b', 'c"d']);
});

test('encodeCommand refuses CR, LF and NUL anywhere, and lines Asterisk would cut', () => {
  const isUnsafe = (err: unknown) => (err as { code?: string }).code === 'AGI_UNSAFE_VALUE';
  for (const bad of ['a\nb', 'a\rb', 'a\u0000b', '\n', 'x\r\n', 'EXEC System rm\n']) {
    assert.throws(() => encodeCommand('SET VARIABLE X', [bad]), isUnsafe, JSON.stringify(bad));
    assert.throws(() => encodeCommand(`GET VARIABLE ${bad}`), isUnsafe, JSON.stringify(bad));
    assert.throws(() => encodeCommand('VERBOSE', ['ok', bad]), isUnsafe, JSON.stringify(bad));
  }
  assert.throws(() => encodeCommand(''), isUnsafe);
  // VERBOSE "<n×a>"\n is n + 11 bytes.
  const fits = MAX_COMMAND_BYTES - 11;
  assert.equal(Buffer.byteLength(encodeCommand('VERBOSE', ['a'.repeat(fits)])), MAX_COMMAND_BYTES);
  assert.throws(() => encodeCommand('VERBOSE', ['a'.repeat(fits + 1)]), isUnsafe);
  assert.throws(() => encodeCommand('VERBOSE', ['ś'.repeat(Math.ceil(fits / 2) + 1)]), isUnsafe, 'counted in UTF-8 bytes');
});

test('over-long lines are reported once and never buffered past the limit', () => {
  const max = 1024;
  const reader = new AgiReader({ maxLineBytes: max });
  const items: AgiItem[] = [...reader.push(Buffer.from(ENV))];
  const chunk = Buffer.alloc(4096, 'x');
  for (let i = 0; i < 256; i++) {
    items.push(...reader.push(chunk));
    assert.ok(reader.bufferedBytes <= max);
  }
  items.push(...reader.push(Buffer.from('xxx\n200 result=1 (after)\n')));
  assert.deepEqual(items.map((i) => i.type), ['environment', 'error', 'reply']);
  assert.equal(replies(items)[0]?.data, 'after');

  // A line one byte over the limit, arriving whole, is refused; one at the limit is read.
  const atLimit = '200 result=1 (' + 'y'.repeat(max - 15) + ')';
  assert.equal(Buffer.byteLength(atLimit), max);
  assert.deepEqual(parse(Buffer.from(ENV + atLimit + '\n'), [], { maxLineBytes: max }).map((i) => i.type), ['environment', 'reply']);
  assert.deepEqual(parse(Buffer.from(ENV + atLimit + 'y\n'), [], { maxLineBytes: max }).map((i) => i.type), ['environment', 'error']);

  // Endless 520 usage lines and endless spilled values are bounded too; the reply after them is still found.
  const usage = '520-Invalid\n' + 'usage line\n'.repeat(1000) + '520 End of proper usage.\n200 result=1 (next)\n';
  const spill = '200 result=1 (start\n' + 'more value\n'.repeat(1000) + 'end)\n200 result=1 (next)\n';
  for (const tail of [usage, spill]) {
    const out = parse(Buffer.from(ENV + tail), [], { maxLineBytes: max });
    assert.deepEqual(out.map((i) => i.type), ['environment', 'error', 'reply']);
    assert.equal(replies(out)[0]?.data, 'next');
  }
  // An environment line too.
  assert.equal(parse(Buffer.from('agi_x: ' + 'z'.repeat(5000) + '\n\n'), [], { maxLineBytes: max })[0]?.type, 'error');
});

test('hostile bytes never throw and never grow the buffer', () => {
  const random = prng(20261122);
  const pieces = ['200 result=1 (', ')', 'HANGUP', '520-', '520 ', '\n', '\r\n', '\u0000', 'agi_x: ', ': ', '(', 'endpos=', '\xff\xfe', 'ś'];
  for (let round = 0; round < 200; round++) {
    const reader = new AgiReader({ maxLineBytes: 256 });
    for (let n = 0; n < 50; n++) {
      const bytes =
        random() < 0.5
          ? Buffer.from(Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256)))
          : Buffer.from(Array.from({ length: 20 }, () => pieces[Math.floor(random() * pieces.length)]).join(''), 'latin1');
      const items = reader.push(bytes);
      for (const item of items) assert.ok(['environment', 'reply', 'hangup', 'error'].includes(item.type));
      assert.ok(reader.bufferedBytes <= 256);
    }
  }
});
