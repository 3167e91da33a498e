/**
 * Inbound SIP MESSAGEs, handed over by the dialplan of a PJSIP
 * message_context:  exten => _X.,1,AGI(agi://127.0.0.1:4573/message)
 *
 * Asterisk has already answered the softphone 202 Accepted, so the only way
 * the sender learns of a failure later is a message back. The body is read
 * base64-encoded because a newline in it would break the AGI line protocol
 * (fixtures/agi/fastagi_inbound_message_transcript.txt). The message is
 * recorded exactly like a morx file (same dedupe, same states), then routed
 * like any SMS.
 */
import type { Logger } from 'pino';
import type { RecipientDirectory } from '../directory/recipients.js';
import { contentHash, newMessage, type Journal } from '../journal/journal.js';
import { isValidNumber } from '../numbers.js';
import { isoLocal } from '../spool/scts.js';
import { crashPoint } from '../testing/crash-points.js';

/** What the handler needs of a FastAGI session. */
export interface MessageSession {
  readonly env: Readonly<Record<string, string>>;
  getFullVariable(expression: string): Promise<string | undefined>;
  setVariable(name: string, value: string): Promise<void>;
}

/** The user part of a SIP URI as Asterisk shows MESSAGE(from): `<sip:1001@host:port>`, `"Ann" <sip:1001@host>`, `sip:1001@host`. */
export function sipUser(uri: string | undefined): string | undefined {
  if (!uri) return undefined;
  const m = /(?:sips?|pjsip):([^@>;\s]+)/i.exec(uri);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    // A malformed %-escape (sip:%E0%A4%A@host) is a hostile sender, not a crash of the session: refused as INVALID_NUMBER.
    return undefined;
  }
}

export type InboundOutcome =
  | { outcome: 'recorded'; id: number; duplicate: boolean; service: string }
  | { outcome: 'refused'; reason: string };

export async function receiveSipMessage(
  session: MessageSession,
  deps: { journal: Journal; directory: RecipientDirectory; log: Logger },
): Promise<InboundOutcome> {
  const fromUri = await session.getFullVariable('${MESSAGE(from)}');
  const toUri = await session.getFullVariable('${MESSAGE(to)}');
  const encoded = await session.getFullVariable('${BASE64_ENCODE(${MESSAGE(body)})}');
  const from = sipUser(fromUri);
  const to = session.env.agi_extension || sipUser(toUri);
  const log = { from, to, source: 'sip', uniqueid: session.env.agi_uniqueid };
  if (!from || !isValidNumber(from) || !to || !isValidNumber(to)) {
    const reason = `INVALID_NUMBER: from ${JSON.stringify(fromUri ?? '')} to ${JSON.stringify(to ?? '')}`;
    deps.log.warn({ ...log, outcome: 'refused', reason }, 'inbound SIP message refused');
    await session.setVariable('MSG_CHAN_OPT', 'U');
    return { outcome: 'refused', reason };
  }
  const text = Buffer.from(encoded ?? '', 'base64').toString('utf8');
  crashPoint('agi.message');
  // The unique id names the message; the hash makes a replayed session a no-op, as for a morx file read twice.
  const [r] = deps.journal.recordReceived([
    newMessage({
      kind: 'message',
      source: 'sip',
      sourceName: `sip-${session.env.agi_uniqueid ?? ''}`,
      contentHash: contentHash(`${from}\u0000${to}\u0000${text}`),
      oa: from,
      da: to,
      text,
      scts: isoLocal(new Date()),
    }),
  ]);
  const service = deps.directory.get(to)?.service ?? 'U';
  deps.log.info({ ...log, msgId: r!.id, outcome: 'received', duplicate: r!.duplicate, service }, 'inbound SIP message recorded');
  // For dialplans written for the original suite, which branch on it after the AGI returns.
  await session.setVariable('MSG_CHAN_OPT', service);
  return { outcome: 'recorded', id: r!.id, duplicate: r!.duplicate, service };
}
