/**
 * Wires the spool, the journal, the directory and the routes together.
 *
 *   morx file ─read─▶ decode ─▶ journal row (committed) ─▶ unlink ─▶ route
 *
 * A file leaves morx only after its row is committed; a crash anywhere
 * leaves either the file (read again, deduplicated by name + content hash)
 * or the row (routed again, idempotently). `run()` is the long-running
 * daemon; `runOnce()` drains what is there and returns (used by `process`
 * and by tests). Signals are not handled here: main.ts owns them and calls
 * `stop()`.
 */
import { accessSync, constants, mkdirSync, readdirSync, rmSync, statSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { RecipientDirectory, type ServiceLetter } from './directory/recipients.js';
import { errorCode, errorMessage, SpoolUnusableError } from './errors.js';
import { contentHash, Journal, type MessageRow, type NewMessage } from './journal/journal.js';
import { openDatabase, type Db } from './journal/store.js';
import { noticeText, planFor, type NoticeReason } from './router.js';
import { SmsRoute, type DeliveryItem } from './routes/sms.js';
import { listInbox, quarantine, readInboxFile } from './spool/inbox.js';
import { decodeSmsFile } from './spool/sms-file.js';
import { isoLocal } from './spool/scts.js';

/** A route able to take messages now. Routes not built yet are `null`: their messages wait as `pending`. */
export interface Route {
  deliver(items: readonly DeliveryItem[]): void;
}

export interface DaemonOptions {
  /** Files read and committed per transaction. */
  batchSize?: number;
  /** fsync spool files before renaming them into place. */
  fsync?: boolean;
}

export interface DrainStats {
  read: number;
  recorded: number;
  duplicates: number;
  quarantined: number;
  routed: number;
}

const NOTICE_REASONS: Record<NoticeReason, string> = {
  disabled: 'NUMBER_DISABLED: the recipient has service N',
  unknown: 'UNKNOWN_NUMBER: the recipient is not in the directory',
};

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
  private readonly skippedDirectories = new Set<string>();
  readonly stats: DrainStats = { read: 0, recorded: 0, duplicates: 0, quarantined: 0, routed: 0 };

  constructor(
    readonly config: Config,
    private readonly log: Logger,
    options: DaemonOptions = {},
  ) {
    checkSpool(config);
    this.batchSize = options.batchSize ?? config.spool.batchSize;
    this.db = openDatabase(config.database.path);
    this.journal = new Journal(this.db);
    this.directory = new RecipientDirectory(this.db);
    const fsync = options.fsync ?? config.spool.fsync;
    // Exhaustive over the service letters: a new letter does not compile until it is decided here.
    this.routes = {
      S: new SmsRoute(config, this.journal, log, { fsync }),
      F: null,
      V: null,
      C: null,
      T: null,
      N: null, // never delivered: planFor turns N into a notice
    };
  }

  /** Drains morx once (backlog first) and routes everything routable, then returns. */
  async runOnce(): Promise<DrainStats> {
    this.routeStored('pending');
    this.routeStored('received');
    for (;;) {
      const names = listInbox(this.config.spool.morx);
      const fresh = names.filter((n) => !this.skippedDirectories.has(n));
      if (fresh.length === 0) break;
      await this.ingestNames(fresh);
      if (this.stopping) break;
    }
    return this.stats;
  }

  /** Takes the backlog, then watches morx until stop(). */
  async run(onReady?: () => void): Promise<void> {
    this.routeStored('pending');
    this.routeStored('received');
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
    try {
      this.enqueue(listInbox(this.config.spool.morx));
    } catch (err) {
      this.fatal(new SpoolUnusableError(this.config.spool.morx, 'it cannot be listed; check that it exists and that this user may read it', { cause: err }));
    }
  }

  private enqueue(names: readonly string[]): void {
    for (const n of names) if (!this.skippedDirectories.has(n)) this.queued.add(n);
    if (this.queued.size > 0) this.kick();
  }

  private kick(): void {
    if (this.stopping) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = (async () => {
      try {
        do {
          this.drainAgain = false;
          const names = [...this.queued];
          this.queued.clear();
          await this.ingestNames(names);
        } while ((this.drainAgain || this.queued.size > 0) && !this.stopping);
      } catch (err) {
        this.fatal(err);
      } finally {
        this.draining = undefined;
      }
    })();
  }

  private async ingestNames(names: readonly string[]): Promise<void> {
    for (let i = 0; i < names.length && !this.stopping; i += this.batchSize) {
      this.ingestBatch(names.slice(i, i + this.batchSize));
      this.routeStored('received');
      // Let signals, watcher events and timers in between batches.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Reads, decodes and records a batch in one transaction, then removes the files. */
  ingestBatch(names: readonly string[]): void {
    const { morx, quarantine: quarantineDir, maxFileSize } = this.config.spool;
    const accepted: Array<{ name: string; message: NewMessage }> = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const file = path.join(morx, name);
      const read = readInboxFile(file, maxFileSize);
      if (read.kind === 'gone') continue;
      if (read.kind === 'directory') {
        if (!this.skippedDirectories.has(name)) this.log.warn({ file, code: 'SPOOL_NOT_A_FILE' }, 'a directory in morx is skipped');
        this.skippedDirectories.add(name);
        continue;
      }
      this.stats.read++;
      let reason: string | undefined;
      if (read.kind === 'not-a-file') reason = `SPOOL_NOT_A_FILE: ${read.what}`;
      else if (read.kind === 'too-large') reason = `SPOOL_TOO_LARGE: ${read.size} bytes, more than [spool] max_file_size = ${maxFileSize}`;
      else {
        const decoded = decodeSmsFile(read.bytes, { maxBytes: maxFileSize });
        if (!decoded.ok) reason = `${decoded.error.code}: ${decoded.error.message}`;
        else {
          const m = decoded.message;
          if (decoded.warnings.length) this.log.warn({ file, warnings: decoded.warnings }, 'spool file read with warnings');
          accepted.push({
            name,
            message: {
              kind: 'message',
              parentId: null,
              source: 'morx',
              sourceName: name,
              contentHash: contentHash(read.bytes),
              oa: m.oa ?? '',
              da: m.da!,
              text: m.text,
              udh: m.udh ?? null,
              scts: m.scts ?? null,
              mr: m.mr ?? null,
              dcs: m.dcs ?? null,
              pid: m.pid ?? null,
              vp: m.vp ?? null,
              srr: m.srr ?? false,
              rp: m.rp ?? false,
            },
          });
        }
      }
      if (reason !== undefined) {
        const target = quarantine(file, quarantineDir, reason);
        if (target) {
          this.stats.quarantined++;
          this.log.warn({ file, quarantined: target, reason }, 'spool file quarantined');
        }
      }
    }
    if (accepted.length === 0) return;
    const results = this.journal.recordReceived(accepted.map((a) => a.message));
    // Only now, with the rows committed, may the files leave the spool.
    accepted.forEach(({ name }, i) => {
      const r = results[i]!;
      if (r.duplicate) this.stats.duplicates++;
      else this.stats.recorded++;
      try {
        unlinkSync(path.join(morx, name));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        // Not being able to remove what we read means we would read it forever: stop loudly.
        throw new SpoolUnusableError(morx, `cannot remove ${name} (${code}); give this user write access to the directory`, { cause: err });
      }
      this.log.debug({ msgId: r.id, file: name, duplicate: r.duplicate }, 'recorded');
    });
  }

  /** Routes every row in `state` (received: new; pending: waiting for a route that may exist now). */
  routeStored(state: 'received' | 'pending'): void {
    let afterId = 0;
    for (;;) {
      const rows = this.journal.listByState(state, 500, afterId);
      if (rows.length === 0) return;
      afterId = rows[rows.length - 1]!.id;
      this.routeRows(rows);
    }
  }

  private routeRows(rows: readonly MessageRow[]): void {
    const byService = new Map<ServiceLetter, DeliveryItem[]>();
    for (const message of rows) {
      const plan = planFor(message, this.directory.get(message.da));
      const log = { msgId: message.id, from: message.oa, to: message.da, kind: message.kind };
      if (plan.action === 'deliver') {
        const route = this.routes[plan.service];
        if (!route) {
          if (message.state !== 'pending') {
            this.journal.update(message.id, { state: 'pending', route: plan.service, channel: plan.recipient.channel });
            this.log.info({ ...log, route: plan.service, outcome: 'pending' }, `route ${plan.service} is not available yet; the message waits in the journal`);
          }
          continue;
        }
        let list = byService.get(plan.service);
        if (!list) byService.set(plan.service, (list = []));
        list.push({ message, recipient: plan.recipient });
      } else if (plan.action === 'notify-sender') {
        this.bounce(message, plan.reason);
      } else {
        this.journal.update(message.id, { state: 'failed', lastError: `${NOTICE_REASONS[plan.reason]} (notice not delivered)` });
        this.log.warn({ ...log, route: 'N', outcome: 'failed', reason: plan.reason }, 'a notice could not be delivered; it is not answered with another notice');
      }
    }
    for (const [service, items] of byService) {
      this.routes[service]!.deliver(items);
      this.stats.routed += items.length;
    }
  }

  /** Marks a message bounced and queues a notice to its sender, in one transaction. */
  private bounce(message: MessageRow, reason: NoticeReason): void {
    const log = { msgId: message.id, from: message.oa, to: message.da, route: 'N' };
    if (!message.oa) {
      this.journal.update(message.id, { state: 'failed', route: 'N', lastError: `${NOTICE_REASONS[reason]}; no sender to notify` });
      this.log.warn({ ...log, outcome: 'failed', reason }, 'undeliverable message without a sender number');
      return;
    }
    const text = noticeText(reason === 'disabled' ? this.config.notices.disabled : this.config.notices.unknown, {
      to: message.da,
      from: message.oa,
    });
    const noticeId = this.journal.transaction(() => {
      const [r] = this.journal.recordReceived([
        {
          kind: 'notice',
          parentId: message.id,
          source: 'notice',
          sourceName: `notice-for-${message.id}`,
          contentHash: contentHash(text),
          oa: this.config.centre.receiveNumber,
          da: message.oa,
          text,
          udh: null,
          scts: isoLocal(new Date()),
          mr: null,
          dcs: null,
          pid: null,
          vp: null,
          srr: false,
          rp: false,
        },
      ]);
      this.journal.update(message.id, { state: 'bounced', route: 'N', lastError: NOTICE_REASONS[reason] });
      return r!.id;
    });
    this.log.info({ ...log, outcome: 'bounced', reason, noticeId }, 'undeliverable; notice queued for the sender');
  }

  /** Finishes the batch in hand, then closes everything. Safe to call twice. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.watcher?.close();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    await this.draining;
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
    this.log.fatal({ code: errorCode(err), err: errorMessage(err) }, 'stopping');
    if (this.fatalHandler) this.fatalHandler(err);
    else throw err;
  }
}

/**
 * Checks the spool before anything is read. The root and outgoing/ must exist
 * (Asterisk creates them: if they are missing, [spool] root points at the
 * wrong place); sms/morx, sms/mttx, tmp/ and the quarantine are created.
 */
export function checkSpool(config: Config): void {
  const { spool, file } = config;
  if (spool.createMissing) mkdirSync(spool.outgoing, { recursive: true });
  const fixRoot = `set [spool] root in ${file} to Asterisk's spool directory (astspooldir in asterisk.conf, usually /var/spool/asterisk)`;
  for (const dir of [spool.root, spool.outgoing]) {
    let st;
    try {
      st = statSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES') throw new SpoolUnusableError(dir, 'permission denied; run sms-router as the user Asterisk runs as (usually asterisk)', { cause: err });
      throw new SpoolUnusableError(dir, `it does not exist; ${fixRoot}`, { cause: err });
    }
    if (!st.isDirectory()) throw new SpoolUnusableError(dir, `it is not a directory; ${fixRoot}`);
  }
  for (const dir of [spool.morx, spool.mttx, spool.tmp, spool.quarantine]) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new SpoolUnusableError(dir, `it cannot be created (${(err as NodeJS.ErrnoException).code}); create it and give it to the user running sms-router (chown asterisk:asterisk ${dir})`, { cause: err });
    }
  }
  for (const dir of [spool.morx, spool.mttx, spool.tmp, spool.outgoing, spool.quarantine]) {
    try {
      accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (err) {
      throw new SpoolUnusableError(dir, `this user may not read and write it; run sms-router as the user Asterisk runs as, or chown asterisk:asterisk ${dir}`, { cause: err });
    }
  }
  // Call files of ours left in tmp/ by a crash were never renamed in, so Asterisk never saw them.
  for (const name of readdirSync(spool.tmp)) if (name.startsWith('smsr-')) rmSync(path.join(spool.tmp, name), { force: true });
  // A call file must be renamed into outgoing/, which only works within one file system.
  if (statSync(spool.tmp).dev !== statSync(spool.outgoing).dev) {
    throw new SpoolUnusableError(spool.tmp, `it is not on the same file system as ${spool.outgoing}, so call files cannot be renamed in atomically`);
  }
}
