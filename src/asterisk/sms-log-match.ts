/**
 * Pairs app_sms log lines with the message parts we wrote to sms/mttx, so
 * that each part learns its true outcome: YOS = the phone acknowledged it,
 * NOS = refused, ?OS = the call ended first. Pure: no I/O, no clock.
 *
 * A log line carries no id of ours, only queue, oa, da and the text in
 * app_sms's log form, so we match on those. app_sms sends a queue's files in
 * the order it finds them, so among equal candidates the oldest is taken:
 * repeats of one text then pair up in order.
 */
import type { SmsLogEntry } from './sms-log.js';

export interface QueuedSms {
  id: number;
  part: number;
  queue: string;
  oa: string;
  da: string | undefined;
  /** appLogText() of the part's text. */
  logText: Buffer;
  /**
   * Characters app_sms counts (UTF-16 units, at most 160), what the `n`
   * option logs as `udl=N`. Optional: derived from logText when absent, which
   * is exact unless the text holds a character whose low byte is `\` (Ŝ, ќ …).
   */
  udl?: number;
}

export interface DeliveryMatch {
  sms: QueuedSms;
  acknowledged: boolean;
}

/** app_sms's numcpy(): a leading '+' survives, then digits only; that is what it logs. */
const asLogged = (n: string | undefined): string => (n === undefined ? '' : (n.trimStart().startsWith('+') ? '+' : '') + n.replace(/[^0-9]/g, ''));

/**
 * The text as it really ends up in the log: sms_log() writes with strlen(),
 * so a 0x00 low byte ends the text there, and a raw 0x0A low byte ends the
 * line there (the rest becomes a line of its own).
 */
function loggedText(logText: Buffer): Buffer {
  let end = logText.length;
  for (const stop of [0x00, 0x0a]) {
    const i = logText.indexOf(stop);
    if (i >= 0 && i < end) end = i;
  }
  return logText.subarray(0, end);
}

/** Units of a logText: every byte is one, except the two-byte escapes \\ \n \r. */
function unitsOf(logText: Buffer): number {
  let units = 0;
  for (let i = 0; i < logText.length; i++, units++) {
    const next = logText[i + 1];
    if (logText[i] === 0x5c && (next === 0x5c || next === 0x6e || next === 0x72)) i++;
  }
  return units;
}

const UDL = /^udl=(\d+)$/;

export class DeliveryMatcher {
  /** Per queue, in the order written (app_sms runs one queue's files in order). */
  private readonly byQueue = new Map<string, QueuedSms[]>();
  private count = 0;

  add(sms: QueuedSms): void {
    const list = this.byQueue.get(sms.queue);
    if (list) list.push(sms);
    else this.byQueue.set(sms.queue, [sms]);
    this.count++;
  }

  /** Forgets every part of a message (it became final, or was cancelled). */
  remove(id: number): void {
    for (const [queue, list] of this.byQueue) {
      const kept = list.filter((s) => s.id !== id);
      this.count -= list.length - kept.length;
      if (kept.length === 0) this.byQueue.delete(queue);
      else if (kept.length !== list.length) this.byQueue.set(queue, kept);
    }
  }

  /**
   * The part this log entry reports on, removed from the pending set; or
   * undefined (another role/direction, or nothing fits). Only O+S entries
   * count: Asterisk, as the centre, sent a message to a phone.
   *
   * `taken`: whether app_sms has read a candidate's file (it deletes the file
   * before sending, so a part it reports on has none). Only taken parts are
   * candidates. Parts with the same text to the same queue (two identical
   * notices) cannot be told apart by the line; crediting one still waiting
   * would leave the sent one unacknowledged and retried (sent twice), and a
   * line read again after a crash would mark a waiting part delivered before
   * the phone saw it.
   */
  match(entry: SmsLogEntry, taken?: (sms: QueuedSms) => boolean): DeliveryMatch | undefined {
    if (entry.role !== 'S' || entry.direction !== 'O') return undefined;
    const list = this.byQueue.get(entry.queue);
    if (!list) return undefined;
    const oa = entry.oa ?? '';
    const sameAddress = (s: QueuedSms): boolean =>
      asLogged(s.oa) === oa && (entry.da === undefined || asLogged(s.da) === entry.da);

    const eligible = (s: QueuedSms): boolean => sameAddress(s) && (taken === undefined || taken(s));
    let index = list.findIndex((s) => eligible(s) && loggedText(s.logText).equals(entry.text));
    if (index < 0) {
      // The `n` option logs only the length: safe only when it points at one part.
      const udl = UDL.exec(entry.text.toString('latin1'));
      if (udl) {
        const length = Number(udl[1]);
        const fits = list.flatMap((s, i) => (eligible(s) && (s.udl ?? unitsOf(s.logText)) === length ? [i] : []));
        if (fits.length === 1) index = fits[0]!;
      }
    }
    if (index < 0) return undefined;
    const [sms] = list.splice(index, 1);
    if (list.length === 0) this.byQueue.delete(entry.queue);
    this.count--;
    return { sms: sms!, acknowledged: entry.status === 'Y' };
  }

  pendingFor(queue: string): QueuedSms[] {
    return [...(this.byQueue.get(queue) ?? [])];
  }

  get size(): number {
    return this.count;
  }
}
