/**
 * The routes that place calls through Asterisk's spool (S, F and V), and what
 * Asterisk tells of those calls afterwards: the FastAGI session of an
 * answered F or V call, the archived call file in outgoing_done, and app_sms's
 * log of the parts each S call took.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { RecipientDirectory } from './directory/recipients.js';
import type { Journal, MessageRow } from './journal/journal.js';
import type { Metrics } from './observe/metrics.js';
import { SmsRoute } from './routes/sms.js';
import type { CallRoute } from './routes/call-route.js';
import { createFaxRoute, faxPageCount, recordFaxOutcome, runFaxSession } from './routes/fax.js';
import { createVoiceRoute, recordPlaybackOutcome, runVoiceSession } from './routes/voice.js';
import { SmsOutcomes } from './routes/sms-outcomes.js';
import { Speech } from './render/speech.js';
import { OutgoingDoneWatcher, type ArchivedCall } from './asterisk/outgoing-done.js';
import { SmsLogFollower, type FollowPosition } from './asterisk/sms-log.js';
import type { AgiSession } from './asterisk/fastagi/server.js';
import type { AmiClient } from './asterisk/ami/client.js';
import { OutcomeKeeper, type KeptOutcome } from './asterisk/outcome-keeper.js';
import { listInbox } from './spool/inbox.js';
import { errorCode, errorMessage } from './errors.js';

export interface CallsDeps {
  /** The current config (reload() replaces parts of it); the routes keep the one they were built with. */
  config: () => Config;
  journal: Journal;
  directory: RecipientDirectory;
  log: Logger;
  metrics: Metrics;
  /** fsync spool files before renaming them into place. */
  fsync: boolean;
  now: (() => Date) | undefined;
  /** The agi:// address call files name, once the FastAGI service listens. */
  agiAddress: () => string | undefined;
  /** A retry is scheduled at `at`: wake the work loop then. */
  wakeAt: (at: Date) => void;
  requestRouting: (state: 'received' | 'pending') => void;
  /** A message's last attempt failed: bounce it to its sender. */
  bounce: (message: MessageRow, reason: 'fax-failed' | 'voice-failed' | 'sms-failed', detail: string) => void;
  /** The AMI client, when [ami] is enabled: the outcome keeper reads AstDB through it. */
  ami: AmiClient | undefined;
}

export class Calls {
  readonly fax: CallRoute;
  readonly voice: CallRoute;
  readonly sms: SmsRoute;
  readonly outgoingDone: OutgoingDoneWatcher;
  private readonly smsOutcomes: SmsOutcomes;
  private readonly smsLog: SmsLogFollower;
  /** [ami] outcome_keeper: what a hangup handler recorded of F/V calls whose session could not. */
  private readonly keeper: OutcomeKeeper | undefined;
  private readonly journal: Journal;
  private readonly directory: RecipientDirectory;
  private readonly log: Logger;

  constructor(private readonly deps: CallsDeps) {
    const { journal, directory, log } = deps;
    const config = deps.config();
    this.journal = journal;
    this.directory = directory;
    this.log = log;
    const callDeps = {
      config,
      journal,
      directory,
      log,
      agiAddress: deps.agiAddress,
      retryScheduled: deps.wakeAt,
      now: deps.now,
      prepared: (letter: 'F' | 'V', seconds: number) => deps.metrics.rendered(letter === 'F' ? 'fax' : 'speech', seconds),
    };
    this.fax = createFaxRoute({ ...callDeps, finalFailure: (m, reason) => deps.bounce(m, 'fax-failed', reason) });
    this.voice = createVoiceRoute(
      { ...callDeps, finalFailure: (m, reason) => deps.bounce(m, 'voice-failed', reason) },
      new Speech({ engine: config.voice.engine, defaultLanguage: config.voice.language, log }),
    );
    const now = deps.now ?? (() => new Date());
    this.sms = new SmsRoute(
      config,
      journal,
      log,
      { fsync: deps.fsync },
      (id) => {
        const m = journal.get(id);
        if (m) this.smsOutcomes.expect(m);
      },
      now,
    );
    this.smsOutcomes = new SmsOutcomes(config, journal, this.sms, log, {
      finalFailure: (m, reason) => deps.bounce(m, 'sms-failed', reason),
      retryScheduled: deps.wakeAt,
    });
    this.smsLog = new SmsLogFollower({
      file: config.sms.appLog,
      store: {
        load: () => {
          const v = journal.readState('sms-log-position');
          return v ? (JSON.parse(v) as FollowPosition) : undefined;
        },
        save: (p) => journal.writeState('sms-log-position', JSON.stringify(p)),
      },
      onEntries: (entries) => {
        this.smsOutcomes.onLogEntries(entries);
        deps.requestRouting('received');
      },
      log,
    });
    this.keeper =
      config.ami.outcomeKeeper && deps.ami ? new OutcomeKeeper({ ami: deps.ami, log, startupGraceMs: config.ami.actionTimeout * 1000 }) : undefined;
    this.outgoingDone = new OutgoingDoneWatcher({
      dir: config.spool.outgoingDone,
      archiveDir: config.spool.keepCalls ? config.spool.callArchive : undefined,
      isOurs: (name) => journal.callNamed(name) !== undefined,
      onCall: (call) => this.onArchivedCall(call),
      log,
      rescanMs: config.spool.rescanInterval * 1000,
    });
  }

  private get config(): Config {
    return this.deps.config();
  }

  /**
   * The long-running daemon's start: calls a crash or a restart left are
   * settled, and the watchers of Asterisk's side start.
   */
  start(): void {
    this.fax.recover();
    this.voice.recover();
    this.smsOutcomes.rebuild();
    this.smsOutcomes.recoverStaged(); // crash safety (issue 10): before the sweep places their calls
    this.smsOutcomes.rewriteMisencoded(); // an upgrade's files app_sms would misread (issue 15)
    this.sweepSmsQueues();
    // The demo has no Asterisk to create the log's directory.
    if (this.config.spool.createMissing) mkdirSync(path.dirname(this.config.sms.appLog), { recursive: true });
    this.smsLog.start();
    this.keeper?.start();
    this.outgoingDone.start();
  }

  /** Crash safety (issue 10): S files a crash left staged go in, with their calls. */
  recoverStagedSms(): void {
    if (this.smsOutcomes.recoverStaged() > 0) this.sweepSmsQueues();
  }

  /**
   * Stops the watchers at once; resolves when the archived call in hand (if
   * any) is done with. Its keeper lookup may wait for AMI: stop AMI too
   * before waiting for this.
   */
  stop(): Promise<void> {
    this.keeper?.close();
    this.smsLog.stop();
    return this.outgoingDone.stop();
  }

  /** A fax or voice call answered: its session decides the message's fate. */
  async onCallSession(script: 'fax' | 'voice', id: number, session: AgiSession): Promise<void> {
    const route = script === 'fax' ? this.fax : this.voice;
    const message = this.journal.get(id);
    if (!message || message.route !== route.spec.letter || message.state !== 'spooled' || !route.activeCall(message)) {
      this.log.warn({ msgId: id, script, state: message?.state }, 'a call for a message that is not waiting for one; hanging up');
      await session.hangup().catch(() => undefined);
      return;
    }
    if (script === 'fax') await runFaxSession(session, message, route, this.config);
    else await runVoiceSession(session, message, route, this.config, this.directory.get(message.da)?.language ?? this.config.voice.language);
    // A line is free again: notices go out, and messages waiting for a line get it.
    this.deps.requestRouting('received');
    this.deps.requestRouting('pending');
  }

  /**
   * What Asterisk said of one of our F/V call files once it was archived in
   * outgoing_done (Status: Completed, Expired or Failed). For these services
   * the FastAGI session is authoritative; the archive only settles calls
   * whose session never reported: never answered (Expired), answered but no
   * session (Completed), or a call file Asterisk could not use (Failed).
   * `kept`: what the outcome keeper's hangup handler recorded of an answered
   * call, recorded as the session would have. Returns false when the file is
   * not one of ours or is already settled.
   */
  recordCallFinished(fileName: string, status: string, kept?: KeptOutcome): boolean {
    const call = this.journal.callNamed(fileName);
    if (!call || call.state !== 'pending' || call.messageId === null) return false;
    const route = call.service === 'F' ? this.fax : call.service === 'V' ? this.voice : undefined;
    const message = this.journal.get(call.messageId);
    if (!route || !message || message.state !== 'spooled' || message.attempts !== call.attempt) {
      this.journal.finishCallRow(call.id, status);
      return false;
    }
    if (status === 'Failed') {
      // Asterisk could not read our call file: a bug of ours, not a busy line. Say so loudly and stop retrying.
      this.log.error({ msgId: message.id, callFile: fileName, route: call.service }, 'Asterisk refused our call file (Status: Failed)');
      route.failedAttempt(message, 'the call file was refused by Asterisk', { callStatus: status }, status, { final: true });
      return true;
    }
    if (status === 'Completed' && kept && this.recordKept(route, message, fileName, kept)) return true;
    const reason = status === 'Expired' ? 'no answer' : 'the call was answered but the FastAGI session never reported';
    route.failedAttempt(message, reason, { callStatus: status }, status);
    return true;
  }

  /** The keeper's record of an answered call, judged as the FastAGI session judges: false when it cannot be (no TIFF to count pages). */
  private recordKept(route: CallRoute, message: MessageRow, callFile: string, kept: KeptOutcome): boolean {
    const logFields = { msgId: message.id, route: route.spec.letter, callFile, outcomeFrom: 'outcome-keeper', ...kept };
    const from = { outcomeFrom: 'outcome-keeper' };
    if (route === this.voice) {
      this.log.info(logFields, 'outcome read from the outcome keeper: the FastAGI session did not record it');
      recordPlaybackOutcome(route, message, kept.playbackStatus || undefined, from);
      return true;
    }
    let expectedPages: number;
    try {
      expectedPages = faxPageCount(this.config, message.id);
    } catch (err) {
      this.log.warn({ ...logFields, code: errorCode(err), err: errorMessage(err) }, 'outcome keeper: the TIFF cannot be read to count its pages; the attempt counts as failed');
      return false;
    }
    this.log.info(logFields, 'outcome read from the outcome keeper: the FastAGI session did not record it');
    recordFaxOutcome(route, message, { faxStatus: kept.faxStatus || null, faxError: kept.faxError || null, faxPages: kept.faxPages, ...from }, expectedPages);
    return true;
  }

  /**
   * An archived F/V call file. When its outcome is not in the journal (an
   * answered call whose session did not record it: the daemon died in it) and
   * the keeper is on, AstDB is asked first. The journal is the truth: the
   * file stays in outgoing_done until this returns, so a crash anywhere in
   * here reads it again; the key is deleted only after the outcome is
   * committed, so a second reading finds the same value, or a settled call.
   */
  private async settleCallFile(call: ArchivedCall): Promise<void> {
    let kept: KeptOutcome | undefined;
    if (this.keeper && call.status === 'Completed' && this.awaitsOutcome(call.fileName)) {
      const found = await this.keeper.lookup(call.fileName);
      if (found.kind === 'closed') return; // stopping: decided at the next start
      const row = this.journal.callNamed(call.fileName);
      if (found.kind === 'found') kept = found.outcome;
      else {
        this.log.warn(
          { msgId: row?.messageId, callFile: call.fileName, keeper: found.kind, reason: found.kind === 'unavailable' ? found.reason : 'no AstDB entry for the call' },
          'outcome keeper: nothing known of this answered call; it counts as a failed attempt and is tried again (at-least-once)',
        );
      }
    }
    this.recordCallFinished(call.fileName, call.status, kept);
    await this.keeper?.forget(call.fileName);
  }

  /** The call's row is pending and its message waits for exactly this attempt's outcome. */
  private awaitsOutcome(fileName: string): boolean {
    const call = this.journal.callNamed(fileName);
    if (!call || call.state !== 'pending' || call.messageId === null) return false;
    const message = this.journal.get(call.messageId);
    return message?.state === 'spooled' && message.attempts === call.attempt;
  }

  /** Places a call for every queue with files in sms/mttx and none pending, as pacing allows. */
  private sweepSmsQueues(): void {
    const queues = new Set(listInbox(this.config.spool.mttx).map((n) => n.slice(0, n.indexOf('.'))));
    for (const queue of queues) {
      const recipient = this.directory.get(queue.replace(/^-/, '+'));
      if (recipient?.service === 'S' && recipient.channel) this.sms.ensureCall(queue, recipient.channel, recipient);
    }
  }

  /** One of our call files came back from Asterisk with its Status. */
  private async onArchivedCall(call: ArchivedCall): Promise<void> {
    const row = this.journal.callNamed(call.fileName);
    if (!row) return;
    this.log.info({ callFile: call.fileName, service: row.service, status: call.status, tries: call.tries, msgId: row.messageId }, 'call finished');
    if (row.service === 'F' || row.service === 'V') {
      await this.settleCallFile(call);
      this.deps.requestRouting('received');
      this.deps.requestRouting('pending');
    } else if (row.service === 'S') {
      if (row.state === 'pending') this.journal.finishCallRow(row.id, call.status);
      // Every line app_sms wrote during the call is in its log by now: read them first.
      this.smsLog.readNew();
      // Only the queue's latest call judges its parts. An earlier one is read after a later one
      // was placed only when a crash came between reading it and putting it away; parts the later
      // call took have no YOS yet and would count as unacknowledged.
      if (!this.sms.otherCallInFlight(row.queue, call.fileName)) this.smsOutcomes.onCallFinished(row.queue, call.status);
      this.deps.requestRouting('received');
    }
    // A line is free: queues whose files wait (not taken by their last call, or held back by pacing) get a call.
    this.sweepSmsQueues();
  }
}
