/** WAV headers as Asterisk's format_wav sees them, on the real files that played or were refused (SPEC §5). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAsteriskWav, leadingSilenceMs, readWavInfo, type WavInfo } from '../../src/render/wav.js';

const VOICE = fileURLToPath(new URL('../../../spool-fixtures/voice/', import.meta.url));
const fixture = (name: string) => readFileSync(VOICE + name);
const info = (name: string): WavInfo => {
  const i = readWavInfo(fixture(name));
  assert.ok(i, `${name} is a WAV`);
  return i;
};

// ─── Synthetic files ─────────────────────────────────────────────────────────

function chunk(id: string, body: Buffer, declaredSize = body.length): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(declaredSize, 4);
  // Odd-sized chunks are followed by a pad byte.
  return Buffer.concat([head, body, Buffer.alloc(body.length & 1)]);
}

function fmtBody(o: { tag?: number; channels?: number; rate?: number; bits?: number; subFormat?: number }): Buffer {
  const channels = o.channels ?? 1;
  const rate = o.rate ?? 8000;
  const bits = o.bits ?? 16;
  const extensible = o.subFormat !== undefined;
  const b = Buffer.alloc(extensible ? 40 : 16);
  b.writeUInt16LE(extensible ? 0xfffe : (o.tag ?? 1), 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * channels * bits) / 8, 8);
  b.writeUInt16LE((channels * bits) / 8, 12);
  b.writeUInt16LE(bits, 14);
  if (extensible) {
    b.writeUInt16LE(22, 16); // cbSize
    b.writeUInt16LE(bits, 18); // valid bits
    b.writeUInt32LE(channels === 1 ? 4 : 3, 20); // channel mask
    b.writeUInt16LE(o.subFormat!, 24); // GUID starts with the format code
  }
  return b;
}

function riff(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), ...chunks]);
  const head = Buffer.from('RIFF....', 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

function pcm16(samples: number[]): Buffer {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => b.writeInt16LE(s, i * 2));
  return b;
}

const zeros = (n: number) => new Array<number>(n).fill(0);

// ─── The real fixtures ───────────────────────────────────────────────────────

test('hello8k.wav (played by Asterisk) is 16-bit PCM mono at 8000 Hz, and is the kind we must produce', () => {
  const i = info('hello8k.wav');
  assert.equal(i.audioFormat, 1);
  assert.equal(i.formatTag, 1);
  assert.equal(i.channels, 1);
  assert.equal(i.sampleRate, 8000);
  assert.equal(i.bitsPerSample, 16);
  assert.equal(i.dataOffset + i.dataBytes, statSync(VOICE + 'hello8k.wav').size, 'a canonical file: data runs to the end');
  assert.equal(i.durationMs, Math.round((i.dataBytes / 2 / 8000) * 1000));
  assert.ok(isAsteriskWav(i));
  assert.ok(isAsteriskWav(info('recorded_from_hello8k.wav')), 'what Asterisk recorded back is the same format');
});

test('the refused files differ from hello8k.wav exactly in what format_wav rejects', () => {
  const ok = info('hello8k.wav');
  const cases: Array<[string, Partial<WavInfo>]> = [
    ['hello22k.wav', { sampleRate: 22050 }],
    ['hello16k.wav', { sampleRate: 16000 }],
    ['hello16kx.wav16', { sampleRate: 16000 }],
    ['hello8k_stereo.wav', { channels: 2 }],
    ['hello8k_ulaw.wav', { audioFormat: 7, formatTag: 7, bitsPerSample: 8 }],
  ];
  for (const [name, differs] of cases) {
    const i = info(name);
    for (const key of ['audioFormat', 'channels', 'sampleRate', 'bitsPerSample'] as const) {
      assert.equal(i[key], key in differs ? differs[key] : ok[key], `${name}: ${key}`);
    }
    assert.equal(isAsteriskWav(i), false, `${name} is not playable as .wav`);
    // The same recording in every format: the durations agree.
    assert.ok(Math.abs(i.durationMs - ok.durationMs) <= 1, `${name}: ${i.durationMs} ms vs ${ok.durationMs} ms`);
  }
});

test('the µ-law file: an 18-byte fmt and a fact chunk come before data, and are walked past', () => {
  const buf = fixture('hello8k_ulaw.wav');
  const i = info('hello8k_ulaw.wav');
  assert.equal(buf.toString('latin1', i.dataOffset - 8, i.dataOffset - 4), 'data');
  assert.ok(i.dataOffset > 44, 'not the canonical 44-byte header');
  assert.equal(i.dataOffset + i.dataBytes, buf.length);
});

test('the same audio has the same leading silence at every rate and channel count', () => {
  const reference = leadingSilenceMs(fixture('hello8k.wav'));
  for (const name of ['hello16k.wav', 'hello22k.wav', 'hello8k_stereo.wav', 'recorded_from_hello8k.wav']) {
    assert.ok(Math.abs(leadingSilenceMs(fixture(name)) - reference) <= 5, `${name}`);
  }
});

// ─── RIFF walking ────────────────────────────────────────────────────────────

test('LIST chunks and odd-sized chunks before fmt and data are skipped with their padding', () => {
  const samples = pcm16([0, 1, 2, 3, 4, 5, 6, 7]);
  const buf = riff(chunk('LIST', Buffer.from('INFOISFT\x05\x00\x00\x00sox!\x00', 'latin1')), chunk('junk', Buffer.from('abc')), chunk('fmt ', fmtBody({})), chunk('odd ', Buffer.from('x')), chunk('data', samples));
  const i = readWavInfo(buf);
  assert.ok(i);
  assert.equal(i.channels, 1);
  assert.equal(i.sampleRate, 8000);
  assert.equal(i.dataBytes, samples.length);
  assert.deepEqual(buf.subarray(i.dataOffset, i.dataOffset + i.dataBytes), samples);
  assert.ok(isAsteriskWav(i));
});

test('WAVE_FORMAT_EXTENSIBLE reports its sub-format, keeps the tag, and is not taken for plain PCM', () => {
  const i = readWavInfo(riff(chunk('fmt ', fmtBody({ subFormat: 1 })), chunk('data', pcm16(zeros(80)))));
  assert.ok(i);
  assert.equal(i.audioFormat, 1);
  assert.equal(i.formatTag, 0xfffe);
  assert.equal(isAsteriskWav(i), false, 'we only trust the plain PCM tag');
  const float = readWavInfo(riff(chunk('fmt ', fmtBody({ subFormat: 3, bits: 32 })), chunk('data', Buffer.alloc(32))));
  assert.equal(float?.audioFormat, 3);
});

test('a streamed header whose data size runs past the end is cut to the bytes present', () => {
  const samples = pcm16(zeros(400));
  const i = readWavInfo(riff(chunk('fmt ', fmtBody({})), chunk('data', samples, 0xffffffff)));
  assert.ok(i);
  assert.equal(i.dataBytes, samples.length);
  assert.equal(i.durationMs, Math.round((400 / 8000) * 1000));
});

test('anything that is not a complete RIFF/WAVE with fmt and data is undefined', () => {
  const good = riff(chunk('fmt ', fmtBody({})), chunk('data', pcm16(zeros(8))));
  assert.ok(readWavInfo(good));
  assert.equal(readWavInfo(Buffer.alloc(0)), undefined);
  assert.equal(readWavInfo(Buffer.from('<html>not found</html>')), undefined);
  assert.equal(readWavInfo(Buffer.concat([Buffer.from('RIFX'), good.subarray(4)])), undefined);
  assert.equal(readWavInfo(riff(chunk('fmt ', fmtBody({})))), undefined, 'no data chunk');
  assert.equal(readWavInfo(riff(chunk('data', pcm16(zeros(8))))), undefined, 'no fmt chunk');
  assert.equal(readWavInfo(riff(chunk('fmt ', fmtBody({ channels: 0 })), chunk('data', pcm16(zeros(8))))), undefined);
  assert.equal(readWavInfo(good.subarray(0, 30)), undefined, 'cut inside fmt');
});

// ─── Leading silence ─────────────────────────────────────────────────────────

test('leading silence is counted in frames up to the first sample above the threshold', () => {
  const silent = 1234;
  const buf = riff(chunk('fmt ', fmtBody({})), chunk('data', pcm16([...zeros(silent), 20000, -20000, 0])));
  assert.equal(leadingSilenceMs(buf), Math.round((silent / 8000) * 1000));
  assert.equal(leadingSilenceMs(riff(chunk('fmt ', fmtBody({})), chunk('data', pcm16([20000, ...zeros(10)])))), 0);
});

test('noise below the threshold is silence; the threshold is a fraction of full scale', () => {
  const noise = Array.from({ length: 800 }, (_, k) => (k % 2 ? 1 : -1) * (k % 7));
  const buf = riff(chunk('fmt ', fmtBody({})), chunk('data', pcm16([...noise, 3000, ...zeros(8)])));
  assert.equal(leadingSilenceMs(buf), Math.round((800 / 8000) * 1000));
  // 3000 is about 0.09 of full scale: with a threshold of 0.1 the whole file is "silent".
  assert.equal(leadingSilenceMs(buf, 0.1), Math.round((809 / 8000) * 1000));
  assert.ok(leadingSilenceMs(buf, 0.0001) < 5, 'at a tiny threshold the noise itself is sound');
});

test('a stereo frame is silent only when both channels are', () => {
  const frames = 160;
  const interleaved: number[] = [];
  for (let k = 0; k < frames; k++) interleaved.push(0, 0);
  interleaved.push(0, 15000, 15000, 0);
  const buf = riff(chunk('fmt ', fmtBody({ channels: 2 })), chunk('data', pcm16(interleaved)));
  assert.equal(leadingSilenceMs(buf), Math.round((frames / 8000) * 1000));
});

test('8-bit PCM is unsigned around 128; µ-law is refused rather than guessed', () => {
  const body = Buffer.from([...new Array<number>(400).fill(128), 250, 5]);
  assert.equal(leadingSilenceMs(riff(chunk('fmt ', fmtBody({ bits: 8 })), chunk('data', body))), Math.round((400 / 8000) * 1000));
  assert.throws(() => leadingSilenceMs(fixture('hello8k_ulaw.wav')), RangeError);
  assert.throws(() => leadingSilenceMs(Buffer.from('not a wav')), RangeError);
});
