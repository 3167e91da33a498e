/**
 * The outcome keeper (optional: `[ami] outcome_keeper = CONTEXT`). An F or V
 * call file sets `SMSR_CALL` to its own name and pushes CONTEXT as a hangup
 * handler; the handler (docs/asterisk/outcome-keeper.conf) writes
 *
 *   DB(sms-router/<SMSR_CALL>) = ${FAXSTATUS}:${FAXPAGES}:${PLAYBACKSTATUS}:${FAXERROR}
 *
 * when the channel hangs up, also after our FastAGI connection died in the
 * middle of SendFAX or Playback (Asterisk finishes the application without
 * us). pbx_spool archives the call file at about the same time (measured on
 * the lab: a few milliseconds either side), so when the archive shows an
 * answered call whose outcome the journal does not have, the value is read
 * over AMI (DBGet, asked again for up to 3 s while it is not there yet)
 * instead of sending the fax again.
 * Once the journal has the call's outcome, the key is deleted (DBDel).
 *
 * The value's fields: FAXSTATUS and PLAYBACKSTATUS are words, FAXPAGES a
 * number (each possibly empty: a variable the call never set); FAXERROR is
 * free text, so it comes last and may hold anything, colons included.
 *
 * Nothing here ever throws: AMI down, a refusal, a timeout or a value in
 * another format is `unavailable`, and the caller does what it did without
 * the keeper (at-least-once).
 */
import type { Logger } from 'pino';
import type { AmiClient } from './ami/client.js';
import { errorCode, errorMessage, quoted } from '../errors.js';

/** The AstDB family the handler writes into. */
export const KEEPER_FAMILY = 'sms-router';

/** What the keeper needs of the AMI client. */
export type KeeperAmi = Pick<AmiClient, 'state' | 'waitConnected' | 'dbGet' | 'dbDel'>;

/** The key of a call file's outcome: its name without `.call` (`smsr-F-12-a1`). */
export function keeperKey(callFile: string): string {
  return callFile.replace(/\.call$/, '');
}

/** The `Set:` lines of an F/V call file when the keeper is on (SMSR_CALL first: the handler reads it). */
export function keeperVariables(context: string, callFile: string): Record<string, string> {
  return { SMSR_CALL: keeperKey(callFile), 'CHANNEL(hangup_handler_push)': `${context},s,1` };
}

/** The channel variables the handler saw. Empty strings: the call never set them (SendFAX / Playback did not run). */
export interface KeptOutcome {
  faxStatus: string;
  faxPages: number;
  playbackStatus: string;
  faxError: string;
}

const VALUE = /^([A-Z_]*):([0-9]{0,6}):([A-Z_]*):(.*)$/s;

/** Parses the handler's value; undefined when it is not in that format (a dialplan written for something else). */
export function parseKeptOutcome(value: string): KeptOutcome | undefined {
  const m = VALUE.exec(value);
  if (!m) return undefined;
  return { faxStatus: m[1]!, faxPages: Number(m[2] || 0), playbackStatus: m[3]!, faxError: m[4]! };
}

export type KeeperLookup =
  | { kind: 'found'; outcome: KeptOutcome }
  /** No key: the handler did not run for this call (not in the dialplan?), or the key was deleted already. */
  | { kind: 'absent' }
  /** AMI down or refusing, or a value we cannot read: nothing is known. */
  | { kind: 'unavailable'; reason: string }
  /** The daemon is stopping: decide nothing now, the archived file is read again at the next start. */
  | { kind: 'closed' };

export interface OutcomeKeeperOptions {
  ami: KeeperAmi;
  log: Logger;
  /**
   * How long after start() a lookup waits for AMI to log in: at start the
   * archive is read at once while AMI is still connecting. Later, AMI not
   * connected means down, and nothing waits.
   */
  startupGraceMs: number;
  /** Waits before asking again for a key that is not there yet (default ABSENT_RETRY_MS). */
  absentRetryMs?: readonly number[];
}

/** 0.25 s, then 0.75 s, then 2 s: a handler that has not run 3 s after the archive did not run. */
export const ABSENT_RETRY_MS: readonly number[] = [250, 750, 2000];

export class OutcomeKeeper {
  private graceUntil = 0;
  private closed = false;
  private resolveClosing!: () => void;
  private readonly closing = new Promise<void>((resolve) => (this.resolveClosing = resolve));

  constructor(private readonly options: OutcomeKeeperOptions) {}

  /** The daemon's start: lookups made within the startup grace wait for AMI's first login. */
  start(): void {
    this.graceUntil = performance.now() + this.options.startupGraceMs;
  }

  /** Stopping: waits end now, and every lookup from now on (or in flight) answers `closed`. */
  close(): void {
    this.closed = true;
    this.resolveClosing();
  }

  /** What the hangup handler recorded for this call file, if anything. */
  async lookup(callFile: string): Promise<KeeperLookup> {
    const up = await this.connected();
    if (up !== true) return up === 'closed' ? { kind: 'closed' } : { kind: 'unavailable', reason: `AMI is not connected (${this.options.ami.state})` };
    let value: string | undefined;
    // pbx_spool may archive the call a few milliseconds before the hangup handler has run (seen on
    // the lab: the archive appeared 5 ms before the handler's next line), so a missing key is asked
    // for again, a little later, before it counts as absent.
    for (const wait of [0, ...(this.options.absentRetryMs ?? ABSENT_RETRY_MS)]) {
      if (wait > 0 && (await this.sleep(wait)) === 'closed') return { kind: 'closed' };
      try {
        value = await this.options.ami.dbGet(KEEPER_FAMILY, keeperKey(callFile));
      } catch (err) {
        return this.closed ? { kind: 'closed' } : { kind: 'unavailable', reason: `DBGet failed (${errorCode(err)}: ${errorMessage(err)})` };
      }
      if (this.closed) return { kind: 'closed' };
      if (value !== undefined) break;
    }
    if (value === undefined) return { kind: 'absent' };
    const outcome = parseKeptOutcome(value);
    if (!outcome) return { kind: 'unavailable', reason: `the value ${quoted(value)} is not FAXSTATUS:FAXPAGES:PLAYBACKSTATUS:FAXERROR` };
    return { kind: 'found', outcome };
  }

  /** Waits `ms`, or less when the keeper closes meanwhile. */
  private async sleep(ms: number): Promise<'closed' | 'slept'> {
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<'slept'>((resolve) => (timer = setTimeout(() => resolve('slept'), ms)));
    const result = await Promise.race([slept, this.closing.then(() => 'closed' as const)]);
    clearTimeout(timer);
    return result;
  }

  /** Deletes the call's key once the journal has its outcome, so AstDB does not fill up. Best effort: a failure is logged. */
  async forget(callFile: string): Promise<void> {
    const key = keeperKey(callFile);
    const up = await this.connected();
    if (up === 'closed') return;
    if (!up) {
      this.options.log.warn({ callFile, code: 'AMI_NOT_CONNECTED' }, `outcome keeper: AMI is not connected; ${KEEPER_FAMILY}/${key} stays in AstDB (database deltree ${KEEPER_FAMILY} clears it)`);
      return;
    }
    try {
      const deleted = await this.options.ami.dbDel(KEEPER_FAMILY, key);
      this.options.log.debug({ callFile, deleted }, 'outcome keeper: AstDB entry deleted');
    } catch (err) {
      if (this.closed) return;
      this.options.log.warn({ callFile, code: errorCode(err), err: errorMessage(err) }, `outcome keeper: could not delete ${KEEPER_FAMILY}/${key}; it stays in AstDB`);
    }
  }

  /** true when logged in to AMI (waiting for it within the startup grace), false when not, 'closed' when stopping. */
  private async connected(): Promise<boolean | 'closed'> {
    const { ami } = this.options;
    const up = () => ami.state === 'connected'; // a function: TypeScript would keep the narrowed state across the await
    if (this.closed) return 'closed';
    if (up()) return true;
    const left = this.graceUntil - performance.now();
    if (left <= 0) return false;
    const waiting = ami.waitConnected(Math.ceil(left));
    waiting.catch(() => undefined); // the race below may be won by close(); the wait then ends on its own
    try {
      await Promise.race([waiting, this.closing]);
    } catch {
      /* not within the grace, or the client stopped */
    }
    if (this.closed) return 'closed';
    return up();
  }
}
