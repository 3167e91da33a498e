/**
 * Call files for the S route: at most one pending call per app_sms queue,
 * as smsq does, because one `SMS(QUEUE,s)` call sends every queued file.
 * The row is committed before the file is written, so after a crash a row
 * without its file just leads to a new call; a file is never written twice.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Journal } from '../journal/journal.js';
import { renderCallFile } from './call-file.js';
import { CALL_FILE_MODE, writeViaStaging } from '../spool/atomic-write.js';

export interface CallSpoolOptions {
  fsync: boolean;
}

export class SmsCallSpool {
  constructor(
    private readonly config: Config,
    private readonly journal: Journal,
    private readonly options: CallSpoolOptions,
  ) {}

  /**
   * True when a call we placed for this queue is not over as far as we know: its file still waits
   * (or its call runs) in outgoing/, or it is over and archived in outgoing_done/ but its outcome
   * has not been read yet. Until that outcome is read the queue gets no second call: the outcome
   * of the first call is applied to every part of the queue whose file app_sms took, and a second
   * call taking new files meanwhile would have them judged unacknowledged before their YOS lines
   * were written (sent twice; issue 10's crash suite caught it without any crash).
   */
  hasPendingCall(queue: string): boolean {
    let pending = false;
    for (const call of this.journal.pendingCalls('S', queue)) {
      if (this.isInFlight(call.fileName)) pending = true;
      else this.journal.finishCallRow(call.id, null); // gone from both (operator, or a crash before the file was written)
    }
    return pending;
  }

  /** Another call to this queue is still in flight (see hasPendingCall), besides `fileName`. */
  otherCallInFlight(queue: string, fileName: string): boolean {
    return this.journal.pendingCalls('S', queue).some((call) => call.fileName !== fileName && this.isInFlight(call.fileName));
  }

  /**
   * pbx_spool keeps a call file in outgoing/ until the call is over, then renames it into
   * outgoing_done/ (one rename: it is always in one of the two). existsSync stats; it never
   * opens the file (SPEC §1: never open files in outgoing/).
   */
  private isInFlight(fileName: string): boolean {
    const { outgoing, outgoingDone } = this.config.spool;
    return existsSync(path.join(outgoing, fileName)) || existsSync(path.join(outgoingDone, fileName));
  }

  /** Makes sure exactly one call will run `SMS(queue,s)` on `channel`. Returns the new file name, if one was written. */
  ensureCall(queue: string, channel: string, firstMessageId: number | null, at?: Date): string | undefined {
    if (this.hasPendingCall(queue)) return undefined;
    // Pacing: one call at a time to a channel, at most [sms] max_concurrent_calls. The files wait in
    // mttx and the queue gets its call when one ends (Daemon.sweepSmsQueues).
    if (this.journal.outstandingCallsTo(channel) > 0 || this.journal.outstandingCalls('S') >= this.config.sms.maxConcurrentCalls) {
      return undefined;
    }
    const { sms, centre, spool } = this.config;
    const call = this.journal.addCall(
      { service: 'S', queue, channel, messageId: firstMessageId, attempt: 1 },
      (id) => `smsr-S-${queue}-${id}.call`,
    );
    const body = renderCallFile({
      channel,
      callerId: `SMS <${centre.sendNumber}>`,
      maxRetries: sms.maxRetries,
      retryTime: sms.retryTime,
      waitTime: sms.waitTime,
      archive: true,
      application: 'SMS',
      data: `${queue},s`,
    });
    // 0660: pbx_spool appends its retry and Status lines to the file (THREATS.md, file modes).
    writeViaStaging(spool.tmp, spool.outgoing, call.fileName, Buffer.from(body), { fsync: this.options.fsync, mtime: at, mode: CALL_FILE_MODE });
    return call.fileName;
  }
}
