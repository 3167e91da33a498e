/**
 * Named crash points, for the crash tests only (issue 10). Each point is a
 * one-line `crashPoint('name')` call at a place where a crash leaves the
 * spool and the journal in a state worth recovering from. Unless
 * `[testing] crash_at` names it, a point costs one Set lookup and does
 * nothing. When armed, its `crash_after`-th hit writes `CRASH_POINT <name>`
 * to stderr and SIGKILLs the process: a real kill, no exit handlers, no
 * flushing of anything that was not already written, as a power-less crash
 * of the process (not of the machine) would.
 */
import { writeSync } from 'node:fs';

/** Every point, with where it is (for the config check and the crash suite). */
export const CRASH_POINTS = {
  'ingest.after-commit': 'daemon: morx rows committed, spool files not removed yet',
  'sms.after-mttx': 'S route: one message written to sms/mttx, its call file not yet (per message)',
  'sms.after-call-file': 'S route: files and call files renamed in (rows already spooled), parts not yet expected in the log',
  'call.after-commit': 'F/V route: call row and spooled state committed, call file not written yet',
  'call.after-call-file': 'F/V route: call file renamed into outgoing/, outcome not known yet',
  'render.fax': 'F route: the TIFF rendered in memory, not written yet',
  'render.voice': 'V route: the WAV synthesised under its temporary name, not renamed yet',
  'sip.after-send': 'T route: MessageSend written to AMI, its response not handled yet',
  'agi.session': 'F/V FastAGI session: answered and set up, before SendFAX / Playback',
  'agi.outcome': 'F/V FastAGI session: FAXSTATUS / PLAYBACKSTATUS read, not recorded yet',
  'agi.message': 'inbound SIP FastAGI session: message read from Asterisk, not recorded yet',
  'reassembly.join': 'reassembly: joined message inserted, parts not yet marked (inside the transaction)',
} as const;

export type CrashPointName = keyof typeof CRASH_POINTS;

export function isCrashPointName(name: string): name is CrashPointName {
  return Object.hasOwn(CRASH_POINTS, name);
}

/** `crash_at` as written in the config: one name, or several separated by commas or spaces. */
export function parseCrashAt(value: string): string[] {
  return value.split(/[\s,]+/).filter((n) => n !== '');
}

let armed: ReadonlySet<string> = new Set();
let after = 1;
const hits = new Map<string, number>();

/** Arms the named points (an empty list disarms them all); each kills at its `crashAfter`-th hit. */
export function armCrashPoints(names: readonly string[], crashAfter = 1): void {
  armed = new Set(names);
  after = Math.max(1, Math.trunc(crashAfter));
  hits.clear();
}

export function armedCrashPoints(): string[] {
  return [...armed];
}

export function crashPoint(name: CrashPointName): void {
  if (!armed.has(name)) return;
  const n = (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n < after) return;
  // Synchronous: the line must be out before the kill.
  writeSync(2, `CRASH_POINT ${name}\n`);
  process.kill(process.pid, 'SIGKILL');
  // Not reached: SIGKILL to oneself is delivered before kill(2) returns.
  throw new Error(`crash point ${name}: SIGKILL did not kill the process`);
}
