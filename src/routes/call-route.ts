/**
 * What the fax (F) and voice (V) routes share: each attempt is a call file
 * that dials the recipient and hands the answered call to the daemon's
 * FastAGI service (agi://HOST:PORT/<script>/<journal id>). The FastAGI
 * session learns the true outcome (FAXSTATUS, PLAYBACKSTATUS): an answered
 * call is not a delivered fax. A failed attempt is retried with a new call
 * file after `retry_delay`, up to `max_attempts`; then the sender is told.
 *
 * Order of writes: the call row and the message's `spooled` state are
 * committed first, then the file is renamed into outgoing/. After a crash in
 * between, recover() finds a pending call whose file is in neither outgoing/
 * nor outgoing_done/ (so Asterisk never saw it) and writes it.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { retryWaitMs, type CallServiceConfig, type Config } from '../config.js';
import type { Recipient, RecipientDirectory } from '../directory/recipients.js';
import type { Journal, MessageRow } from '../journal/journal.js';
import { renderCallFile } from '../asterisk/call-file.js';
import { keeperVariables } from '../asterisk/outcome-keeper.js';
import { CALL_FILE_MODE, writeViaStaging } from '../spool/atomic-write.js';
import { callTime } from '../schedule/call-time.js';
import { errorCode, errorMessage } from '../errors.js';
import type { DeliveryItem } from './sms.js';
import { crashPoint } from '../testing/crash-points.js';

export interface CallRouteSpec {
  letter: 'F' | 'V';
  script: 'fax' | 'voice';
  service: CallServiceConfig;
  /** Where this route's artefacts live (named by journal id). */
  dir: string;
  keep: boolean;
  /** Writes what the call will play or send; idempotent (same id → same files). */
  prepare(message: MessageRow, recipient: Recipient): Promise<void>;
  /** Files of a message, for clean-up once it is final. */
  artefacts(message: MessageRow): string[];
}

export interface CallRouteDeps {
  config: Config;
  journal: Journal;
  directory: RecipientDirectory;
  log: Logger;
  /** HOST:PORT for agi:// URLs, or undefined while the FastAGI service is not listening. */
  agiAddress: () => string | undefined;
  /** After the last failed attempt: tell the sender. */
  finalFailure(message: MessageRow, reason: string): void;
  /** A retry was scheduled: wake the work loop at that time. */
  retryScheduled(at: Date): void;
  now?: () => Date;
  /** How long prepare() (the render) took, for /metrics. */
  prepared?(letter: 'F' | 'V', seconds: number): void;
}

export class CallRoute {
  constructor(
    readonly spec: CallRouteSpec,
    private readonly deps: CallRouteDeps,
  ) {
    // Security: the TIFFs and WAVs are only read by Asterisk's group; its members need not write here (umask can only narrow this).
    mkdirSync(spec.dir, { recursive: true, mode: 0o750 });
  }

  private get now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  async deliver(items: readonly DeliveryItem[]): Promise<void> {
    const { journal, log } = this.deps;
    const { letter } = this.spec;
    for (const { message, recipient } of items) {
      const logFields = { msgId: message.id, from: message.oa, to: message.da, route: letter, kind: message.kind };
      const agi = this.deps.agiAddress();
      if (!agi) {
        if (message.state !== 'pending' || message.lastError !== 'AGI_NOT_LISTENING') {
          journal.update(message.id, { state: 'pending', route: letter, channel: recipient.channel, lastError: 'AGI_NOT_LISTENING' });
          log.info({ ...logFields, outcome: 'pending' }, 'the FastAGI service is not running (sms-router process does not start it); the message waits');
        }
        continue;
      }
      const attemptNow = message.attempts + 1;
      if (!journal.callFor(message.id, letter, attemptNow)) {
        // Pacing: one call at a time to a channel, and at most max_concurrent_calls of this service.
        // The rest wait in the journal (not in outgoing/) and are routed again when a call ends.
        const busy =
          journal.outstandingCallsTo(recipient.channel) > 0
            ? 'WAITING_FOR_CHANNEL'
            : journal.outstandingCalls(letter) >= this.spec.service.maxConcurrentCalls
              ? 'WAITING_FOR_LINE'
              : undefined;
        if (busy) {
          if (message.state !== 'pending' || message.lastError !== busy) {
            journal.update(message.id, { state: 'pending', route: letter, channel: recipient.channel, lastError: busy, nextAttemptAt: null });
            log.debug({ ...logFields, outcome: 'pending', code: busy }, 'waiting for a free line');
          }
          continue;
        }
      }
      try {
        const started = process.hrtime.bigint();
        await this.spec.prepare(message, recipient);
        this.deps.prepared?.(letter, Number(process.hrtime.bigint() - started) / 1e9);
      } catch (err) {
        // A message we cannot render will not render next time either: fail it and tell the sender.
        log.error({ ...logFields, code: errorCode(err), err: errorMessage(err) }, 'cannot prepare the call');
        journal.update(message.id, { state: 'failed', route: letter, channel: recipient.channel, lastError: `${errorCode(err)}: ${errorMessage(err)}` });
        this.deps.finalFailure({ ...message, state: 'failed' }, errorMessage(err));
        continue;
      }
      const attempt = message.attempts + 1;
      const call =
        journal.callFor(message.id, letter, attempt) ??
        journal.transaction(() => {
          const c = journal.addCall(
            { service: letter, queue: String(message.id), channel: recipient.channel, messageId: message.id, attempt },
            () => this.fileName(message.id, attempt),
          );
          journal.update(message.id, { state: 'spooled', route: letter, channel: recipient.channel, attempts: attempt, nextAttemptAt: null });
          return { ...c, state: 'pending' };
        });
      crashPoint('call.after-commit');
      this.writeCallFile(message.id, recipient, call.fileName, agi);
      crashPoint('call.after-call-file');
      log.info({ ...logFields, outcome: 'calling', attempt, callFile: call.fileName }, 'call placed');
    }
  }

  fileName(messageId: number, attempt: number): string {
    return `smsr-${this.spec.letter}-${messageId}-a${attempt}.call`;
  }

  private writeCallFile(messageId: number, recipient: Recipient, fileName: string, agi: string): void {
    const at = callTime(this.deps.config, recipient, this.spec.letter, this.now);
    const { config } = this.deps;
    const { service, script } = this.spec;
    const body = renderCallFile({
      channel: recipient.channel,
      callerId: service.callerId,
      maxRetries: service.maxRetries,
      retryTime: service.retryTime,
      waitTime: service.waitTime,
      archive: true,
      application: 'AGI',
      data: `agi://${agi}/${script}/${messageId}`,
      // The outcome keeper: a hangup handler records FAXSTATUS/PLAYBACKSTATUS in AstDB under this call's name.
      variables: config.ami.outcomeKeeper ? keeperVariables(config.ami.outcomeKeeper, fileName) : undefined,
    });
    // 0660: pbx_spool appends its retry and Status lines to the file (THREATS.md, file modes).
    writeViaStaging(config.spool.tmp, config.spool.outgoing, fileName, Buffer.from(body), { fsync: config.spool.fsync, mtime: at, mode: CALL_FILE_MODE });
    if (at) this.deps.log.info({ msgId: messageId, route: this.spec.letter, callFile: fileName, callAt: at.toISOString() }, 'quiet hours: the call waits for the end of the window');
  }

  /** Writes call files that were committed but never reached outgoing/ (a crash in between). */
  recover(): void {
    const { journal, config, directory, log } = this.deps;
    const agi = this.deps.agiAddress();
    if (!agi) return;
    for (const call of journal.pendingCallRows()) {
      if (call.service !== this.spec.letter || call.messageId === null) continue;
      const inOutgoing = existsSync(path.join(config.spool.outgoing, call.fileName));
      const archived = existsSync(path.join(config.spool.outgoingDone, call.fileName));
      if (inOutgoing || archived) continue;
      const message = journal.get(call.messageId);
      const recipient = message && directory.get(message.da);
      if (!message || message.state !== 'spooled' || !recipient) continue;
      this.writeCallFile(message.id, recipient, call.fileName, agi);
      log.warn({ msgId: message.id, route: this.spec.letter, callFile: call.fileName }, 'call file written again after a crash');
    }
  }

  /** The current attempt's call row, if this message is waiting for one. */
  activeCall(message: MessageRow): { id: number; fileName: string; state: string } | undefined {
    const call = this.deps.journal.callFor(message.id, this.spec.letter, message.attempts);
    return call && call.state === 'pending' ? call : undefined;
  }

  delivered(message: MessageRow, detail: Record<string, unknown>, options: { keepFiles?: boolean } = {}): void {
    const { journal, log } = this.deps;
    const call = this.activeCall(message);
    journal.transaction(() => {
      if (call) journal.finishCallRow(call.id, 'Completed');
      journal.update(message.id, { state: 'delivered', lastError: null, nextAttemptAt: null });
      journal.setRouteDetail(message.id, detail);
    });
    log.info({ msgId: message.id, from: message.oa, to: message.da, route: this.spec.letter, outcome: 'delivered', attempt: message.attempts, ...detail }, 'delivered');
    if (!options.keepFiles) this.cleanup(message);
  }

  /** A failed attempt: retried after retry_delay, or after the last one the sender is told. */
  failedAttempt(message: MessageRow, reason: string, detail: Record<string, unknown> = {}, callStatus = 'Completed', options: { final?: boolean } = {}): void {
    const { journal, log } = this.deps;
    const { maxAttempts } = this.spec.service;
    const call = this.activeCall(message);
    const logFields = { msgId: message.id, from: message.oa, to: message.da, route: this.spec.letter, attempt: message.attempts, reason, ...detail };
    if (message.attempts >= maxAttempts || options.final) {
      journal.transaction(() => {
        if (call) journal.finishCallRow(call.id, callStatus);
        journal.update(message.id, { state: 'failed', lastError: reason, nextAttemptAt: null });
        journal.setRouteDetail(message.id, detail);
      });
      log.warn({ ...logFields, outcome: 'failed' }, 'last attempt failed; the sender is told');
      this.deps.finalFailure({ ...message, state: 'failed', lastError: reason }, reason);
      this.cleanup(message);
      return;
    }
    const at = new Date(this.now.getTime() + retryWaitMs(this.spec.service, message.attempts));
    journal.transaction(() => {
      if (call) journal.finishCallRow(call.id, callStatus);
      journal.update(message.id, { state: 'pending', lastError: reason, nextAttemptAt: at.toISOString() });
      journal.setRouteDetail(message.id, detail);
    });
    log.info({ ...logFields, outcome: 'retry', nextAttemptAt: at.toISOString() }, 'attempt failed; retry scheduled');
    this.deps.retryScheduled(at);
  }

  /** Removes a final message's files unless [fax]/[voice] keep = true. */
  cleanup(message: MessageRow): void {
    if (this.spec.keep) return;
    for (const file of this.spec.artefacts(message)) rmSync(file, { force: true });
  }
}
