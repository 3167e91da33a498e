/**
 * Fuzzing the app_sms spool codec (src/spool/sms-file.ts).
 *
 * Seeded and reproducible: every test name carries the seed. Knobs (see fuzz-support.ts):
 * FUZZ_SEED, FUZZ_PATH, FUZZ_RUNS (run multiplier), FUZZ_TIME_MS (time per property), FUZZ_LONG=1.
 * Regression inputs: test/fuzz/corpus/spool/ (replayed every run; `ok-*` must decode,
 * `bad-*` must be refused, anything else only has to keep the invariants).
 *
 * Properties: decodeSmsFile never throws; it returns either a message or a
 * SpoolParseError with a stable code (SPOOL_PARSE, or SPOOL_TOO_LARGE exactly
 * when the file is above maxBytes) and a line inside the file; a decoded
 * message re-encodes to a file that decodes to the same message (up to what
 * the encoder documents it leaves out), and that file is a fixed point.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeSmsFile, encodeSmsFile, DEFAULT_MAX_BYTES, MAX_TEXT_UNITS, type DecodeOptions, type SmsFields } from '../../src/spool/sms-file.js';
import { SpoolParseError } from '../../src/errors.js';
import { SEED_TAG, check, corpus, cuts, fixture, fixtureNames, mutate, mutation, nastyByte } from './fuzz-support.js';

const STABLE_CODES = new Set(['SPOOL_PARSE', 'SPOOL_TOO_LARGE']);

const FIXTURES: Buffer[] = [
  ...fixtureNames('morx', '.morx').map((n) => fixture(`morx/${n}`)),
  ...fixtureNames('motx', '.motx').map((n) => fixture(`motx/${n}`)),
  ...fixtureNames('mttx', '.mttx').map((n) => fixture(`mttx/${n}`)),
  ...fixtureNames('mtrx', '.mtrx').map((n) => fixture(`mtrx/${n}`)),
  ...fixtureNames('bad', '.sms').map((n) => fixture(`bad/${n}`)),
];

const lineCount = (b: Uint8Array): number => {
  let n = 1;
  for (const x of b) if (x === 0x0a) n++;
  return n;
};

/** What the encoder documents it does not write: defaults, text past 160 units, UDH past 160 octets. */
function normalise(m: SmsFields): SmsFields {
  const out: SmsFields = { ...m, text: m.text.slice(0, MAX_TEXT_UNITS) };
  if (out.udh !== undefined) out.udh = out.udh.slice(0, MAX_TEXT_UNITS * 2);
  // pid=0, dcs=241 and vp=0 are app_sms's defaults and are left out; mr < 0 means "not set".
  if (out.pid === 0) delete out.pid;
  if (out.dcs === 241) delete out.dcs;
  if (out.vp === 0) delete out.vp;
  if (out.mr !== undefined && out.mr < 0) delete out.mr;
  if (out.srr === false) delete out.srr;
  if (out.rp === false) delete out.rp;
  return out;
}

/** The invariants every input must keep; returns the result for further checks. */
function decodeChecked(bytes: Uint8Array, options: DecodeOptions = {}): ReturnType<typeof decodeSmsFile> {
  let r: ReturnType<typeof decodeSmsFile>;
  try {
    r = decodeSmsFile(bytes, options);
  } catch (err) {
    assert.fail(`decodeSmsFile threw ${String(err)}`);
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!r.ok) {
    assert.ok(r.error instanceof SpoolParseError, 'the error is a SpoolParseError');
    assert.match(r.error.code, /^[A-Z_]+$/);
    assert.ok(STABLE_CODES.has(r.error.code), `stable code, got ${r.error.code}`);
    assert.equal(r.error.code === 'SPOOL_TOO_LARGE', bytes.length > maxBytes, 'SPOOL_TOO_LARGE exactly when above maxBytes');
    assert.ok(Number.isInteger(r.error.line) && r.error.line >= 0, 'line is an integer >= 0');
    if (r.error.code === 'SPOOL_PARSE') assert.ok(r.error.line <= lineCount(bytes), `line ${r.error.line} is inside the file`);
    assert.ok(r.error.message.length > 0 && r.error.message.length < 2000, 'a short message');
    return r;
  }
  assert.ok(bytes.length <= maxBytes, 'a file above maxBytes never decodes');
  assert.equal(typeof r.message.text, 'string');
  assert.ok(Array.isArray(r.warnings) && r.warnings.every((w) => typeof w === 'string'));
  const requireDa = options.requireDa ?? true;
  if (requireDa) assert.ok(r.message.da !== undefined);
  else assert.ok(r.message.da !== undefined || r.message.oa !== undefined);
  for (const k of ['oa', 'da'] as const) {
    const v = r.message[k];
    if (v !== undefined) assert.match(v, /^\+?[0-9]+$/, `${k} is what numcpy() leaves`);
  }
  for (const k of ['pid', 'dcs', 'mr', 'vp'] as const) {
    const v = r.message[k];
    if (v !== undefined) assert.ok(Number.isSafeInteger(v), `${k} is a safe integer`);
  }
  if (r.message.udh !== undefined) assert.match(r.message.udh, /^(?:[0-9A-F]{2})*$/);
  if (r.message.scts !== undefined) assert.match(r.message.scts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);

  // Re-encode, in both forms: the file we would write means the same message to us, and in the
  // smsq form (the one app_sms reads) also to a real app_sms, which mangles UTF-8 on a ud= line.
  for (const form of ['app_sms', 'smsq'] as const) {
    const encoded = encodeSmsFile(r.message, form);
    const again = decodeSmsFile(encoded, { requireDa });
    if (!again.ok) assert.fail(`re-encoded message (${form}) does not decode: ${again.error.message}\n${JSON.stringify(encoded.toString('latin1'))}`);
    assert.deepStrictEqual(again.message, normalise(r.message), `decode(encode(m, ${form})) is m, minus the documented omissions`);
    assert.deepEqual(encodeSmsFile(again.message, form), encoded, `encode(decode(encode(m, ${form}))) is a fixed point`);
    if (form === 'smsq') {
      const asAppSms = decodeSmsFile(encoded, { requireDa, udEquals: 'app_sms' });
      assert.ok(asAppSms.ok);
      assert.deepStrictEqual(asAppSms.message, again.message, 'a real app_sms reads the smsq form as we meant it');
    }
  }
  return r;
}

// ---------------------------------------------------------------- corpus

for (const { name, bytes } of corpus('spool')) {
  test(`spool corpus ${name} keeps the invariants`, () => {
    for (const requireDa of [true, false]) {
      const r = decodeChecked(bytes, { requireDa });
      if (name.startsWith('ok-') && requireDa) assert.ok(r.ok, `${name} decodes: ${r.ok ? '' : r.error.message}`);
      if (name.startsWith('bad-')) assert.ok(!r.ok, `${name} is refused`);
    }
    decodeChecked(bytes, { maxBytes: Math.max(1, bytes.length - 1) });
  });
}

// ---------------------------------------------------------------- properties

const options: fc.Arbitrary<DecodeOptions> = fc.record(
  {
    requireDa: fc.boolean(),
    maxBytes: fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.constant(DEFAULT_MAX_BYTES)),
  },
  { requiredKeys: [] },
);

test(`spool codec: mutated real fixtures (flips, truncation, duplication, CR/LF/NUL) ${SEED_TAG}`, () => {
  check(
    [fc.integer({ min: 0, max: FIXTURES.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), options],
    (i, muts, opts) => void decodeChecked(mutate(FIXTURES[i]!, muts), opts),
    40000,
  );
});

test(`spool codec: random bytes ${SEED_TAG}`, () => {
  check([fc.uint8Array({ maxLength: 2048 }), options], (bytes, opts) => void decodeChecked(bytes, opts), 20000);
});

// Text that looks like a spool file: keys, separators, values and line ends in any order.
const KEYS = ['oa', 'da', 'ud', 'udh', 'scts', 'pid', 'dcs', 'mr', 'vp', 'srr', 'rp', 'OA', 'Ud', 'UDH', 'x', 'ud2', ';ud', ''];
const SEPS = ['=', '#', '##', ' = ', '\t#', '==', '=#', ':'];
const asciiString = (max: number) => fc.string({ unit: 'binary-ascii', maxLength: max });
const value = fc.oneof(
  asciiString(40),
  fc.stringMatching(/^[0-9A-Fa-f]{0,40}$/),
  fc.stringMatching(/^[+-]?[0-9]{0,25}[ \t]*$/),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '+', '-0', '00', '+48600111222', '2026-11-22T04:16:58', '2026-13-40T99:99:99', '0x1F', '1e3', '९'),
);
const EOLS = ['\n', '\r\n', '\r', '\n\n', '\r\r\n', ''];
const structuredFile = fc
  .array(fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(...SEPS), value, fc.constantFrom(...EOLS)), { maxLength: 14 })
  .map((lines) => Buffer.from(lines.map(([k, s, v, e]) => k + s + v + e).join(''), 'utf8'));

test(`spool codec: structured garbage (random keys, separators, values, line ends) ${SEED_TAG}`, () => {
  check([structuredFile, options], (bytes, opts) => void decodeChecked(bytes, opts), 40000);
});

// A valid base; one header replaced by a garbage value.
const BASE = ['oa=48600111222', 'da=447700900123', 'udh#050003AA0201', 'ud=Hello', 'scts=2026-11-22T04:16:58', 'pid=0', 'dcs=0', 'mr=7', 'vp=10', 'srr=1', 'rp=1'];
const garbageBytes = fc.array(fc.oneof(nastyByte, fc.integer({ min: 0x20, max: 0x7e })), { maxLength: 60 });

test(`spool codec: every header with garbage values, classified as the rules say ${SEED_TAG}`, () => {
  check(
    [fc.integer({ min: 0, max: BASE.length - 1 }), garbageBytes, fc.constantFrom('=', '#', '##')],
    (index, raw, separator) => {
      let sep: string = separator;
      // The value holds neither LF nor NUL (they cut lines elsewhere: that is the mutation fuzzer's job).
      const valueBytes = raw.filter((b) => b !== 0x0a && b !== 0x00);
      const key = BASE[index]!.split(/[=#]/)[0]!;
      const lines = BASE.map((l) => Buffer.from(l + '\n'));
      lines[index] = Buffer.concat([Buffer.from(key + separator), Buffer.from(valueBytes), Buffer.from('\n')]);
      const r = decodeChecked(Buffer.concat(lines));
      // What app_sms reads of the value: up to the first CR.
      const cr = valueBytes.indexOf(0x0d);
      let v = Buffer.from(cr >= 0 ? valueBytes.slice(0, cr) : valueBytes).toString('latin1');
      // "ud#" followed by a value starting with "#" is the ud## form.
      if (sep === '#' && v.startsWith('#')) [sep, v] = ['##', v.slice(1)];
      const hexOk = (digits: number) => v.length % digits === 0 && /^[0-9A-Fa-f]*$/.test(v);
      let expectOk: boolean;
      if (sep === '##') expectOk = key === 'ud' && hexOk(4);
      else if (sep === '#') expectOk = (key === 'ud' || key === 'udh') && hexOk(2);
      else if (key === 'oa' || key === 'da') expectOk = /[0-9]/.test(v);
      else if (['pid', 'dcs', 'mr', 'vp'].includes(key)) {
        const m = /^[ \t\v\f]*([+-]?[0-9]+)[ \t\v\f]*$/.exec(v);
        expectOk = m !== null && Number.isSafeInteger(Number(m[1]));
      } else expectOk = true; // ud= is lenient; srr/rp/scts/udh= only warn (udh= is an unknown key)
      assert.equal(r.ok, expectOk, `${key}${sep}${JSON.stringify(v)}: ${r.ok ? 'decoded' : r.error.message}`);
      if (!r.ok) assert.equal(r.error.line, index + 1, 'the error names the line of the bad header');
    },
    30000,
  );
});

test(`spool codec: wrong hex in ud#, ud## and udh# ${SEED_TAG}`, () => {
  const hexish = fc.array(fc.constantFrom(...'0123456789abcdefABCDEFgGxX -+\t'), { maxLength: 80 }).map((a) => a.join(''));
  check(
    [fc.constantFrom('ud#', 'ud##', 'udh#', 'UD#', 'UDH#'), hexish],
    (prefix, hex) => {
      const r = decodeChecked(Buffer.from(`oa=1\nda=2\n${prefix}${hex}\n`));
      const digits = prefix.toLowerCase() === 'ud##' ? 4 : 2;
      const valid = hex.length % digits === 0 && /^[0-9A-Fa-f]*$/.test(hex);
      assert.equal(r.ok, valid, `${prefix}${hex}`);
      if (!r.ok) assert.equal(r.error.line, 3);
      if (r.ok && prefix.toLowerCase() === 'udh#') assert.equal(r.message.udh, hex.toUpperCase());
    },
    20000,
  );
});

test(`spool codec: invalid UTF-8 in ud= decodes leniently and survives re-encoding ${SEED_TAG}`, () => {
  check(
    [fc.array(fc.oneof(fc.integer({ min: 0x80, max: 0xff }), fc.integer({ min: 0x20, max: 0x7e }), fc.constantFrom(0x09, 0x0b, 0x1b, 0x7f)), { maxLength: 300 })],
    (raw) => {
      const r = decodeChecked(Buffer.concat([Buffer.from('da=1\nud='), Buffer.from(raw), Buffer.from('\n')]));
      assert.ok(r.ok, 'ud= never fails: a bad byte is read as Latin-1');
    },
    20000,
  );
});

test(`spool codec: huge files and lines (up to 1 MiB) respect maxBytes ${SEED_TAG}`, () => {
  check(
    [
      fc.integer({ min: 1000, max: 1024 * 1024 }),
      fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 2 * 1024 * 1024 })),
      fc.constantFrom('ud=', 'oa=', ';', 'ud#', ''),
      fc.constantFrom(0x41, 0x30, 0x20, 0xc4),
      fc.boolean(),
    ],
    (size, maxBytes, prefix, fill, oneLine) => {
      const body = Buffer.alloc(size, fill);
      const bytes = oneLine
        ? Buffer.concat([Buffer.from(`da=1\n${prefix}`), body, Buffer.from('\n')])
        : Buffer.concat([Buffer.from('da=1\n'), Buffer.from(`${prefix}x\n`.repeat(Math.ceil(size / (prefix.length + 2))))]);
      const opts: DecodeOptions = maxBytes === undefined ? {} : { maxBytes };
      const r = decodeChecked(bytes, opts);
      if (bytes.length > (maxBytes ?? DEFAULT_MAX_BYTES)) assert.equal(!r.ok && r.error.code, 'SPOOL_TOO_LARGE');
      else if (oneLine) {
        // A line longer than fgets' buffer is refused, at its line.
        assert.ok(!r.ok && r.error.code === 'SPOOL_PARSE' && r.error.line === 2, 'an over-long line is refused at line 2');
      }
    },
    100,
  );
});

test(`spool codec: chunks of fixtures glued together at random places ${SEED_TAG}`, () => {
  check(
    [fc.array(fc.tuple(fc.integer({ min: 0, max: FIXTURES.length - 1 }), cuts), { minLength: 2, maxLength: 5 }), options],
    (pieces, opts) => {
      const bytes = Buffer.concat(
        pieces.map(([i, at]) => {
          const f = FIXTURES[i]!;
          const [a = 0, b = f.length] = at.map((c) => c % (f.length + 1)).sort((x, y) => x - y);
          return f.subarray(a, b);
        }),
      );
      decodeChecked(bytes, opts);
    },
    20000,
  );
});

test(`spool codec: generated messages survive encode -> decode (unicode, control characters, astral) ${SEED_TAG}`, () => {
  const digits = fc.stringMatching(/^\+?[0-9]{1,19}$/);
  const message: fc.Arbitrary<SmsFields> = fc.record(
    {
      oa: digits,
      da: digits,
      text: fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 80 }), fc.string({ maxLength: 170 })),
      udh: fc.stringMatching(/^(?:[0-9A-F]{2}){0,170}$/),
      scts: fc.constantFrom('2026-11-22T04:16:58', '1999-01-01T00:00:00'),
      pid: fc.integer({ min: -5, max: 300 }),
      dcs: fc.integer({ min: -5, max: 300 }),
      mr: fc.integer({ min: -5, max: 300 }),
      vp: fc.integer({ min: -5, max: 1_000_000 }),
      srr: fc.boolean(),
      rp: fc.boolean(),
    },
    { requiredKeys: ['da', 'text'] },
  );
  check(
    [message],
    (m) => {
      for (const form of ['app_sms', 'smsq'] as const) {
        const r = decodeChecked(encodeSmsFile(m, form));
        assert.ok(r.ok, r.ok ? '' : r.error.message);
        assert.deepStrictEqual(r.message, normalise(m));
      }
    },
    20000,
  );
});
