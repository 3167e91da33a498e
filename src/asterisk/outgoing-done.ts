/**
 * Asterisk's archive of finished call files (`Archive: yes`): each ends with
 * `Status: Completed | Expired | Failed`, after `StartRetry:`/`EndRetry:`
 * lines. We take only our own files (named smsr-…, and known to the
 * journal); anything else in the directory is never touched. Unlike
 * outgoing/, files here are finished and safe to open.
 *
 * A file is put away only after onCall() has settled (it may wait for AMI):
 * until then it stays here, and a crash in between reads it again at the next
 * start. Scans run one at a time, one file at a time; a scan asked for while
 * one runs runs after it.
 */
import { readdirSync, readFileSync, renameSync, rmSync, mkdirSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { parseCallFile } from './call-file.js';

export type CallStatus = 'Completed' | 'Expired' | 'Failed';

export interface ArchivedCall {
  fileName: string;
  status: CallStatus;
  /** Dial attempts Asterisk made (StartRetry lines). */
  tries: number;
  /** Epoch seconds of the last StartRetry, when present. */
  lastTry: number | undefined;
}

export function parseArchivedCall(fileName: string, text: string): ArchivedCall | undefined {
  const status = parseCallFile(text).get('Status');
  if (status !== 'Completed' && status !== 'Expired' && status !== 'Failed') return undefined;
  const starts = [...text.matchAll(/^StartRetry:\s*\d+\s+(\d+)\s+\((\d+)\)/gm)];
  const last = starts.at(-1);
  return { fileName, status, tries: starts.length, lastTry: last ? Number(last[2]) : undefined };
}

export interface OutgoingDoneOptions {
  dir: string;
  /** Where our archived call files go once read; undefined = delete them. */
  archiveDir: string | undefined;
  /** Is this file one of ours? (prefix and journal row) */
  isOurs(fileName: string): boolean;
  /** Records the outcome (may be async); a thrown error or a rejection leaves the file for the next scan. */
  onCall(call: ArchivedCall): void | Promise<void>;
  log: { error(o: object, m: string): void; warn(o: object, m: string): void; debug(o: object, m: string): void };
  rescanMs?: number;
}

export class OutgoingDoneWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<number> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly options: OutgoingDoneOptions) {}

  /**
   * Reads every archived call of ours that is there now; resolves with how many
   * were taken. While a scan runs, another one is queued behind it (the same
   * promise), so no file is ever handled twice at once. Never rejects.
   */
  scan(): Promise<number> {
    if (this.scanning) {
      this.again = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      let taken = 0;
      do {
        this.again = false;
        taken += await this.scanOnce();
      } while (this.again && !this.stopped);
      return taken;
    })().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<number> {
    const { dir, isOurs, log } = this.options;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return 0; // Asterisk creates outgoing_done on its first archived call
    }
    let taken = 0;
    for (const name of names.sort()) {
      if (this.stopped) break;
      if (!name.startsWith('smsr-') || !isOurs(name)) continue;
      const file = path.join(dir, name);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue; // moved away meanwhile
      }
      const call = parseArchivedCall(name, text);
      if (!call) {
        log.debug({ file }, 'archived call without a Status yet');
        continue;
      }
      try {
        await this.options.onCall(call);
      } catch (err) {
        log.error({ file, err: err instanceof Error ? err.message : String(err) }, 'reading an archived call failed; it is read again at the next scan');
        continue;
      }
      // Stopping while onCall waited: what it committed is in the journal, and the file is read again at the next start.
      if (this.stopped) break;
      this.putAway(file, name);
      taken++;
    }
    return taken;
  }

  private putAway(file: string, name: string): void {
    const { archiveDir } = this.options;
    if (!archiveDir) {
      rmSync(file, { force: true });
      return;
    }
    mkdirSync(archiveDir, { recursive: true });
    renameSync(file, path.join(archiveDir, name));
  }

  start(): void {
    this.stopped = false;
    void this.scan();
    try {
      this.watcher = watch(this.options.dir, (_e, name) => {
        if (typeof name === 'string' && name.startsWith('smsr-')) void this.scan();
      });
      this.watcher.on('error', () => undefined);
    } catch {
      /* not there yet: the timer picks it up */
    }
    this.timer = setInterval(() => void this.scan(), this.options.rescanMs ?? 10_000);
    this.timer.unref();
  }

  /** No more scans; resolves when the one in hand (if any) has stopped, after the file it was on. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    await this.scanning;
  }
}
