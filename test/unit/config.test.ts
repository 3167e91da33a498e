import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig, retryWaitMs } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const EXAMPLE = fileURLToPath(new URL('../../../config/sms-router.example.toml', import.meta.url));
const DEMO = fileURLToPath(new URL('../../../config/demo.toml', import.meta.url));

function fails(toml: string, key: string, expected: RegExp) {
  assert.throws(
    () => parseConfig('/etc/sms-router/test.toml', toml),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.file, '/etc/sms-router/test.toml');
      assert.equal(err.key, key);
      assert.match(err.expected, expected);
      assert.ok(err.message.startsWith('/etc/sms-router/test.toml: '));
      return true;
    },
  );
}

const MIN = '[centre]\nreceive_number = "1000"\nsend_number = "1000"\n';

test('the example file documents every key with its default and loads', () => {
  const c = loadConfig(EXAMPLE);
  const text = readFileSync(EXAMPLE, 'utf8');
  for (const key of ['root', 'quarantine', 'max_file_size', 'rescan_interval', 'create_missing', 'fsync', 'batch_size', 'call_archive', 'keep_calls', 'path', 'receive_number', 'send_number', 'max_retries', 'retry_time', 'wait_time', 'reference_bits', 'unsupported_character', 'disabled', 'unknown', 'sip_failed', 'enabled', 'host', 'port', 'username', 'secret', 'action_timeout', 'outcome_keeper', 'domain', 'listen', 'advertise', 'fax_failed', 'voice_failed', 'sms_failed', 'app_log', 'max_concurrent_calls', 'validity', 'expired', 'reassembly_timeout', 'hours', 'time_zone', 'services', 'retry_backoff', 'caller_id', 'max_attempts', 'retry_delay', 'dir', 'keep', 'resolution', 'compression', 'header', 'local_station_id', 'header_info', 'ecm', 'min_rate', 'max_rate', 'engine', 'language', 'repeats', 'self_service', 'per_sender_per_minute', 'builtin_numbers', 'reply_max_chars', 'wrong_number', 'failed', 'too_many', 'level']) {
    assert.match(text, new RegExp(`^${key} = `, 'm'), `${key} documented`);
  }
  assert.equal(c.spool.root, '/var/spool/asterisk');
  assert.equal(c.spool.morx, '/var/spool/asterisk/sms/morx');
  assert.equal(c.spool.mttx, '/var/spool/asterisk/sms/mttx');
  assert.equal(c.spool.outgoing, '/var/spool/asterisk/outgoing');
  assert.equal(c.spool.outgoingDone, '/var/spool/asterisk/outgoing_done');
  assert.equal(c.spool.tmp, '/var/spool/asterisk/tmp');
  assert.equal(c.spool.quarantine, '/var/spool/asterisk/sms/morx-rejected');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.spool));
});

test('defaults equal the example file, so the example never lies', () => {
  const example = loadConfig(EXAMPLE);
  const minimal = parseConfig('/etc/sms-router/sms-router.toml', MIN);
  assert.deepEqual({ ...minimal, file: '' }, { ...example, file: '' });
});

test('the demo config points at a local tree relative to itself', () => {
  const c = loadConfig(DEMO);
  assert.ok(c.spool.root.endsWith('/var/spool'));
  assert.ok(!c.spool.root.startsWith('/var/spool'));
  assert.equal(c.spool.createMissing, true);
});

test('errors name the file, the key and what was expected', () => {
  fails('', 'centre.receive_number', /required/);
  fails(MIN + '[spool]\nroott = "/x"\n', 'spool.roott', /unknown key.*root/);
  fails(MIN + '[spol]\n', 'spol', /unknown section/);
  fails(MIN + '[sms]\nmax_retries = "3"\n', 'sms.max_retries', /an integer, found a string/);
  fails(MIN + '[sms]\nmax_retries = 1.5\n', 'sms.max_retries', /an integer, found a float/);
  fails(MIN + '[sms]\nreference_bits = 12\n', 'sms.reference_bits', /8 or 16/);
  fails(MIN + '[sms]\nunsupported_character = "😀"\n', 'sms.unsupported_character', /Basic Multilingual Plane/);
  fails('[centre]\nreceive_number = "12/34"\nsend_number = "1"\n', 'centre.receive_number', /digits/);
  fails('spool = 3\n' + MIN, 'spool', /table/);
  fails(MIN + '[log]\nlevel = "loud"\n', 'log.level', /one of/);
  fails('[centre\n', 'line 1 column 8', /valid TOML/);
  fails(MIN + '[ami]\nenabled = true\n', 'ami.username', /required when \[ami\] enabled = true/);
  fails(MIN + '[ami]\nenabled = true\nusername = "u"\n', 'ami.secret', /required when/);
  fails(MIN + '[ami]\nsecret = "a\\nb"\n', 'ami.secret', /control characters/);
  const AMI = '[ami]\nenabled = true\nusername = "u"\nsecret = "s"\n';
  for (const bad of ['sms router', 'ctx,s,1', 'a\\nb', 'x(y)', 'ż'.repeat(3), 'c'.repeat(80)]) {
    fails(MIN + AMI + `outcome_keeper = "${bad}"\n`, 'ami.outcome_keeper', /dialplan context name of letters, digits, _ and -/);
  }
  fails(MIN + '[ami]\noutcome_keeper = "sms-router-outcome"\n', 'ami.outcome_keeper', /empty unless \[ami\] enabled = true/);
  assert.equal(parseConfig('/x.toml', MIN + AMI + 'outcome_keeper = "sms-router-outcome"\n').ami.outcomeKeeper, 'sms-router-outcome');
  assert.equal(parseConfig('/x.toml', MIN + AMI).ami.outcomeKeeper, '', 'off unless set');
  // The secret itself is never echoed in the error.
  assert.throws(() => parseConfig('/x.toml', MIN + '[ami]\nsecret = "hunter2\\nx"\n'), (err: unknown) => !String((err as Error).message).includes('hunter2'));
  fails(MIN + '[agi]\nlisten = "4573"\n', 'agi.listen', /HOST:PORT/);
  fails(MIN + '[agi]\nlisten = "127.0.0.1:70000"\n', 'agi.listen', /HOST:PORT/);
  assert.deepEqual(parseConfig('/x.toml', MIN + '[agi]\nlisten = "[::1]:4573"\n').agi, { host: '::1', port: 4573, advertise: '' });
  fails(MIN + '[commands.w]\nkeyword = "W"\nprogram = "weather"\n', 'commands.w.program', /absolute path/);
  fails(MIN + '[commands.w]\nprogram = "/bin/true"\n', 'commands.w.keyword', /required/);
  fails(MIN + '[commands.w]\nkeyword = "W"\nprogram = "/bin/true"\nargs = "x"\n', 'commands.w.args', /array of strings/);
  fails(MIN + '[commands.w]\nkeyword = "W"\nprogram = "/bin/true"\nshell = true\n', 'commands.w.shell', /unknown key/);
  fails(MIN + '[quiet]\nhours = "10pm-7am"\n', 'quiet.hours', /HH:MM-HH:MM/);
  fails(MIN + '[quiet]\ntime_zone = "Mars/Olympus"\n', 'quiet.time_zone', /IANA/);
  const withProgram = parseConfig('/x.toml', MIN + '[commands]\nself_service = true\n[commands.weather]\nkeyword = "weather"\nprogram = "/usr/bin/w"\nargs = ["-s"]\ntimeout = 3\n');
  assert.equal(withProgram.commands.selfService, true);
  assert.deepEqual(withProgram.commands.programs, [
    { name: 'weather', keyword: 'WEATHER', numbers: ['*'], program: '/usr/bin/w', args: ['-s'], timeoutMs: 3000, maxOutputBytes: 65536, description: '' },
  ]);
  assert.throws(() => loadConfig('/nonexistent/sms-router.toml'), /\/nonexistent\/sms-router.toml: \(file\): a readable TOML file \(ENOENT\)/);
});

test('the retry schedule grows by the backoff factor and is capped at a day', () => {
  assert.deepEqual([1, 2, 3, 4].map((n) => retryWaitMs({ retryDelay: 300, retryBackoff: 2 }, n)), [300_000, 600_000, 1_200_000, 2_400_000]);
  assert.equal(retryWaitMs({ retryDelay: 3600, retryBackoff: 10 }, 5), 86_400_000);
  assert.equal(retryWaitMs({ retryDelay: 60, retryBackoff: 1 }, 7), 60_000);
});
