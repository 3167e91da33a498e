/** Counting files as they appear in a directory (fs.watch), with a listing as the fallback if inotify overflowed. */
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { monoMs, sleep } from './stats.js';

export class ArrivalWatcher {
  /** Non-dot names seen, with the monotonic time of their first event. */
  readonly seen = new Map<string, number>();
  lastArrival = 0;
  private readonly watcher: FSWatcher;

  constructor(readonly dir: string) {
    this.watcher = watch(dir, (_event, name) => {
      if (typeof name !== 'string' || name.startsWith('.') || this.seen.has(name)) return;
      const t = monoMs();
      this.seen.set(name, t);
      this.lastArrival = t;
    });
  }

  close(): void {
    this.watcher.close();
  }

  /** Visible files now (a listing, for when events may have been lost). */
  listed(): number {
    return readdirSync(this.dir).filter((n) => !n.startsWith('.')).length;
  }

  /**
   * Resolves once `expected` files are there. Counts events; when they stall
   * for a second, lists the directory instead. Rejects after `timeoutMs`,
   * or as soon as `failed()` returns a reason.
   */
  async until(expected: number, timeoutMs: number, failed: () => string | undefined = () => undefined): Promise<void> {
    const deadline = monoMs() + timeoutMs;
    let lastCount = -1;
    let lastChange = monoMs();
    for (;;) {
      const count = this.seen.size;
      if (count >= expected) return;
      const why = failed();
      if (why) throw new Error(why);
      const now = monoMs();
      if (count !== lastCount) {
        lastCount = count;
        lastChange = now;
      } else if (now - lastChange > 1000) {
        if (this.listed() >= expected) return;
        lastChange = now;
      }
      if (now > deadline) throw new Error(`${this.dir}: ${count} of ${expected} files after ${timeoutMs} ms`);
      await sleep(50);
    }
  }
}

/** Earliest and latest ctime (ms, wall clock) of the visible files of a directory: a rename sets ctime. */
export function ctimeRange(dir: string): { first: number; last: number; count: number } {
  let first = Infinity;
  let last = -Infinity;
  let count = 0;
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const t = statSync(path.join(dir, name)).ctimeMs;
    if (t < first) first = t;
    if (t > last) last = t;
    count++;
  }
  return { first, last, count };
}
