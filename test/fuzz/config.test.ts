/**
 * Fuzzing the TOML configuration (src/config.ts: parseConfig, loadConfig, SCHEMA).
 *
 * Seeded and reproducible: every test name carries the seed. Knobs (see fuzz-support.ts):
 * FUZZ_SEED, FUZZ_PATH, FUZZ_RUNS (run multiplier), FUZZ_TIME_MS (time per property), FUZZ_LONG=1.
 * Regression inputs: test/fuzz/corpus/config/*.toml, replayed every run. A first line
 * `# expect: ok` means the file must load; `# expect-key: KEY` that it must be refused
 * naming KEY; otherwise only the invariant holds.
 *
 * Properties: parseConfig and loadConfig throw nothing but ConfigError, whose
 * message is "FILE: KEY: expected", with FILE the absolute path; a value of the
 * wrong TOML type for a key, and any key or section the schema does not have
 * (prototype names included), is refused naming exactly that key.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { parse as parseToml } from 'smol-toml';
import { loadConfig, parseConfig, SCHEMA } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { SEED_TAG, check, corpus } from './fuzz-support.js';

const FILE = '/etc/sms-router/fuzz.toml';
const MIN = '[centre]\nreceive_number = "1000"\nsend_number = "1000"\n';

/** Runs parseConfig; anything but success or a well-formed ConfigError fails the property. */
function attempt(text: string, file = FILE): { ok: true } | { ok: false; error: ConfigError } {
  try {
    parseConfig(file, text);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: checkedConfigError(err, file) };
  }
}

function checkedConfigError(err: unknown, file: string): ConfigError {
  if (!(err instanceof ConfigError)) assert.fail(`threw something other than ConfigError: ${err instanceof Error ? err.stack : String(err)}`);
  assert.equal(err.code, 'CONFIG_INVALID');
  assert.equal(err.file, path.resolve(file), 'names the file, absolute');
  assert.ok(err.key.length > 0, 'names a key');
  assert.doesNotMatch(err.message, /[\r\n]/, 'one line (an error goes to a log line and to stderr)');
  assert.ok(err.message.startsWith(`${path.resolve(file)}: ${err.key}: `), `message names file and key: ${err.message.slice(0, 200)}`);
  return err;
}

// ---------------------------------------------------------------- generators

const PROTO_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__'];
const SECTIONS = Object.keys(SCHEMA);
const SCHEMA_KEYS = SECTIONS.flatMap((s) => Object.keys(SCHEMA[s]!).map((k) => [s, k] as const));

const tomlKey = fc.oneof(
  fc.constantFrom(...SCHEMA_KEYS.map(([, k]) => k), ...PROTO_NAMES),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
);

const basicString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '', ' ', '1000', '+48600111222', '12/34', '*', '/bin/true', 'relative/dir', '127.0.0.1:4573', '[::1]:0', 'host:99999',
    'localhost', '22:00-07:00', '24:00-01:00', 'Europe/Warsaw', 'Mars/Olympus', 'UTC', 'S', 'F', 'info', 'loud', 'g4',
    'espeak', 'pl', 'en-GB', 'fine', '?', '😀', '\u0000', 'a\nb', '{to}', 'W', 'HELP', 'x'.repeat(300),
  ),
);
/** A TOML value, as text; some are not valid TOML at all. */
const tomlValue: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer().map(String),
    fc.constantFrom('0', '-0', '+1', '1_000', '0x10', '0o17', '0b101', '65536', '16777217', '9223372036854775807', '99999999999999999999', '08', '1__0'),
    fc.constantFrom('1.5', '-0.0', 'inf', '-inf', 'nan', '1e400', '3.', '.5', '1e2'),
    fc.constantFrom('true', 'false', 'True', 'yes'),
    basicString.map((s) => JSON.stringify(s)),
    basicString.map((s) => `'${s.replace(/['\n\r]/g, '')}'`),
    basicString.map((s) => `"""\n${s.replace(/\\/g, '\\\\').replace(/"""/g, '')}"""`),
    fc.constantFrom('1979-05-27T07:32:00Z', '1979-05-27', '07:32:00', '1979-05-27 07:32:00.999+01:00'),
    fc.array(tie('value'), { maxLength: 4 }).map((a) => `[${a.join(', ')}]`),
    fc.array(fc.tuple(fc.stringMatching(/^[a-z_]{1,8}$/), tie('value')), { maxLength: 3 }).map((kv) => `{ ${kv.map(([k, v]) => `${k} = ${v}`).join(', ')} }`),
    fc.string({ unit: 'binary-ascii', maxLength: 12 }),
  ),
})).value;

const header = fc.oneof(
  fc.constantFrom(...SECTIONS, ...PROTO_NAMES, 'commands.weather', 'commands.__proto__', 'commands.a.b', 'spool.x').map((s) => `[${s}]`),
  fc.stringMatching(/^[a-z._]{1,12}$/).map((s) => `[${s}]`),
  fc.constantFrom('[[commands]]', '[commands.w]', '[centre', '[]', '[ spool ]', '["ami"]'),
);
const tomlishLine = fc.oneof(
  { weight: 2, arbitrary: header },
  { weight: 6, arbitrary: fc.tuple(tomlKey, tomlValue).map(([k, v]) => `${k} = ${v}`) },
  { weight: 1, arbitrary: fc.tuple(fc.array(tomlKey, { minLength: 2, maxLength: 3 }), tomlValue).map(([ks, v]) => `${ks.join('.')} = ${v}`) },
  { weight: 1, arbitrary: fc.constantFrom('', '# comment', '=', 'key =', '= 1', '\t', '\ufeff', '\r') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
);

// ---------------------------------------------------------------- corpus

for (const { name, bytes } of corpus('config')) {
  test(`config corpus ${name}`, () => {
    const text = bytes.toString('utf8');
    const r = attempt(text);
    const first = text.split('\n', 1)[0]!;
    const key = /^# expect-key: (.+)$/.exec(first)?.[1];
    if (first === '# expect: ok') assert.ok(r.ok, r.ok ? '' : r.error.message);
    if (key !== undefined) assert.equal(r.ok ? 'loaded' : r.error.key, key);
  });
}

// ---------------------------------------------------------------- properties

test(`config: random TOML-ish text throws nothing but ConfigError naming file and key ${SEED_TAG}`, () => {
  check(
    [fc.array(tomlishLine, { maxLength: 25 }), fc.constantFrom('\n', '\r\n'), fc.boolean()],
    (lines, eol, withMin) => void attempt((withMin ? MIN : '') + lines.join(eol)),
    25000,
  );
});

/**
 * The TOML type of a value text, by the same parser; undefined when it is not one
 * single value (invalid TOML, or text that smuggles in more lines and keys).
 */
function tomlKind(valueText: string): string | undefined {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(`x = ${valueText}`) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (Object.keys(doc).length !== 1) return undefined;
  const v = doc.x;
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'float';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string') ? 'strings' : 'array';
  return 'other';
}

test(`config: random values for every SCHEMA key are accepted or refused naming that key ${SEED_TAG}`, () => {
  const mutated = fc.uniqueArray(fc.tuple(fc.constantFrom(...SCHEMA_KEYS), tomlValue), { minLength: 1, maxLength: 4, selector: ([[s, k]]) => `${s}.${k}` });
  check(
    [mutated],
    (pairs) => {
      const bySection = new Map<string, string[]>();
      for (const [[s, k], v] of pairs) bySection.set(s, [...(bySection.get(s) ?? []), `${k} = ${v}`]);
      const base = bySection.has('centre') ? '' : MIN;
      const text = base + [...bySection].map(([s, lines]) => `[${s}]\n${lines.join('\n')}\n`).join('');
      const r = attempt(text);
      // A value that is not one TOML value may add lines of its own: then only the invariant holds.
      if (pairs.some(([, v]) => tomlKind(v) === undefined)) return;
      if (r.ok) {
        // Accepted: every value had the type its key takes.
        for (const [[s, k], v] of pairs) {
          const kind = tomlKind(v);
          const want = SCHEMA[s]![k]!.kind;
          assert.equal(kind, want, `[${s}] ${k} = ${v} was accepted`);
        }
        return;
      }
      const key = r.error.key;
      assert.doesNotMatch(key, /^line \d+ column \d+$/, 'every value is valid TOML, yet a syntax error');
      const names = pairs.map(([[s, k]]) => `${s}.${k}`);
      const sections = new Set(pairs.map(([[s]]) => s));
      // The key at fault, or a rule across keys of one of the sections touched (ami.enabled needs ami.username).
      assert.ok(names.includes(key) || sections.has(key.split('.')[0]!), `refused naming ${key}, but only ${names.join(', ')} changed`);
      // A value of the wrong TOML type is refused with "expected ..., found ...".
      if (pairs.length === 1 && names[0] === key) {
        const [[[s, k], v]] = pairs as [[readonly [string, string], string]];
        const kind = tomlKind(v);
        if (kind !== SCHEMA[s]![k]!.kind) assert.match(r.error.expected, /expected|required/);
      }
    },
    25000,
  );
});

test(`config: keys and sections the schema does not have are refused by name, prototype names included ${SEED_TAG}`, () => {
  const unknownKey = fc.oneof(fc.constantFrom(...PROTO_NAMES), fc.stringMatching(/^[a-z_]{1,16}$/));
  check(
    [fc.constantFrom(...SECTIONS), unknownKey, fc.boolean()],
    (section, key, asSection) => {
      if (asSection) {
        if (Object.hasOwn(SCHEMA, key)) return;
        const r = attempt(`${MIN}[${JSON.stringify(key)}]\nx = 1\n`);
        assert.ok(!r.ok, `[${key}] was accepted`);
        assert.equal(r.error.key, key);
        return;
      }
      if (Object.hasOwn(SCHEMA[section]!, key)) return;
      // MIN ends inside [centre]: a second [centre] header would be a TOML error.
      const r = attempt(`${MIN}${section === 'centre' ? '' : `[${section}]\n`}${JSON.stringify(key)} = 1\n`);
      assert.ok(!r.ok, `[${section}] ${key} = 1 was accepted`);
      assert.equal(r.error.key, `${section}.${key}`);
    },
    3000,
  );
});

test(`config: [commands.NAME] tables with random names and fields ${SEED_TAG}`, () => {
  const field = fc.oneof(
    fc.tuple(fc.constantFrom('keyword', 'numbers', 'program', 'args', 'timeout', 'max_output', 'description', 'shell', '__proto__'), tomlValue),
    fc.constantFrom<[string, string]>(['keyword', '"W"'], ['program', '"/bin/true"'], ['numbers', '["1000", "*"]'], ['keyword', '"help"']),
  );
  const table = fc.tuple(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/), fc.constantFrom(...PROTO_NAMES), fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s))), fc.array(field, { maxLength: 6 }));
  check(
    [fc.array(table, { maxLength: 4 })],
    (tables) => {
      const text = MIN + tables.map(([name, fields]) => `[commands.${name}]\n${fields.map(([k, v]) => `${k} = ${v}`).join('\n')}\n`).join('');
      const r = attempt(text);
      if (tables.some(([, fields]) => fields.some(([, v]) => tomlKind(v) === undefined))) return;
      if (!r.ok && !/^line \d+ column \d+$/.test(r.error.key)) assert.match(r.error.key, /^commands\./);
    },
    12000,
  );
});

const tmp = mkdtempSync(path.join(os.tmpdir(), 'smsr-fuzz-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test(`config: loadConfig of random bytes, BOMs, invalid UTF-8 and odd paths throws only ConfigError ${SEED_TAG}`, () => {
  let n = 0;
  check(
    [
      fc.oneof(
        fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
        fc.array(tomlishLine, { maxLength: 10 }).map((l) => Buffer.from(MIN + l.join('\n'))),
        fc.constantFrom(Buffer.from('\ufeff' + MIN), Buffer.from(MIN + 'x = "\xff"'), Buffer.concat([Buffer.from(MIN + '[ami]\nsecret = "'), Buffer.from([0xff, 0xfe]), Buffer.from('"\n')])),
      ),
    ],
    (bytes) => {
      const file = path.join(tmp, `c${n++}.toml`);
      writeFileSync(file, bytes);
      try {
        loadConfig(file);
      } catch (err) {
        checkedConfigError(err, file);
      }
    },
    1500,
  );
  for (const file of [path.join(tmp, 'missing.toml'), tmp, path.join(tmp, 'missing', 'x.toml'), '']) {
    assert.throws(() => loadConfig(file), (err: unknown) => checkedConfigError(err, file).key === '(file)');
  }
});
