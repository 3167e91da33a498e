/**
 * Realistic morx files, as app_sms leaves them: one file per SMS a phone sent,
 * named QUEUE.YYYY-MM-DDTHH:MM:SS-SEQ. The mix: mostly GSM 7-bit texts, a
 * quarter UCS-2 (Polish letters), and some long messages the phone split into
 * parts carrying a concatenation UDH (the daemon joins them, then splits them
 * again for the recipient's phone). Seeded, so every run sees the same corpus.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeSmsFile } from '../../src/spool/sms-file.js';
import { sanitizeForSms, splitMessage } from '../../src/spool/encoding.js';
import { queueForNumber } from '../../src/numbers.js';
import { isoLocal } from '../../src/spool/scts.js';
import { mulberry32 } from '../../test/helpers/random.js';

export { mulberry32 };

const GSM_WORDS = 'the a to dinner is ready call me back when you can meeting at 5 pm bring milk bread and eggs see you soon ok thanks running late 10 minutes door code 4711 where are you happy birthday @home [kitchen] {garden} price 12 € ~ ^ _'.split(' ');
const PL_WORDS = 'zażółć gęślą jaźń dzień dobry obiad gotowy zadzwoń później spotkanie o piątej kup mleko chleb i jajka do zobaczenia dziękuję spóźnię się żółw łąka źródło ćma'.split(' ');

function words(random: () => number, vocab: readonly string[], maxLength: number, tag: string): string {
  let text = tag;
  for (;;) {
    const w = vocab[Math.floor(random() * vocab.length)]!;
    if (text.length + 1 + w.length > maxLength) return text;
    text += ` ${w}`;
  }
}

export type Kind = 'gsm' | 'ucs2' | 'multipart';

export interface CorpusMessage {
  seq: number;
  kind: Kind;
  oa: string;
  da: string;
  text: string;
  /** The files the phone sent: one, or one per part. */
  files: Array<{ name: string; body: Buffer }>;
  /** mttx files the daemon writes for it (after joining and re-splitting). */
  mttxParts: number;
}

export interface CorpusOptions {
  /** How many morx files (SMS as sent by phones), not logical messages. */
  files: number;
  recipients: readonly string[];
  senders: readonly string[];
  seed?: number;
  /** Share of files that are parts of long messages (default 0.15). */
  multipartShare?: number;
  /** Share of single messages in UCS-2 (default 0.25). */
  ucs2Share?: number;
  /** The first sequence number (the text carries `#seq`). */
  firstSeq?: number;
  /** scts/name time of the first message. */
  start?: Date;
}

/** Generates messages until `files` morx files are reached (the last long message may be cut short to a single one). */
export function makeCorpus(options: CorpusOptions): CorpusMessage[] {
  const random = mulberry32(options.seed ?? 20261122);
  const multipartShare = options.multipartShare ?? 0.15;
  const ucs2Share = options.ucs2Share ?? 0.25;
  const start = (options.start ?? new Date('2026-11-22T08:00:00')).getTime();
  const refs = new Map<string, number>();
  const out: CorpusMessage[] = [];
  let files = 0;
  let fileSeq = 0;
  for (let seq = options.firstSeq ?? 0; files < options.files; seq++) {
    const oa = options.senders[Math.floor(random() * options.senders.length)]!;
    const da = options.recipients[Math.floor(random() * options.recipients.length)]!;
    const left = options.files - files;
    const r = random();
    // Parts are ~multipartShare of files; a long message has 2–3 parts, so pick it less often.
    let kind: Kind = r < multipartShare / 2.4 && left >= 3 ? 'multipart' : random() < ucs2Share ? 'ucs2' : 'gsm';
    const tag = `#${seq}`;
    let text: string;
    let parts: Array<{ text: string; udh?: string }>;
    if (kind === 'multipart') {
      const ucs2 = random() < ucs2Share;
      // 2 or 3 parts: 161–459 septets, or 71–201 UCS-2 units.
      text = ucs2 ? words(random, PL_WORDS, 75 + Math.floor(random() * 120), tag) : words(random, GSM_WORDS, 170 + Math.floor(random() * 280), tag);
      const key = `${oa}>${da}`;
      const reference = refs.get(key) ?? Math.floor(random() * 256);
      refs.set(key, (reference + 1) & 0xff);
      parts = splitMessage(text, { reference }).map((p) => ({ text: p.text, udh: p.udh }));
      if (parts.length < 2) kind = ucs2 ? 'ucs2' : 'gsm';
    } else {
      text = kind === 'ucs2' ? words(random, PL_WORDS, 20 + Math.floor(random() * 50), tag) : words(random, GSM_WORDS, 20 + Math.floor(random() * 130), tag);
      parts = [{ text }];
    }
    const when = new Date(start + seq * 1000);
    const scts = isoLocal(when);
    const queue = queueForNumber(oa);
    const messageFiles = parts.map((p) => {
      const body = encodeSmsFile({ oa, da, udh: p.udh, text: p.text, scts, mr: seq & 0xff, dcs: /[^\x00-\x7f€]/.test(p.text) ? 8 : undefined }, 'app_sms'); // morx, as app_sms writes it
      return { name: `${queue}.${scts}-${fileSeq++}`, body };
    });
    const joined = sanitizeForSms(text, '?').text;
    out.push({ seq, kind, oa, da, text, files: messageFiles, mttxParts: splitMessage(joined, { reference: 0 }).length });
    files += messageFiles.length;
  }
  return out;
}

/** Writes the corpus into morx directly (the daemon is not running yet, so no dot-file is needed). */
export function writeCorpus(morx: string, corpus: readonly CorpusMessage[]): number {
  let n = 0;
  for (const m of corpus) {
    for (const f of m.files) {
      writeFileSync(path.join(morx, f.name), f.body);
      n++;
    }
  }
  return n;
}

export function corpusStats(corpus: readonly CorpusMessage[]) {
  const files = corpus.reduce((s, m) => s + m.files.length, 0);
  const mttx = corpus.reduce((s, m) => s + m.mttxParts, 0);
  const byKind = { gsm: 0, ucs2: 0, multipart: 0 };
  for (const m of corpus) byKind[m.kind]++;
  return { files, messages: corpus.length, mttx, byKind };
}

/** The `#seq` tag every corpus text starts with. */
export function seqOf(text: string): number | undefined {
  const m = /^#(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}
