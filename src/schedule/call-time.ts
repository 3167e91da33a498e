/**
 * When may a call to this recipient be placed? Inside its quiet window (its
 * own, else [quiet] hours) a call of a listed service waits for the window's
 * end; Asterisk holds a call file whose mtime is in the future until then.
 */
import type { Config } from '../config.js';
import type { Recipient } from '../directory/recipients.js';
import { nextAllowed, parseQuietWindow } from './quiet-hours.js';

export function callTime(config: Config, recipient: Recipient, service: string, now: Date): Date | undefined {
  if (!config.quiet.services.includes(service)) return undefined;
  const window = parseQuietWindow(recipient.quietHours ?? config.quiet.hours);
  if (!window) return undefined;
  const at = nextAllowed(window, now, config.quiet.timeZone);
  return at.getTime() > now.getTime() ? at : undefined;
}
