/**
 * Route T: a SIP instant message through AMI `MessageSend`.
 *
 * `Response: Success` means Asterisk handed the message to the channel
 * driver, not that anyone read it (SPEC §6): the row becomes `spooled`, like
 * an S message handed to Asterisk. `Response: Error` (user not registered,
 * unknown technology) is a delivery failure: the sender gets a notice. AMI
 * being unreachable is not the message's fault: it waits as `pending` and
 * goes out, in journal order, when AMI is back.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Journal, MessageRow } from '../journal/journal.js';
import type { DeliveryItem } from './sms.js';
import { errorCode, errorMessage } from '../errors.js';
import { crashPoint } from '../testing/crash-points.js';

/** What the T route needs of an AMI client (the real one, or a test double). */
export interface AmiSender {
  readonly state: string;
  action(action: string, fields: Record<string, string>): Promise<{ get(key: string): string | undefined }>;
}

/** `PJSIP/1001` → `pjsip:1001`, `SIP/peer` → `sip:peer`, `PJSIP/1001/sip:1001@host` → `pjsip:1001/sip:1001@host`. */
export function sipDestination(channel: string): string {
  const slash = channel.indexOf('/');
  return `${channel.slice(0, slash).toLowerCase()}:${channel.slice(slash + 1)}`;
}

export function sipFrom(sender: string, domain: string): string {
  return `"${sender}" <sip:${sender}@${domain}>`;
}

export interface SipOutcomeHandlers {
  /** The channel driver refused the message: notify the sender. */
  failed(message: MessageRow, reason: string): void;
}

export class SipRoute {
  readonly letter = 'T' as const;

  constructor(
    private readonly config: Config,
    private readonly journal: Journal,
    private readonly log: Logger,
    private readonly ami: AmiSender | undefined,
    private readonly outcomes: SipOutcomeHandlers,
  ) {}

  /** Sends in journal order, a window of actions in flight at once (AMI answers a session's actions in order). */
  async deliver(items: readonly DeliveryItem[]): Promise<void> {
    const window = 16;
    for (let i = 0; i < items.length; i += window) {
      const slice = items.slice(i, i + window);
      const results = await Promise.allSettled(slice.map((item) => this.send(item)));
      // If AMI went away, the rest wait too, so that order is kept.
      if (results.some((r) => r.status === 'fulfilled' && r.value === 'waiting')) {
        for (const rest of items.slice(i + window)) this.wait(rest, 'AMI_NOT_CONNECTED');
        return;
      }
    }
  }

  private wait(item: DeliveryItem, code: string): void {
    const { message, recipient } = item;
    if (message.state === 'pending' && message.lastError === code) return;
    this.journal.update(message.id, { state: 'pending', route: 'T', channel: recipient.channel, lastError: code });
    this.log.info(
      { msgId: message.id, from: message.oa, to: message.da, route: 'T', outcome: 'pending', code },
      'AMI is not available; the message waits in the journal',
    );
  }

  private async send(item: DeliveryItem): Promise<'sent' | 'failed' | 'waiting'> {
    const { message, recipient } = item;
    const log = { msgId: message.id, from: message.oa, to: message.da, route: 'T', kind: message.kind };
    if (!this.ami || this.ami.state !== 'connected') {
      this.wait(item, 'AMI_NOT_CONNECTED');
      return 'waiting';
    }
    let response;
    try {
      const sent = this.ami.action('MessageSend', {
        To: sipDestination(recipient.channel),
        From: sipFrom(message.oa, this.config.sip.domain),
        Base64Body: Buffer.from(message.text, 'utf8').toString('base64'),
      });
      // action() wrote the request synchronously: from here Asterisk may act on it before we record anything.
      crashPoint('sip.after-send');
      response = await sent;
    } catch (err) {
      // Disconnected, timed out or not connected: not the message's fault; it is sent again when AMI is back.
      this.wait(item, errorCode(err));
      this.log.warn({ ...log, code: errorCode(err), err: errorMessage(err) }, 'MessageSend did not complete');
      return 'waiting';
    }
    const answer = response.get('Response') ?? '';
    const text = response.get('Message') ?? '';
    if (answer.toLowerCase() === 'success') {
      // One commit (one fsync of the journal) for both changes, not two.
      this.journal.transaction(() => {
        this.journal.update(message.id, {
          state: 'spooled',
          route: 'T',
          channel: recipient.channel,
          attempts: message.attempts + 1,
          lastError: null,
        });
        this.journal.setRouteDetail(message.id, { ami: 'Success', amiMessage: text });
      });
      this.log.info({ ...log, outcome: 'spooled' }, 'SIP message handed to the channel driver');
      return 'sent';
    }
    this.journal.update(message.id, { state: 'failed', route: 'T', channel: recipient.channel, attempts: message.attempts + 1, lastError: `AMI MessageSend: ${answer}: ${text}` });
    this.log.warn({ ...log, outcome: 'failed', ami: answer, amiMessage: text }, 'SIP message refused by Asterisk');
    this.outcomes.failed({ ...message, state: 'failed' }, text);
    return 'failed';
  }
}
