/**
 * Wires the spool, the journal, the directory and the routes together.
 *
 *   morx file ─read─▶ decode ─▶ journal row (committed) ─▶ unlink ─▶ (next batch)
 *                                                        └─▶ route (while the unlinks run)
 *
 * A file leaves morx only after its row is committed; a crash anywhere
 * leaves either the file (read again, deduplicated by name + content hash)
 * or the row (routed again, idempotently). `run()` is the long-running
 * daemon; `runOnce()` drains what is there and returns (used by `process`
 * and by tests). Signals are not handled here: main.ts owns them and calls
 * `stop()`.
 *
 * This module owns the one work loop and the services' lifecycle; the steps
 * live with what they handle: MorxIntake (reading morx), ConcatParts (parts
 * of long messages), Notices (telling a sender), Calls (the S, F and V
 * routes and what Asterisk reports of their calls) and the routes.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { RecipientDirectory, type ServiceLetter } from './directory/recipients.js';
import { errorCode, errorMessage, explainFailure, SpoolUnusableError } from './errors.js';
import { Journal, type MessageRow } from './journal/journal.js';
import { openDatabase, type Db } from './journal/store.js';
import { expired, planFor } from './router.js';
import { Notices, type BounceReason } from './notices.js';
import type { DeliveryItem } from './routes/sms.js';
import { SipRoute } from './routes/sip.js';
import { CommandRoute } from './routes/command.js';
import type { OutgoingDoneWatcher } from './asterisk/outgoing-done.js';
import { Calls } from './calls.js';
import { ConcatParts } from './routes/concat.js';
import { receiveSipMessage } from './routes/sip-inbound.js';
import { AmiClient } from './asterisk/ami/client.js';
import { FastAgiServer, type AgiSession } from './asterisk/fastagi/server.js';
import { checkSpool } from './spool/check.js';
import { MorxIntake, type IntakeStats } from './spool/morx-intake.js';
import { armCrashPoints } from './testing/crash-points.js';
import { Metrics } from './observe/metrics.js';
import { HttpService, type HealthCheck } from './observe/http.js';

/** A route able to take messages now. Routes not built yet are `null`: their messages wait as `pending`. */
export interface Route {
  deliver(items: readonly DeliveryItem[]): void | Promise<void>;
}

export interface DaemonOptions {
  /** Files read and committed per transaction. */
  batchSize?: number;
  /** fsync spool files before renaming them into place. */
  fsync?: boolean;
  /** The clock (tests inject one to check quiet hours and schedules). */
  now?: () => Date;
}

export interface DrainStats extends IntakeStats {
  routed: number;
}

export class Daemon {
  readonly db: Db;
  readonly journal: Journal;
  readonly directory: RecipientDirectory;
  private readonly routes: Record<ServiceLetter, Route | null>;
  private readonly batchSize: number;
  private readonly queued = new Set<string>();
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private drainAgain = false;
  private stopping = false;
  private closed = false;
  readonly ami: AmiClient | undefined;
  private readonly calls: Calls;
  private wakeTimer: NodeJS.Timeout | undefined;
  readonly outgoingDone: OutgoingDoneWatcher;
  private readonly commands: CommandRoute;
  private readonly notices: Notices;
  private readonly concat: ConcatParts;
  private readonly intake: MorxIntake;
  private wakeTime = Infinity;
  private agi: FastAgiServer | undefined;
  private agiAddress: { host: string; port: number } | undefined;
  readonly stats: DrainStats = { read: 0, recorded: 0, duplicates: 0, quarantined: 0, routed: 0 };
  readonly metrics = new Metrics();
  private http: HttpService | undefined;
  private httpAddress: { host: string; port: number } | undefined;
  private failed: unknown;

  constructor(
    /** Replaced (in part) by reload(). */
    public config: Config,
    private readonly log: Logger,
    options: DaemonOptions = {},
  ) {
    checkSpool(config);
    // Test-only ([testing] crash_at, issue 10): every daemon re-arms, so an empty list disarms.
    armCrashPoints(config.testing.crashAt, config.testing.crashAfter);
    if (config.testing.crashAt.length) log.warn({ crashAt: config.testing.crashAt, crashAfter: config.testing.crashAfter }, 'TEST-ONLY crash points armed: this process will SIGKILL itself');
    this.batchSize = options.batchSize ?? config.spool.batchSize;
    this.db = openDatabase(config.database.path);
    this.journal = new Journal(this.db);
    this.directory = new RecipientDirectory(this.db);
    this.journal.observer = this.metrics;
    this.metrics.attach({
      countByState: () => this.journal.countByState(),
      amiState: () => this.ami?.state,
    });
    const fsync = options.fsync ?? config.spool.fsync;
    this.notices = new Notices({ journal: this.journal, log, config: () => this.config, queued: () => this.requestRouting('received') });
    this.intake = new MorxIntake({ config, journal: this.journal, log, stats: this.stats, readAgain: (name) => this.enqueue([name]) });
    this.concat = new ConcatParts({ config, journal: this.journal, log, waitUntil: (at) => this.wakeAt(at), joined: () => this.requestRouting('received') });
    this.ami = config.ami.enabled
      ? new AmiClient({
          host: config.ami.host,
          port: config.ami.port,
          username: config.ami.username,
          secret: config.ami.secret,
          actionTimeoutMs: config.ami.actionTimeout * 1000,
          logger: log,
        })
      : undefined;
    this.calls = new Calls({
      config: () => this.config,
      journal: this.journal,
      directory: this.directory,
      log,
      metrics: this.metrics,
      fsync,
      now: options.now,
      agiAddress: () => this.agiAdvertised(),
      wakeAt: (at) => this.wakeAt(at),
      requestRouting: (state) => this.requestRouting(state),
      bounce: (message, reason, detail) => this.notices.bounce(message, reason, detail),
      ami: this.ami,
    });
    this.outgoingDone = this.calls.outgoingDone;
    // Exhaustive over the service letters: a new letter does not compile until it is decided here.
    this.routes = {
      S: this.calls.sms,
      F: this.calls.fax,
      V: this.calls.voice,
      C: (this.commands = new CommandRoute(config, this.journal, this.directory, log, () => this.requestRouting('received'))),
      T: new SipRoute(config, this.journal, log, this.ami, {
        failed: (message, reason) => this.notices.bounce(message, 'sip-failed', reason),
      }),
      N: null, // never delivered: planFor turns N into a notice
    };
  }

  /** Drains morx once (backlog first) and routes everything routable, then returns. */
  async runOnce(): Promise<DrainStats> {
    this.calls.recoverStagedSms();
    this.requestRouting('pending');
    for (;;) {
      const fresh = this.intake.list();
      this.enqueue(fresh);
      this.requestRouting('received');
      await this.idle();
      if (fresh.length === 0 || this.stopping) break;
      // Files still settling (see MorxIntake.unfinished) are listed again: not in a busy loop.
      if (this.intake.settling) await new Promise((r) => setTimeout(r, 100));
    }
    return this.stats;
  }

  /** Resolves when the work loop has nothing left to do (rejects if it failed). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** The network side: the AMI client (T route) and the FastAGI service. Only the long-running daemon starts them. */
  private async startServices(): Promise<void> {
    if (this.ami) {
      // The client logs its own connects, drops and refused logins.
      // Messages that waited for AMI go out when it is back, in journal order.
      let connections = 0;
      this.ami.on('connected', () => {
        if (++connections > 1) this.metrics.amiReconnects.inc();
        this.requestRouting('pending');
      });
      this.ami.start();
    }
    if (this.config.http.listen) {
      this.http = new HttpService({ ...this.config.http.listen, metrics: this.metrics, health: () => this.health(), log: this.log });
      this.httpAddress = await this.http.listen();
      this.log.info({ http: `${this.httpAddress.host}:${this.httpAddress.port}` }, 'HTTP /healthz and /metrics listening');
    }
    this.agi = new FastAgiServer({ host: this.config.agi.host, port: this.config.agi.port, logger: this.log }, (script) => {
      if (script === 'message') return (session) => this.onSipMessage(session);
      const call = /^(fax|voice)\/([0-9]{1,15})$/.exec(script);
      if (call) return (session) => this.calls.onCallSession(call[1] as 'fax' | 'voice', Number(call[2]), session);
      return undefined;
    });
    this.agiAddress = await this.agi.listen();
    this.log.info({ agi: `${this.agiAddress.host}:${this.agiAddress.port}` }, 'FastAGI service listening');
    this.calls.start();
    const next = this.journal.nextAttemptTime();
    if (next) this.wakeAt(new Date(next));
  }

  /** The agi:// address call files name: [agi] advertise, or where the service listens. */
  private agiAdvertised(): string | undefined {
    if (!this.agiAddress) return undefined;
    if (this.config.agi.advertise) return this.config.agi.advertise;
    const host = this.agiAddress.host === '0.0.0.0' || this.agiAddress.host === '::' ? '127.0.0.1' : this.agiAddress.host;
    return `${host.includes(':') ? `[${host}]` : host}:${this.agiAddress.port}`;
  }

  /**
   * What Asterisk said of one of our F/V call files once it was archived in
   * outgoing_done (see Calls.recordCallFinished). Returns false when the file
   * is not one of ours or is already settled.
   */
  recordCallFinished(fileName: string, status: string): boolean {
    return this.calls.recordCallFinished(fileName, status);
  }

  /** Wakes the work loop when the earliest scheduled retry is due. */
  private wakeAt(at: Date): void {
    const when = at.getTime();
    if (when >= this.wakeTime && this.wakeTimer) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTime = when;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.wakeTime = Infinity;
      this.requestRouting('pending');
      const next = this.journal.nextAttemptTime();
      if (next && new Date(next).getTime() > Date.now()) this.wakeAt(new Date(next));
    }, Math.max(0, when - Date.now()));
    this.wakeTimer.unref();
  }

  private async onSipMessage(session: AgiSession): Promise<void> {
    try {
      await receiveSipMessage(session, { journal: this.journal, directory: this.directory, log: this.log });
    } finally {
      // Even when the session hung up after the row was committed, the message is routed.
      this.requestRouting('received');
    }
  }

  /**
   * SIGHUP: the config file was read again (and is valid). What belongs to
   * the recipients' side is applied now: [notices] texts, [commands], and
   * [log] level (applied by main.ts, which owns the logger). The directory
   * itself lives in the database and is always read fresh. Every other table
   * that changed is named: it takes effect at the next restart.
   */
  reload(next: Config): { applied: string[]; needRestart: string[] } {
    const live = ['notices', 'commands', 'log'] as const;
    const changed = (Object.keys(next) as Array<keyof Config>).filter(
      (k) => k !== 'file' && JSON.stringify(next[k]) !== JSON.stringify(this.config[k]),
    );
    const applied = changed.filter((k) => (live as readonly string[]).includes(k));
    const needRestart = changed.filter((k) => !(live as readonly string[]).includes(k));
    this.config = { ...this.config, notices: next.notices, commands: next.commands, log: next.log };
    if (applied.includes('commands')) this.commands.reconfigure(next.commands);
    return { applied, needRestart };
  }

  /** What /healthz reports: the daemon's loop, the database (by writing to it) and AMI. */
  health(): HealthCheck[] {
    const checks: HealthCheck[] = [];
    checks.push(
      this.failed !== undefined || this.stopping
        ? { name: 'daemon', ok: false, detail: this.failed !== undefined ? `stopped: ${errorMessage(this.failed)}` : 'stopping' }
        : { name: 'daemon', ok: true, detail: 'running' },
    );
    try {
      this.journal.writeState('healthz', new Date().toISOString());
      checks.push({ name: 'database', ok: true, detail: 'writable' });
    } catch (err) {
      checks.push({ name: 'database', ok: false, detail: `${errorCode(err)}: ${errorMessage(err)}` });
    }
    if (!this.ami) checks.push({ name: 'ami', ok: true, detail: 'not configured ([ami] enabled = false): T messages wait' });
    else checks.push({ name: 'ami', ok: this.ami.state === 'connected', detail: this.ami.state });
    return checks;
  }

  /** Where /healthz and /metrics listen (after run() started them). */
  get httpListening(): { host: string; port: number } | undefined {
    return this.httpAddress;
  }

  /** Where the FastAGI service listens (after run() started it). */
  get agiListening(): { host: string; port: number } | undefined {
    return this.agiAddress;
  }

  /** Takes the backlog, then watches morx until stop(). */
  async run(onReady?: () => void): Promise<void> {
    await this.startServices();
    this.requestRouting('pending');
    // Issue 10: rows recorded by a run that stopped (crash, full disk) before routing them go out
    // now, not only when the next morx file happens to arrive.
    this.requestRouting('received');
    this.watcher = watch(this.config.spool.morx, (_event, name) => {
      if (typeof name === 'string' && !name.startsWith('.')) this.enqueue([name]);
    });
    this.watcher.on('error', (err) => this.fatal(new SpoolUnusableError(this.config.spool.morx, 'the watched directory failed; check that it still exists', { cause: err })));
    // inotify can overflow under a burst of files: a periodic listing catches anything missed.
    this.rescanTimer = setInterval(() => this.rescan(), this.config.spool.rescanInterval * 1000);
    this.rescanTimer.unref();
    this.rescan();
    onReady?.();
    this.log.info({ morx: this.config.spool.morx, backlog: this.queued.size }, 'watching the spool');
    await new Promise<void>((resolve) => (this.resolveRun = resolve));
  }
  private resolveRun: (() => void) | undefined;

  private rescan(): void {
    // Rows an operator retried (sms-router messages retry) are due now.
    this.requestRouting('pending');
    // More than a batch of the last listing is still being read: listing (and lstat-ing) it all
    // again finds nothing new, and costs seconds for 100,000 files. The first rescan after it
    // catches anything inotify missed meanwhile.
    if (this.inHand > this.batchSize) return;
    try {
      this.enqueue(this.intake.list());
    } catch (err) {
      this.fatal(new SpoolUnusableError(this.config.spool.morx, 'it cannot be listed; check that it exists and that this user may read it', { cause: err }));
    }
  }

  private enqueue(names: readonly string[]): void {
    for (const n of names) if (!this.intake.skips(n)) this.queued.add(n);
    if (this.queued.size > 0) this.kick();
  }

  /** Asks the work loop to route stored rows (new rows, or pending ones whose route may be available now). */
  requestRouting(state: 'received' | 'pending'): void {
    this.routingRequested.add(state);
    this.kick();
  }
  private readonly routingRequested = new Set<'received' | 'pending'>();

  /**
   * The one work loop: everything that reads the spool or routes rows runs
   * here, one step at a time, so a row is never routed twice concurrently.
   */
  private kick(): void {
    if (this.stopping) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = (async () => {
      // The loop's first stretch runs synchronously, before `draining` is
      // assigned: a kick() from inside it (bounce() → requestRouting()) would
      // start a second loop that routes the same rows again. Yield first.
      await undefined;
      try {
        do {
          this.drainAgain = false;
          const names = [...this.queued];
          this.queued.clear();
          await this.ingestNames(names);
          for (const state of ['pending', 'received'] as const) {
            if (this.routingRequested.delete(state) && !this.stopping) await this.routeStored(state);
          }
        } while ((this.drainAgain || this.queued.size > 0 || this.routingRequested.size > 0) && !this.stopping);
      } catch (err) {
        this.fatal(err);
      } finally {
        this.draining = undefined;
      }
    })();
  }

  /** Names of the list being ingested not read yet (see rescan). */
  private inHand = 0;

  private async ingestNames(names: readonly string[]): Promise<void> {
    try {
      for (let i = 0; i < names.length && !this.stopping; i += this.batchSize) {
        this.inHand = names.length - i;
        // Only record() commits the batch's rows; the files leave morx after it returns, never
        // before (the crash point ingest.after-commit is in between): a crash leaves a file whose
        // row is committed, read again and deduplicated, never a removed file without its row.
        const recorded = this.intake.record(names.slice(i, i + this.batchSize));
        // The unlinks run on libuv's threads, all at once, while this thread routes the batch; the
        // next batch waits for them. A failure other than ENOENT stops the daemon, as ingestBatch does.
        const removal = this.intake.remove(recorded);
        // Handled here, so a failure while routing is still under way is not an unhandled
        // rejection (which would end the process); it is thrown by the await below.
        removal.catch(() => undefined);
        try {
          await this.routeStored('received');
        } finally {
          await removal;
        }
        // Let signals, watcher events and timers in between batches.
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      this.inHand = 0;
    }
  }

  /** Reads, decodes and records a batch in one transaction, then removes the files (synchronously). */
  ingestBatch(names: readonly string[]): void {
    this.intake.ingest(names);
  }

  /** Routes every row in `state` (received: new; pending: waiting for a route that may exist now). */
  async routeStored(state: 'received' | 'pending'): Promise<void> {
    let afterId = 0;
    const now = new Date().toISOString();
    while (!this.stopping) {
      const rows = state === 'pending' ? this.journal.listDue(state, now, 500, afterId) : this.journal.listByState(state, 500, afterId);
      if (rows.length === 0) return;
      afterId = rows[rows.length - 1]!.id;
      await this.routeRows(rows);
    }
  }

  private async routeRows(rows: readonly MessageRow[]): Promise<void> {
    const byService = new Map<ServiceLetter, DeliveryItem[]>();
    const now = Date.now();
    // The page is planned in one transaction: holding and joining parts, bounces with their notices
    // and rows marked pending commit (and fsync the journal) once, instead of once per row. The
    // planning writes only the journal (and logs, and timers that wake this loop), never the spool
    // or AMI, so a crash inside it rolls the whole page back to what it was and it is planned again;
    // the nested transactions (a join, a bounce) are savepoints of this one. Delivery, which writes
    // files and talks to Asterisk, runs after the commit.
    this.journal.transaction(() => this.planRows(rows, now, byService));
    for (const [service, items] of byService) {
      this.metrics.messagesRouted(service, items.length);
      await this.routes[service]!.deliver(items);
      this.stats.routed += items.length;
    }
  }

  /** Decides each row of a page: held (a part), bounced, dropped, pending, or put in `byService` for delivery. */
  private planRows(rows: readonly MessageRow[], now: number, byService: Map<ServiceLetter, DeliveryItem[]>): void {
    for (const message of rows) {
      if (this.concat.isPart(message)) {
        this.concat.hold(message, now);
        continue;
      }
      if (message.state === 'pending' && expired(message, this.config.sms.validity, now)) {
        this.notices.bounce(message, 'expired', message.lastError ?? 'validity period over');
        continue;
      }
      const plan = planFor(message, this.directory.get(message.da));
      if (plan.action === 'deliver') {
        const route = this.routes[plan.service];
        if (!route) {
          if (message.state !== 'pending') {
            this.journal.update(message.id, { state: 'pending', route: plan.service, channel: plan.recipient.channel });
            const log = { msgId: message.id, from: message.oa, to: message.da, kind: message.kind };
            this.log.info({ ...log, route: plan.service, outcome: 'pending' }, `route ${plan.service} is not available yet; the message waits in the journal`);
          }
          continue;
        }
        let list = byService.get(plan.service);
        if (!list) byService.set(plan.service, (list = []));
        list.push({ message, recipient: plan.recipient });
      } else if (plan.action === 'notify-sender') {
        this.notices.bounce(message, plan.reason);
      } else {
        this.notices.drop(message, plan.reason);
      }
    }
  }

  /**
   * Marks a message bounced and queues a notice to its sender, in one
   * transaction. A notice is never answered with another notice.
   */
  bounce(message: MessageRow, reason: BounceReason, detail?: string): void {
    this.notices.bounce(message, reason, detail);
  }

  /** Finishes the batch in hand, then closes everything. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.watcher?.close();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    // An archived call in hand may wait for AMI (the outcome keeper): AMI stops below, then it is waited for.
    const callsStopped = this.calls.stop();
    await this.http?.close();
    await this.agi?.close();
    await this.draining?.catch(() => undefined);
    await this.ami?.stop();
    await callsStopped;
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    this.resolveRun?.();
  }

  private fatalHandler: ((err: unknown) => void) | undefined;
  onFatal(handler: (err: unknown) => void): void {
    this.fatalHandler = handler;
  }
  private fatal(err: unknown): void {
    err = explainFailure(err, this.config); // issue 10: a full disk or a locked journal says what to do
    this.failed ??= err;
    this.log.fatal({ code: errorCode(err), err: errorMessage(err) }, 'stopping');
    if (this.fatalHandler) this.fatalHandler(err);
    else throw err;
  }
}
