import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeSmsFile, encodeSmsFile, appLogText, textAppSmsSends, type SmsFields } from '../../src/spool/sms-file.js';
import { SpoolParseError } from '../../src/errors.js';
import { mulberry32 } from '../helpers/random.js';

// dist/test/unit/ -> project root; the fixtures are copies kept inside the project.
const FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/', import.meta.url));
const read = (rel: string): Buffer => fs.readFileSync(FIXTURES + rel);

function decodeOk(bytes: Uint8Array, options?: Parameters<typeof decodeSmsFile>[1]) {
  const result = decodeSmsFile(bytes, options);
  if (!result.ok) assert.fail(`expected ok, got ${result.error.message}`);
  return result;
}

const OA = '48600111222';
const DA = '447700900123';
const POLISH10 = 'ąćęłńóśźżĄ';
const DIGITS = '0123456789'.repeat(16);

// Expected fields of each real morx file, written out from spool-fixtures/morx/README.txt.
const MORX: Record<string, Omit<SmsFields, 'oa'>> = {
  '01_plain_ascii': { da: DA, text: 'Hello from the Asterisk lab 123', scts: '2026-11-22T04:16:58', mr: 0 },
  '02_newline': { da: DA, text: 'First line\nSecond line', scts: '2026-11-22T04:17:43', mr: 1 },
  '03_gsm7_basic_specials': {
    da: DA,
    text: 'GSM basic: @ £ $ ¥ è é ù ì ò ç Ø ø Å å Δ _ Φ Γ Λ Ω Π Ψ Σ Θ Ξ Æ æ ß É ¤ ¡ Ä Ö Ñ Ü § ¿ ä ö ñ ü à',
    scts: '2026-11-22T04:18:06',
    mr: 4,
  },
  '04_gsm7_extension_table': { da: DA, text: 'GSM ext: € ^ { } [ ] ~ \\ | end', scts: '2026-11-22T04:17:54', mr: 3 },
  '05_polish_ucs2': { da: DA, text: 'Zażółć gęślą jaźń. ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż', scts: '2026-11-22T04:18:13', dcs: 8, mr: 5 },
  '06_udh_concat_part1_of_2': {
    da: DA,
    udh: '050003AA0201',
    text: 'This is part one of a concatenated SMS, ref AA, ',
    scts: '2026-11-22T04:18:16',
    mr: 6,
  },
  '06b_udh_iei_only_concat_part1_of_2': {
    da: DA,
    udh: '0003AA0201',
    text: 'This is part one of a concatenated SMS, ref AA, ',
    scts: '2026-11-22T04:19:39',
    mr: 18,
  },
  '07_udh_concat_part2_of_2': {
    da: DA,
    udh: '050003AA0202',
    text: 'and this is part two (the last one).',
    scts: '2026-11-22T04:18:20',
    mr: 7,
  },
  '07b_udh_iei_only_concat_part2_of_2': {
    da: DA,
    udh: '0003AA0202',
    text: 'and this is part two (the last one).',
    scts: '2026-11-22T04:19:42',
    mr: 19,
  },
  '08_max_length_160_gsm7': { da: DA, text: 'MAX160 ' + DIGITS.slice(0, 153), scts: '2026-11-22T04:18:26', mr: 8 },
  '09_srr_status_report_requested': {
    da: DA,
    text: 'Please send me a delivery report',
    scts: '2026-11-22T04:18:30',
    srr: true,
    mr: 9,
  },
  '10_ucs2_max_length_70': { da: DA, text: POLISH10.repeat(7), scts: '2026-11-22T04:18:39', dcs: 8, mr: 10 },
  '11_over_160_truncated_by_smsq': {
    da: DA,
    text: 'OVER160 ' + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(6).slice(0, 152),
    scts: '2026-11-22T04:18:52',
    mr: 12,
  },
  '13_gsm7_capital_C_cedilla_falls_back_to_ucs2': {
    da: DA,
    text: 'GSM basic: @ £ $ ¥ è é ù ì ò Ç Ø ø Å å Δ _ Ä Ö Ñ Ü § ¿ ä ö ñ ü à',
    scts: '2026-11-22T04:17:50',
    dcs: 8,
    mr: 2,
  },
  '14_latin1_not_gsm7_goes_8bit': { da: DA, text: 'Olá, ¿qué tal? á í ú â ê ô', scts: '2026-11-22T04:18:55', dcs: 245, mr: 13 },
  '15_udh_ucs2_concat_part1_of_2': {
    da: DA,
    udh: '050003BB0201',
    text: 'Część pierwsza wiadomości, Þ',
    scts: '2026-11-22T04:19:03',
    dcs: 8,
    mr: 14,
  },
  '15b_udh_iei_only_ucs2_concat_part1_of_2': {
    da: DA,
    udh: '0003BB0201',
    text: 'Część pierwsza wiadomości, ',
    scts: '2026-11-22T04:19:54',
    dcs: 8,
    mr: 20,
  },
  '16_udh_gsm7_max_153': { da: DA, udh: '050003CC0201', text: 'UDH153 ' + DIGITS.slice(0, 145), scts: '2026-11-22T04:19:07', mr: 15 },
  '16b_udh_iei_only_gsm7_max_153': { da: DA, udh: '0003CC0201', text: 'UDH153 ' + DIGITS.slice(0, 146), scts: '2026-11-22T04:19:58', mr: 21 },
  '17_validity_period_and_reply_path': {
    da: DA,
    text: 'Valid for one day, reply path set',
    scts: '2026-11-22T04:19:11',
    vp: 90720,
    mr: 16,
    rp: true,
  },
  '18_ucs2_71_chars_over_limit': { da: DA, text: POLISH10.repeat(7), scts: '2026-11-22T04:18:44', dcs: 8, mr: 11 },
  '19_two_messages_one_call_A_received_second': { da: DA, text: 'Batch message A', scts: '2026-11-22T04:20:08', mr: 23 },
  '19_two_messages_one_call_B_received_first': { da: '447700900124', text: 'Batch message B', scts: '2026-11-22T04:20:07', mr: 22 },
  '20_dcs_240_flash_class0': { da: DA, text: 'Flash message class 0', scts: '2026-11-22T04:19:15', dcs: 240, mr: 17 },
  '21_first_smsq_after_restart': { da: DA, text: 'First smsq call after an Asterisk restart', scts: '2026-11-22T04:25:25', mr: 0 },
};

const morxFiles = fs.readdirSync(FIXTURES + 'morx').filter((f) => f.endsWith('.morx')).sort();

test('the copied morx fixtures are the 25 the README documents', () => {
  assert.equal(morxFiles.length, 25);
  assert.deepEqual(morxFiles.map((f) => f.replace(/\.morx$/, '')), Object.keys(MORX).sort());
});

for (const [name, expected] of Object.entries(MORX)) {
  test(`morx ${name} decodes to the documented fields`, () => {
    const { message, warnings } = decodeOk(read(`morx/${name}.morx`));
    assert.deepEqual(message, { oa: OA, ...expected });
    assert.deepEqual(warnings, []);
  });
}

test('morx text lengths match the README (160 GSM, 70 UCS-2, 71st char lost, 152 vs 153 after a UDH)', () => {
  const len = (n: string) => decodeOk(read(`morx/${n}.morx`)).message.text.length;
  assert.equal(len('08_max_length_160_gsm7'), 160);
  assert.equal(len('11_over_160_truncated_by_smsq'), 160);
  assert.equal(len('10_ucs2_max_length_70'), 70);
  assert.equal(len('18_ucs2_71_chars_over_limit'), 70);
  assert.equal(decodeOk(read('motx/18_ucs2_71_chars_over_limit.motx')).message.text.length, 71);
  assert.equal(len('16_udh_gsm7_max_153'), 152);
  assert.equal(len('16b_udh_iei_only_gsm7_max_153'), 153);
});

for (const file of morxFiles) {
  const note = file.startsWith('15_') ? ' (trailing Þ from the app_sms UDL bug included)' : file.startsWith('02_') ? ' (;ud= comment with raw 0xBF)' : '';
  test(`morx ${file} re-encodes byte for byte${note}`, () => {
    const bytes = read(`morx/${file}`);
    assert.deepEqual(encodeSmsFile(decodeOk(bytes).message, 'app_sms'), bytes);
  });
}

test('fixture 02 really holds a non-UTF-8 comment line, and it is ignored', () => {
  const bytes = read('morx/02_newline.morx');
  assert.ok(bytes.includes(Buffer.from([0x3b, 0x75, 0x64, 0x3d]))); // ";ud="
  assert.ok(bytes.includes(0xbf));
  assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  assert.equal(decodeOk(bytes).message.text, 'First line\nSecond line');
});

test('motx, mttx and mtrx fixtures decode and survive encode -> decode', () => {
  for (const dir of ['motx', 'mttx', 'mtrx']) {
    for (const file of fs.readdirSync(FIXTURES + dir).filter((f) => f.endsWith(`.${dir}`))) {
      const first = decodeOk(read(`${dir}/${file}`), { requireDa: dir === 'motx' });
      const again = decodeOk(encodeSmsFile(first.message, 'smsq'), { requireDa: dir === 'motx' });
      assert.deepEqual(again.message, first.message, `${dir}/${file}`);
    }
  }
  assert.deepEqual(decodeOk(read('mttx/02_mt_polish_ucs2_via_smsq.mttx'), { requireDa: false }).message, {
    oa: '447700900123',
    text: 'MT po polsku: zażółć gęślą jaźń €',
  });
  assert.deepEqual(decodeOk(read('motx/17_validity_period_and_reply_path.motx')).message, {
    da: DA,
    rp: true,
    vp: 86400,
    text: 'Valid for one day, reply path set',
  });
});

test('mttx/mtrx files carry no da: refused by default, accepted with requireDa:false; neither oa nor da is always refused', () => {
  const mttx = read('mttx/01_mt_plain.mttx');
  const refused = decodeSmsFile(mttx);
  assert.equal(refused.ok, false);
  assert.equal(decodeOk(mttx, { requireDa: false }).message.oa, '447700900123');
  const none = decodeSmsFile(Buffer.from('ud=hello\n'), { requireDa: false });
  assert.equal(none.ok, false);
  if (!none.ok) assert.equal(none.error.line, 0);
});

test('CRLF line ends decode every morx fixture identically', () => {
  for (const file of morxFiles) {
    const bytes = read(`morx/${file}`);
    const crlf = Buffer.from(bytes.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
    assert.deepEqual(decodeOk(crlf).message, decodeOk(bytes).message, file);
  }
});

test('upper-case keys (OA=, UD=, UD#, UDH#, SCTS=) decode every morx fixture identically', () => {
  for (const file of morxFiles) {
    const bytes = read(`morx/${file}`);
    const upper = Buffer.from(bytes.toString('latin1').replace(/^[a-z]+/gm, (k) => k.toUpperCase()), 'latin1');
    assert.notDeepEqual(upper, bytes);
    assert.deepEqual(decodeOk(upper).message, decodeOk(bytes).message, file);
  }
});

test('spaces between key and = are skipped, other values lose leading spaces, ud keeps them', () => {
  const { message } = decodeOk(Buffer.from('oa =  +48 600\nda\t= 447700900123\nud=  two spaces  \nmr= 7\n'));
  assert.deepEqual(message, { oa: '+48600', da: '447700900123', text: '  two spaces  ', mr: 7 });
});

test('the last ud line wins, whichever form', () => {
  assert.equal(decodeOk(Buffer.from('da=1\nud=first\nud#414243\n')).message.text, 'ABC');
  assert.equal(decodeOk(Buffer.from('da=1\nud##0105\nud=last\n')).message.text, 'last');
  assert.equal(decodeOk(Buffer.from('da=1\nud=x\nud=\n')).message.text, '');
});

test('no ud line gives empty text; missing mr and scts are fine', () => {
  assert.deepEqual(decodeOk(Buffer.from('da=123\n')).message, { da: '123', text: '' });
});

test('unknown keys and odd values are warnings, not errors', () => {
  const r = decodeOk(Buffer.from('da=1\nfoo=bar\nsrr=yes\nscts=yesterday\nud=x\n'));
  assert.deepEqual(r.message, { da: '1', srr: false, text: 'x' });
  assert.equal(r.warnings.length, 3);
  assert.match(r.warnings[0]!, /^line 2: unknown key foo/);
  assert.deepEqual(decodeOk(Buffer.from('da=1\nsrr=0\nrp=2\n')).message, { da: '1', srr: false, rp: true, text: '' });
});

test('more than 160 characters of text: returned as read, with a warning', () => {
  for (const file of [`da=1\nud=${'x'.repeat(200)}\n`, `da=1\nud#${'41'.repeat(161)}\n`, `da=1\nud##${'0105'.repeat(170)}\n`]) {
    const r = decodeOk(Buffer.from(file));
    assert.ok(r.message.text.length > 160);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /only the first 160/);
  }
});

test('ud= is decoded leniently like app_sms: a bad UTF-8 byte is its Latin-1 character', () => {
  const r = decodeOk(Buffer.from([...Buffer.from('da=1\nud=caf'), 0xe9, 0x20, 0xbf, 0xc3, 0x0a]));
  assert.equal(r.message.text, 'café ¿Ã');
  assert.equal(r.warnings.length, 1);
  // 3-byte surrogates (how app_sms writes UCS-2 surrogate units) are read back as units.
  assert.equal(decodeOk(Buffer.from([...Buffer.from('da=1\nud='), 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80])).message.text, '😀');
  // A 4-byte sequence: kept, but app_sms would truncate it, so say so.
  const four = decodeOk(Buffer.from('da=1\nud=ok 😀\n'));
  assert.equal(four.message.text, 'ok 😀');
  assert.match(four.warnings[0]!, /U\+1F600 .*U\+F600/);
});

test('text after a lone CR is ignored, like app_sms', () => {
  const r = decodeOk(Buffer.from('da=1\nud=abc\rdef\n'));
  assert.equal(r.message.text, 'abc');
  assert.equal(r.warnings.length, 1);
});

// Expected error of each hand-made bad file; spool-fixtures/bad/README.txt documents the same table.
const BAD: Record<string, { code: string; line: number; reason: RegExp }> = {
  'empty.sms': { code: 'SPOOL_PARSE', line: 0, reason: /empty/ },
  'binary_garbage.sms': { code: 'SPOOL_PARSE', line: 3, reason: /NUL/ },
  'text_garbage.sms': { code: 'SPOOL_PARSE', line: 1, reason: /key=value/ },
  'no_da.sms': { code: 'SPOOL_PARSE', line: 0, reason: /no da=/ },
  'bad_hex.sms': { code: 'SPOOL_PARSE', line: 3, reason: /"G" is not a hex digit/ },
  'odd_hex.sms': { code: 'SPOOL_PARSE', line: 3, reason: /odd number of hex digits/ },
  'ud2_wrong_length.sms': { code: 'SPOOL_PARSE', line: 3, reason: /odd number|multiple of 4/ },
  'udh_double_hash.sms': { code: 'SPOOL_PARSE', line: 3, reason: /only ud can use ##/ },
  'hash_on_oa.sms': { code: 'SPOOL_PARSE', line: 1, reason: /only ud and udh can use #/ },
  'da_without_digits.sms': { code: 'SPOOL_PARSE', line: 2, reason: /da has no digits/ },
  'pid_not_integer.sms': { code: 'SPOOL_PARSE', line: 3, reason: /pid "zero" is not an integer/ },
  'nul_in_comment.sms': { code: 'SPOOL_PARSE', line: 2, reason: /NUL/ },
  'line_too_long.sms': { code: 'SPOOL_PARSE', line: 2, reason: /another line/ },
};

test('every bad fixture is listed in the table and in bad/README.txt', () => {
  const files = fs.readdirSync(FIXTURES + 'bad').filter((f) => f !== 'README.txt').sort();
  assert.deepEqual(files, Object.keys(BAD).sort());
  const readme = read('bad/README.txt').toString('utf8');
  for (const [file, { code, line }] of Object.entries(BAD)) {
    assert.match(readme, new RegExp(`^ ${file.replace('.', '\\.')}\\s+${code}\\s+${line}\\s`, 'm'), file);
  }
});

for (const [file, expected] of Object.entries(BAD)) {
  test(`bad/${file} gives ${expected.code} at line ${expected.line}`, () => {
    const result = decodeSmsFile(read(`bad/${file}`));
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.ok(result.error instanceof SpoolParseError);
    assert.equal(result.error.code, expected.code);
    assert.equal(result.error.line, expected.line);
    assert.match(result.error.reason, expected.reason);
    if (expected.line > 0) assert.match(result.error.message, new RegExp(`^line ${expected.line}: `));
  });
}

test('a file above maxBytes is SPOOL_TOO_LARGE (default 65536)', () => {
  const big = Buffer.alloc(65537, 0x3b); // all one giant comment: size is checked first
  const r = decodeSmsFile(big);
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.code, 'SPOOL_TOO_LARGE');
  const fixture = read('morx/01_plain_ascii.morx');
  const small = decodeSmsFile(fixture, { maxBytes: fixture.length - 1 });
  assert.equal(small.ok, false);
  if (!small.ok) assert.deepEqual([small.error.code, small.error.line], ['SPOOL_TOO_LARGE', 0]);
  assert.equal(decodeSmsFile(fixture, { maxBytes: fixture.length }).ok, true);
});

test('comment lines may hold any bytes but NUL', () => {
  const bytes = Buffer.from([...Buffer.from('da=1\n;'), 0xff, 0xfe, 0x80, 0xbf, 0x0d, ...Buffer.from('\nud=ok\n')]);
  assert.equal(decodeOk(bytes).message.text, 'ok');
});

// ---------------------------------------------------------------- encoder

test('encoder writes app_sms key order and omits defaults', () => {
  const full: SmsFields = {
    rp: true, mr: 42, srr: true, vp: 1440, dcs: 8, pid: 64, scts: '2026-01-02T03:04:05', text: 'Zażółć', udh: '0003aa0201', da: '+44123', oa: '4860',
  };
  assert.equal(
    encodeSmsFile(full, 'app_sms').toString('utf8'),
    'oa=4860\nda=+44123\nudh#0003AA0201\nud=Zażółć\nscts=2026-01-02T03:04:05\npid=64\ndcs=8\nvp=1440\nsrr=1\nmr=42\nrp=1\n',
  );
  assert.equal(encodeSmsFile({ da: '1', text: 'x', pid: 0, dcs: 241, vp: 0, srr: false, rp: false, mr: -1 }, 'app_sms').toString(), 'da=1\nud=x\n');
  assert.equal(encodeSmsFile({ da: '1', text: '' }, 'app_sms').toString(), 'da=1\n');
});

test('encoder writes control characters only through ud# / ud##, with the 0xBF comment line', () => {
  assert.deepEqual(encodeSmsFile({ da: '1', text: 'a\tb' }, 'app_sms'), Buffer.from([...Buffer.from('da=1\n;ud=a'), 0xbf, ...Buffer.from('b\nud#610962\n')]));
  assert.deepEqual(
    encodeSmsFile({ da: '1', text: 'ż\n€' }, 'app_sms'),
    Buffer.concat([Buffer.from('da=1\n;ud=ż'), Buffer.from([0xbf]), Buffer.from('€\nud##017C000A20AC\n')]),
  );
});

test('smsq form: ud= only for printable ASCII, ud# below U+0100, else ud## (as Asterisk\'s smsq writes it)', () => {
  const ud = (text: string) => encodeSmsFile({ da: '1', text }, 'smsq').toString('latin1').split('\n')[1];
  assert.equal(ud('Hello ^{}[]~|\\ there'), 'ud=Hello ^{}[]~|\\ there');
  assert.equal(ud('café'), 'ud#636166E9');
  assert.equal(ud('a\tb'), 'ud#610962');
  assert.equal(ud('a\x7fb'), 'ud#617F62');
  assert.equal(ud('zażółć €'), 'ud##007A0061017C00F3014201070020' + '20AC');
  assert.equal(ud('a😀'), 'ud##0061D83DDE00');
  // No human-readable comment, no UTF-8 byte anywhere: nothing for app_sms to misread.
  const file = encodeSmsFile({ oa: '447700900123', da: '2001', text: 'Real FSK loop zażółć €', dcs: 8 }, 'smsq');
  assert.ok(file.every((b) => b >= 0x20 || b === 0x0a));
  assert.ok(file.every((b) => b < 0x80));
});

test('a built app_sms reads ud= byte by byte: the units measured on Asterisk 20 (516d2c60ac, -O3)', () => {
  const units = (file: string) => {
    const r = decodeSmsFile(Buffer.from(file, 'utf8'), { requireDa: false, udEquals: 'app_sms' });
    assert.ok(r.ok);
    return Array.from(r.message.text, (c) => c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')).join(' ');
  };
  // The reproduction outside Asterisk (lab README): "A zaż€ B".
  assert.equal(units('oa=1\nud=A zaż€ B\n'), '0041 0020 007A 0061 017C 00BC 20AC 0082 00AC 0020 0042');
  // What the phone received on the wire for ud=A zażółć € B.
  const r = decodeSmsFile(Buffer.from('oa=1\nud=A zażółć € B\n', 'utf8'), { requireDa: false, udEquals: 'app_sms' });
  assert.ok(r.ok);
  assert.equal(r.message.text, 'A zaż\u00bcó\u00b3ł\u0082ć\u0087 €\u0082\u00ac B');
  // ASCII and the hex forms are read as meant.
  assert.equal(units('oa=1\nud=Hi~\n'), '0048 0069 007E');
  const hex = decodeSmsFile(encodeSmsFile({ oa: '1', text: 'zażółć €' }, 'smsq'), { requireDa: false, udEquals: 'app_sms' });
  assert.ok(hex.ok);
  assert.equal(hex.message.text, 'zażółć €');
  // It never holds more than 160 units, however many bytes the line has.
  const long = decodeSmsFile(Buffer.from(`oa=1\nud=${'ż'.repeat(100)}\n`, 'utf8'), { requireDa: false, udEquals: 'app_sms' });
  assert.ok(long.ok);
  assert.equal(long.message.text.length, 160);
});

test('textAppSmsSends: what app_sms sends for our file is the text itself (cut to 160), Polish, € and all', () => {
  for (const text of ['Hello', 'Real FSK loop zażółć €', 'Привет, мир', 'tab\there', 'x'.repeat(200)]) {
    assert.equal(textAppSmsSends(text), text.slice(0, 160));
  }
});

test('no value can inject a line', () => {
  const evil: SmsFields = {
    oa: '1\nda=666',
    da: ' +2\r\nud=evil\0',
    scts: '2026-01-01T00:00:00\nsrr=1',
    udh: '00\n03\rAA',
    text: 'hi\nda=777\r\nmr=9\0' + 'x'.repeat(2000),
  };
  const bytes = encodeSmsFile(evil, 'app_sms');
  const lines = bytes.toString('latin1').split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual(lines.map((l) => /^;?[a-z]+[=#]/.exec(l)?.[0]), ['oa=', 'da=', 'udh#', ';ud=', 'ud#', 'scts=']);
  for (const l of lines) assert.ok(l.length < 999, 'every line fits app_sms fgets buffer');
  assert.ok(!bytes.includes(0) && !bytes.includes(0x0d));
  const { message } = decodeOk(bytes);
  assert.equal(message.oa, '1666');
  assert.equal(message.da, '+2');
  assert.equal(message.udh, '0003AA');
  assert.equal(message.text, evil.text.slice(0, 160));
  assert.equal(message.srr, undefined);
  assert.equal(message.mr, undefined);
});

test('surrogate pairs are written as app_sms writes UCS-2 units (3 bytes each) and read back', () => {
  const bytes = encodeSmsFile({ da: '1', text: 'a😀' }, 'app_sms');
  assert.deepEqual(bytes, Buffer.from([...Buffer.from('da=1\nud=a'), 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80, 0x0a]));
  assert.equal(decodeOk(bytes).message.text, 'a😀');
});

// ---------------------------------------------------------------- app_sms log form

/** Lines of the real app_sms log: "<time> <flags> <queue> <oa> <da> <text bytes>". */
function logLines(): { time: string; flags: string; text: Buffer }[] {
  const log = read('sms_app_log.txt');
  const out: { time: string; flags: string; text: Buffer }[] = [];
  let start = 0;
  while (start < log.length) {
    let end = log.indexOf(0x0a, start);
    if (end < 0) end = log.length;
    const line = log.subarray(start, end);
    start = end + 1;
    let at = 0;
    const fields: string[] = [];
    for (let k = 0; k < 5; k++) {
      const sp = line.indexOf(0x20, at);
      fields.push(line.subarray(at, sp).toString('latin1'));
      at = sp + 1;
    }
    out.push({ time: fields[0]!, flags: fields[1]!, text: line.subarray(at) });
  }
  return out;
}

test('appLogText reproduces the YIS/NIS log line of every morx fixture, byte for byte', () => {
  const lines = logLines();
  for (const file of morxFiles) {
    const { message } = decodeOk(read(`morx/${file}`));
    const flags = new RegExp(`^[YN]IS${message.mr!.toString(16).toUpperCase().padStart(2, '0')}$`);
    const line = lines.find((l) => l.time === message.scts && flags.test(l.flags));
    assert.ok(line, `log line for ${file}`);
    assert.deepEqual(appLogText(message.text), line.text, file);
  }
});

test('appLogText: the Polish 05 line (low bytes, ć as raw 0x07), the \\n line and the \\\\ line', () => {
  const lines = logLines();
  const polish = lines.find((l) => l.flags === 'YIS05')!;
  assert.deepEqual(appLogText('Zażółć gęślą jaźń. ĄĆĘŁŃÓŚŹŻ ąćęłńóśźż'), polish.text);
  assert.equal(polish.text[3], 0xf3); // ó
  assert.equal(polish.text[5], 0x07); // ć U+0107: a control low byte, written raw, not 0xBF
  assert.deepEqual(appLogText('First line\nSecond line'), lines.find((l) => l.flags === 'YIS01')!.text);
  assert.deepEqual(appLogText('First line\nSecond line'), Buffer.from('First line\\nSecond line'));
  assert.deepEqual(appLogText('GSM ext: € ^ { } [ ] ~ \\ | end'), lines.find((l) => l.flags === 'YIS03')!.text);
  assert.deepEqual(appLogText('a\rb\tc\x7fd'), Buffer.from([0x61, 0x5c, 0x72, 0x62, 0xbf, 0x63, 0xbf, 0x64]));
});

test('appLogText of each real mttx file matches its YOS line (what a daemon matches to learn the outcome)', () => {
  const yos = logLines().filter((l) => l.flags === 'YOS');
  assert.equal(yos.length, 2);
  const texts = ['mttx/01_mt_plain.mttx', 'mttx/02_mt_polish_ucs2_via_smsq.mttx'].map(
    (f) => decodeOk(read(f), { requireDa: false }).message.text,
  );
  assert.deepEqual(texts.map((t) => appLogText(t)), yos.map((l) => l.text));
});

// ---------------------------------------------------------------- properties


const POOLS = [
  ' !"#%&\'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
  '@£$¥èéùìòçØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà',
  '€^{}[]~\\|\f',
  'ąćęłńóśźżĄĆĘŁŃÓŚŹŻ',
  'абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЖЩЯ',
  'αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΩ',
  '\n\r\t\x01\x1b\x7f\u00a0ÿ\u2028\ufeff',
];
const SEED = 0x5eed2026;

test(`property (seed 0x${SEED.toString(16)}): 10,000 generated messages survive encode -> decode unchanged`, () => {
  const rnd = mulberry32(SEED);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const digits = (n: number) => Array.from({ length: n }, () => String(int(0, 9))).join('');
  const pad = (n: number) => String(n).padStart(2, '0');
  for (let i = 0; i < 10_000; i++) {
    let text = '';
    const length = int(0, 160);
    for (let k = 0; k < length; k++) {
      const pool = POOLS[int(0, POOLS.length - 1)]!;
      text += pool[int(0, pool.length - 1)];
    }
    const m: SmsFields = { da: digits(int(1, 15)), text };
    if (rnd() < 0.7) m.oa = (rnd() < 0.2 ? '+' : '') + digits(int(1, 15));
    if (rnd() < 0.4) m.udh = Array.from({ length: int(0, 12) }, () => int(0, 255).toString(16).toUpperCase().padStart(2, '0')).join('');
    if (rnd() < 0.7) m.scts = `${int(2000, 2099)}-${pad(int(1, 12))}-${pad(int(1, 28))}T${pad(int(0, 23))}:${pad(int(0, 59))}:${pad(int(0, 59))}`;
    if (rnd() < 0.5) m.mr = int(0, 255);
    if (rnd() < 0.3) m.dcs = [0, 4, 8, 16, 240, 242, 245][int(0, 6)]!;
    if (rnd() < 0.2) m.pid = int(1, 255);
    if (rnd() < 0.2) m.vp = int(1, 635040);
    if (rnd() < 0.2) m.srr = true;
    if (rnd() < 0.2) m.rp = true;
    for (const form of ['app_sms', 'smsq'] as const) {
      const result = decodeSmsFile(encodeSmsFile(m, form));
      if (!result.ok) assert.fail(`message ${i}: ${result.error.message}`);
      assert.deepEqual(result.message, m, `message ${i}`);
      assert.deepEqual(result.warnings, [], `message ${i}`);
    }
  }
});

test(`property (seed 0x${(SEED + 1).toString(16)}): decode never throws, for random bytes and for mutated fixtures`, () => {
  const rnd = mulberry32(SEED + 1);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const fixtures = morxFiles.map((f) => read(`morx/${f}`));
  let ok = 0;
  for (let i = 0; i < 5_000; i++) {
    let bytes: Uint8Array;
    if (i % 2 === 0) {
      bytes = Uint8Array.from({ length: int(0, 300) }, () => (rnd() < 0.3 ? [0x0a, 0x3d, 0x23, 0x0d][int(0, 3)]! : int(0, 255)));
    } else {
      bytes = Uint8Array.from(fixtures[int(0, fixtures.length - 1)]!);
      for (let k = int(1, 4); k > 0; k--) bytes[int(0, bytes.length - 1)] = int(0, 255);
    }
    const r = decodeSmsFile(bytes);
    assert.equal(typeof r.ok, 'boolean');
    if (r.ok) {
      ok++;
      assert.equal(typeof r.message.text, 'string');
    } else assert.ok(r.error instanceof SpoolParseError);
  }
  assert.ok(ok > 0, 'some mutated fixtures still decode');
});
