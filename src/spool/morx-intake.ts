/**
 * Taking files out of sms/morx: each is read, decoded and recorded in the
 * journal, or quarantined with its reason. A batch is recorded in one
 * transaction, and a file is removed only once its row is committed: a crash
 * leaves the file, read again and deduplicated by name + content hash.
 */
import { statSync, unlinkSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { SpoolUnusableError } from '../errors.js';
import { contentHash, newMessage, type Journal, type NewMessage } from '../journal/journal.js';
import { crashPoint } from '../testing/crash-points.js';
import { listInbox, quarantine, readInboxFile } from './inbox.js';
import { decodeSmsFile, headerFields } from './sms-file.js';

/** How long a morx file that does not look finished may still be growing (see MorxIntake.unfinished). */
const MORX_SETTLE_MS = 2_000;

/** A file whose row is committed: it may now leave morx. */
export interface RecordedFile {
  name: string;
  id: number;
  duplicate: boolean;
}

/** What the intake counts, since the daemon started. */
export interface IntakeStats {
  read: number;
  recorded: number;
  duplicates: number;
  quarantined: number;
}

export interface MorxIntakeDeps {
  config: Config;
  journal: Journal;
  log: Logger;
  /** Counted into in place: the daemon reports it. */
  stats: IntakeStats;
  /** A file still settling is to be read again (see unfinished). */
  readAgain: (name: string) => void;
}

export class MorxIntake {
  /** Directories found in morx: warned about once, then never read. */
  private readonly skippedDirectories = new Set<string>();
  /** Names of morx files waiting to settle (see ingest). */
  private readonly unsettled = new Set<string>();

  constructor(private readonly deps: MorxIntakeDeps) {}

  /** The names in morx worth reading. */
  list(): string[] {
    return listInbox(this.deps.config.spool.morx).filter((n) => !this.skips(n));
  }

  /** True for a name found to be a directory: it is never read. */
  skips(name: string): boolean {
    return this.skippedDirectories.has(name);
  }

  /** True while some file looked half-written and is to be read again shortly. */
  get settling(): boolean {
    return this.unsettled.size > 0;
  }

  /** Reads, decodes and records a batch in one transaction, then removes the files (one after another). */
  ingest(names: readonly string[]): void {
    for (const file of this.record(names)) {
      try {
        unlinkSync(path.join(this.deps.config.spool.morx, file.name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw this.cannotRemove(file.name, err);
      }
      this.removed(file);
    }
  }

  /**
   * Removes recorded files from morx, all at once on libuv's threads: one unlink of a file whose
   * blocks are on disk can wait milliseconds for the device, and four in parallel cost little more
   * than one. Call it only with what record() returned, i.e. once the rows are committed. Rejects,
   * after every unlink has settled, when one could not be removed (ENOENT is not a failure).
   */
  async remove(files: readonly RecordedFile[]): Promise<void> {
    const { morx } = this.deps.config.spool;
    let failure: unknown;
    await Promise.all(
      files.map(async (file) => {
        try {
          await unlink(path.join(morx, file.name));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          failure ??= this.cannotRemove(file.name, err);
          return;
        }
        this.removed(file);
      }),
    );
    if (failure !== undefined) throw failure;
  }

  /** Not being able to remove what we read means we would read it forever: the daemon stops loudly. */
  private cannotRemove(name: string, err: unknown): SpoolUnusableError {
    const code = (err as NodeJS.ErrnoException).code;
    return new SpoolUnusableError(this.deps.config.spool.morx, `cannot remove ${name} (${code}); give this user write access to the directory`, { cause: err });
  }

  private removed({ name, id, duplicate }: RecordedFile): void {
    this.deps.log.debug({ msgId: id, file: name, duplicate }, 'recorded');
  }

  /**
   * Reads, decodes and records a batch in one transaction (quarantining what cannot be read), and
   * returns the files whose rows are now committed. It removes nothing: only with the rows committed
   * may the files leave morx, so the caller removes them (ingest, or remove) after this returns, and
   * a crash before that leaves the files, read again and deduplicated by name + content hash.
   */
  record(names: readonly string[]): RecordedFile[] {
    const { journal, log, stats } = this.deps;
    const { morx, quarantine: quarantineDir, maxFileSize } = this.deps.config.spool;
    const accepted: Array<{ name: string; message: NewMessage }> = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const file = path.join(morx, name);
      const read = readInboxFile(file, maxFileSize);
      if (read.kind === 'gone') continue;
      if (read.kind === 'directory') {
        if (!this.skippedDirectories.has(name)) log.warn({ file, code: 'SPOOL_NOT_A_FILE' }, 'a directory in morx is skipped');
        this.skippedDirectories.add(name);
        continue;
      }
      stats.read++;
      let reason: string | undefined;
      if (read.kind === 'not-a-file') reason = `SPOOL_NOT_A_FILE: ${read.what}`;
      else if (read.kind === 'too-large') reason = `SPOOL_TOO_LARGE: ${read.size} bytes, more than [spool] max_file_size = ${maxFileSize}`;
      else {
        const decoded = decodeSmsFile(read.bytes, { maxBytes: maxFileSize });
        // Issue 10: app_sms renames a finished file in, but something writing in place (a copy, a
        // script) shows it half-written: read half, it was quarantined or sent cut. A file that does
        // not look finished and was modified just now is read again once it settles.
        if (this.unfinished(name, file, read.bytes, decoded.ok)) continue;
        if (!decoded.ok) reason = `${decoded.error.code}: ${decoded.error.message}`;
        else {
          const m = decoded.message;
          if (decoded.warnings.length) log.warn({ file, warnings: decoded.warnings }, 'spool file read with warnings');
          accepted.push({
            name,
            message: newMessage({
              kind: 'message',
              source: 'morx',
              sourceName: name,
              contentHash: contentHash(read.bytes),
              oa: m.oa ?? '',
              da: m.da!,
              text: m.text,
              ...headerFields(m),
            }),
          });
        }
      }
      if (reason !== undefined) {
        const target = quarantine(file, quarantineDir, reason);
        if (target) {
          stats.quarantined++;
          log.warn({ file, quarantined: target, reason }, 'spool file quarantined');
        }
      }
    }
    if (accepted.length === 0) return [];
    const results = journal.recordReceived(accepted.map((a) => a.message));
    // The rows are committed; no file has left morx yet (the caller removes them after this returns).
    crashPoint('ingest.after-commit');
    return accepted.map(({ name }, i) => {
      const r = results[i]!;
      if (r.duplicate) stats.duplicates++;
      else stats.recorded++;
      return { name, id: r.id, duplicate: r.duplicate };
    });
  }

  /**
   * True when a morx file does not look finished (it does not decode, lacks its last newline, or
   * has no ud line) and was modified less than MORX_SETTLE_MS ago: it is read again shortly. An
   * older one is taken as it is (decoded, or quarantined with its reason), as before.
   */
  private unfinished(name: string, file: string, bytes: Buffer, decodes: boolean): boolean {
    const { log, stats } = this.deps;
    const looksFinished = decodes && bytes.at(-1) === 0x0a && /^ud[=#]/im.test(bytes.toString('latin1'));
    let age = Infinity;
    if (!looksFinished) {
      try {
        age = Date.now() - statSync(file).mtimeMs;
      } catch {
        /* gone: taken as read */
      }
    }
    // A future mtime (the clock was set back) is not waited for.
    if (looksFinished || age < 0 || age >= MORX_SETTLE_MS) {
      this.unsettled.delete(name);
      return false;
    }
    if (!this.unsettled.has(name)) log.info({ file, ageMs: Math.round(age) }, 'morx file looks half-written and changed just now; read again once it settles');
    this.unsettled.add(name);
    stats.read--;
    setTimeout(() => this.deps.readAgain(name), Math.min(250, MORX_SETTLE_MS - age) + 5).unref();
    return true;
  }
}
