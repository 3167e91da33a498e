/**
 * Notices: what the sender of an undeliverable message is told. A bounced
 * message and the notice row for its sender are committed together, so a
 * crash leaves either both or neither. A notice is never answered with
 * another notice.
 */
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { newMessage, type Journal, type MessageRow } from './journal/journal.js';
import { noticeText, type NoticeReason } from './router.js';
import { isoLocal } from './spool/scts.js';

export type BounceReason = NoticeReason | 'sip-failed' | 'fax-failed' | 'voice-failed' | 'sms-failed' | 'expired';
const BOUNCE_REASONS: Record<BounceReason, string> = {
  disabled: 'NUMBER_DISABLED: the recipient has service N',
  unknown: 'UNKNOWN_NUMBER: the recipient is not in the directory',
  'sip-failed': 'SIP_REFUSED: Asterisk could not hand the SIP message over',
  'fax-failed': 'FAX_FAILED: the last fax attempt failed',
  'voice-failed': 'VOICE_FAILED: the last voice call attempt failed',
  'sms-failed': 'SMS_FAILED: the last SMS attempt failed',
  expired: 'EXPIRED: the validity period ended before the message could be delivered',
};
const BOUNCE_ROUTE: Record<BounceReason, string> = { disabled: 'N', unknown: 'N', 'sip-failed': 'T', 'fax-failed': 'F', 'voice-failed': 'V', 'sms-failed': 'S', expired: 'N' };

export interface NoticesDeps {
  journal: Journal;
  log: Logger;
  /** The current config: reload() replaces [notices], so its templates are read at each bounce. */
  config: () => Config;
  /** A notice row was committed: it is routed like any received message. */
  queued: () => void;
}

export class Notices {
  constructor(private readonly deps: NoticesDeps) {}

  /**
   * Marks a message bounced and queues a notice to its sender, in one
   * transaction. A notice is never answered with another notice.
   */
  bounce(message: MessageRow, reason: BounceReason, detail?: string): void {
    const { journal, log: logger } = this.deps;
    const route = BOUNCE_ROUTE[reason];
    const why = detail ? `${BOUNCE_REASONS[reason]} (${detail})` : BOUNCE_REASONS[reason];
    const log = { msgId: message.id, from: message.oa, to: message.da, route };
    if (message.kind === 'notice' || !message.oa) {
      const lastError = message.kind === 'notice' ? `${why}; a notice is not answered with another notice` : `${why}; no sender to notify`;
      journal.update(message.id, { state: 'failed', route, lastError });
      logger.warn({ ...log, outcome: 'failed', reason, kind: message.kind }, 'undeliverable, and nobody to tell');
      return;
    }
    const config = this.deps.config();
    const { notices } = config;
    const template = { disabled: notices.disabled, unknown: notices.unknown, 'sip-failed': notices.sipFailed, 'fax-failed': notices.faxFailed, 'voice-failed': notices.voiceFailed, 'sms-failed': notices.smsFailed, expired: notices.expired }[reason];
    const text = noticeText(template, { to: message.da, from: message.oa, reason: detail, attempts: message.attempts });
    const noticeId = journal.transaction(() => {
      const [r] = journal.recordReceived([
        newMessage({
          kind: 'notice',
          parentId: message.id,
          source: 'notice',
          sourceName: `notice-for-${message.id}`,
          oa: config.centre.receiveNumber,
          da: message.oa,
          text,
          scts: isoLocal(new Date()),
        }),
      ]);
      journal.update(message.id, { state: 'bounced', route, lastError: why });
      return r!.id;
    });
    logger.info({ ...log, outcome: 'bounced', reason, noticeId }, 'undeliverable; notice queued for the sender');
    this.deps.queued();
  }

  /** A notice whose own recipient cannot be reached: it fails, and is only logged. */
  drop(notice: MessageRow, reason: NoticeReason): void {
    this.deps.journal.update(notice.id, { state: 'failed', lastError: `${BOUNCE_REASONS[reason]} (notice not delivered)` });
    this.deps.log.warn(
      { msgId: notice.id, from: notice.oa, to: notice.da, kind: notice.kind, route: 'N', outcome: 'failed', reason },
      'a notice could not be delivered; it is not answered with another notice',
    );
  }
}
