/**
 * Asterisk's archive of finished call files (`Archive: yes`): each ends with
 * `Status: Completed | Expired | Failed`, after `StartRetry:`/`EndRetry:`
 * lines. We take only our own files (named smsr-…, and known to the
 * journal); anything else in the directory is never touched. Unlike
 * outgoing/, files here are finished and safe to open.
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
  /** Records the outcome; a thrown error leaves the file for the next scan. */
  onCall(call: ArchivedCall): void;
  log: { warn(o: object, m: string): void; debug(o: object, m: string): void };
  rescanMs?: number;
}

export class OutgoingDoneWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: OutgoingDoneOptions) {}

  /** Reads every archived call of ours that is there now; returns how many were taken. */
  scan(): number {
    const { dir, isOurs, log } = this.options;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return 0; // Asterisk creates outgoing_done on its first archived call
    }
    let taken = 0;
    for (const name of names.sort()) {
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
      this.options.onCall(call);
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
    this.scan();
    try {
      this.watcher = watch(this.options.dir, (_e, name) => {
        if (typeof name === 'string' && name.startsWith('smsr-')) this.scan();
      });
      this.watcher.on('error', () => undefined);
    } catch {
      /* not there yet: the timer picks it up */
    }
    this.timer = setInterval(() => this.scan(), this.options.rescanMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }
}
