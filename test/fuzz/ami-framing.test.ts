/**
 * Fuzzing AMI framing (src/asterisk/ami/framing.ts, AmiParser).
 *
 * Seeded and reproducible: every test name carries the seed. Knobs (see fuzz-support.ts):
 * FUZZ_SEED, FUZZ_PATH, FUZZ_RUNS (run multiplier), FUZZ_TIME_MS (time per property), FUZZ_LONG=1.
 * Regression inputs: test/fuzz/corpus/ami/ (raw server byte streams, replayed whole,
 * byte by byte and cut at seeded random places, with the default and a tiny size limit).
 *
 * Properties: push() never throws; any split of a byte stream gives the frames
 * of the unsplit stream; below the size limit the frames are exactly what a
 * plain line-by-line reading gives; an over-long message (10 MiB without a line
 * end included) becomes one error frame, the parser holds on to no more than a
 * small multiple of its limit however the bytes are chunked, and it resynchronises.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { AmiParser, type AmiFrame, type AmiParserOptions } from '../../src/asterisk/ami/framing.js';
import { MiB, SEED_TAG, check, corpus, cuts, FIXTURES, mutate, mutation, nastyByte, pyBytes, replaySplits, retainedBytes, split } from './fuzz-support.js';

/** The bytes each side sent in a recorded session, from the transcripts' `repr:` lines. */
function transcript(name: string): { server: Buffer; client: Buffer; serverBlocks: number; clientBlocks: number } {
  const server: Buffer[] = [];
  const client: Buffer[] = [];
  let dir: string | undefined;
  for (const line of readFileSync(new URL(`ami/${name}`, FIXTURES), 'utf8').split('\n')) {
    const h = /^##### (RECV|SENT) /.exec(line);
    if (h) dir = h[1];
    const r = /^##### repr: (.*)$/.exec(line);
    if (r) (dir === 'RECV' ? server : client).push(pyBytes(r[1]!));
  }
  return { server: Buffer.concat(server), client: Buffer.concat(client), serverBlocks: server.length, clientBlocks: client.length };
}

const TRANSCRIPTS = ['ami_messagesend_transcript.txt', 'ami_messagesend_userpart_transcript.txt'].map(transcript);
const STREAMS: Array<{ bytes: Buffer; expectGreeting: boolean }> = TRANSCRIPTS.flatMap((t) => [
  { bytes: t.server, expectGreeting: true },
  { bytes: t.client, expectGreeting: false },
]);

/** Frames as plain data (messages by their fields), for deepStrictEqual. */
type Plain = { type: 'greeting'; text: string } | { type: 'message'; fields: Array<[string, string]> } | { type: 'error'; reason: string };
const plain = (f: AmiFrame): Plain =>
  f.type === 'message' ? { type: 'message', fields: f.message.fields.map(([k, v]) => [k, v]) } : f;

function parse(chunks: readonly Uint8Array[], options: AmiParserOptions): Plain[] {
  const p = new AmiParser(options);
  const out: Plain[] = [];
  for (const c of chunks) {
    let frames: AmiFrame[];
    try {
      frames = p.push(c);
    } catch (err) {
      assert.fail(`push threw ${String(err)}`);
    }
    for (const f of frames) {
      assert.ok(['greeting', 'message', 'error'].includes(f.type), `frame type ${f.type}`);
      if (f.type === 'message') {
        assert.ok(f.message.fields.length > 0, 'no empty message');
        for (const [k, v] of f.message.fields) assert.ok(typeof k === 'string' && typeof v === 'string');
      }
      if (f.type === 'error') assert.match(f.reason, /longer than \d+ bytes/);
      out.push(plain(f));
    }
  }
  return out;
}

/** The frames by plain reading, line by line (valid while nothing is over the limit). */
function reference(bytes: Buffer, expectGreeting: boolean): Plain[] {
  const out: Plain[] = [];
  const lines = bytes.toString('latin1').split('\n').slice(0, -1); // the last piece has no LF yet
  let awaiting = expectGreeting;
  let fields: Array<[string, string]> = [];
  let at = 0;
  for (const l of lines) {
    let text = bytes.subarray(at, at + l.length).toString('utf8');
    at += l.length + 1;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    if (awaiting) {
      if (text !== '') {
        awaiting = false;
        out.push({ type: 'greeting', text });
      }
      continue;
    }
    if (text === '') {
      if (fields.length) out.push({ type: 'message', fields });
      fields = [];
      continue;
    }
    const i = text.indexOf(': ');
    if (i > 0) fields.push([text.slice(0, i), text.slice(i + 2)]);
    else if (text.length > 1 && text.indexOf(':') === text.length - 1) fields.push([text.slice(0, -1), '']);
    else fields.push(['', text]);
  }
  return out;
}

/** Splits must not matter; below the limit the result is the plain reading. */
function splitInvariant(bytes: Buffer, at: readonly number[], options: AmiParserOptions): Plain[] {
  const whole = parse([bytes], options);
  assert.deepStrictEqual(parse(split(bytes, at), options), whole, 'split stream gives the frames of the whole stream');
  if (bytes.length < (options.maxMessageBytes ?? MiB)) {
    assert.deepStrictEqual(whole, reference(bytes, options.expectGreeting ?? true), 'frames are the line-by-line reading');
  }
  return whole;
}

const parserOptions: fc.Arbitrary<AmiParserOptions> = fc.record(
  { maxMessageBytes: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.constant(MiB)), expectGreeting: fc.boolean() },
  { requiredKeys: [] },
);

// ---------------------------------------------------------------- corpus

for (const { name, bytes } of corpus('ami')) {
  test(`ami corpus ${name}: same frames however it is split`, () => {
    for (const options of [{}, { maxMessageBytes: 64 }, { expectGreeting: false }]) {
      const runs = replaySplits(bytes, name).map(({ label, chunks }) => ({ label, frames: parse(chunks, options) }));
      for (const r of runs) assert.deepStrictEqual(r.frames, runs[0]!.frames, `${JSON.stringify(options)} ${r.label}`);
    }
  });
}

// ---------------------------------------------------------------- properties

test(`ami: real transcripts parse the same split anywhere ${SEED_TAG}`, () => {
  for (const t of TRANSCRIPTS) {
    // Sanity: the whole stream is every recorded block, nothing lost or merged.
    const server = parse([t.server], {});
    assert.equal(server.filter((f) => f.type === 'greeting').length, 1);
    assert.equal(server.filter((f) => f.type === 'message').length, t.serverBlocks - 1);
    assert.equal(parse([t.client], { expectGreeting: false }).filter((f) => f.type === 'message').length, t.clientBlocks);
  }
  check(
    [fc.integer({ min: 0, max: STREAMS.length - 1 }), cuts],
    (i, at) => {
      const { bytes, expectGreeting } = STREAMS[i]!;
      const frames = splitInvariant(bytes, at, { expectGreeting });
      assert.ok(frames.every((f) => f.type !== 'error'));
    },
    20000,
  );
});

test(`ami: mutated transcripts, any limit, any split ${SEED_TAG}`, () => {
  check(
    [fc.integer({ min: 0, max: STREAMS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 8 }), parserOptions, cuts],
    (i, muts, options, at) => void splitInvariant(mutate(STREAMS[i]!.bytes, muts), at, options),
    25000,
  );
});

const AMI_PIECES = ['Response: Success', 'Event: X', 'ActionID: 1', 'Key:', 'Key:value', ': x', ':', 'Output: a: b', '--END COMMAND--', 'Asterisk Call Manager/9.0.0', ''];
const amiLike = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...AMI_PIECES), fc.string({ unit: 'binary', maxLength: 30 })),
      fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', ''),
    ),
    { maxLength: 40 },
  )
  .map((l) => Buffer.from(l.map(([a, b]) => a + b).join(''), 'utf8'));

test(`ami: AMI-like garbage and random bytes, any limit, any split ${SEED_TAG}`, () => {
  check(
    [fc.oneof(amiLike, fc.uint8Array({ maxLength: 1500 }).map((u) => Buffer.from(u)), fc.array(nastyByte, { maxLength: 600 }).map((a) => Buffer.from(a))), parserOptions, cuts],
    (bytes, options, at) => void splitInvariant(bytes, at, options),
    30000,
  );
});

test(`ami: a 10 MiB line without a line end is one error frame, memory stays bounded, the next message parses ${SEED_TAG}`, () => {
  check(
    [fc.integer({ min: 1024, max: 1024 * 1024 }), fc.constantFrom(0x41, 0x3a, 0x0d, 0xff), fc.boolean(), fc.constantFrom(MiB, 64 * 1024)],
    (chunkSize, fill, greeted, max) => {
      const p = new AmiParser({ maxMessageBytes: max });
      const frames: Plain[] = [];
      if (greeted) frames.push(...p.push(Buffer.from('Asterisk Call Manager/9.0.0\r\n')).map(plain));
      const chunk = Buffer.alloc(chunkSize, fill);
      const before = retainedBytes();
      for (let sent = 0; sent < 10 * MiB; sent += chunkSize) frames.push(...p.push(chunk).map(plain));
      const held = retainedBytes() - before;
      assert.ok(held < 3 * max + MiB, `parser holds ${held} bytes for a ${max}-byte limit`);
      frames.push(...p.push(Buffer.from('\r\n\r\nResponse: Success\r\nActionID: 7\r\n\r\n')).map(plain));
      const expected: Plain[] = greeted ? [{ type: 'greeting', text: 'Asterisk Call Manager/9.0.0' }] : [];
      expected.push({ type: 'error', reason: `AMI message longer than ${max} bytes skipped` });
      expected.push({ type: 'message', fields: [['Response', 'Success'], ['ActionID', '7']] });
      assert.deepStrictEqual(frames, expected);
    },
    6,
  );
});

test(`ami: a message at the limit fed one byte at a time costs memory in proportion to the limit ${SEED_TAG}`, () => {
  // Before the fix every 1-byte push was kept as its own Buffer: ~110 heap bytes per byte held.
  check(
    [fc.integer({ min: 64 * 1024, max: 512 * 1024 }), fc.boolean()],
    (max, newlines) => {
      const x = Buffer.from('x');
      const nl = Buffer.from('\n');
      // Warm up first, so that compiling the loop does not count as held memory
      // (short lines: the warm-up parser holds nothing by the time we measure).
      const warm = new AmiParser({ expectGreeting: false });
      for (let i = 0; i < 20_000; i++) warm.push(i % 100 === 99 ? Buffer.from('\n') : x);
      const p = new AmiParser({ maxMessageBytes: max, expectGreeting: false });
      const before = retainedBytes();
      // Just under the limit: nothing is dropped, all of it is held.
      const bytes = max - 16;
      for (let i = 0; i < bytes; i++) assert.deepEqual(p.push(newlines && i % 1000 === 999 ? nl : x), []);
      const held = retainedBytes() - before;
      assert.ok(held < 4 * max + MiB, `holding ${bytes} bytes of a message costs ${held} bytes`);
      const frames = p.push(Buffer.from('\n\n'));
      assert.equal(frames.length, 1);
      assert.equal(frames[0]!.type, 'message');
    },
    3,
  );
});
