/**
 * Route S: an SMS to an analog phone. Each part becomes `sms/mttx/QUEUE.ID-N`
 * (a dot-file renamed in), then one pending call per queue runs SMS(QUEUE,s).
 * File names are derived from the journal id, so routing the same row again
 * after a crash rewrites the same files instead of adding copies.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Recipient } from '../directory/recipients.js';
import type { Journal, MessageRow } from '../journal/journal.js';
import { queueForNumber } from '../numbers.js';
import { encodeSmsFile } from '../spool/sms-file.js';
import { sanitizeForSms, splitMessage, chooseEncoding, type SmsPart } from '../spool/encoding.js';
import { DotFileBatch } from '../spool/atomic-write.js';
import { SmsCallSpool } from '../asterisk/call-spool.js';
import { callTime } from '../schedule/call-time.js';
import { crashPoint } from '../testing/crash-points.js';

export interface DeliveryItem {
  message: MessageRow;
  recipient: Recipient;
}

export class SmsRoute {
  readonly letter = 'S' as const;
  private readonly calls: SmsCallSpool;

  constructor(
    private readonly config: Config,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly options: { fsync: boolean },
    /** Told of every message handed to Asterisk (its parts are now expected in app_sms's log). */
    private readonly onSpooled: (messageId: number) => void = () => undefined,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.calls = new SmsCallSpool(config, journal, options);
  }

  /** The parts a message becomes; a multipart message gets (once) a reference from the journal. */
  partsFor(message: MessageRow): SmsPart[] {
    const { text } = sanitizeForSms(message.text, this.config.sms.unsupportedCharacter);
    if (message.udh) {
      // Already a part (a phone split it): forward it as it is; the phone at the far end reassembles.
      const encoding = chooseEncoding(text);
      const fits = splitMessage(text, { reference: 0 }).length === 1;
      if (fits) return [{ text, udh: message.udh, encoding, dcs: encoding === 'ucs2' ? 8 : undefined }];
    }
    const single = splitMessage(text, { reference: 0, referenceBits: this.config.sms.referenceBits });
    if (single.length === 1) return single;
    const reference = this.referenceFor(message);
    return splitMessage(text, { reference, referenceBits: this.config.sms.referenceBits });
  }

  private referenceFor(message: MessageRow): number {
    const stored = message.detail ? (JSON.parse(message.detail) as { reference?: number }).reference : undefined;
    if (stored !== undefined) return stored;
    return this.journal.transaction(() => {
      const reference = this.journal.nextConcatReference(message.da, this.config.sms.referenceBits);
      this.journal.setRouteDetail(message.id, { reference });
      return reference;
    });
  }

  /** Places a call for a queue whose files are still waiting (the last call did not take them). */
  ensureCall(queue: string, channel: string, recipient?: Recipient): void {
    this.calls.ensureCall(queue, channel, null, recipient && callTime(this.config, recipient, 'S', this.now()));
  }

  /** Another call to this queue is still in flight besides `fileName` (SmsCallSpool.otherCallInFlight). */
  otherCallInFlight(queue: string, fileName: string): boolean {
    return this.calls.otherCallInFlight(queue, fileName);
  }

  async deliver(items: readonly DeliveryItem[]): Promise<void> {
    const queues = new Map<string, { channel: string; firstId: number; recipient: Recipient }>();
    // Every long message's reference is taken in one transaction (one commit, one
    // fsync of the journal, for the batch instead of one per long message); as
    // before, each is committed before any file of its message is written.
    const partsOf = this.journal.transaction(() => items.map(({ message }) => this.partsFor(message)));
    // Every file of the batch is written as a dot-file, synced together (with fsync), and only
    // then renamed in, message by message: one fsync wait for the batch instead of one per file.
    const batch = new DotFileBatch(this.config.spool.mttx, { fsync: this.options.fsync });
    const staged = items.map(({ message, recipient }, index) => {
      const queue = queueForNumber(recipient.number);
      // Parts the phone already acknowledged in an earlier attempt are not sent again.
      const acknowledged = new Set<number>(message.detail ? ((JSON.parse(message.detail) as { acknowledged?: number[] }).acknowledged ?? []) : []);
      const files: number[] = [];
      partsOf[index]!.forEach((part, i) => {
        if (acknowledged.has(i + 1)) return;
        const file = encodeSmsFile({
          oa: message.oa,
          da: message.da,
          scts: message.scts ?? undefined,
          udh: part.udh,
          dcs: part.dcs,
          text: part.text,
        }, 'smsq'); // app_sms reads it: non-ASCII text only as ud#/ud## (SPEC §2)
        files.push(batch.add(`${queue}.${message.id}-${i + 1}`, file));
      });
      return { queue, files };
    });
    await batch.sync();
    // Crash safety (issue 10): the rows become `spooled` once their files are staged and before
    // any is renamed in. Marked after the renames (as before), a crash in between routed them
    // again although app_sms may already have sent them (a call to the queue was pending): sent
    // twice. Now a crash in between leaves dot-files that no call can have sent, renamed in at
    // start (SmsOutcomes.recoverStaged). No await from here on: see onSpooled below.
    this.journal.transaction(() => {
      for (const { message, recipient } of items) {
        this.journal.update(message.id, { state: 'spooled', route: 'S', channel: recipient.channel, attempts: message.attempts + 1 });
      }
    });
    items.forEach(({ message, recipient }, index) => {
      const { queue, files } = staged[index]!;
      for (const file of files) batch.renameIn(file);
      crashPoint('sms.after-mttx');
      if (!queues.has(queue)) queues.set(queue, { channel: recipient.channel, firstId: message.id, recipient });
    });
    for (const [queue, { channel, firstId, recipient }] of queues) {
      const written = this.calls.ensureCall(queue, channel, firstId, callTime(this.config, recipient, 'S', this.now()));
      if (written) this.log.debug({ queue, callFile: written }, 'call file queued');
    }
    crashPoint('sms.after-call-file');
    // Expected in app_sms's log from here (their files in place, with no await since the commit,
    // so no call could end in between and count them unacknowledged before they existed).
    for (const { message } of items) {
      this.onSpooled(message.id);
      this.log.info({ msgId: message.id, from: message.oa, to: message.da, route: 'S', outcome: 'spooled', kind: message.kind }, 'message spooled for the phone');
    }
  }
}
