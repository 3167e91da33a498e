/**
 * `sms-router send`: writes a morx file exactly as app_sms does when a phone
 * sends to the centre (dot-file, then a name QUEUE.YYYY-MM-DDTHH:MM:SS-SEQ),
 * so people and tests can inject messages without a phone.
 */
import { encodeSmsFile } from '../spool/sms-file.js';
import { sanitizeForSms, splitMessage } from '../spool/encoding.js';
import { writeNewViaDotFile } from '../spool/atomic-write.js';
import { queueForNumber, assertNumber } from '../numbers.js';
import { isoLocal } from '../spool/scts.js';


export interface SendRequest {
  from: string;
  to: string;
  text: string;
  now?: Date;
  /** Substitute for characters an SMS cannot carry. */
  substitute?: string;
}

/** Writes one file per part (a text too long for one SMS is split as a phone would) and returns the names. */
export function writeMorx(morxDir: string, req: SendRequest, fsync = true): string[] {
  assertNumber(req.from);
  assertNumber(req.to);
  const now = req.now ?? new Date();
  const scts = isoLocal(now);
  const { text } = sanitizeForSms(req.text, req.substitute ?? '?');
  // A phone picks its own reference; the low byte of the clock is what many do.
  const parts = splitMessage(text, { reference: Math.floor(now.getTime() / 1000) & 0xff });
  const queue = queueForNumber(req.from);
  const names: string[] = [];
  for (const part of parts) {
    const body = encodeSmsFile({ oa: req.from, da: req.to, udh: part.udh, text: part.text, scts }, 'app_sms'); // as app_sms writes morx
    // app_sms numbers files with a per-process counter; several senders at once must not collide.
    for (let seq = 0; ; seq++) {
      const name = `${queue}.${scts}-${seq}`;
      if (writeNewViaDotFile(morxDir, name, body, { fsync })) {
        names.push(name);
        break;
      }
    }
  }
  return names;
}
