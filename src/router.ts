/**
 * Pure routing decision: given a journal row and what the directory says of
 * its recipient, what should happen to it. No I/O here.
 */
import type { Recipient, ServiceLetter } from './directory/recipients.js';

export type NoticeReason = 'disabled' | 'unknown';

export type Plan =
  /** Hand the message to the recipient's service. */
  | { action: 'deliver'; service: ServiceLetter; recipient: Recipient }
  /** The message cannot be delivered: tell its sender. */
  | { action: 'notify-sender'; reason: NoticeReason }
  /** A notice that cannot be delivered is only logged, never answered with another notice. */
  | { action: 'drop-notice'; reason: NoticeReason };

export function planFor(message: { kind: 'message' | 'notice' }, recipient: Recipient | undefined): Plan {
  const reason: NoticeReason | undefined = !recipient ? 'unknown' : recipient.service === 'N' ? 'disabled' : undefined;
  if (reason) return message.kind === 'notice' ? { action: 'drop-notice', reason } : { action: 'notify-sender', reason };
  return { action: 'deliver', service: recipient!.service, recipient: recipient! };
}

/**
 * Fills a notice template: `{to}` is the number that could not be reached,
 * `{from}` the sender, `{reason}` and `{attempts}` what the last attempt said.
 */
export function noticeText(template: string, values: { to: string; from: string; reason?: string; attempts?: number }): string {
  return template.replace(/\{(to|from|reason|attempts)\}/g, (whole, k: 'to' | 'from' | 'reason' | 'attempts') =>
    values[k] === undefined ? whole : String(values[k]),
  );
}

/** A message past its validity: its own vp (minutes), or else `defaultSeconds` ([sms] validity), since it was received. */
export function expired(message: { vp: number | null; receivedAt: string }, defaultSeconds: number, now: number): boolean {
  const validityMs = (message.vp ? message.vp * 60 : defaultSeconds) * 1000;
  return now - Date.parse(message.receivedAt) > validityMs;
}
