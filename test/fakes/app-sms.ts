/**
 * app_sms as the real one behaves, for tests that stand in for a phone: what
 * a phone receives from a file in sms/mttx, and the line app_sms logs for it.
 *
 * The reading is Asterisk 20's as built (SPEC §2, measured on the lab, branch
 * 20 @ 516d2c60ac): `ud=` is read byte by byte, so non-ASCII UTF-8 there
 * reaches the phone mangled (`ż` -> `ż¼`); `ud#`/`ud##` are read as meant.
 * A fake that read our files with our own decoder accepted what the real one
 * mangles and hid a bug that broke every non-ASCII SMS: every test that
 * checks what a phone got reads sms/mttx through here.
 */
import { readFileSync } from 'node:fs';
import { appLogText, decodeSmsFile, type DecodeResult } from '../../src/spool/sms-file.js';
import { parseSmsLogLine, splitLogLine, type SmsLogEntry } from '../../src/asterisk/sms-log.js';

/** The message a phone receives from this mttx file (or app_sms's refusal to read it). */
export function phoneReceives(bytes: Uint8Array): DecodeResult {
  return decodeSmsFile(bytes, { requireDa: false, udEquals: 'app_sms' });
}

/** phoneReceives() of a file on disk. */
export function phoneReceivesFile(file: string): DecodeResult {
  return phoneReceives(readFileSync(file));
}

/**
 * The line app_sms appends to its log (`<astlogdir>/sms`) for a message it
 * sent as the centre: `<time> <Y|N>OS <queue> <oa|-> <da|-> <low-byte text>`.
 */
export function appSmsLogLine(time: string, answer: 'Y' | 'N', queue: string, oa: string | undefined, da: string | undefined, text: string): Buffer {
  return Buffer.concat([Buffer.from(`${time} ${answer}OS ${queue} ${oa || '-'} ${da || '-'} `), appLogText(text), Buffer.from('\n')]);
}

/** Every entry of an app_sms log (a whole file, or what was appended to it), lines glued by a 0x00 low byte cut apart. */
export function readSmsLog(bytes: Buffer): SmsLogEntry[] {
  const out: SmsLogEntry[] = [];
  let start = 0;
  for (let i = bytes.indexOf(0x0a); i >= 0; start = i + 1, i = bytes.indexOf(0x0a, start)) {
    for (const piece of splitLogLine(bytes.subarray(start, i))) {
      const e = parseSmsLogLine(piece);
      if (e) out.push(e);
    }
  }
  return out;
}
