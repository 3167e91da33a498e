/**
 * SMS text encoding, pure: which characters app_sms can send as GSM 03.38
 * 7-bit, how many septets a text costs, and how a long text becomes
 * concatenated parts (TS 23.040 §9.2.3.24.1 / .8).
 *
 * The tables are app_sms's own (apps/app_sms.c, branch 20), not the GSM
 * standard's: what matters is what the Asterisk we talk to will do. Note
 * 0x09 is ç (U+00E7, lowercase) there, and 0x1B (ESC) maps to U+00A0, which
 * is a slot, not a character: U+00A0 is not GSM (app_sms would send it as a
 * bare ESC and the phone would garble the next character).
 *
 * ud in app_sms holds UCS-2 units, so the unit of text here is the UTF-16
 * code unit; characters outside the BMP must be replaced first (sanitizeForSms).
 */

export type SmsEncoding = 'gsm7' | 'ucs2';

/** app_sms's default alphabet: index = septet, value = code point. */
const GSM7_BASIC: readonly number[] = [
  0x0040, 0x00a3, 0x0024, 0x00a5, 0x00e8, 0x00e9, 0x00f9, 0x00ec, 0x00f2, 0x00e7, 0x000a, 0x00d8, 0x00f8, 0x000d, 0x00c5, 0x00e5,
  0x0394, 0x005f, 0x03a6, 0x0393, 0x039b, 0x03a9, 0x03a0, 0x03a8, 0x03a3, 0x0398, 0x039e, 0x00a0, 0x00c6, 0x00e6, 0x00df, 0x00c9,
  0x0020, 0x0021, 0x0022, 0x0023, 0x00a4, 0x0025, 0x0026, 0x0027, 0x0028, 0x0029, 0x002a, 0x002b, 0x002c, 0x002d, 0x002e, 0x002f,
  0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037, 0x0038, 0x0039, 0x003a, 0x003b, 0x003c, 0x003d, 0x003e, 0x003f,
  0x00a1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, 0x0048, 0x0049, 0x004a, 0x004b, 0x004c, 0x004d, 0x004e, 0x004f,
  0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057, 0x0058, 0x0059, 0x005a, 0x00c4, 0x00d6, 0x00d1, 0x00dc, 0x00a7,
  0x00bf, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, 0x0068, 0x0069, 0x006a, 0x006b, 0x006c, 0x006d, 0x006e, 0x006f,
  0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077, 0x0078, 0x0079, 0x007a, 0x00e4, 0x00f6, 0x00f1, 0x00fc, 0x00e0,
];
const ESC_SLOT = 0x1b;

/** Extension table (sent as ESC + code, two septets each): form feed ^ { } \ [ ~ ] | €. */
const GSM7_EXTENSION: ReadonlySet<number> = new Set([0x000c, 0x005e, 0x007b, 0x007d, 0x005c, 0x005b, 0x007e, 0x005d, 0x007c, 0x20ac]);

const GSM7_SINGLE: ReadonlySet<number> = new Set(GSM7_BASIC.filter((_, septet) => septet !== ESC_SLOT));

/** Septets one UTF-16 unit costs in GSM-7: 1, 2 (extension) or 0 when it is not GSM-7 at all. */
function unitSeptets(unit: number): 0 | 1 | 2 {
  if (GSM7_SINGLE.has(unit)) return 1;
  if (GSM7_EXTENSION.has(unit)) return 2;
  return 0;
}

export function isGsm7Char(ch: string): boolean {
  return ch.length === 1 && unitSeptets(ch.charCodeAt(0)) !== 0;
}

/** Septets the text costs in GSM-7, or null when some character is not GSM-7. */
export function gsm7Septets(text: string): number | null {
  let total = 0;
  for (let i = 0; i < text.length; i++) {
    const cost = unitSeptets(text.charCodeAt(i));
    if (cost === 0) return null;
    total += cost;
  }
  return total;
}

/**
 * GSM-7 when every character is in app_sms's tables, else UCS-2. Never 8-bit:
 * phones do not display 8-bit data as text (app_sms picks 8-bit by itself when
 * a file has no dcs= and every char is < U+0100, so UCS-2 files must say dcs=8).
 */
export function chooseEncoding(text: string): SmsEncoding {
  return gsm7Septets(text) === null ? 'ucs2' : 'gsm7';
}

/**
 * Replaces what cannot travel in UCS-2 (characters outside the BMP such as
 * emoji, and lone surrogates) by `substitute`, counting each replacement so the
 * caller can tell the sender; nothing is dropped silently.
 */
export function sanitizeForSms(text: string, substitute = '?'): { text: string; replaced: number } {
  let replaced = 0;
  // A pair (one astral character) or a lone surrogate of either kind.
  const out = text.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g, () => {
    replaced++;
    return substitute;
  });
  return { text: out, replaced };
}

export interface SplitOptions {
  reference: number;
  referenceBits?: 8 | 16;
}

export interface SmsPart {
  text: string;
  udh?: string;
  encoding: SmsEncoding;
  dcs?: number;
}

const SINGLE_CAPACITY: Record<SmsEncoding, number> = { gsm7: 160, ucs2: 70 };
// With a UDH: 8-bit reference costs 6 octets (05 00 03 RR NN II), 16-bit 7 octets.
const PART_CAPACITY: Record<SmsEncoding, Record<8 | 16, number>> = {
  gsm7: { 8: 153, 16: 152 },
  ucs2: { 8: 67, 16: 66 },
};
const MAX_PARTS = 255;

function hex(value: number, digits: number): string {
  return value.toString(16).toUpperCase().padStart(digits, '0');
}

/** Cost of text[i] in the chosen encoding, and how many UTF-16 units it spans (never split a pair). */
function costAt(text: string, i: number, encoding: SmsEncoding): { cost: number; units: number } {
  const unit = text.charCodeAt(i);
  const pair = unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
  const units = pair ? 2 : 1;
  return { cost: encoding === 'gsm7' ? unitSeptets(unit) : units, units };
}

/**
 * Splits a text into SMS parts. One part without UDH when it fits (160 septets
 * / 70 UCS-2 units); otherwise parts carrying `0003RRNNII` (or `0804RRRRNNII`),
 * each filled greedily up to 153/152 septets or 67/66 units. The encoding is
 * chosen once for the whole message so every part displays alike, and an
 * extension character (two septets) always stays whole in one part.
 * Throws RangeError for a bad reference or more than 255 parts.
 */
export function splitMessage(text: string, options: SplitOptions): SmsPart[] {
  const bits = options.referenceBits ?? 8;
  const maxRef = bits === 8 ? 0xff : 0xffff;
  if (!Number.isInteger(options.reference) || options.reference < 0 || options.reference > maxRef) {
    throw new RangeError(`concatenation reference ${options.reference} does not fit ${bits} bits`);
  }
  const encoding = chooseEncoding(text);
  const dcs = encoding === 'ucs2' ? 8 : undefined;
  const size = encoding === 'gsm7' ? (gsm7Septets(text) ?? 0) : text.length;
  if (size <= SINGLE_CAPACITY[encoding]) return [withDcs({ text, encoding }, dcs)];

  const capacity = PART_CAPACITY[encoding][bits];
  const chunks: string[] = [];
  let start = 0;
  let used = 0;
  for (let i = 0; i < text.length; ) {
    const { cost, units } = costAt(text, i, encoding);
    if (used + cost > capacity) {
      chunks.push(text.slice(start, i));
      start = i;
      used = 0;
    }
    used += cost;
    i += units;
  }
  chunks.push(text.slice(start));
  if (chunks.length > MAX_PARTS) {
    throw new RangeError(`text needs ${chunks.length} parts; at most ${MAX_PARTS} are possible`);
  }
  const total = chunks.length;
  const head = bits === 8 ? `0003${hex(options.reference, 2)}` : `0804${hex(options.reference, 4)}`;
  return chunks.map((chunk, i) => withDcs({ text: chunk, udh: `${head}${hex(total, 2)}${hex(i + 1, 2)}`, encoding }, dcs));
}

function withDcs(part: SmsPart, dcs: number | undefined): SmsPart {
  if (dcs !== undefined) part.dcs = dcs;
  return part;
}

export interface ConcatInfo {
  reference: number;
  referenceBits: 8 | 16;
  total: number;
  sequence: number;
}

/**
 * The concatenation element of a UDH given as hex without the UDH length
 * byte (as in `udh#`). Walks every information element, so a concat element
 * after others is found; per TS 23.040 the last valid occurrence counts, and
 * an element with total 0 or sequence outside 1..total is ignored. Anything
 * malformed (odd length, non-hex, an element running past the end) gives
 * undefined, never an exception.
 */
export function parseConcat(udhHex: string | undefined): ConcatInfo | undefined {
  if (udhHex === undefined || udhHex.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(udhHex)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < udhHex.length; i += 2) bytes.push(parseInt(udhHex.slice(i, i + 2), 16));
  let found: ConcatInfo | undefined;
  for (let p = 0; p < bytes.length; ) {
    const iei = bytes[p]!;
    const len = bytes[p + 1];
    if (len === undefined || p + 2 + len > bytes.length) return undefined;
    const data = bytes.slice(p + 2, p + 2 + len);
    let info: ConcatInfo | undefined;
    if (iei === 0x00 && len === 3) {
      info = { reference: data[0]!, referenceBits: 8, total: data[1]!, sequence: data[2]! };
    } else if (iei === 0x08 && len === 4) {
      info = { reference: (data[0]! << 8) | data[1]!, referenceBits: 16, total: data[2]!, sequence: data[3]! };
    }
    if (info && info.total > 0 && info.sequence >= 1 && info.sequence <= info.total) found = info;
    p += 2 + len;
  }
  return found;
}

/**
 * Concatenates parts in sequence order. The sort is stable and parts without
 * a concatenation element sort after numbered ones, in the order given;
 * picking one part per sequence (duplicates, mixed references) is the caller's job.
 */
export function joinParts(parts: { udh?: string; text: string }[]): string {
  return parts
    .map((part, index) => ({ part, index, seq: parseConcat(part.udh)?.sequence ?? Number.POSITIVE_INFINITY }))
    .sort((a, b) => a.seq - b.seq || a.index - b.index)
    .map(({ part }) => part.text)
    .join('');
}
