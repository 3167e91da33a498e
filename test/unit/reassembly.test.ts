import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitMessage } from '../../src/spool/encoding.js';
import { concatKey, keyString, reassemble, type StoredPart } from '../../src/spool/reassembly.js';

const OA = '48600111222';
const DA = '1234';
const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const TIMEOUT = 10 * 60_000;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Builds stored parts from `splitMessage`, so the UDHs are exactly what a real sender produces. */
function partsOf(text: string, reference: number, bits: 8 | 16): { udh: string; text: string }[] {
  const parts = splitMessage(text, { reference, referenceBits: bits });
  assert.ok(parts.length > 1, 'the test text needs several parts');
  return parts.map((p) => {
    assert.ok(p.udh !== undefined);
    return { udh: p.udh, text: p.text };
  });
}

let nextId = 100;
function stored(part: { udh: string; text: string }, receivedAtMs: number, over: Partial<StoredPart> = {}): StoredPart {
  return { id: nextId++, oa: OA, da: DA, udh: part.udh, text: part.text, receivedAt: iso(receivedAtMs), ...over };
}

const GSM_TEXT = Array.from({ length: 16 }, (_, i) => `Line ${i} of the report; `).join('') + 'end.';
const UCS2_TEXT = 'Zażółć gęślą jaźń — wiadomość dłuższa niż siedemdziesiąt znaków, więc idzie w dwóch częściach.';

test('the test texts need the intended number of parts', () => {
  assert.equal(splitMessage(GSM_TEXT, { reference: 1 }).length, 3);
  assert.equal(splitMessage(GSM_TEXT, { reference: 1 })[0]!.encoding, 'gsm7');
  assert.equal(splitMessage(UCS2_TEXT, { reference: 1, referenceBits: 16 }).length, 2);
  assert.equal(splitMessage(UCS2_TEXT, { reference: 1 })[0]!.encoding, 'ucs2');
});

test('three-part GSM message out of order with a duplicate is complete, first copy wins', () => {
  const [p1, p2, p3] = partsOf(GSM_TEXT, 0xa7, 8) as [{ udh: string; text: string }, { udh: string; text: string }, { udh: string; text: string }];
  const third = stored(p3, T0);
  const first = stored(p1, T0 + 1_000);
  const firstAgain = stored({ udh: p1.udh, text: 'a different text for the same sequence' }, T0 + 2_000);
  const second = stored(p2, T0 + 3_000);
  const all = [second, firstAgain, third, first];

  const keys = new Set(all.map((p) => keyString(concatKey(p)!)));
  assert.equal(keys.size, 1, 'all parts share one key');
  assert.deepEqual(concatKey(first), { oa: OA, da: DA, reference: 0xa7, referenceBits: 8, total: 3 });

  const r = reassemble(all, { now: iso(T0 + 4_000), timeoutMs: TIMEOUT });
  assert.deepEqual(r, { kind: 'complete', text: GSM_TEXT, used: [first.id, second.id, third.id], duplicates: [firstAgain.id] });
});

test('two-part UCS-2 message with a 16-bit reference, out of order and duplicated', () => {
  const [p1, p2] = partsOf(UCS2_TEXT, 0x1234, 16) as [{ udh: string; text: string }, { udh: string; text: string }];
  const second = stored(p2, T0);
  const secondAgain = stored(p2, T0 + 500);
  const first = stored(p1, T0 + 900);
  assert.deepEqual(concatKey(first), { oa: OA, da: DA, reference: 0x1234, referenceBits: 16, total: 2 });

  // Even long after the timeout a complete set is complete.
  const r = reassemble([first, secondAgain, second], { now: iso(T0 + 10 * TIMEOUT), timeoutMs: TIMEOUT });
  assert.deepEqual(r, { kind: 'complete', text: UCS2_TEXT, used: [first.id, second.id], duplicates: [secondAgain.id] });
});

test('equal receivedAt: the lower id counts as received first', () => {
  const [p1, p2] = partsOf(UCS2_TEXT, 7, 8) as [{ udh: string; text: string }, { udh: string; text: string }];
  const a = stored(p1, T0, { id: 5 });
  const b = stored({ udh: p1.udh, text: 'other' }, T0, { id: 4 });
  const c = stored(p2, T0, { id: 6 });
  const r = reassemble([a, b, c], { now: iso(T0), timeoutMs: TIMEOUT });
  assert.equal(r.kind, 'complete');
  if (r.kind !== 'complete') return;
  assert.deepEqual(r.used, [4, 6]);
  assert.deepEqual(r.duplicates, [5]);
  assert.equal(r.text, 'other' + p2.text);
});

test('a missing middle part: waiting before the timeout, timed-out with a marker after it', () => {
  const [p1, , p3] = partsOf(GSM_TEXT, 0x42, 8) as [{ udh: string; text: string }, unknown, { udh: string; text: string }];
  const third = stored(p3, T0); // the earliest part starts the clock
  const first = stored(p1, T0 + 30_000);
  const parts = [first, third];
  const until = iso(T0 + TIMEOUT);

  assert.deepEqual(reassemble(parts, { now: iso(T0 + 30_000), timeoutMs: TIMEOUT }), { kind: 'waiting', until });
  assert.deepEqual(reassemble(parts, { now: iso(T0 + TIMEOUT - 1), timeoutMs: TIMEOUT }), { kind: 'waiting', until });

  for (const now of [T0 + TIMEOUT, T0 + TIMEOUT + 60_000]) {
    const r = reassemble(parts, { now: iso(now), timeoutMs: TIMEOUT });
    assert.equal(r.kind, 'timed-out');
    if (r.kind !== 'timed-out') return;
    const before = p1.text.endsWith(' ') ? '' : ' ';
    assert.equal(r.text, `${p1.text}${before}[part 2 of 3 missing] ${p3.text}`);
    assert.deepEqual(r.used, [first.id, third.id]);
    assert.deepEqual(r.duplicates, []);
    assert.deepEqual(r.missing, [2]);
  }
});

test('timed-out markers: custom marker, first and last parts missing, no doubled spaces', () => {
  const udh = (seq: number) => `00030904${seq.toString(16).padStart(2, '0')}`;
  const b = stored({ udh: udh(2), text: 'two ' }, T0);
  const c = stored({ udh: udh(3), text: 'three' }, T0 + 1);
  const marker = (seq: number, total: number) => `<${seq}/${total}?>`;
  const r = reassemble([c, b], { now: iso(T0 + TIMEOUT), timeoutMs: TIMEOUT, missingMarker: marker });
  assert.deepEqual(r, {
    kind: 'timed-out',
    text: '<1/4?> two three <4/4?>',
    used: [b.id, c.id],
    duplicates: [],
    missing: [1, 4],
  });

  const only = stored({ udh: udh(1), text: 'one' }, T0);
  const r2 = reassemble([only], { now: iso(T0 + TIMEOUT), timeoutMs: TIMEOUT });
  assert.equal(r2.kind, 'timed-out');
  if (r2.kind === 'timed-out') {
    assert.equal(r2.text, 'one [part 2 of 4 missing] [part 3 of 4 missing] [part 4 of 4 missing]');
    assert.deepEqual(r2.missing, [2, 3, 4]);
  }
});

test('8-bit and 16-bit references with the same number are different keys', () => {
  const eight = concatKey({ oa: OA, da: DA, udh: '00032A0201' });
  const sixteen = concatKey({ oa: OA, da: DA, udh: '0804002A0201' });
  assert.ok(eight && sixteen);
  assert.equal(eight.reference, sixteen.reference);
  assert.notEqual(keyString(eight), keyString(sixteen));
  assert.equal(keyString(eight), keyString(concatKey({ oa: OA, da: DA, udh: '00032A0202' })!), 'the sequence is not part of the key');
});

test('a different oa, da or total is a different key', () => {
  const base = { oa: OA, da: DA, udh: '00032A0201' };
  const k = keyString(concatKey(base)!);
  assert.notEqual(keyString(concatKey({ ...base, oa: '48600999888' })!), k);
  assert.notEqual(keyString(concatKey({ ...base, da: '4321' })!), k);
  assert.notEqual(keyString(concatKey({ ...base, udh: '00032A0301' })!), k);
  // keyString is unambiguous even for odd addresses.
  assert.notEqual(
    keyString({ oa: 'a","b', da: 'c', reference: 1, referenceBits: 8, total: 2 }),
    keyString({ oa: 'a', da: 'b","c', reference: 1, referenceBits: 8, total: 2 }),
  );
});

test('concatKey: plain messages and concat elements beside other elements', () => {
  assert.equal(concatKey({ oa: OA, da: DA, udh: null }), undefined);
  assert.equal(concatKey({ oa: OA, da: DA, udh: '' }), undefined);
  assert.equal(concatKey({ oa: OA, da: DA, udh: '0A0100' }), undefined, 'no concat element');
  assert.equal(concatKey({ oa: OA, da: DA, udh: '00032A' }), undefined, 'element runs past the end');
  assert.equal(concatKey({ oa: OA, da: DA, udh: '00032A0001' }), undefined, 'total 0');
  assert.equal(concatKey({ oa: OA, da: DA, udh: 'zz' }), undefined);
  assert.deepEqual(concatKey({ oa: OA, da: DA, udh: '0A01000003FF0302' }), { oa: OA, da: DA, reference: 0xff, referenceBits: 8, total: 3 });
});

test('a sequence outside 1..total is a stray, listed as a duplicate', () => {
  const a = stored({ udh: '0003100201', text: 'Hel' }, T0);
  const zero = stored({ udh: '0003100200', text: 'zero' }, T0 + 1);
  const beyond = stored({ udh: '0003100205', text: 'five' }, T0 + 2);
  const b = stored({ udh: '0003100202', text: 'lo' }, T0 + 3);
  assert.equal(keyString(concatKey(zero)!), keyString(concatKey(a)!), 'the stray is grouped with its set');
  assert.equal(keyString(concatKey(beyond)!), keyString(concatKey(a)!));
  const r = reassemble([beyond, b, zero, a], { now: iso(T0 + 4), timeoutMs: TIMEOUT });
  assert.deepEqual(r, { kind: 'complete', text: 'Hello', used: [a.id, b.id], duplicates: [zero.id, beyond.id] });
});

test('a reference reused long after is not merged into the old set', () => {
  const oldFirst = stored({ udh: '0003550201', text: 'old one, ' }, T0);
  const newFirst = stored({ udh: '0003550201', text: 'new one, ' }, T0 + 3 * TIMEOUT);
  const newSecond = stored({ udh: '0003550202', text: 'new two' }, T0 + 3 * TIMEOUT + 1_000);
  assert.equal(keyString(concatKey(newFirst)!), keyString(concatKey(oldFirst)!), 'same key: the reference wrapped');

  // The old set timed out long ago; the new parts are neither used nor duplicates.
  const now = iso(T0 + 3 * TIMEOUT + 2_000);
  const r = reassemble([newSecond, oldFirst, newFirst], { now, timeoutMs: TIMEOUT });
  assert.deepEqual(r, {
    kind: 'timed-out',
    text: 'old one, [part 2 of 2 missing]',
    used: [oldFirst.id],
    duplicates: [],
    missing: [2],
  });

  // Once the caller has dealt with the old set, the new one stands alone.
  assert.deepEqual(reassemble([newSecond, newFirst], { now, timeoutMs: TIMEOUT }), {
    kind: 'complete',
    text: 'new one, new two',
    used: [newFirst.id, newSecond.id],
    duplicates: [],
  });
});

test('parts up to 2 × timeout after the earliest still belong to its set', () => {
  const a = stored({ udh: '0003560201', text: 'A' }, T0);
  const b = stored({ udh: '0003560202', text: 'B' }, T0 + 2 * TIMEOUT);
  const late = stored({ udh: '0003560201', text: 'C' }, T0 + 2 * TIMEOUT + 1);
  const r = reassemble([late, b, a], { now: iso(T0 + 2 * TIMEOUT + 1), timeoutMs: TIMEOUT });
  assert.deepEqual(r, { kind: 'complete', text: 'AB', used: [a.id, b.id], duplicates: [] });
});

test('bad input is a RangeError', () => {
  const a = stored({ udh: '0003570201', text: 'A' }, T0);
  assert.throws(() => reassemble([], { now: iso(T0), timeoutMs: TIMEOUT }), RangeError);
  assert.throws(() => reassemble([{ ...a, udh: '' }], { now: iso(T0), timeoutMs: TIMEOUT }), RangeError);
  assert.throws(() => reassemble([a], { now: 'yesterday', timeoutMs: TIMEOUT }), RangeError);
  assert.throws(() => reassemble([{ ...a, receivedAt: 'soon' }], { now: iso(T0), timeoutMs: TIMEOUT }), RangeError);
  assert.throws(() => reassemble([a], { now: iso(T0), timeoutMs: -1 }), RangeError);
  assert.throws(() => reassemble([a], { now: iso(T0), timeoutMs: Number.NaN }), RangeError);
});
