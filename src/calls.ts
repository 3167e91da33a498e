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
import { createFaxRoute, runFaxSession } from './routes/fax.js';
import { createVoiceRoute, runVoiceSession } from './routes/voice.js';
import { SmsOutcomes } from './routes/sms-outcomes.js';
import { Speech } from './render/speech.js';
import { OutgoingDoneWatcher, type ArchivedCall } from './asterisk/outgoing-done.js';
import { SmsLogFollower, type FollowPosition } from './asterisk/sms-log.js';
import type { AgiSession } from './asterisk/fastagi/server.js';
import { listInbox } from './spool/inbox.js';

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
}

export class Calls {
  readonly fax: CallRoute;
  readonly voice: CallRoute;
  readonly sms: SmsRoute;
  readonly outgoingDone: OutgoingDoneWatcher;
  private readonly smsOutcomes: SmsOutcomes;
  private readonly smsLog: SmsLogFollower;
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
    this.outgoingDone.start();
  }

  /** Crash safety (issue 10): S files a crash left staged go in, with their calls. */
  recoverStagedSms(): void {
    if (this.smsOutcomes.recoverStaged() > 0) this.sweepSmsQueues();
  }

  stop(): void {
    this.outgoingDone.stop();
    this.smsLog.stop();
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
   * Returns false when the file is not one of ours or is already settled.
   */
  recordCallFinished(fileName: string, status: string): boolean {
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
    const reason = status === 'Expired' ? 'no answer' : 'the call was answered but the FastAGI session never reported';
    route.failedAttempt(message, reason, { callStatus: status }, status);
    return true;
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
  private onArchivedCall(call: ArchivedCall): void {
    const row = this.journal.callNamed(call.fileName);
    if (!row) return;
    this.log.info({ callFile: call.fileName, service: row.service, status: call.status, tries: call.tries, msgId: row.messageId }, 'call finished');
    if (row.service === 'F' || row.service === 'V') {
      this.recordCallFinished(call.fileName, call.status);
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
