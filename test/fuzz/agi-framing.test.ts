/**
 * Fuzzing FastAGI framing (src/asterisk/fastagi/framing.ts, AgiReader and parseReplyLine).
 *
 * Seeded and reproducible: every test name carries the seed. Knobs (see fuzz-support.ts):
 * FUZZ_SEED, FUZZ_PATH, FUZZ_RUNS (run multiplier), FUZZ_TIME_MS (time per property), FUZZ_LONG=1.
 * Regression inputs: test/fuzz/corpus/agi/ (raw bytes from Asterisk, replayed whole,
 * byte by byte and cut at seeded random places, with the default and a tiny line limit).
 *
 * Properties: push() never throws; any split gives the items of the unsplit
 * stream; it never holds more than maxLineBytes of an unfinished line; a 10 MiB
 * line without a line end is one error item and the next line still parses;
 * memory stays in proportion to the limit however the bytes are chunked;
 * parseReplyLine agrees with the plain definition of where a reply's data ends.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AgiReader, parseReplyLine, type AgiItem, type AgiReply } from '../../src/asterisk/fastagi/framing.js';
import { asteriskBytes, loadTranscript, recordedEnvironment } from '../fakes/agi-client.js';
import { MiB, SEED_TAG, check, corpus, cuts, mutate, mutation, nastyByte, replaySplits, retainedBytes, split } from './fuzz-support.js';

const SESSIONS = ['fastagi_transcript.txt', 'fastagi_sendfax_transcript.txt', 'fastagi_playback_transcript.txt', 'fastagi_inbound_message_transcript.txt'];
const DEFAULT_MAX = 64 * 1024;

/** What Asterisk wrote in a recorded session (transcripts quoting only some agi_* get the lab block). */
function sessionBytes(name: string): Buffer {
  const t = loadTranscript(name);
  const env = new Map(t.environment.length > 10 ? [] : recordedEnvironment());
  for (const [k, v] of t.environment) env.set(k, v);
  return Buffer.from(asteriskBytes([...env], t.exchanges), 'utf8');
}
const STREAMS = SESSIONS.map(sessionBytes);

function parse(chunks: readonly Uint8Array[], options: { maxLineBytes?: number } = {}): AgiItem[] {
  const r = new AgiReader(options);
  const limit = Math.max(16, options.maxLineBytes ?? DEFAULT_MAX);
  const out: AgiItem[] = [];
  for (const c of chunks) {
    let items: AgiItem[];
    try {
      items = r.push(c);
    } catch (err) {
      assert.fail(`push threw ${String(err)}`);
    }
    assert.ok(r.bufferedBytes <= limit, `holds ${r.bufferedBytes} bytes of an unfinished line, limit ${limit}`);
    for (const item of items) {
      switch (item.type) {
        case 'environment':
          for (const [k, v] of Object.entries(item.env)) assert.ok(/^[A-Za-z][A-Za-z0-9_]*$/.test(k) && typeof v === 'string');
          break;
        case 'reply':
          assert.ok(Number.isInteger(item.reply.code) && item.reply.code >= 0 && item.reply.code <= 999);
          assert.equal(typeof item.reply.result, 'string');
          assert.ok(item.reply.lines.length > 0);
          break;
        case 'hangup':
          break;
        case 'error':
          assert.ok(typeof item.reason === 'string' && item.reason.length > 0);
          break;
        default:
          assert.fail(`unknown item ${JSON.stringify(item)}`);
      }
      out.push(item);
    }
  }
  return out;
}

function splitInvariant(bytes: Uint8Array, at: readonly number[], options: { maxLineBytes?: number }): AgiItem[] {
  const whole = parse([bytes], options);
  assert.deepStrictEqual(parse(split(bytes, at), options), whole, 'a split stream gives the items of the whole stream');
  return whole;
}

const limits = fc.record({ maxLineBytes: fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constant(DEFAULT_MAX)) }, { requiredKeys: [] });

// ---------------------------------------------------------------- corpus

for (const { name, bytes } of corpus('agi')) {
  test(`agi corpus ${name}: same items however it is split`, () => {
    for (const options of [{}, { maxLineBytes: 64 }]) {
      const runs = replaySplits(bytes, name).map(({ label, chunks }) => ({ label, items: parse(chunks, options) }));
      for (const r of runs) assert.deepStrictEqual(r.items, runs[0]!.items, `${JSON.stringify(options)} ${r.label}`);
    }
  });
}

// ---------------------------------------------------------------- properties

test(`agi: real sessions parse the same split anywhere ${SEED_TAG}`, () => {
  for (const s of STREAMS) {
    const items = parse([s]);
    assert.equal(items[0]?.type, 'environment');
    assert.ok(items.every((i) => i.type !== 'error'), 'a recorded session has no errors');
  }
  check([fc.integer({ min: 0, max: STREAMS.length - 1 }), cuts], (i, at) => void splitInvariant(STREAMS[i]!, at, {}), 20000);
});

test(`agi: mutated sessions, any line limit, any split ${SEED_TAG}`, () => {
  check(
    [fc.integer({ min: 0, max: STREAMS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 8 }), limits, cuts],
    (i, muts, options, at) => void splitInvariant(mutate(STREAMS[i]!, muts), at, options),
    25000,
  );
});

const REPLY_PIECES = ['200 result=1', '200 result=1 (', ')', ') ', ' endpos=12', 'endpos=-1', '200 result= (timeout)', '520-Invalid', '520 End', '510 Invalid', 'HANGUP', 'agi_x: y', '', '(', ' a=b', '200', '2000 result=1'];
const agiLike = fc
  .array(
    fc.tuple(fc.oneof(fc.constantFrom(...REPLY_PIECES), fc.string({ unit: 'binary', maxLength: 20 })), fc.constantFrom('\n', '\r\n', '', ' ', '\r')),
    { maxLength: 40 },
  )
  .map((l) => Buffer.from('agi_network: yes\n\n' + l.map(([a, b]) => a + b).join(''), 'utf8'));

test(`agi: reply-like garbage and random bytes, any line limit, any split ${SEED_TAG}`, () => {
  check(
    [fc.oneof(agiLike, fc.uint8Array({ maxLength: 1500 }), fc.array(nastyByte, { maxLength: 600 }).map((a) => Uint8Array.from(a))), limits, cuts],
    (bytes, options, at) => void splitInvariant(bytes, at, options),
    30000,
  );
});

test(`agi: a 10 MiB line without a line end is one error item, memory stays bounded, the next line parses ${SEED_TAG}`, () => {
  check(
    [fc.integer({ min: 1024, max: 1024 * 1024 }), fc.constantFrom(0x41, 0x28, 0x0d, 0xff), fc.boolean()],
    (chunkSize, fill, inEnvironment) => {
      const r = new AgiReader();
      const items: AgiItem[] = inEnvironment ? [] : r.push(Buffer.from('agi_request: agi://x/y\n\n'));
      const chunk = Buffer.alloc(chunkSize, fill);
      const before = retainedBytes();
      for (let sent = 0; sent < 10 * MiB; sent += chunkSize) items.push(...r.push(chunk));
      assert.ok(r.bufferedBytes <= DEFAULT_MAX);
      const held = retainedBytes() - before;
      assert.ok(held < 4 * DEFAULT_MAX + MiB, `reader holds ${held} bytes`);
      items.push(...r.push(Buffer.from('\n')));
      items.push(...r.push(Buffer.from(inEnvironment ? 'agi_a: 1\n\n200 result=0\n' : '200 result=0\n')));
      const errors = items.filter((i) => i.type === 'error');
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.deepEqual(items.at(-1), { type: 'reply', reply: { code: 200, result: '0', lines: ['200 result=0'] } });
    },
    6,
  );
});

test(`agi: a line at the limit fed one byte at a time costs memory in proportion to the limit ${SEED_TAG}`, () => {
  // Before the fix every 1-byte push was kept as its own Buffer: ~110 heap bytes per byte held.
  check(
    [fc.integer({ min: 64 * 1024, max: 256 * 1024 })],
    (max) => {
      const x = Buffer.from('x');
      // Warm up first, so that compiling the loop does not count as held memory
      // (short lines: the warm-up parser holds nothing by the time we measure).
      const warm = new AgiReader();
      for (let i = 0; i < 20_000; i++) warm.push(i % 100 === 99 ? Buffer.from('\n') : x);
      const r = new AgiReader({ maxLineBytes: max });
      r.push(Buffer.from('agi_a: 1\n\n'));
      const before = retainedBytes();
      for (let i = 0; i < max; i++) assert.deepEqual(r.push(x), []);
      const held = retainedBytes() - before;
      assert.equal(r.bufferedBytes, max);
      assert.ok(held < 4 * max + MiB, `holding a ${max}-byte line costs ${held} bytes`);
      assert.deepEqual(r.push(Buffer.from('\n')), [{ type: 'error', reason: 'line is neither a reply nor HANGUP' }]);
    },
    3,
  );
});

// ---------------------------------------------------------------- parseReplyLine

/** The definition parseReplyLine implements, written plainly (a regex per ")"), as the oracle. */
const ATTR_TAIL = /^(?: [^\s=]+=\S*)*$/;
function referenceClosingParen(tail: string): number {
  for (let i = tail.lastIndexOf(')'); i > 1; i = tail.lastIndexOf(')', i - 1)) {
    if (ATTR_TAIL.test(tail.slice(i + 1))) return i;
  }
  for (let i = tail.indexOf(')', 2); i !== -1; i = tail.indexOf(')', i + 1)) {
    if (i === tail.length - 1 || tail[i + 1] === ' ') return i;
  }
  return -1;
}
function referenceReply(line: string): AgiReply | undefined {
  const text = line.replace(/\r?\n$|\r$/, '');
  const m = /^(\d{3})(?: ([\s\S]*))?$/.exec(text);
  if (!m) return undefined;
  const rest = m[2] ?? '';
  const result = /^result=(\S*)/.exec(rest);
  if (!result) return { code: Number(m[1]), result: '', lines: [text], ...(rest !== '' ? { data: rest } : {}) };
  const reply: AgiReply = { code: Number(m[1]), result: result[1]!, lines: [text] };
  let tail = rest.slice(result[0].length);
  if (tail.startsWith(' (')) {
    const close = referenceClosingParen(tail);
    if (close === -1) {
      reply.data = tail.slice(2);
      tail = '';
    } else {
      reply.data = tail.slice(2, close);
      tail = tail.slice(close + 1);
    }
  }
  const endpos = /(?:^| )endpos=(-?\d+)(?= |$)/.exec(tail);
  if (endpos) reply.endpos = Number(endpos[1]);
  return reply;
}

test(`agi: parseReplyLine agrees with the plain definition of the data's closing parenthesis ${SEED_TAG}`, () => {
  const tailChars = fc.array(fc.constantFrom(')', ' ', 'a=b', '=', 'a', '  ', '(', '\t', '\n', '"', 'endpos=', ' endpos=3', ') x=y', ')  x=', ' =b'), { maxLength: 16 });
  check(
    [fc.constantFrom('200 result=1 (', '200 result=-1 (', '200 result=1', '520 ', '200 result= ('), tailChars],
    (head, parts) => {
      const line = head + parts.join('');
      assert.deepStrictEqual(parseReplyLine(line), referenceReply(line), JSON.stringify(line));
    },
    50000,
  );
});

test(`agi: a reply spilled over lines ends where the plain definition says ${SEED_TAG}`, () => {
  const piece = fc.constantFrom(')', '(', ' ', 'a', '=', 'b', '\t', ' endpos=3', ') x=y', ')x', 'HANGUP', '200 result=0');
  const spilled = fc.array(fc.array(piece, { maxLength: 8 }).map((p) => p.join('')), { minLength: 1, maxLength: 12 });
  check(
    [spilled, cuts],
    (parts, at) => {
      const lines = parts.map((p, i) => (i === 0 ? `200 result=1 (${p}` : p));
      const bytes = Buffer.from(`agi_a: 1\n\n${lines.join('\n')}\n`);
      const items = splitInvariant(bytes, at, {});
      // Oracle: the reply is complete at the first line whose join has a closing ")".
      let expected: AgiReply | undefined;
      for (let k = 1; k <= lines.length && !expected; k++) {
        const text = lines.slice(0, k).join('\n');
        const tail = text.slice('200 result=1'.length);
        if (referenceClosingParen(tail) !== -1) expected = { ...referenceReply(text)!, lines: lines.slice(0, k) };
      }
      assert.deepStrictEqual(items.find((i) => i.type === 'reply'), expected && { type: 'reply', reply: expected });
    },
    30000,
  );
});
