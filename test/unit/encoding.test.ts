import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  isGsm7Char,
  gsm7Septets,
  chooseEncoding,
  sanitizeForSms,
  splitMessage,
  parseConcat,
  joinParts,
  type SmsPart,
} from '../../src/spool/encoding.js';
import { decodeSmsFile } from '../../src/spool/sms-file.js';

const FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/', import.meta.url));

// Independent of the module: the GSM-7 characters this test uses, and which of them cost two septets.
const EXTENSION = new Set([...'^{}\\[~]|€\f']);
const GSM_TEST_CHARS = new Set([
  ...' !"#%&\'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\r',
  ...'@£$¥èéùìòçØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà',
  ...EXTENSION,
]);
function septetsOf(text: string): number {
  let n = 0;
  for (const ch of text) {
    assert.ok(GSM_TEST_CHARS.has(ch), `test text holds only known GSM characters, not ${JSON.stringify(ch)}`);
    n += EXTENSION.has(ch) ? 2 : 1;
  }
  return n;
}
function ucs2UnitsOf(text: string): number {
  return text.length;
}

/** Checks every property a split must have; returns the parts for further checks. */
function checkSplit(text: string, reference: number, bits: 8 | 16): SmsPart[] {
  const parts = splitMessage(text, { reference, referenceBits: bits });
  const gsm = parts[0]!.encoding === 'gsm7';
  const cap = gsm ? (bits === 8 ? 153 : 152) : bits === 8 ? 67 : 66;
  const size = gsm ? septetsOf : ucs2UnitsOf;
  assert.ok(parts.length > 1);
  parts.forEach((part, i) => {
    assert.equal(part.encoding, parts[0]!.encoding, 'one encoding for all parts');
    assert.equal(part.dcs, gsm ? undefined : 8);
    assert.ok(size(part.text) <= cap, `part ${i + 1} is ${size(part.text)} > ${cap}`);
    assert.ok(part.text.length > 0);
    // Greedy: the next character would not have fitted.
    const next = parts[i + 1]?.text[0];
    if (next !== undefined) assert.ok(size(part.text + next) > cap, `part ${i + 1} is not full`);
    const head = bits === 8 ? `0003${reference.toString(16).toUpperCase().padStart(2, '0')}` : `0804${reference.toString(16).toUpperCase().padStart(4, '0')}`;
    const tail = parts.length.toString(16).toUpperCase().padStart(2, '0') + (i + 1).toString(16).toUpperCase().padStart(2, '0');
    assert.equal(part.udh, head + tail);
    assert.deepEqual(parseConcat(part.udh), { reference, referenceBits: bits, total: parts.length, sequence: i + 1 });
  });
  assert.equal(parts.map((p) => p.text).join(''), text);
  assert.equal(joinParts([...parts].reverse()), text);
  return parts;
}

const GSM_SAMPLE = 'The quick brown fox @ 12:30 (£5, ¥7) jumps over Δ Ω Σ; Müller & Søn § ¿que? ñ à é, and €10 [ok] {x} ~y~ a|b \\ end.\n';
const POLISH_SAMPLE = 'Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig! ';

test('a 1,000-character GSM text becomes full parts of at most 153 septets that join back', () => {
  const text = GSM_SAMPLE.repeat(20).slice(0, 1000);
  assert.equal(text.length, 1000);
  assert.equal(chooseEncoding(text), 'gsm7');
  assert.equal(gsm7Septets(text), septetsOf(text));
  const parts = checkSplit(text, 0xa7, 8);
  const perPart = parts.map((p) => septetsOf(p.text));
  assert.equal(perPart.reduce((a, b) => a + b, 0), septetsOf(text));
  // Greedy filling wastes at most one septet per part (an extension char that did not fit).
  assert.ok(perPart.slice(0, -1).every((n) => n >= 152));
  assert.equal(parts.length, Math.ceil(septetsOf(text) / 153));
});

test('a 400-character Polish text becomes UCS-2 parts of at most 67 characters (dcs 8)', () => {
  const text = POLISH_SAMPLE.repeat(10).slice(0, 400);
  assert.equal(chooseEncoding(text), 'ucs2');
  const parts = checkSplit(text, 0x05, 8);
  assert.equal(parts.length, 6); // 5 x 67 + 65
});

test('a text full of €[]{} never splits an extension character', () => {
  const text = '€[]{}'.repeat(100); // 500 chars, 1000 septets
  assert.equal(gsm7Septets(text), 1000);
  const parts = checkSplit(text, 0xff, 8);
  for (const part of parts.slice(0, -1)) assert.equal(septetsOf(part.text), 152); // 76 chars: 153 is odd
});

test('16-bit references: 152 septets / 66 UCS-2 characters per part, UDH 0804RRRRNNII', () => {
  checkSplit(GSM_SAMPLE.repeat(5), 0xabcd, 16);
  const polish = checkSplit(POLISH_SAMPLE.repeat(4), 0x0102, 16);
  assert.ok(polish.slice(0, -1).every((p) => p.text.length === 66));
  assert.ok(checkSplit('a'.repeat(400), 0, 16).slice(0, -1).every((p) => p.text.length === 152));
});

test('a single part without UDH when the text fits exactly', () => {
  const exact = (text: string, encoding: 'gsm7' | 'ucs2') => {
    const parts = splitMessage(text, { reference: 1 });
    assert.equal(parts.length, 1, JSON.stringify(text.slice(0, 10)));
    assert.deepEqual(parts[0], encoding === 'gsm7' ? { text, encoding } : { text, encoding, dcs: 8 });
  };
  exact('a'.repeat(160), 'gsm7');
  exact('€'.repeat(80), 'gsm7'); // 160 septets
  exact('x'.repeat(158) + '{', 'gsm7');
  exact('ą'.repeat(70), 'ucs2');
  exact('', 'gsm7');
  assert.equal(splitMessage('a'.repeat(161), { reference: 1 }).length, 2);
  assert.equal(splitMessage('€'.repeat(80) + 'a', { reference: 1 }).length, 2);
  assert.equal(splitMessage('x'.repeat(159) + '{', { reference: 1 }).length, 2);
  assert.deepEqual(splitMessage('ą'.repeat(71), { reference: 1 }).map((p) => p.text.length), [67, 4]);
  assert.deepEqual(splitMessage('a'.repeat(161), { reference: 1 }).map((p) => p.text.length), [153, 8]);
});

test('an extension character at the boundary moves whole to the next part', () => {
  const parts = splitMessage('a'.repeat(152) + '€' + 'b'.repeat(10), { reference: 9 });
  assert.equal(parts[0]!.text, 'a'.repeat(152));
  assert.equal(parts[1]!.text, '€' + 'b'.repeat(10));
  const sixteen = splitMessage('a'.repeat(151) + '^' + 'b'.repeat(10), { reference: 9, referenceBits: 16 });
  assert.equal(sixteen[0]!.text, 'a'.repeat(151));
  assert.ok(sixteen[1]!.text.startsWith('^'));
});

test('the encoding is chosen once: one non-GSM character makes every part UCS-2', () => {
  const parts = splitMessage('a'.repeat(300) + 'ł', { reference: 3 });
  assert.equal(parts.length, 5);
  assert.ok(parts.every((p) => p.encoding === 'ucs2' && p.dcs === 8));
});

test('emoji become the substitute and are counted; nothing is dropped', () => {
  assert.deepEqual(sanitizeForSms('Hi 😀 there 👍🏽!'), { text: 'Hi ? there ??!', replaced: 3 });
  assert.deepEqual(sanitizeForSms('a\uD800b\uDC00c', '*'), { text: 'a*b*c', replaced: 2 });
  assert.deepEqual(sanitizeForSms('Zażółć €', '?'), { text: 'Zażółć €', replaced: 0 });
  const { text } = sanitizeForSms('ok 😀');
  assert.equal(chooseEncoding(text), 'gsm7');
  assert.equal(chooseEncoding('ok 😀'), 'ucs2');
});

test('Ç forces UCS-2, ç stays GSM (app_sms has ç at 0x09)', () => {
  assert.equal(isGsm7Char('ç'), true);
  assert.equal(isGsm7Char('Ç'), false);
  assert.equal(chooseEncoding('Ça va'), 'ucs2');
  assert.equal(chooseEncoding('ça va'), 'gsm7');
});

test('U+00A0 (the ESC slot in app_sms table) is not GSM', () => {
  assert.equal(isGsm7Char('\u00a0'), false);
  assert.equal(gsm7Septets('a\u00a0b'), null);
  assert.equal(chooseEncoding('a\u00a0b'), 'ucs2');
  assert.equal(isGsm7Char('\x1b'), false);
});

test('septet counting: extension characters and form feed cost two', () => {
  assert.equal(gsm7Septets(''), 0);
  assert.equal(gsm7Septets('abc'), 3);
  assert.equal(gsm7Septets('€'), 2);
  assert.equal(gsm7Septets('\f'), 2);
  assert.equal(gsm7Septets('^{}\\[~]|'), 16);
  assert.equal(gsm7Septets('\n\r@'), 3);
  assert.equal(gsm7Septets('a\tb'), null);
  assert.equal(isGsm7Char('ab'), false);
  assert.equal(isGsm7Char(''), false);
  for (const ch of GSM_TEST_CHARS) assert.equal(isGsm7Char(ch), true, ch);
});

test('the real fixtures agree: 03/04 are GSM, 05/13 UCS-2, 14 (Latin-1) UCS-2 for us', () => {
  const text = (n: string) => {
    const r = decodeSmsFile(fs.readFileSync(`${FIXTURES}morx/${n}.morx`));
    assert.ok(r.ok);
    return r.message.text;
  };
  assert.equal(chooseEncoding(text('03_gsm7_basic_specials')), 'gsm7');
  assert.equal(chooseEncoding(text('04_gsm7_extension_table')), 'gsm7');
  assert.equal(chooseEncoding(text('05_polish_ucs2')), 'ucs2');
  assert.equal(chooseEncoding(text('13_gsm7_capital_C_cedilla_falls_back_to_ucs2')), 'ucs2');
  assert.equal(chooseEncoding(text('14_latin1_not_gsm7_goes_8bit')), 'ucs2');
  assert.equal(splitMessage(text('08_max_length_160_gsm7'), { reference: 0 }).length, 1);
  assert.equal(splitMessage(text('10_ucs2_max_length_70'), { reference: 0 }).length, 1);
});

test('parseConcat: 8-bit, 16-bit, after another element, and garbage', () => {
  assert.deepEqual(parseConcat('0003AA0201'), { reference: 0xaa, referenceBits: 8, total: 2, sequence: 1 });
  assert.deepEqual(parseConcat('0804ABCD0302'), { reference: 0xabcd, referenceBits: 16, total: 3, sequence: 2 });
  assert.deepEqual(parseConcat('0804abcd0302'), { reference: 0xabcd, referenceBits: 16, total: 3, sequence: 2 });
  // An application port element (05, 4 octets) before the concat element.
  assert.deepEqual(parseConcat('0504158100000003CC0302'), { reference: 0xcc, referenceBits: 8, total: 3, sequence: 2 });
  // Element with empty data, then concat.
  assert.deepEqual(parseConcat('01000003010101'), { reference: 1, referenceBits: 8, total: 1, sequence: 1 });
  for (const garbage of [undefined, '', 'ZZ', '000', '0003AA02', '0003AA0003', '0003AA0000', '0004AA020100', '0803ABCD03', 'hello']) {
    assert.equal(parseConcat(garbage), undefined, String(garbage));
  }
  // The length byte written into udh# (fixtures 06/07/15/16) reads as other elements, not as concat.
  assert.equal(parseConcat('050003AA0201'), undefined);
});

test('joinParts orders by sequence; the real 06b/07b parts join', () => {
  const read = (n: string) => {
    const r = decodeSmsFile(fs.readFileSync(`${FIXTURES}morx/${n}.morx`));
    assert.ok(r.ok);
    return r.message;
  };
  const joined = joinParts([read('07b_udh_iei_only_concat_part2_of_2'), read('06b_udh_iei_only_concat_part1_of_2')]);
  assert.equal(joined, 'This is part one of a concatenated SMS, ref AA, and this is part two (the last one).');
  assert.equal(joinParts([{ text: 'only' }]), 'only');
  assert.equal(joinParts([{ udh: '0003010302', text: 'b' }, { udh: '0003010303', text: 'c' }, { udh: '0003010301', text: 'a' }]), 'abc');
});

test('at most 255 parts, and a reference must fit its bits (RangeError)', () => {
  assert.equal(splitMessage('a'.repeat(153 * 255), { reference: 1 }).length, 255);
  assert.throws(() => splitMessage('a'.repeat(153 * 255 + 1), { reference: 1 }), RangeError);
  assert.throws(() => splitMessage('a', { reference: 256 }), RangeError);
  assert.throws(() => splitMessage('a', { reference: -1 }), RangeError);
  assert.throws(() => splitMessage('a', { reference: 65536, referenceBits: 16 }), RangeError);
  assert.equal(splitMessage('a', { reference: 65535, referenceBits: 16 }).length, 1);
});
