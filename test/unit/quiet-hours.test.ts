import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQuiet, isValidTimeZone, nextAllowed, parseQuietWindow, type QuietWindow } from '../../src/schedule/quiet-hours.js';

/** Local wall time 'YYYY-MM-DD HH:MM:SS' of an instant, computed independently of the module (sv-SE prints ISO-like). */
function local(at: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('sv-SE', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).format(at);
}

function window(spec: string): QuietWindow {
  const w = parseQuietWindow(spec);
  assert.ok(w, `${spec} parses`);
  return w;
}

/** An instant given in UTC, checked to be the local wall time the test means. */
function at(utcIso: string, timeZone: string, expectedLocal: string): Date {
  const d = new Date(utcIso);
  assert.equal(local(d, timeZone), expectedLocal, `${utcIso} is ${expectedLocal} in ${timeZone}`);
  return d;
}

const NIGHT = '22:00-07:00';

for (const [timeZone, utc23, utc07] of [
  ['Europe/Warsaw', '2026-01-15T22:00:00Z', '2026-01-16T06:00:00Z'],
  ['UTC', '2026-01-15T23:00:00Z', '2026-01-16T07:00:00Z'],
  ['America/New_York', '2026-01-16T04:00:00Z', '2026-01-16T12:00:00Z'],
] as const) {
  test(`${timeZone}: 23:00 in ${NIGHT} is allowed at 07:00 the next day`, () => {
    const w = window(NIGHT);
    const start = at(utc23, timeZone, '2026-01-15 23:00:00');
    assert.equal(isQuiet(w, start, timeZone), true);
    const next = nextAllowed(w, start, timeZone);
    assert.equal(next.toISOString(), new Date(utc07).toISOString());
    assert.equal(local(next, timeZone), '2026-01-16 07:00:00');
    assert.equal(isQuiet(w, next, timeZone), false);
    assert.equal(isQuiet(w, new Date(next.getTime() - 1), timeZone), true, 'the instant before the end is still quiet');
  });
}

test('06:59 is allowed at 07:00 the same day; 07:00 itself is not quiet; 22:00 is', () => {
  const tz = 'Europe/Warsaw';
  const w = window(NIGHT);
  const early = at('2026-01-16T05:59:00Z', tz, '2026-01-16 06:59:00');
  assert.equal(isQuiet(w, early, tz), true);
  assert.equal(local(nextAllowed(w, early, tz), tz), '2026-01-16 07:00:00');

  const seven = at('2026-01-16T06:00:00Z', tz, '2026-01-16 07:00:00');
  assert.equal(isQuiet(w, seven, tz), false);
  assert.equal(nextAllowed(w, seven, tz), seven, 'not quiet: `at` itself');

  const evening = at('2026-01-16T20:59:59.999Z', tz, '2026-01-16 21:59:59');
  assert.equal(isQuiet(w, evening, tz), false);
  assert.equal(isQuiet(w, new Date(evening.getTime() + 1), tz), true, '22:00:00.000 is quiet');
  const midnight = at('2026-01-16T23:00:00Z', tz, '2026-01-17 00:00:00');
  assert.equal(isQuiet(w, midnight, tz), true);
  assert.equal(local(nextAllowed(w, midnight, tz), tz), '2026-01-17 07:00:00');
});

test('a window that does not cross midnight: 12:00-14:00', () => {
  const tz = 'UTC';
  const w = window('12:00-14:00');
  assert.equal(isQuiet(w, new Date('2026-05-05T11:59:59.999Z'), tz), false);
  assert.equal(isQuiet(w, new Date('2026-05-05T12:00:00Z'), tz), true);
  assert.equal(nextAllowed(w, new Date('2026-05-05T13:30:00Z'), tz).toISOString(), '2026-05-05T14:00:00.000Z');
  assert.equal(isQuiet(w, new Date('2026-05-05T14:00:00Z'), tz), false);
  assert.equal(isQuiet(w, new Date('2026-05-05T23:00:00Z'), tz), false);
  assert.equal(isQuiet(w, new Date('2026-05-05T01:00:00Z'), tz), false);
  const evening = new Date('2026-05-05T23:00:00Z');
  assert.equal(nextAllowed(w, evening, tz), evening);
  // In another zone the same window is judged on that zone's wall clock.
  const warsawNoon = at('2026-05-05T10:30:00Z', 'Europe/Warsaw', '2026-05-05 12:30:00');
  assert.equal(isQuiet(w, warsawNoon, 'Europe/Warsaw'), true);
  assert.equal(isQuiet(w, warsawNoon, 'UTC'), false);
  assert.equal(nextAllowed(w, warsawNoon, 'Europe/Warsaw').toISOString(), '2026-05-05T12:00:00.000Z');
});

test('an empty window (start = end) is never quiet', () => {
  const w = window('22:00-22:00');
  for (const iso of ['2026-01-15T21:00:00Z', '2026-01-15T21:30:00Z', '2026-01-15T03:00:00Z']) {
    const d = new Date(iso);
    assert.equal(isQuiet(w, d, 'Europe/Warsaw'), false);
    assert.equal(nextAllowed(w, d, 'Europe/Warsaw'), d);
  }
});

test('Europe/Warsaw spring forward (2026-03-29, 02:00 CET → 03:00 CEST)', () => {
  const tz = 'Europe/Warsaw';
  // The night is one hour shorter: 23:00 CET to 07:00 CEST.
  const w = window(NIGHT);
  const evening = at('2026-03-28T22:00:00Z', tz, '2026-03-28 23:00:00');
  const morning = nextAllowed(w, evening, tz);
  assert.equal(morning.toISOString(), '2026-03-29T05:00:00.000Z');
  assert.equal(local(morning, tz), '2026-03-29 07:00:00');

  // A window ending at 02:30, a wall time that does not exist that day: it ends at the jump, 03:00 CEST.
  const short = window('22:00-02:30');
  for (const [utc, wall] of [
    ['2026-03-28T22:00:00Z', '2026-03-28 23:00:00'],
    ['2026-03-29T00:59:59Z', '2026-03-29 01:59:59'],
  ] as const) {
    const d = at(utc, tz, wall);
    assert.equal(isQuiet(short, d, tz), true);
    const end = nextAllowed(short, d, tz);
    assert.equal(end.toISOString(), '2026-03-29T01:00:00.000Z');
    assert.equal(local(end, tz), '2026-03-29 03:00:00');
    assert.equal(isQuiet(short, end, tz), false);
  }
  // A window ending at 03:00 ends at 03:00 CEST as well; one starting at 02:30 starts at the jump.
  assert.equal(nextAllowed(window('22:00-03:00'), evening, tz).toISOString(), '2026-03-29T01:00:00.000Z');
  const later = window('02:30-05:00');
  assert.equal(isQuiet(later, at('2026-03-29T00:59:59Z', tz, '2026-03-29 01:59:59'), tz), false);
  assert.equal(isQuiet(later, at('2026-03-29T01:00:00Z', tz, '2026-03-29 03:00:00'), tz), true);
});

test('Europe/Warsaw fall back (2026-10-25, 03:00 CEST → 02:00 CET)', () => {
  const tz = 'Europe/Warsaw';
  // The night is one hour longer: 23:00 CEST to 07:00 CET.
  const w = window(NIGHT);
  const evening = at('2026-10-24T21:00:00Z', tz, '2026-10-24 23:00:00');
  const morning = nextAllowed(w, evening, tz);
  assert.equal(morning.toISOString(), '2026-10-25T06:00:00.000Z');
  assert.equal(local(morning, tz), '2026-10-25 07:00:00');

  // 02:30 happens twice; the window ends at the first 02:30 (CEST) after the evening.
  const short = window('22:00-02:30');
  const end = nextAllowed(short, evening, tz);
  assert.equal(end.toISOString(), '2026-10-25T00:30:00.000Z');
  assert.equal(local(end, tz), '2026-10-25 02:30:00');
  // 02:40 CEST is allowed; after the clocks go back, 02:10 CET is quiet again by the wall clock, until 02:30 CET.
  assert.equal(isQuiet(short, at('2026-10-25T00:40:00Z', tz, '2026-10-25 02:40:00'), tz), false);
  const repeated = at('2026-10-25T01:10:00Z', tz, '2026-10-25 02:10:00');
  assert.equal(isQuiet(short, repeated, tz), true);
  assert.equal(nextAllowed(short, repeated, tz).toISOString(), '2026-10-25T01:30:00.000Z');

  // 02:30-05:00 at 02:45 CEST: when the clocks go back to 02:00 CET the wall time leaves the window for half an hour.
  const early = window('02:30-05:00');
  const summer = at('2026-10-25T00:45:00Z', tz, '2026-10-25 02:45:00');
  assert.equal(isQuiet(early, summer, tz), true);
  const back = nextAllowed(early, summer, tz);
  assert.equal(back.toISOString(), '2026-10-25T01:00:00.000Z');
  assert.equal(local(back, tz), '2026-10-25 02:00:00');
  const winter = at('2026-10-25T01:30:00Z', tz, '2026-10-25 02:30:00');
  assert.equal(isQuiet(early, winter, tz), true);
  assert.equal(local(nextAllowed(early, winter, tz), tz), '2026-10-25 05:00:00');
});

test('America/New_York spring forward (2026-03-08, 02:00 EST → 03:00 EDT)', () => {
  const tz = 'America/New_York';
  const evening = at('2026-03-08T03:00:00Z', tz, '2026-03-07 22:00:00');
  const end = nextAllowed(window('22:00-02:30'), evening, tz);
  assert.equal(local(end, tz), '2026-03-08 03:00:00');
  assert.equal(end.toISOString(), '2026-03-08T07:00:00.000Z');
});

test('invariants: nextAllowed is never quiet, and everything just before it is quiet', () => {
  const specs = [NIGHT, '12:00-14:00', '22:00-02:30', '02:30-05:00', '00:00-23:59', '23:59-00:00', '01:15-02:45'];
  const zones = ['Europe/Warsaw', 'America/New_York', 'UTC', 'Australia/Lord_Howe', 'Asia/Kolkata'];
  const starts = [Date.parse('2026-03-27T00:00:00Z'), Date.parse('2026-10-23T00:00:00Z'), Date.parse('2026-04-03T00:00:00Z')];
  for (const spec of specs) {
    const w = window(spec);
    for (const tz of zones) {
      for (const start of starts) {
        // Every 53 minutes over four days around the DST changes.
        for (let t = start; t < start + 4 * 86_400_000; t += 53 * 60_000) {
          const d = new Date(t);
          const next = nextAllowed(w, d, tz);
          const label = `${spec} ${tz} ${d.toISOString()}`;
          assert.equal(isQuiet(w, next, tz), false, label);
          if (isQuiet(w, d, tz)) {
            assert.ok(next.getTime() > t, label);
            assert.ok(next.getTime() - t <= 25 * 3_600_000, label); // a day, one hour longer when the clocks go back
            assert.equal(isQuiet(w, new Date(next.getTime() - 1), tz), true, label);
            // No allowed instant in between (sampled every 10 minutes).
            for (let u = t; u < next.getTime(); u += 600_000) assert.equal(isQuiet(w, new Date(u), tz), true, label);
          } else {
            assert.equal(next, d, label);
          }
        }
      }
    }
  }
});

test('parseQuietWindow: valid and malformed specs', () => {
  assert.deepEqual(parseQuietWindow('22:00-07:00'), { start: '22:00', end: '07:00' });
  assert.deepEqual(parseQuietWindow(' 12:00 - 14:00 '), { start: '12:00', end: '14:00' });
  assert.deepEqual(parseQuietWindow('00:00-23:59'), { start: '00:00', end: '23:59' });
  assert.deepEqual(parseQuietWindow('22:00-22:00'), { start: '22:00', end: '22:00' });
  for (const bad of [
    '',
    '22:00',
    '22:00-',
    '-07:00',
    '22-07',
    '2200-0700',
    '2:00-07:00',
    '22:00-7:00',
    '24:00-07:00',
    '22:00-24:00',
    '22:60-07:00',
    '22:00-07:00-08:00',
    '22:00 07:00',
    'aa:bb-cc:dd',
    '22:00–07:00',
    '22:00:00-07:00:00',
  ]) {
    assert.equal(parseQuietWindow(bad), undefined, JSON.stringify(bad));
  }
});

test('time zones: validation and unknown zones', () => {
  assert.equal(isValidTimeZone('Europe/Warsaw'), true);
  assert.equal(isValidTimeZone('UTC'), true);
  assert.equal(isValidTimeZone('America/New_York'), true);
  assert.equal(isValidTimeZone('Mars/Olympus_Mons'), false);
  assert.equal(isValidTimeZone(''), false);
  assert.equal(isValidTimeZone('Europe/Warsaw '), false);
  const w = window(NIGHT);
  const d = new Date('2026-01-15T23:00:00Z');
  assert.throws(() => isQuiet(w, d, 'Mars/Olympus_Mons'), RangeError);
  assert.throws(() => nextAllowed(w, d, 'Mars/Olympus_Mons'), RangeError);
});

test('invalid dates and hand-built malformed windows are RangeErrors', () => {
  const w = window(NIGHT);
  assert.throws(() => isQuiet(w, new Date(Number.NaN), 'UTC'), RangeError);
  assert.throws(() => nextAllowed(w, new Date('not a date'), 'UTC'), RangeError);
  assert.throws(() => isQuiet({ start: '25:00', end: '07:00' }, new Date('2026-01-15T23:00:00Z'), 'UTC'), RangeError);
  assert.throws(() => nextAllowed({ start: '22:00', end: '7' }, new Date('2026-01-15T23:00:00Z'), 'UTC'), RangeError);
});
