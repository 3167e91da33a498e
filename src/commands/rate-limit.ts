/**
 * Per-sender reply limit for the command service. Pure: the clock is injected.
 *
 * Every reply costs an SMS (and a command may start a program), so one phone —
 * or a loop between two auto-responders — must not be able to make the centre
 * send without bound. Each sender gets a fixed window starting at its first
 * message; within it the first `limit` messages are answered, the next one gets
 * a single "too many" reply (so a person knows why it went quiet), and the rest
 * get nothing: answering each of them would be the very flood we prevent.
 */

export type RateDecision = 'allow' | 'too-many' | 'silent';

export interface RateLimiterOptions {
  /** Replies per sender per window. */
  limit: number;
  /** Milliseconds since some epoch; only differences matter. */
  now(): number;
  /** Window length (default 60 s). */
  windowMs?: number;
  /** Most senders remembered at once (default 10 000): memory stays bounded even under a flood of distinct numbers. */
  maxSenders?: number;
}

interface Window {
  start: number;
  count: number;
}

export class RateLimiter {
  readonly #limit: number;
  readonly #now: () => number;
  readonly #windowMs: number;
  readonly #maxSenders: number;
  // Insertion order = window start order (a sender is deleted and re-inserted
  // when its window restarts), so the stale ones are always at the front and
  // sweeping stops at the first live entry: amortised O(1) per message.
  readonly #windows = new Map<string, Window>();

  constructor(options: RateLimiterOptions) {
    this.#limit = options.limit;
    this.#now = options.now;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxSenders = Math.max(1, options.maxSenders ?? 10_000);
  }

  /** Records one message from `sender` and says whether (and how) to answer it. */
  check(sender: string): RateDecision {
    const now = this.#now();
    this.#sweep(now);
    let w = this.#windows.get(sender);
    if (!w || this.#stale(w, now)) {
      this.#windows.delete(sender);
      // At the cap, forget the oldest sender: it merely gets a fresh window,
      // which is the least harmful thing to lose.
      if (this.#windows.size >= this.#maxSenders) {
        const oldest = this.#windows.keys().next();
        if (!oldest.done) this.#windows.delete(oldest.value);
      }
      w = { start: now, count: 0 };
      this.#windows.set(sender, w);
    }
    w.count++;
    if (w.count <= this.#limit) return 'allow';
    return w.count === this.#limit + 1 ? 'too-many' : 'silent';
  }

  /** Senders currently remembered (for tests and diagnostics). */
  get size(): number {
    return this.#windows.size;
  }

  // A clock that stepped back (wall-clock correction) must not freeze a
  // sender in a window that "started in the future".
  #stale(w: Window, now: number): boolean {
    return now - w.start >= this.#windowMs || now < w.start;
  }

  #sweep(now: number): void {
    for (const [sender, w] of this.#windows) {
      if (!this.#stale(w, now)) break;
      this.#windows.delete(sender);
    }
  }
}
