/**
 * Quiet hours, pure: a daily window of local wall-clock time (in a given IANA
 * time zone) during which calls to a recipient should not be placed.
 *
 * A window is `start-end` in 24-hour `HH:MM`; the start is inside the window,
 * the end is not (22:00-07:00 is quiet from 22:00:00.000 up to 06:59:59.999).
 * A window whose end is earlier than its start crosses midnight. A window
 * whose start equals its end (`22:00-22:00`) is EMPTY: no quiet hours at all
 * (to be quiet all day, use `00:00-23:59`).
 *
 * Everything works on local wall time as `Intl.DateTimeFormat` reports it
 * for the zone, so DST is followed: on a day whose clocks jump forward over
 * the window's end (Europe/Warsaw, last Sunday of March, 02:00 → 03:00), a
 * window ending at 02:30 ends at the jump, 03:00 local; on a day whose clocks
 * go back, a wall time inside the repeated hour is quiet both times it occurs.
 */

export interface QuietWindow {
  /** 'HH:MM', 00:00–23:59 */
  start: string;
  /** 'HH:MM', 00:00–23:59 */
  end: string;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/**
 * Parses `'HH:MM-HH:MM'` (spaces around the dash and at the ends allowed).
 * Undefined when malformed: not two times, an hour above 23, a minute above
 * 59, missing leading zeros. `'22:00-22:00'` parses to an empty window (never quiet).
 */
export function parseQuietWindow(spec: string): QuietWindow | undefined {
  if (typeof spec !== 'string') return undefined;
  const m = /^\s*(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*$/.exec(spec);
  if (!m) return undefined;
  const start = m[1]!;
  const end = m[2]!;
  if (!HHMM.test(start) || !HHMM.test(end)) return undefined;
  return { start, end };
}

/** True when the runtime knows `tz` as an IANA time zone name (or an offset form Intl accepts). */
export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || tz === '') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    if (!isValidTimeZone(timeZone)) throw new RangeError(`unknown time zone ${JSON.stringify(timeZone)}`);
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      numberingSystem: 'latn',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/**
 * The local wall time of instant `ms` in the zone, expressed as if it were a
 * UTC instant (so wall times compare and do arithmetic as plain numbers).
 */
function wallMs(ms: number, timeZone: string): number {
  const fields: Record<string, string> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(ms))) fields[p.type] = p.value;
  let year = Number(fields.year);
  if (fields.era === 'BC' || fields.era === 'B') year = 1 - year;
  const utc = new Date(0);
  utc.setUTCFullYear(year, Number(fields.month) - 1, Number(fields.day));
  utc.setUTCHours(Number(fields.hour), Number(fields.minute), Number(fields.second), 0);
  return utc.getTime() + (((ms % 1000) + 1000) % 1000);
}

const DAY = 86_400_000;

function minutesOf(hhmm: string, what: string): number {
  const m = HHMM.exec(hhmm);
  if (!m) throw new RangeError(`quiet window ${what} ${JSON.stringify(hhmm)} is not HH:MM`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function checked(window: QuietWindow, at: Date, timeZone: string): { start: number; end: number; t: number } {
  const start = minutesOf(window.start, 'start') * 60_000;
  const end = minutesOf(window.end, 'end') * 60_000;
  const t = at instanceof Date ? at.getTime() : Number.NaN;
  if (Number.isNaN(t)) throw new RangeError('invalid date');
  formatterFor(timeZone); // validates the zone
  return { start, end, t };
}

/** Whether a time of day (ms since local midnight) lies in [start, end), crossing midnight when end < start. */
function inWindow(timeOfDay: number, start: number, end: number): boolean {
  if (start === end) return false;
  if (start < end) return timeOfDay >= start && timeOfDay < end;
  return timeOfDay >= start || timeOfDay < end;
}

function timeOfDay(wall: number): number {
  return ((wall % DAY) + DAY) % DAY;
}

/**
 * Whether `at` falls in the window, judged by its local wall time in `timeZone`.
 * Throws RangeError for an unknown zone, an invalid date or a malformed window.
 */
export function isQuiet(window: QuietWindow, at: Date, timeZone: string): boolean {
  const { start, end, t } = checked(window, at, timeZone);
  return inWindow(timeOfDay(wallMs(t, timeZone)), start, end);
}

function offsetAt(ms: number, timeZone: string): number {
  return wallMs(ms, timeZone) - ms;
}

/**
 * The first instant in (from, to] at which the zone's UTC offset differs from
 * its offset at `from`, or undefined when there is none. Assumes at most one
 * change in the span (the caller's spans are at most a day and a bit; real
 * zones never change twice that fast), found by bisection to the millisecond.
 */
function nextTransition(from: number, to: number, timeZone: string): number | undefined {
  const before = offsetAt(from, timeZone);
  if (offsetAt(to, timeZone) === before) return undefined;
  let lo = from; // offset === before
  let hi = to; // offset !== before
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (offsetAt(mid, timeZone) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * `at` itself when it is not quiet; otherwise the end of the window: the
 * first instant after `at` that is no longer quiet, in `timeZone`.
 *
 * While the offset stays the same that is the instant whose wall time is the
 * window's end. When the clocks change first, the answer is the change itself
 * if the new wall time is outside the window: on a day the clocks skip the
 * end's wall time, the instant of the jump (a window ending at 02:30 ends at
 * 03:00 local on Europe/Warsaw's spring-forward day); on a day they go back
 * out of the window (02:30-05:00 at 02:45 summer time, clocks back to 02:00),
 * the moment they go back. A wall time that occurs twice is the first
 * occurrence after `at`.
 * Throws RangeError for an unknown zone, an invalid date or a malformed window.
 */
export function nextAllowed(window: QuietWindow, at: Date, timeZone: string): Date {
  const { start, end, t } = checked(window, at, timeZone);
  let current = t;
  // Each round either finds the end or moves to a change of offset; a few
  // rounds cover any real zone, the bound only guards against a broken one.
  for (let round = 0; round < 8; round++) {
    const wall = wallMs(current, timeZone);
    const tod = timeOfDay(wall);
    if (!inWindow(tod, start, end)) return round === 0 ? at : new Date(current);
    const midnight = wall - tod;
    // Crossing midnight and already past the start: the window ends tomorrow.
    const endWall = start > end && tod >= start ? midnight + DAY + end : midnight + end;
    const candidate = endWall - (wall - current);
    const change = nextTransition(current, candidate, timeZone);
    if (change === undefined) return new Date(candidate);
    current = change;
  }
  return new Date(current);
}
