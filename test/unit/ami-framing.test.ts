import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AmiParser, AmiUnsafeValueError, createMessage, encodeAction, type AmiFrame } from '../../src/asterisk/ami/framing.js';
import { SmsRouterError } from '../../src/errors.js';

const FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/ami/', import.meta.url));

/** Decodes a Python bytes literal (`b'...'` / `b"..."`) as printed in the transcripts' `repr:` lines. */
function pyBytes(repr: string): Buffer {
  const m = /^b(['"])(.*)\1$/.exec(repr);
  assert.ok(m, `not a bytes literal: ${repr}`);
  const body = m[2]!;
  const out: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!;
    if (ch !== '\\') {
      out.push(ch.charCodeAt(0));
      continue;
    }
    const esc = body[++i];
    if (esc === 'x') {
      out.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const simple: Record<string, number> = { r: 13, n: 10, t: 9, '\\': 92, "'": 39, '"': 34, '0': 0 };
      assert.ok(esc !== undefined && esc in simple, `unknown escape \\${esc}`);
      out.push(simple[esc]!);
    }
  }
  return Buffer.from(out);
}

interface Block {
  dir: 'RECV' | 'SENT';
  bytes: Buffer;
}

/** The byte blocks of a transcript, each checked against the byte count in its header. */
function transcript(name: string): Block[] {
  const blocks: Block[] = [];
  let header: { dir: 'RECV' | 'SENT'; size: number } | undefined;
  for (const line of readFileSync(FIXTURES + name, 'utf8').split('\n')) {
    const h = /^##### (RECV|SENT) .*\((\d+) bytes\)$/.exec(line);
    if (h) header = { dir: h[1] as 'RECV' | 'SENT', size: Number(h[2]) };
    const r = /^##### repr: (.*)$/.exec(line);
    if (r) {
      assert.ok(header, 'repr without a header');
      const bytes = pyBytes(r[1]!);
      assert.equal(bytes.length, header.size, `${name}: block size`);
      blocks.push({ dir: header.dir, bytes });
      header = undefined;
    }
  }
  return blocks;
}

const TRANSCRIPTS = ['ami_messagesend_transcript.txt', 'ami_messagesend_userpart_transcript.txt'];
const all = TRANSCRIPTS.map((name) => ({ name, blocks: transcript(name) }));
const stream = (dir: 'RECV' | 'SENT', blocks: Block[]) => Buffer.concat(blocks.filter((b) => b.dir === dir).map((b) => b.bytes));

/** An independent, naive reading of well-formed CRLF AMI text, to compare the parser against. */
function naive(text: string, greeting: boolean): { greeting?: string; messages: Array<Array<[string, string]>> } {
  let rest = text;
  let g: string | undefined;
  if (greeting) {
    const i = rest.indexOf('\r\n');
    g = rest.slice(0, i);
    rest = rest.slice(i + 2);
  }
  const messages = rest
    .split('\r\n\r\n')
    .filter((b) => b !== '')
    .map((b) => b.split('\r\n').map((l): [string, string] => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]));
  return { greeting: g, messages };
}

function parseAll(chunks: Uint8Array[], options?: ConstructorParameters<typeof AmiParser>[0]): AmiFrame[] {
  const p = new AmiParser(options);
  return chunks.flatMap((c) => p.push(c));
}

function messagesOf(frames: AmiFrame[]) {
  return frames.filter((f): f is Extract<AmiFrame, { type: 'message' }> => f.type === 'message').map((f) => f.message);
}

/** Small deterministic PRNG so fuzz failures reproduce. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('the recorded server bytes parse to the recorded greeting and responses', () => {
  for (const { name, blocks } of all) {
    const recv = stream('RECV', blocks);
    const expected = naive(recv.toString('utf8'), true);
    const frames = parseAll([recv]);
    assert.deepEqual(frames[0], { type: 'greeting', text: expected.greeting }, name);
    assert.equal(frames[0]?.type === 'greeting' && frames[0].text, 'Asterisk Call Manager/9.0.0');
    const messages = messagesOf(frames);
    assert.equal(frames.length, 1 + messages.length, 'greeting then messages only');
    assert.equal(messages.length, blocks.filter((b) => b.dir === 'RECV').length - 1, 'one message per recorded response');
    assert.deepEqual(messages.map((m) => m.fields), expected.messages, name);
    assert.equal(messages[0]?.get('message'), 'Authentication accepted');
    assert.equal(messages.at(-1)?.get('Response'), 'Goodbye');
  }
  const texts = messagesOf(parseAll([stream('RECV', all[0]!.blocks)])).map((m) => `${m.get('Response')}/${m.get('Message')}`);
  for (const t of ['Success/Message successfully sent', 'Error/Message failed to send.', 'Error/Message technology not found.', "Error/No 'To' address specified."]) {
    assert.ok(texts.includes(t), t);
  }
});

test('each recorded action parses, and encodeAction re-encodes it byte for byte', () => {
  let count = 0;
  for (const { blocks } of all) {
    for (const { bytes } of blocks.filter((b) => b.dir === 'SENT')) {
      const [message, ...more] = messagesOf(parseAll([bytes], { expectGreeting: false }));
      assert.ok(message);
      assert.equal(more.length, 0);
      const [[key, action] = ['', ''], ...fields] = message.fields as Array<[string, string]>;
      assert.equal(key, 'Action');
      assert.deepEqual(encodeAction(action!, fields), bytes);
      assert.deepEqual(encodeAction(action!, Object.fromEntries(fields)), bytes, 'record form gives the same bytes');
      count++;
    }
  }
  assert.ok(count >= 9);
  // The Login as the recording shows it, from the values a caller would hold.
  const login = all[0]!.blocks.find((b) => b.dir === 'SENT')!.bytes;
  const sent = messagesOf(parseAll([login], { expectGreeting: false }))[0]!;
  const built = encodeAction('Login', { Username: sent.get('Username')!, Secret: sent.get('Secret')!, ActionID: sent.get('ActionID')!, Events: 'off' });
  assert.deepEqual(built, login);
  // A From with colons and quotes survives the round trip.
  const ms = messagesOf(parseAll([stream('SENT', all[0]!.blocks)], { expectGreeting: false })).find((m) => m.get('Action') === 'MessageSend');
  assert.match(ms?.get('From') ?? '', /^"Lab AMI" <sip:labami@127\.0\.0\.1>$/);
});

// The recorded server stream plus what the recordings lack: UTF-8 (the recorded body, decoded),
// an event, bare LF framing and Command output.
function richStream(): Buffer {
  const sentAction = messagesOf(parseAll([stream('SENT', all[0]!.blocks)], { expectGreeting: false })).find((m) => m.get('Base64Body'));
  const body = Buffer.from(sentAction!.get('Base64Body')!, 'base64').toString('utf8');
  assert.match(body, /[^\x00-\x7f]{3}/, 'the recorded body has multi-byte characters');
  return Buffer.concat([
    stream('RECV', all[0]!.blocks),
    Buffer.from(`Event: MessageStatus\r\nBody: ${body}\r\n\r\n`),
    Buffer.from('Response: Success\nActionID: lf-1\nMessage: bare LF\n\n'),
    Buffer.from('Response: Success\r\nActionID: cmd-1\r\nMessage: Command output follows\r\nOutput: Name/username\r\nOutput: 1001/1001\r\n\r\n'),
  ]);
}

test('splitting the byte stream at every position, or into single bytes, gives identical frames', () => {
  for (const [bytes, options] of [
    [richStream(), {}],
    [stream('SENT', all[0]!.blocks), { expectGreeting: false }],
    [stream('RECV', all[1]!.blocks), {}],
  ] as const) {
    const whole = parseAll([bytes], options);
    assert.ok(whole.length >= 5);
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(parseAll([bytes.subarray(0, i), bytes.subarray(i)], options), whole, `split at ${i}`);
    }
    const singles = Array.from(bytes, (b) => Uint8Array.of(b));
    assert.deepEqual(parseAll(singles, options), whole, 'single bytes');
  }
  const utf8 = messagesOf(parseAll([richStream()])).find((m) => m.get('Event') === 'MessageStatus');
  assert.match(utf8?.get('Body') ?? '', /zażółć gęślą jaźń €/);
});

test('1,000 responses in one chunk parse like 1,000 separate ones', () => {
  const recorded = messagesOf(parseAll([stream('RECV', all[0]!.blocks)])).find((m) => m.get('Message') === 'Message successfully sent')!;
  const chunks = Array.from({ length: 1000 }, (_, i) => recordedBytes(recorded.fields, `id-${i}`));
  const batched = messagesOf(parseAll([Buffer.concat([Buffer.from('Asterisk Call Manager/9.0.0\r\n'), ...chunks])]));
  assert.equal(batched.length, 1000);
  batched.forEach((m, i) => {
    assert.equal(m.get('ActionID'), `id-${i}`);
    assert.equal(m.get('Message'), recorded.get('Message'));
  });
  const separate = messagesOf(parseAll([Buffer.from('Asterisk Call Manager/9.0.0\r\n'), ...chunks]));
  assert.deepEqual(batched, separate);
  // And cut into random sizes.
  const all1000 = Buffer.concat(chunks);
  const rnd = prng(7);
  const pieces: Buffer[] = [Buffer.from('Asterisk Call Manager/9.0.0\r\n')];
  for (let at = 0; at < all1000.length; ) {
    const n = 1 + Math.floor(rnd() * 300);
    pieces.push(all1000.subarray(at, at + n));
    at += n;
  }
  assert.deepEqual(messagesOf(parseAll(pieces)), batched);
});

/** Re-serialises recorded fields with another ActionID, CRLF as Asterisk writes. */
function recordedBytes(fields: ReadonlyArray<readonly [string, string]>, id: string): Buffer {
  return Buffer.from(fields.map(([k, v]) => `${k}: ${k === 'ActionID' ? id : v}\r\n`).join('') + '\r\n');
}

test('events interleaved with responses keep their order and kind', () => {
  const parts: string[] = ['Asterisk Call Manager/9.0.0\r\n'];
  for (let i = 0; i < 50; i++) {
    parts.push(`Event: PeerStatus\r\nPrivilege: system,all\r\nPeer: PJSIP/${i}\r\n\r\n`);
    parts.push(`Response: Success\r\nActionID: a-${i}\r\nMessage: Message successfully sent\r\n\r\n`);
  }
  const messages = messagesOf(parseAll([Buffer.from(parts.join(''))]));
  assert.equal(messages.length, 100);
  messages.forEach((m, i) => {
    const n = Math.floor(i / 2);
    if (i % 2 === 0) {
      assert.equal(m.get('Event'), 'PeerStatus');
      assert.equal(m.get('Peer'), `PJSIP/${n}`);
      assert.equal(m.get('Response'), undefined);
    } else {
      assert.equal(m.get('ActionID'), `a-${n}`);
      assert.equal(m.get('Event'), undefined);
    }
  });
});

test('multi-line output and lines without a colon are kept, never dropped', () => {
  const text =
    'Asterisk Call Manager/9.0.0\r\n' +
    'Response: Success\r\nActionID: c1\r\nMessage: Command output follows\r\nOutput: line one\r\nOutput: line: two\r\nOutput: \r\n\r\n' +
    'Response: Follows\r\nPrivilege: Command\r\nActionID: c2\r\nchannel list\r\n  PJSIP/1001 Up\r\n--END COMMAND--\r\n\r\n' +
    'Response: Success\r\nActionID: c3\r\nEmpty:\r\nNoSpace:x\r\n\r\n';
  const [out, follows, odd] = messagesOf(parseAll([Buffer.from(text)]));
  assert.deepEqual(out?.getAll('output'), ['line one', 'line: two', '']);
  assert.equal(out?.get('Output'), '', 'get() gives the last one');
  assert.equal(follows?.get('ActionID'), 'c2');
  assert.deepEqual(follows?.getAll(''), ['channel list', '  PJSIP/1001 Up', '--END COMMAND--']);
  assert.equal(odd?.get('Empty'), '');
  assert.deepEqual(odd?.getAll(''), ['NoSpace:x']);
});

test('keys are case-insensitive and the last repeated key wins', () => {
  const m = createMessage([
    ['Response', 'Success'],
    ['Variable', 'A=1'],
    ['variable', 'B=2'],
  ]);
  assert.equal(m.get('VARIABLE'), 'B=2');
  assert.deepEqual(m.getAll('Variable'), ['A=1', 'B=2']);
  assert.equal(m.get('missing'), undefined);
});

test('bare LF framing parses like CRLF framing', () => {
  const crlf = richStream();
  const lf = Buffer.from(crlf.toString('utf8').replace(/\r\n/g, '\n'));
  assert.deepEqual(parseAll([lf]), parseAll([crlf]));
});

test('an oversized message becomes one error frame and parsing resumes at the next blank line', () => {
  const good = 'Response: Success\r\nActionID: ok\r\nMessage: fine\r\n\r\n';
  const huge = `Event: Huge\r\nValue: ${'x'.repeat(5000)}\r\nMore: y\r\n\r\n`;
  const bytes = Buffer.from(`Asterisk Call Manager/9.0.0\r\n${good}${huge}${good}${huge.replace(/\r\n\r\n$/, '')}`);
  const tail = Buffer.from(`\r\n\r\n${good}`);
  const whole = parseAll([bytes, tail], { maxMessageBytes: 1000 });
  assert.deepEqual(
    whole.map((f) => f.type),
    ['greeting', 'message', 'error', 'message', 'error', 'message'],
  );
  // The same when the huge line arrives one byte at a time (nothing is buffered past the limit).
  const singles = Array.from(Buffer.concat([bytes, tail]), (b) => Uint8Array.of(b));
  assert.deepEqual(parseAll(singles, { maxMessageBytes: 1000 }), whole);
  // A huge first line is no greeting.
  const noGreeting = parseAll([Buffer.from(`${'y'.repeat(2000)}\r\n\r\n${good}`)], { maxMessageBytes: 1000 });
  assert.deepEqual(noGreeting.map((f) => f.type), ['error', 'message']);
});

test('random and mutated bytes never throw, whatever the chunking', () => {
  const rnd = prng(42);
  const base = richStream();
  for (let run = 0; run < 300; run++) {
    const bytes = run % 2 === 0 ? Buffer.from(Array.from({ length: Math.floor(rnd() * 2000) }, () => Math.floor(rnd() * 256))) : Buffer.from(base);
    if (run % 2 === 1) for (let k = 0; k < 20; k++) bytes[Math.floor(rnd() * bytes.length)] = [0, 10, 13, 58, 32, 0xff, 0xc3][Math.floor(rnd() * 7)]!;
    const p = new AmiParser({ maxMessageBytes: 512 });
    for (let at = 0; at < bytes.length; ) {
      const n = 1 + Math.floor(rnd() * 64);
      for (const f of p.push(bytes.subarray(at, at + n))) assert.ok(['greeting', 'message', 'error'].includes(f.type));
      at += n;
    }
  }
});

test('encodeAction refuses CR, LF or NUL in any key or value, and bad keys', () => {
  const refused = (fn: () => unknown, part: 'key' | 'value') =>
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof AmiUnsafeValueError);
      assert.ok(err instanceof SmsRouterError);
      assert.equal(err.code, 'AMI_UNSAFE_VALUE');
      assert.equal(err.part, part);
      if (part === 'value') assert.doesNotMatch(err.message, /Originate|s3cret/, 'the value is never echoed');
      return true;
    });
  for (const bad of ['\r', '\n', '\0', 'x\r\nAction: Originate', 's3cret\n', 'a\u0000b']) {
    refused(() => encodeAction('MessageSend', { To: 'sip:x', Body: bad }), 'value');
    refused(() => encodeAction('MessageSend', [['To', bad]]), 'value');
    refused(() => encodeAction(`Ping${bad}`, {}), 'value');
    refused(() => encodeAction('Ping', { [`X${bad}`]: 'v' }), 'key');
  }
  for (const badKey of ['', 'To:', 'a:b', 'Two words', ' To', 'Tab\t']) refused(() => encodeAction('Ping', [[badKey, 'v']]), 'key');
  // Colons and non-ASCII are fine in values.
  assert.equal(encodeAction('MessageSend', { To: 'pjsip:1001/sip:1001@10.0.0.2:5060', Body: 'zażółć €' }).toString('utf8'), 'Action: MessageSend\r\nTo: pjsip:1001/sip:1001@10.0.0.2:5060\r\nBody: zażółć €\r\n\r\n');
});
