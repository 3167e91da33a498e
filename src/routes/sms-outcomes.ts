/**
 * The true outcome of S messages. app_sms deletes an mttx file when it reads
 * it, before sending, and sets no channel variable, so the only record of a
 * phone's answer is app_sms's own log: a YOS line (the phone acknowledged)
 * or NOS (it refused). A part is matched to its log line by queue, oa and the
 * text in app_sms's low-byte form, in order for repeats.
 *
 *   all parts YOS                         → delivered
 *   a NOS                                 → failed attempt
 *   call Expired / Failed, files unread   → failed attempt
 *   call Completed, file read, no YOS     → failed attempt
 *   call Completed, file not read yet     → still queued; another call is placed
 *
 * A failed attempt is queued again after [sms] retry_delay (app_sms already
 * removed what it read), up to [sms] max_attempts; then the sender is told.
 * Acknowledged parts are kept in the row's detail, so a restart does not
 * forget them.
 */
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { retryWaitMs, type Config } from '../config.js';
import type { Journal, MessageRow } from '../journal/journal.js';
import { queueForNumber } from '../numbers.js';
import { appLogText, appSmsMisreads, decodeSmsFile, encodeSmsFile, textAppSmsSends } from '../spool/sms-file.js';
import { writeViaDotFile } from '../spool/atomic-write.js';
import { DeliveryMatcher } from '../asterisk/sms-log-match.js';
import type { SmsLogEntry } from '../asterisk/sms-log.js';
import type { SmsRoute } from './sms.js';

interface SmsDetail {
  reference?: number;
  acknowledged?: number[];
  [key: string]: unknown;
}

function detailOf(message: MessageRow): SmsDetail {
  try {
    return message.detail ? (JSON.parse(message.detail) as SmsDetail) : {};
  } catch {
    return {};
  }
}

/**
 * A copy of a small Buffer with its own memory. Buffers of a few bytes are
 * slices of shared 8 KiB pool blocks; one kept for as long as its message
 * waits for the phone keeps its whole block alive, so 100,000 expected parts
 * held ~35 MiB of blocks for ~10 MiB of text.
 */
function ownBuffer(bytes: Buffer): Buffer {
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}

export class SmsOutcomes {
  private readonly matcher = new DeliveryMatcher();
  /**
   * Ids that may still have parts in the matcher. DeliveryMatcher.remove scans
   * every pending part, so calling it for a message never added (every new
   * message, in expect) made a backlog quadratic: 100,000 spooled messages cost
   * 5·10⁹ comparisons. Only ids in this set can have parts to remove.
   */
  private readonly inMatcher = new Set<number>();

  constructor(
    private readonly config: Config,
    private readonly journal: Journal,
    private readonly route: SmsRoute,
    private readonly log: Logger,
    private readonly hooks: { finalFailure(message: MessageRow, reason: string): void; retryScheduled(at: Date): void; now?: () => Date },
  ) {}

  /** Parts written to mttx are expected in the log: called by the S route after each write. */
  expect(message: MessageRow): void {
    const acknowledged = new Set(detailOf(message).acknowledged ?? []);
    const queue = this.intern(queueForNumber(message.da));
    const oa = this.intern(message.oa);
    const da = this.intern(message.da);
    this.forget(message.id);
    this.route.partsFor(message).forEach((part, i) => {
      if (acknowledged.has(i + 1)) return;
      // What app_sms will log is the text it really sends, read from the file as it reads it.
      this.matcher.add({ id: message.id, part: i + 1, queue, oa, da, logText: ownBuffer(appLogText(textAppSmsSends(part.text))) });
      this.inMatcher.add(message.id);
    });
  }

  /**
   * One string per distinct number: every expected part holds its queue, oa and
   * da until the phone answers, and each row read from SQLite brings new copies.
   */
  private readonly numbers = new Map<string, string>();
  private intern(value: string): string {
    const known = this.numbers.get(value);
    if (known !== undefined) return known;
    this.numbers.set(value, value);
    return value;
  }

  /** Removes every part of a message from the matcher (a no-op, without the scan, for one that has none). */
  private forget(id: number): void {
    if (!this.inMatcher.delete(id)) return;
    this.matcher.remove(id);
  }

  /** At start: every S message handed to Asterisk is expected again. */
  rebuild(): void {
    for (const m of this.spooledSms()) this.expect(m);
  }

  /**
   * At start (crash safety, issue 10). The S route stages a message's files as dot-files, commits
   * the row `spooled`, then renames them in. A crash after the commit leaves dot-files that app_sms
   * never saw (it skips dot-files), so renaming them in now cannot send anything twice; a part
   * with neither file was renamed in and taken by a call, whose outcome settles it as usual.
   * Returns how many files went in (the caller then places calls for their queues).
   */
  recoverStaged(): number {
    const { mttx } = this.config.spool;
    let renamed = 0;
    for (const m of this.spooledSms()) {
      const acknowledged = new Set(detailOf(m).acknowledged ?? []);
      for (const [i, file] of this.filesOf(m).entries()) {
        if (acknowledged.has(i + 1)) continue;
        const staged = path.join(mttx, `.${path.basename(file)}`);
        if (existsSync(file) || !existsSync(staged)) continue;
        renameSync(staged, file);
        renamed++;
        this.log.warn({ msgId: m.id, file, route: 'S' }, 'an SMS file staged before a crash was renamed into sms/mttx');
      }
    }
    return renamed;
  }

  /** Every S message handed to Asterisk, a page of rows at a time. */
  private *spooledSms(): Generator<MessageRow> {
    for (let afterId = 0; ; ) {
      const rows = this.journal.listByState('spooled', 500, afterId);
      if (rows.length === 0) return;
      afterId = rows[rows.length - 1]!.id;
      for (const m of rows) if (m.route === 'S') yield m;
    }
  }

  /**
   * At start, after an upgrade (issue 15): sms-router used to write non-ASCII text on a
   * `ud=` line, which app_sms mangles (SPEC §2). Such files of ours that app_sms has not taken yet
   * are written again in smsq's form, in place (dot-file, rename), so the phone gets the text as
   * it was meant and its YOS line matches. A call already reading one sends the old form; its log
   * line then does not match and the message is retried as usual. Returns how many.
   */
  rewriteMisencoded(): number {
    const { mttx } = this.config.spool;
    let rewritten = 0;
    for (const m of this.spooledSms()) {
      for (const file of this.filesOf(m)) {
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch {
          continue; // taken by app_sms, or acknowledged
        }
        if (!appSmsMisreads(bytes)) continue;
        const decoded = decodeSmsFile(bytes, { requireDa: false });
        if (!decoded.ok) continue;
        writeViaDotFile(mttx, path.basename(file), encodeSmsFile(decoded.message, 'smsq'), { fsync: this.config.spool.fsync });
        rewritten++;
        this.log.warn({ msgId: m.id, file, route: 'S' }, 'an SMS file with text app_sms would misread (ud= UTF-8, written before the upgrade) was written again as ud#/ud##');
      }
    }
    return rewritten;
  }

  /** New lines of app_sms's log. */
  onLogEntries(entries: readonly SmsLogEntry[]): void {
    for (const entry of entries) {
      const hit = this.matcher.match(entry, (sms) => !existsSync(path.join(this.config.spool.mttx, `${sms.queue}.${sms.id}-${sms.part}`)));
      if (!hit) continue;
      const message = this.journal.get(hit.sms.id);
      if (!message || message.state !== 'spooled' || message.route !== 'S') continue;
      if (!hit.acknowledged) {
        this.failedAttempt(message, 'the phone refused the message (NOS)');
        continue;
      }
      const detail = detailOf(message);
      const acknowledged = [...new Set([...(detail.acknowledged ?? []), hit.sms.part])].sort((a, b) => a - b);
      const parts = this.route.partsFor(message).length;
      if (acknowledged.length >= parts) {
        this.journal.transaction(() => {
          this.journal.update(message.id, { state: 'delivered', lastError: null, nextAttemptAt: null });
          this.journal.setRouteDetail(message.id, { ...detail, acknowledged, deliveredAt: entry.time });
        });
        this.forget(message.id);
        this.log.info({ msgId: message.id, from: message.oa, to: message.da, route: 'S', outcome: 'delivered', attempt: message.attempts }, 'the phone acknowledged the SMS');
      } else {
        this.journal.setRouteDetail(message.id, { ...detail, acknowledged });
      }
    }
  }

  /** An S call came back from Asterisk; the log has been read up to now. */
  onCallFinished(queue: string, status: string): void {
    const ids = [...new Set(this.matcher.pendingFor(queue).map((p) => p.id))];
    for (const id of ids) {
      const message = this.journal.get(id);
      if (!message || message.state !== 'spooled') {
        this.forget(id);
        continue;
      }
      const unread = this.filesOf(message).filter((f) => existsSync(f));
      if (status === 'Completed' && unread.length > 0) continue; // not taken by this call: the next one sends it
      const reason =
        status === 'Expired'
          ? 'no answer'
          : status === 'Failed'
            ? 'the call file was refused by Asterisk'
            : 'the phone did not acknowledge the message';
      if (status === 'Failed') this.log.error({ msgId: id, queue, status }, 'Asterisk refused our call file (Status: Failed)');
      this.failedAttempt(message, reason, status === 'Failed');
    }
  }

  private filesOf(message: MessageRow): string[] {
    const queue = queueForNumber(message.da);
    return this.route.partsFor(message).map((_, i) => path.join(this.config.spool.mttx, `${queue}.${message.id}-${i + 1}`));
  }

  /** `final`: no retry (a call file Asterisk refused is our bug, and would be refused again). */
  private failedAttempt(message: MessageRow, reason: string, final = false): void {
    this.forget(message.id);
    // What app_sms has not read yet must not go out on a later call as well as in the retry.
    for (const f of this.filesOf(message)) rmSync(f, { force: true });
    const detail = detailOf(message);
    const log = { msgId: message.id, from: message.oa, to: message.da, route: 'S', attempt: message.attempts, reason };
    if (final || message.attempts >= this.config.sms.maxAttempts) {
      this.journal.transaction(() => {
        this.journal.update(message.id, { state: 'failed', lastError: reason, nextAttemptAt: null });
        this.journal.setRouteDetail(message.id, detail);
      });
      this.log.warn({ ...log, outcome: 'failed' }, 'last SMS attempt failed; the sender is told');
      this.hooks.finalFailure({ ...message, state: 'failed', lastError: reason }, reason);
      return;
    }
    const at = new Date((this.hooks.now?.() ?? new Date()).getTime() + retryWaitMs(this.config.sms, message.attempts));
    this.journal.transaction(() => {
      this.journal.update(message.id, { state: 'pending', lastError: reason, nextAttemptAt: at.toISOString() });
      this.journal.setRouteDetail(message.id, detail);
    });
    this.log.info({ ...log, outcome: 'retry', nextAttemptAt: at.toISOString() }, 'SMS attempt failed; retry scheduled');
    this.hooks.retryScheduled(at);
  }
}
