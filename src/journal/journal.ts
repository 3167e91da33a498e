/**
 * The message journal: every accepted message is a row, and every change of
 * its fate is an UPDATE of that row, never only a log line. A spool file is
 * removed only after its row is committed; the (source, source_name,
 * content_hash) key makes a second reading of the same file a no-op.
 */
import { createHash } from 'node:crypto';
import type { Database, Statement } from 'better-sqlite3';

export type MessageState = 'received' | 'pending' | 'spooled' | 'delivered' | 'failed' | 'bounced';
export const MESSAGE_STATES: readonly MessageState[] = ['received', 'pending', 'spooled', 'delivered', 'failed', 'bounced'];
export type MessageKind = 'message' | 'notice';

export interface NewMessage {
  kind: MessageKind;
  parentId: number | null;
  source: string;
  sourceName: string;
  contentHash: string;
  oa: string;
  da: string;
  text: string;
  udh: string | null;
  scts: string | null;
  mr: number | null;
  dcs: number | null;
  pid: number | null;
  vp: number | null;
  srr: boolean;
  rp: boolean;
}

export interface MessageRow extends NewMessage {
  id: number;
  state: MessageState;
  route: string | null;
  channel: string | null;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  /** JSON owned by the route (e.g. the concatenation reference it chose). */
  detail: string | null;
  receivedAt: string;
  updatedAt: string;
}

export interface StateChange {
  state: MessageState;
  route?: string | null;
  channel?: string | null;
  lastError?: string | null;
  attempts?: number;
  /** ISO time of the next attempt; null clears it. */
  nextAttemptAt?: string | null;
}

/** Told of every change that matters to /metrics; the journal itself stays free of metrics code. */
export interface JournalObserver {
  messagesReceived(source: string, count: number): void;
  stateChanged(state: MessageState, route: string | null): void;
  callFinished(service: string, status: string | null): void;
}

export interface PendingCall {
  id: number;
  fileName: string;
}

export interface CallRow {
  id: number;
  service: string;
  queue: string;
  channel: string;
  fileName: string;
  messageId: number | null;
  attempt: number;
}

export function contentHash(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A new row's fields with the usual defaults: no parent, no UDH or SMS
 * header fields, the content hash of the text. Callers name what matters.
 */
export function newMessage(
  fields: Pick<NewMessage, 'kind' | 'source' | 'sourceName' | 'oa' | 'da' | 'text'> & Partial<NewMessage>,
): NewMessage {
  const row: NewMessage = {
    parentId: null,
    contentHash: '',
    udh: null,
    scts: null,
    mr: null,
    dcs: null,
    pid: null,
    vp: null,
    srr: false,
    rp: false,
    ...fields,
  };
  // Hashed only when the caller gave no hash: a morx file brings the hash of its bytes (one SHA-256 per message saved).
  if (!('contentHash' in fields)) row.contentHash = contentHash(fields.text);
  return row;
}

interface RawRow {
  id: number;
  kind: MessageKind;
  parent_id: number | null;
  source: string;
  source_name: string;
  content_hash: string;
  oa: string;
  da: string;
  text: string;
  udh: string | null;
  scts: string | null;
  mr: number | null;
  dcs: number | null;
  pid: number | null;
  vp: number | null;
  srr: number;
  rp: number;
  state: MessageState;
  route: string | null;
  channel: string | null;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  detail: string | null;
  received_at: string;
  updated_at: string;
}

function fromRaw(r: RawRow): MessageRow {
  return {
    id: r.id,
    kind: r.kind,
    parentId: r.parent_id,
    source: r.source,
    sourceName: r.source_name,
    contentHash: r.content_hash,
    oa: r.oa,
    da: r.da,
    text: r.text,
    udh: r.udh,
    scts: r.scts,
    mr: r.mr,
    dcs: r.dcs,
    pid: r.pid,
    vp: r.vp,
    srr: r.srr !== 0,
    rp: r.rp !== 0,
    state: r.state,
    route: r.route,
    channel: r.channel,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
    detail: r.detail,
    receivedAt: r.received_at,
    updatedAt: r.updated_at,
  };
}

const NOW = `strftime('%Y-%m-%dT%H:%M:%fZ','now')`;

export class Journal {
  private readonly insert: Statement;
  private readonly findExisting: Statement;
  private readonly byId: Statement;
  private readonly byState: Statement;
  private readonly dueByState: Statement;
  private readonly nextDue: Statement;
  private readonly callsOfState: Statement;
  private readonly callByName: Statement;
  private readonly callForAttempt: Statement;
  private readonly setState: Statement;
  private readonly setDetail: Statement;
  private readonly takeRef: Statement;
  private readonly readRef: Statement;
  private readonly pendingCall: Statement;
  private readonly insertCall: Statement;
  private readonly nextCallId: Statement;
  private readonly finishCall: Statement;
  private readonly counts: Statement;
  private readonly getState: Statement;
  private readonly heldFor: Statement;
  private readonly joinedSince: Statement;
  private readonly outstandingByService: Statement;
  private readonly outstandingByChannel: Statement;
  private readonly putState: Statement;
  private readonly failedSince: Statement;

  /** Set by the daemon when metrics are on. */
  observer: JournalObserver | undefined;

  constructor(private readonly db: Database) {
    this.insert = db.prepare(
      `INSERT INTO messages (kind, parent_id, source, source_name, content_hash, oa, da, text, udh, scts, mr, dcs, pid, vp, srr, rp, state)
       VALUES (@kind, @parentId, @source, @sourceName, @contentHash, @oa, @da, @text, @udh, @scts, @mr, @dcs, @pid, @vp, @srr, @rp, 'received')
       ON CONFLICT (source, source_name, content_hash) DO NOTHING`,
    );
    this.findExisting = db.prepare(
      `SELECT id FROM messages WHERE source = ? AND source_name = ? AND content_hash = ?`,
    );
    this.byId = db.prepare(`SELECT * FROM messages WHERE id = ?`);
    this.byState = db.prepare(`SELECT * FROM messages WHERE state = ? AND id > ? ORDER BY id LIMIT ?`);
    this.dueByState = db.prepare(
      `SELECT * FROM messages WHERE state = ? AND id > ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?`,
    );
    this.nextDue = db.prepare(`SELECT min(next_attempt_at) AS at FROM messages WHERE state = 'pending' AND next_attempt_at IS NOT NULL`);
    this.callsOfState = db.prepare(`SELECT id, service, queue, channel, file_name AS fileName, message_id AS messageId, attempt FROM calls WHERE state = 'pending' ORDER BY id`);
    this.callByName = db.prepare(`SELECT id, service, queue, channel, file_name AS fileName, message_id AS messageId, attempt, state FROM calls WHERE file_name = ?`);
    this.callForAttempt = db.prepare(`SELECT id, file_name AS fileName, state FROM calls WHERE message_id = ? AND service = ? AND attempt = ?`);
    this.setState = db.prepare(
      `UPDATE messages SET state = @state,
         route = coalesce(@route, route), channel = coalesce(@channel, channel),
         last_error = CASE WHEN @setError THEN @lastError ELSE last_error END,
         attempts = coalesce(@attempts, attempts),
         next_attempt_at = CASE WHEN @setNext THEN @nextAttemptAt ELSE next_attempt_at END,
         updated_at = ${NOW}
       WHERE id = @id
       RETURNING route`,
    );
    this.setDetail = db.prepare(`UPDATE messages SET detail = ?, updated_at = ${NOW} WHERE id = ?`);
    this.readRef = db.prepare(`SELECT next_ref FROM concat_refs WHERE number = ?`);
    this.takeRef = db.prepare(
      `INSERT INTO concat_refs (number, next_ref) VALUES (?, ?)
       ON CONFLICT (number) DO UPDATE SET next_ref = excluded.next_ref`,
    );
    this.pendingCall = db.prepare(
      `SELECT id, file_name AS fileName FROM calls WHERE service = ? AND queue = ? AND state = 'pending' ORDER BY id DESC`,
    );
    this.insertCall = db.prepare(
      `INSERT INTO calls (id, service, queue, channel, file_name, message_id, attempt, state)
       VALUES (@id, @service, @queue, @channel, @fileName, @messageId, @attempt, 'pending')`,
    );
    this.nextCallId = db.prepare(`SELECT coalesce(max(id), 0) + 1 AS id FROM calls`);
    this.finishCall = db.prepare(
      `UPDATE calls SET state = 'done', status = ?, finished_at = ${NOW} WHERE id = ? AND state = 'pending' RETURNING service`,
    );
    this.counts = db.prepare(`SELECT state, count(*) AS n FROM messages GROUP BY state`);
    this.outstandingByService = db.prepare(`SELECT count(*) AS n FROM calls WHERE state = 'pending' AND service = ?`);
    this.outstandingByChannel = db.prepare(`SELECT count(*) AS n FROM calls WHERE state = 'pending' AND channel = ?`);
    // `+da`: walk the pending rows (messages_state), not every message ever sent to da (messages_da,
    // which SQLite picks otherwise): the first grows with the journal, so a backlog was quadratic.
    this.heldFor = db.prepare(`SELECT * FROM messages WHERE state = 'pending' AND last_error = 'WAITING_FOR_PARTS' AND oa = ? AND +da = ? ORDER BY id`);
    this.joinedSince = db.prepare(`SELECT * FROM messages WHERE route = 'concat' AND oa = ? AND da = ? AND received_at >= ? ORDER BY id`);
    this.getState = db.prepare(`SELECT value FROM daemon_state WHERE key = ?`);
    this.putState = db.prepare(`INSERT INTO daemon_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`);
    this.failedSince = db.prepare(`SELECT count(*) AS n FROM messages WHERE state IN ('failed','bounced') AND updated_at >= ?`);
  }

  /**
   * Records a batch in one transaction. Returns, for each input, its row id and
   * whether it was already there (the same file read again after a crash).
   */
  recordReceived(messages: readonly NewMessage[]): Array<{ id: number; duplicate: boolean }> {
    const results = this.db.transaction(() =>
      messages.map((m) => {
        const info = this.insert.run({ ...m, srr: m.srr ? 1 : 0, rp: m.rp ? 1 : 0 });
        if (info.changes === 1) return { id: Number(info.lastInsertRowid), duplicate: false };
        const row = this.findExisting.get(m.source, m.sourceName, m.contentHash) as { id: number };
        return { id: row.id, duplicate: true };
      }),
    )();
    if (this.observer) {
      // Counted once the transaction is committed (an outer transaction may still roll back: rare, and only ever over-counts).
      const bySource = new Map<string, number>();
      results.forEach((r, i) => {
        if (!r.duplicate) bySource.set(messages[i]!.source, (bySource.get(messages[i]!.source) ?? 0) + 1);
      });
      for (const [source, n] of bySource) this.observer.messagesReceived(source, n);
    }
    return results;
  }

  get(id: number): MessageRow | undefined {
    const r = this.byId.get(id) as RawRow | undefined;
    return r && fromRaw(r);
  }

  /** Rows in a state, oldest first, in pages (afterId = last id of the previous page). */
  listByState(state: MessageState, limit = 500, afterId = 0): MessageRow[] {
    return (this.byState.all(state, afterId, limit) as RawRow[]).map(fromRaw);
  }

  /** Like listByState, but only rows whose next attempt is due at `now` (ISO). */
  listDue(state: MessageState, now: string, limit = 500, afterId = 0): MessageRow[] {
    return (this.dueByState.all(state, afterId, now, limit) as RawRow[]).map(fromRaw);
  }

  /** The earliest scheduled attempt among pending rows, if any. */
  nextAttemptTime(): string | undefined {
    return (this.nextDue.get() as { at: string | null }).at ?? undefined;
  }

  pendingCallRows(): CallRow[] {
    return this.callsOfState.all() as CallRow[];
  }

  callNamed(fileName: string): (CallRow & { state: string }) | undefined {
    return this.callByName.get(fileName) as (CallRow & { state: string }) | undefined;
  }

  callFor(messageId: number, service: string, attempt: number): { id: number; fileName: string; state: string } | undefined {
    return this.callForAttempt.get(messageId, service, attempt) as { id: number; fileName: string; state: string } | undefined;
  }

  update(id: number, change: StateChange): void {
    const row = this.setState.get({
      id,
      state: change.state,
      route: change.route ?? null,
      channel: change.channel ?? null,
      setError: change.lastError !== undefined ? 1 : 0,
      lastError: change.lastError ?? null,
      attempts: change.attempts ?? null,
      setNext: change.nextAttemptAt !== undefined ? 1 : 0,
      nextAttemptAt: change.nextAttemptAt ?? null,
    }) as { route: string | null } | undefined;
    if (row) this.observer?.stateChanged(change.state, row.route);
  }

  setRouteDetail(id: number, detail: unknown): void {
    this.setDetail.run(JSON.stringify(detail), id);
  }

  /** Runs fn in one transaction (nested calls join the outer one). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * The next concatenation reference for a recipient: per number, incrementing,
   * wrapping at 2^bits. Committed with the caller's transaction.
   */
  nextConcatReference(number: string, bits: 8 | 16): number {
    const row = this.readRef.get(number) as { next_ref: number } | undefined;
    const modulo = bits === 8 ? 0x100 : 0x10000;
    const ref = (row?.next_ref ?? 0) % modulo;
    this.takeRef.run(number, (ref + 1) % modulo);
    return ref;
  }

  pendingCalls(service: string, queue: string): PendingCall[] {
    return this.pendingCall.all(service, queue) as PendingCall[];
  }

  /** Records a call file about to be written; its name carries the call's row id. */
  addCall(
    call: { service: string; queue: string; channel: string; messageId: number | null; attempt: number },
    fileNameFor: (callId: number) => string,
  ): PendingCall {
    return this.transaction(() => {
      const id = (this.nextCallId.get() as { id: number }).id;
      const fileName = fileNameFor(id);
      this.insertCall.run({ ...call, id, fileName });
      return { id, fileName };
    });
  }

  finishCallRow(id: number, status: string | null): void {
    const row = this.finishCall.get(status, id) as { service: string } | undefined;
    if (row) this.observer?.callFinished(row.service, status);
  }

  /** For the STATUS command: waiting, delivered, and failed or bounced since local midnight. */
  commandStatus(now = new Date()): { queued: number; delivered: number; failedToday: number } {
    const c = this.countByState();
    const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString();
    const failedToday = (this.failedSince.get(midnight) as { n: number }).n;
    return { queued: c.received + c.pending + c.spooled, delivered: c.delivered, failedToday };
  }

  /** Parts of long messages from `oa` to `da` waiting for the rest. */
  heldParts(oa: string, da: string): MessageRow[] {
    return (this.heldFor.all(oa, da) as RawRow[]).map(fromRaw);
  }

  /** Parts from `oa` to `da` already joined into a message since `since` (ISO). */
  joinedParts(oa: string, da: string, since: string): MessageRow[] {
    return (this.joinedSince.all(oa, da, since) as RawRow[]).map(fromRaw);
  }

  /** Calls we placed whose outcome is not known yet, for one service. */
  outstandingCalls(service: string): number {
    return (this.outstandingByService.get(service) as { n: number }).n;
  }

  /** Calls we placed whose outcome is not known yet, to one channel (whatever the service). */
  outstandingCallsTo(channel: string): number {
    return (this.outstandingByChannel.get(channel) as { n: number }).n;
  }

  /** Small durable values of the daemon's own (e.g. where it stopped reading a log). */
  readState(key: string): string | undefined {
    return (this.getState.get(key) as { value: string } | undefined)?.value;
  }

  writeState(key: string, value: string): void {
    this.putState.run(key, value);
  }

  countByState(): Record<MessageState, number> {
    const out = Object.fromEntries(MESSAGE_STATES.map((s) => [s, 0])) as Record<MessageState, number>;
    for (const { state, n } of this.counts.all() as Array<{ state: MessageState; n: number }>) out[state] = n;
    return out;
  }
}
