/**
 * Route `concat`: a part of a long message from a phone (its UDH carries a
 * concatenation element). Parts wait in the journal until all have arrived
 * or [sms] reassembly_timeout passes; then the joined text is recorded as one
 * message and routed once (re-split for S, whole for F, V and T). The parts
 * become `delivered` with route `concat` and detail.joinedInto; a duplicate
 * part, even one arriving after its set was joined, is kept and ignored.
 *
 * What to join, and when, is decided by the pure spool/reassembly.ts; this
 * module keeps the parts' rows in step with it.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { newMessage, type Journal, type MessageRow } from '../journal/journal.js';
import { concatKey, keyString, reassemble } from '../spool/reassembly.js';
import { crashPoint } from '../testing/crash-points.js';

export interface ConcatPartsDeps {
  config: Config;
  journal: Journal;
  log: Logger;
  /** The parts held wait for more until `at`: wake the work loop then. */
  waitUntil: (at: Date) => void;
  /** A joined message was recorded: it is routed like any received message. */
  joined: () => void;
}

export class ConcatParts {
  constructor(private readonly deps: ConcatPartsDeps) {}

  /** True for a part of a long message from a phone, which waits here rather than being routed on its own. */
  isPart(message: MessageRow): boolean {
    return message.kind === 'message' && message.source !== 'concat' && concatKey(message) !== undefined;
  }

  /** Holds one part, and joins its set once complete or timed out. */
  hold(stale: MessageRow, now: number): void {
    const { journal, log } = this.deps;
    // The row may have been joined a moment ago, as part of a set completed by a sibling in this same pass.
    const part = journal.get(stale.id);
    if (!part || (part.state !== 'received' && part.state !== 'pending')) return;
    const key = concatKey(part)!;
    const timeoutMs = this.deps.config.sms.reassemblyTimeout * 1000;
    const late = journal
      .joinedParts(part.oa, part.da, new Date(now - 2 * timeoutMs).toISOString())
      .find((p) => p.state === 'delivered' && p.id !== part.id && p.udh === part.udh && keyString(concatKey(p)!) === keyString(key));
    if (late) {
      journal.update(part.id, { state: 'delivered', route: 'concat', lastError: null, nextAttemptAt: null });
      journal.setRouteDetail(part.id, { duplicateOf: late.id });
      log.info({ msgId: part.id, from: part.oa, to: part.da, route: 'concat', outcome: 'duplicate', duplicateOf: late.id }, 'a part already joined arrived again; ignored');
      return;
    }
    if (part.state !== 'pending') journal.update(part.id, { state: 'pending', route: 'concat', lastError: 'WAITING_FOR_PARTS' });
    const held = journal.heldParts(part.oa, part.da).filter((p) => {
      const k = concatKey(p);
      return k !== undefined && keyString(k) === keyString(key);
    });
    if (held.length === 0) return;
    const result = reassemble(
      held.map((p) => ({ id: p.id, oa: p.oa, da: p.da, udh: p.udh!, text: p.text, receivedAt: p.receivedAt })),
      { now: new Date(now).toISOString(), timeoutMs },
    );
    if (result.kind === 'waiting') {
      for (const p of held) if (p.nextAttemptAt !== result.until) journal.update(p.id, { state: 'pending', nextAttemptAt: result.until });
      this.deps.waitUntil(new Date(result.until));
      return;
    }
    const first = held.find((p) => p.id === result.used[0]) ?? part;
    const joinedId = journal.transaction(() => {
      const [r] = journal.recordReceived([
        newMessage({
          kind: 'message',
          source: 'concat',
          sourceName: `concat-${result.used.join('-')}`,
          oa: part.oa,
          da: part.da,
          text: result.text,
          scts: first.scts,
          vp: first.vp,
          srr: first.srr,
        }),
      ]);
      crashPoint('reassembly.join');
      for (const id of [...result.used, ...result.duplicates]) {
        journal.update(id, { state: 'delivered', route: 'concat', lastError: null, nextAttemptAt: null });
        journal.setRouteDetail(id, result.duplicates.includes(id) ? { joinedInto: r!.id, duplicate: true } : { joinedInto: r!.id });
      }
      return r!.id;
    });
    const missing = result.kind === 'timed-out' ? result.missing : [];
    log.info({ msgId: joinedId, from: part.oa, to: part.da, route: 'concat', outcome: 'joined', parts: result.used, duplicates: result.duplicates, missing }, missing.length ? 'long message joined after the timeout, with markers for missing parts' : 'long message joined');
    this.deps.joined();
  }
}
