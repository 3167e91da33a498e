/**
 * The app_sms spool file codec (sms/morx, sms/mttx, …), pure: bytes in,
 * fields out, and back. It follows apps/app_sms.c (branch 20) sms_readfile
 * and sms_writefile closely, because app_sms is the other party: a file we
 * write must mean to app_sms exactly what we meant, and a file app_sms wrote
 * must decode to what app_sms received.
 *
 * Text is handled as UTF-16 code units, which is what app_sms's `ud[]` holds
 * (UCS-2 units); a surrogate unit is written the way app_sms writes it (three
 * bytes, CESU-8 style) and read back the same way.
 *
 * Where app_sms only logs a warning and carries on with something else than
 * the file says (bad hex, a line it cannot parse), we refuse the file instead:
 * a message we would silently alter is worse than one we quarantine.
 */
import { SpoolParseError, quoted } from '../errors.js';

export interface SmsFields {
  oa?: string;
  da?: string;
  scts?: string;
  pid?: number;
  dcs?: number;
  mr?: number;
  vp?: number;
  srr?: boolean;
  rp?: boolean;
  udh?: string;
  text: string;
}

export type DecodeResult =
  | { ok: true; message: SmsFields; warnings: string[] }
  | { ok: false; error: SpoolParseError };

export interface DecodeOptions {
  /** Larger files are refused with SPOOL_TOO_LARGE (default 65536). */
  maxBytes?: number;
  /**
   * Whether `da` is required (default true: every morx file has one). Files the
   * centre sends to a phone (mttx) and files a phone received (mtrx) carry only
   * `oa`; with `requireDa: false` app_sms's own rule applies: oa or da.
   */
  requireDa?: boolean;
  /**
   * How a `ud=` line is read. `utf-8` (default): as app_sms writes it (morx,
   * mtrx) and as it is meant. `app_sms`: as a real, optimised app_sms reads it
   * (decodeAsBuiltAppSms): what a phone receives from a file in sms/mttx. Only
   * the fake Asterisk and the log matcher's check of our own files use it.
   */
  udEquals?: 'utf-8' | 'app_sms';
}

export const DEFAULT_MAX_BYTES = 65536;
/** app_sms SMSLEN: it reads at most this many characters of text (and of UDH octets). */
export const MAX_TEXT_UNITS = 160;
/** fgets(line, 1000): a longer line is read as two, the rest parsed as a line of its own. */
const MAX_LINE_BYTES = 998;
/** app_sms keeps oa/da only when the value is shorter than its 20-byte buffer. */
const MAX_ADDRESS_CHARS = 19;

const NUMERIC_KEYS = new Set(['pid', 'dcs', 'mr', 'vp']);
const BYTE_KEYS = new Set(['pid', 'dcs', 'mr']);

const isAlnum = (b: number): boolean => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
// C isspace() minus \n and \r, which never survive the line split.
const isSpace = (b: number | undefined): boolean => b === 0x20 || b === 0x09 || b === 0x0b || b === 0x0c;
const isHex = (b: number): boolean => isAlnum(b) && /[0-9A-Fa-f]/.test(String.fromCharCode(b));
const latin1 = (bytes: Uint8Array): string => String.fromCharCode(...bytes);
const u = (unit: number): string => `U+${unit.toString(16).toUpperCase().padStart(4, '0')}`;

function fail(line: number, reason: string, code: 'SPOOL_PARSE' | 'SPOOL_TOO_LARGE' = 'SPOOL_PARSE'): DecodeResult {
  return { ok: false, error: new SpoolParseError(line, reason, code) };
}

/**
 * app_sms's utf8decode() of the one character that starts at b[i]: a valid
 * sequence decodes, any byte that does not start one is taken as that byte's
 * code point (Latin-1), never an error. Like app_sms it accepts 3-byte
 * surrogates (that is how it writes them) and its overlong checks.
 */
function utf8decodeAt(b: Uint8Array, i: number): { value: number; len: number } {
  const at = (k: number): number => b[k] ?? 0; // C reads the NUL terminator past the end
  const cont = (k: number): boolean => (at(k) & 0xc0) === 0x80;
  const c = at(i);
  if (c < 0xc0) return { value: c, len: 1 };
  if (c < 0xe0) return c >= 0xc2 && cont(i + 1) ? { value: ((c & 0x1f) << 6) | (at(i + 1) & 0x3f), len: 2 } : { value: c, len: 1 };
  if (c < 0xf0) {
    if (!(c === 0xe0 && at(i + 1) < 0xa0) && cont(i + 1) && cont(i + 2)) {
      return { value: ((c & 0x0f) << 12) | ((at(i + 1) & 0x3f) << 6) | (at(i + 2) & 0x3f), len: 3 };
    }
    return { value: c, len: 1 };
  }
  if (c >= 0xfe) return { value: c, len: 1 };
  // 4-, 5- and 6-byte forms, with app_sms's overlong checks.
  const len = c < 0xf8 ? 4 : c < 0xfc ? 5 : 6;
  const minSecond = [0x90, 0x88, 0x84][len - 4]!;
  const lead = [0xf0, 0xf8, 0xfc][len - 4]!;
  let ok = !(c === lead && at(i + 1) < minSecond);
  for (let k = 1; k < len && ok; k++) ok = cont(i + k);
  if (!ok) return { value: c, len: 1 };
  let value = c & (0x7f >> len);
  for (let k = 1; k < len; k++) value = value * 64 + (at(i + k) & 0x3f);
  return { value, len };
}

/**
 * app_sms's utf8decode over a whole value, as app_sms means it (and as it
 * reads a file compiled without optimisation): one character per sequence. A
 * 4-byte sequence app_sms would cut to 16 bits; we keep the real character
 * and warn. Returns the text and app_sms's character count.
 */
function decodeLenientUtf8(b: Uint8Array, warn: (w: string) => void): { text: string; count: number } {
  let text = '';
  let count = 0;
  let invalid = 0;
  for (let i = 0; i < b.length; count++) {
    const { value, len } = utf8decodeAt(b, i);
    if (len === 1 && value >= 0x80) invalid++;
    if (len >= 4 && value <= 0x10ffff) {
      warn(`character ${u(value)} is outside the BMP: app_sms would keep only ${u(value & 0xffff)}`);
      text += String.fromCodePoint(value);
    } else if (len >= 4) {
      warn(`UTF-8 sequence for ${value.toString(16).toUpperCase()} is beyond Unicode: read as ${u(value & 0xffff)} like app_sms`);
      text += String.fromCharCode(value & 0xffff);
    } else {
      text += String.fromCharCode(value);
    }
    i += len;
  }
  if (invalid > 0) warn(`${invalid} byte(s) of ud= are not valid UTF-8 and were read as Latin-1, like app_sms`);
  return { text, count };
}

/**
 * A `ud=` value as a real, optimised Asterisk 20 app_sms reads it (measured on
 * branch 20 @ 516d2c60ac, SPEC §2): sms_readfile() decodes through
 * `void *pp = &p`, and with -O3 (strict aliasing) the pointer advance made
 * inside utf8decode() is lost, so every byte position starts a character:
 * ASCII survives, and each UTF-8 continuation byte comes back as a Latin-1/C1
 * character of its own (ż C5 BC -> ż U+00BC, € E2 82 AC -> € U+0082 U+00AC).
 * At most 160 units, each cut to 16 bits (h->ud is unsigned short).
 */
function decodeAsBuiltAppSms(b: Uint8Array): { text: string; count: number } {
  const units: number[] = [];
  for (let i = 0; i < b.length && units.length < MAX_TEXT_UNITS; i++) units.push(utf8decodeAt(b, i).value & 0xffff);
  return { text: String.fromCharCode(...units), count: units.length };
}

/** Strict hex: even length, hex digits only; the caller checks the unit size. */
function parseHex(b: Uint8Array): number[] | string {
  if (b.length % 2 !== 0) return 'odd number of hex digits';
  const bad = b.findIndex((x) => !isHex(x));
  if (bad >= 0) return `${JSON.stringify(String.fromCharCode(b[bad]!))} is not a hex digit`;
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(parseInt(latin1(b.subarray(i, i + 2)), 16));
  return out;
}

/** numcpy(): a leading '+' survives, then digits only. */
function numcpy(s: string): string {
  return (s.startsWith('+') ? '+' : '') + s.replace(/[^0-9]/g, '');
}

export function decodeSmsFile(bytes: Uint8Array, options: DecodeOptions = {}): DecodeResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.length === 0) return fail(0, 'empty file');
  if (bytes.length > maxBytes) return fail(0, `file is ${bytes.length} bytes, more than ${maxBytes}`, 'SPOOL_TOO_LARGE');

  const warnings: string[] = [];
  const message: SmsFields = { text: '' };
  let lineNo = 0;
  let start = 0;
  // A NUL anywhere means binary data (and C would cut the line there): refuse before reading anything.
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    let line = 1;
    for (let i = 0; i < nul; i++) if (bytes[i] === 0x0a) line++;
    return fail(line, 'NUL byte');
  }

  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    lineNo++;
    const warn = (w: string): void => void warnings.push(`line ${lineNo}: ${w}`);
    if (raw.length > MAX_LINE_BYTES) {
      return fail(lineNo, `line is ${raw.length} bytes; app_sms reads at most ${MAX_LINE_BYTES} and would take the rest as another line`);
    }
    // app_sms ends the line at the first CR or LF: "\r\n" works, text after a lone CR is ignored.
    const cr = raw.indexOf(0x0d);
    const line = cr >= 0 ? raw.subarray(0, cr) : raw;
    if (cr >= 0 && cr < raw.length - 1) warn('text after a carriage return is ignored, like app_sms');
    if (line.length === 0 || line[0] === 0x3b || line.every((b) => isSpace(b))) continue; // blank or ; comment

    let i = 0;
    while (i < line.length && isAlnum(line[i]!)) i++;
    const key = latin1(line.subarray(0, i)).toLowerCase();
    while (isSpace(line[i])) i++;
    const sep = line[i];
    if (key === '' || (sep !== 0x3d && sep !== 0x23)) return fail(lineNo, 'expected key=value, key#hex or ud##hex');

    if (sep === 0x3d) {
      const value = line.subarray(i + 1);
      if (key === 'ud') {
        // Verbatim after '=': leading spaces are part of the text.
        const { text, count } = options.udEquals === 'app_sms' ? decodeAsBuiltAppSms(value) : decodeLenientUtf8(value, warn);
        if (count > MAX_TEXT_UNITS) warn(`text is ${count} characters; app_sms reads only the first ${MAX_TEXT_UNITS}`);
        message.text = text;
        continue;
      }
      let v = 0;
      while (isSpace(value[v])) v++;
      const s = latin1(value.subarray(v));
      const error = readField(message, key, s, warn);
      if (error !== undefined) return fail(lineNo, error);
      continue;
    }

    // '#': hex forms.
    const double = line[i + 1] === 0x23;
    const hexBytes = line.subarray(i + (double ? 2 : 1));
    if (double && key !== 'ud') return fail(lineNo, `only ud can use ## (UCS-2 hex), not ${key}`);
    if (!double && key !== 'ud' && key !== 'udh') return fail(lineNo, `only ud and udh can use # (hex), not ${key}`);
    const parsed = parseHex(hexBytes);
    if (typeof parsed === 'string') return fail(lineNo, `${key}${double ? '##' : '#'}: ${parsed}`);
    if (key === 'udh') {
      if (parsed.length > MAX_TEXT_UNITS) warn(`UDH is ${parsed.length} octets; app_sms reads only the first ${MAX_TEXT_UNITS}`);
      message.udh = latin1(hexBytes).toUpperCase();
      continue;
    }
    if (double && parsed.length % 2 !== 0) return fail(lineNo, 'ud##: the hex length is not a multiple of 4');
    const units: number[] = [];
    if (double) for (let k = 0; k < parsed.length; k += 2) units.push((parsed[k]! << 8) | parsed[k + 1]!);
    else units.push(...parsed);
    if (units.length > MAX_TEXT_UNITS) warn(`text is ${units.length} characters; app_sms reads only the first ${MAX_TEXT_UNITS}`);
    message.text = units.map((x) => String.fromCharCode(x)).join('');
  }

  if (options.requireDa ?? true) {
    if (message.da === undefined) return fail(0, 'no da= line (destination address is required)');
  } else if (message.da === undefined && message.oa === undefined) {
    return fail(0, 'neither oa= nor da= (app_sms would skip the message)');
  }
  return { ok: true, message, warnings };
}

/** One key=value line other than ud; returns an error reason, or undefined. */
function readField(message: SmsFields, key: string, value: string, warn: (w: string) => void): string | undefined {
  if (key === 'oa' || key === 'da') {
    const number = numcpy(value);
    if (!/[0-9]/.test(number)) return `${key} has no digits`;
    if (number !== value.trimEnd()) warn(`${key} ${quoted(value)} read as ${number}`);
    if (value.length > MAX_ADDRESS_CHARS) warn(`${key} is ${value.length} characters; app_sms ignores values over ${MAX_ADDRESS_CHARS}`);
    message[key] = number;
    return undefined;
  }
  if (NUMERIC_KEYS.has(key)) {
    const m = /^([+-]?[0-9]+)[ \t\v\f]*$/.exec(value);
    // `|| 0`: Number('-0') is -0, which app_sms's atoi reads as 0 and which would not
    // survive encode -> decode (found by test/fuzz, corpus spool/dcs-minus-zero.sms).
    const n = m ? Number(m[1]) || 0 : NaN;
    if (!Number.isSafeInteger(n)) return `${key} ${quoted(value)} is not an integer`;
    if (BYTE_KEYS.has(key) && (n < 0 || n > 255)) warn(`${key}=${n} is outside 0..255; app_sms keeps only a byte`);
    if (key === 'vp' && n < 0) warn(`vp=${n} is negative`);
    message[key as 'pid' | 'dcs' | 'mr' | 'vp'] = n;
    return undefined;
  }
  if (key === 'srr' || key === 'rp') {
    // atoi(): a leading integer, anything else is 0.
    const m = /^[+-]?[0-9]+/.exec(value);
    if (!m) warn(`${key} ${quoted(value)} is not a number; read as 0 like app_sms`);
    message[key] = m ? Number(m[0]) !== 0 : false;
    return undefined;
  }
  if (key === 'scts') {
    const s = value.trimEnd();
    if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$/.test(s)) message.scts = s;
    else warn(`scts ${quoted(value)} is not YYYY-MM-DDTHH:MM:SS; app_sms would ignore it`);
    return undefined;
  }
  warn(`unknown key ${key} ignored`);
  return undefined;
}

// ---------------------------------------------------------------- encoder

/** app_sms's UTF-8 writer: one to three bytes per UTF-16 unit (surrogates get three each). */
function pushUnitUtf8(out: number[], v: number): void {
  if (v < 0x80) out.push(v);
  else if (v < 0x800) out.push(0xc0 + (v >> 6), 0x80 + (v & 0x3f));
  else out.push(0xe0 + (v >> 12), 0x80 + ((v >> 6) & 0x3f), 0x80 + (v & 0x3f));
}

const ascii = (out: number[], s: string): void => {
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
};
const hexOf = (v: number, digits: number): string => v.toString(16).toUpperCase().padStart(digits, '0');
/** Only printable ASCII can reach a line, and little of it: no value can start a new line. */
const lineSafe = (s: string, max: number): string => s.replace(/[^\x20-\x7e]/g, '').slice(0, max);

/**
 * How the text of a file we write is put on its lines:
 * - `smsq`: for a file app_sms will READ (sms/mttx; motx when a test plays a
 *   phone). As Asterisk's smsq writes it: `ud=` only when every character is
 *   printable ASCII (0x20-0x7E), `ud#` when every one is below U+0100, else
 *   `ud##`. app_sms's reader mangles multi-byte UTF-8 on a `ud=` line
 *   (decodeAsBuiltAppSms), so non-ASCII text must never travel that way.
 * - `app_sms`: the form app_sms itself WRITES (sms/morx, sms/mtrx), read only
 *   by us: `ud=` as UTF-8, and with control characters a human-readable `;ud=`
 *   comment (each control a raw 0xBF) followed by `ud#`/`ud##`.
 */
export type SmsFileForm = 'smsq' | 'app_sms';

/** smsq's choice of text line: `ud=` for printable ASCII only, `ud#` below U+0100, else `ud##`. */
function smsqTextForm(units: readonly number[]): 'ud=' | 'ud#' | 'ud##' {
  if (units.every((v) => v >= 0x20 && v < 0x7f)) return 'ud=';
  return units.every((v) => v < 0x100) ? 'ud#' : 'ud##';
}

/**
 * Writes a spool file in app_sms's key order: oa, da, udh#, [;]ud=,
 * [ud#|ud##], scts, pid, dcs, vp, srr, mr, rp, with the text in the given
 * form (see SmsFileForm). Refuses nothing; values are validated elsewhere.
 * What it guarantees is that no value can inject a line: oa/da are written as
 * app_sms would read them (leading '+', digits), udh as uppercase hex, scts as
 * printable ASCII, and text with control characters only through ud#/ud##.
 * Text beyond 160 units is not written: app_sms would not read it, and it
 * keeps every line far below fgets' 999 bytes.
 */
export function encodeSmsFile(message: SmsFields, form: SmsFileForm): Buffer {
  const out: number[] = [];
  const line = (s: string): void => {
    ascii(out, s);
    out.push(0x0a);
  };
  const oa = message.oa === undefined ? '' : numcpy(message.oa.trimStart());
  const da = message.da === undefined ? '' : numcpy(message.da.trimStart());
  if (oa) line(`oa=${oa}`);
  if (da) line(`da=${da}`);
  if (message.udh !== undefined) {
    // app_sms writes udh# whenever the UDH indicator is set, even with no octets.
    let udh = message.udh.replace(/[^0-9A-Fa-f]/g, '').toUpperCase().slice(0, MAX_TEXT_UNITS * 2);
    if (udh.length % 2) udh = udh.slice(0, -1);
    line(`udh#${udh}`);
  }
  const text = message.text.slice(0, MAX_TEXT_UNITS);
  if (text.length > 0) {
    const units = Array.from({ length: text.length }, (_, i) => text.charCodeAt(i));
    // One rule for which hex form: smsq's (text with a control character is never `ud=` there).
    const shape = smsqTextForm(units);
    const hex = (): void => line(shape === 'ud#' ? `ud#${units.map((v) => hexOf(v, 2)).join('')}` : `ud##${units.map((v) => hexOf(v, 4)).join('')}`);
    if (form === 'smsq') {
      if (shape === 'ud=') line(`ud=${text}`);
      else hex();
    } else {
      const control = units.some((v) => v < 0x20);
      // With control characters the ud= line is only a human-readable comment (each one a raw 0xBF).
      if (control) out.push(0x3b);
      ascii(out, 'ud=');
      for (const v of units) {
        if (v < 0x20) out.push(0xbf);
        else pushUnitUtf8(out, v);
      }
      out.push(0x0a);
      if (control) hex();
    }
  }
  const int = (v: number | undefined): string | undefined =>
    v !== undefined && Number.isFinite(v) ? String(Math.trunc(v)) : undefined;
  if (message.scts !== undefined) line(`scts=${lineSafe(message.scts, 64)}`);
  const pid = int(message.pid);
  if (pid !== undefined && pid !== '0') line(`pid=${pid}`);
  const dcs = int(message.dcs);
  if (dcs !== undefined && dcs !== '241') line(`dcs=${dcs}`);
  const vp = int(message.vp);
  if (vp !== undefined && vp !== '0') line(`vp=${vp}`);
  if (message.srr) line('srr=1');
  const mr = int(message.mr);
  if (mr !== undefined && Number(mr) >= 0) line(`mr=${mr}`); // app_sms: mr < 0 means "not set"
  if (message.rp) line('rp=1');
  return Buffer.from(out);
}

/**
 * The text as app_sms writes it in its own log (`<astlogdir>/sms`): each
 * character's low byte, `\` as `\\`, LF as `\n`, CR as `\r`, other control
 * characters and DEL as 0xBF. The test is on the character, the output is
 * its low byte: ć U+0107 is logged as a raw 0x07. Only the first 160 units,
 * as app_sms never holds more. Used to match YOS/NOS lines to what we queued.
 */
export function appLogText(text: string): Buffer {
  const out: number[] = [];
  const n = Math.min(text.length, MAX_TEXT_UNITS);
  for (let i = 0; i < n; i++) {
    const v = text.charCodeAt(i);
    if (v === 0x5c) out.push(0x5c, 0x5c);
    else if (v === 0x0a) out.push(0x5c, 0x6e);
    else if (v === 0x0d) out.push(0x5c, 0x72);
    else if (v < 0x20 || v === 0x7f) out.push(0xbf);
    else out.push(v & 0xff);
  }
  return Buffer.from(out);
}

/**
 * The text a real app_sms sends for a file we write (encodeSmsFile in the
 * `smsq` form): the text line that form chooses, read as app_sms reads it
 * (a `ud=` line byte by byte, decodeAsBuiltAppSms; `ud#`/`ud##` as written,
 * checked on the lab). With smsq's rule that is the text itself, cut to 160
 * units; the log matcher asks all the same, so that what it expects in
 * app_sms's log follows the writer's rule rather than an assumption about it.
 * (Not a full encode and decode: that cost 60 µs a UCS-2 part in the drain.)
 */
export function textAppSmsSends(text: string): string {
  const cut = text.slice(0, MAX_TEXT_UNITS);
  const units = Array.from({ length: cut.length }, (_, i) => cut.charCodeAt(i));
  return smsqTextForm(units) === 'ud=' ? decodeAsBuiltAppSms(Buffer.from(cut, 'latin1')).text : cut;
}

/**
 * Whether a real app_sms would read this file's text otherwise than it is
 * written: non-ASCII UTF-8 on a winning `ud=` line (decodeAsBuiltAppSms).
 * Files sms-router wrote before it followed smsq's rule look like that.
 */
export function appSmsMisreads(bytes: Uint8Array): boolean {
  const meant = decodeSmsFile(bytes, { requireDa: false });
  const read = decodeSmsFile(bytes, { requireDa: false, udEquals: 'app_sms' });
  return meant.ok && read.ok && meant.message.text.slice(0, MAX_TEXT_UNITS) !== read.message.text;
}

/** The header fields of a decoded file with the absent ones as null (how the journal and `decode` show them). */
export function headerFields(m: SmsFields) {
  return {
    udh: m.udh ?? null,
    scts: m.scts ?? null,
    mr: m.mr ?? null,
    dcs: m.dcs ?? null,
    pid: m.pid ?? null,
    vp: m.vp ?? null,
    srr: m.srr ?? false,
    rp: m.rp ?? false,
  };
}
