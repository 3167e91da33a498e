/**
 * Reassembly of concatenated SMS (TS 23.040 §9.2.3.24.1 / .8), pure: the
 * caller stores every received part, groups the parts by `concatKey`, and
 * asks `reassemble` what to do with one group given the current time.
 *
 * A set is identified by the sender (oa), the recipient (da), the reference
 * with its width (an 8-bit 0x2A and a 16-bit 0x002A are different sets) and
 * the number of parts. Parts are joined in sequence order whatever order they
 * arrived in; the first part received for a sequence wins and any later one
 * is a duplicate. An incomplete set waits `timeoutMs` from its earliest part,
 * then is delivered with a visible marker where each missing part belongs.
 *
 * References wrap (a phone has only 256 8-bit references), so a set only
 * takes parts received within 2 × timeoutMs of its earliest part; later
 * parts of the same key are left alone for the caller to handle as a new set
 * once this one is done.
 */

import { parseConcat, type ConcatInfo } from './encoding.js';

export interface StoredPart {
  id: number;
  oa: string;
  da: string;
  /** The UDH as in `udh#`: hex information elements without the length byte. */
  udh: string;
  text: string;
  /** ISO 8601 instant the part was received. */
  receivedAt: string;
}

export interface ConcatKey {
  oa: string;
  da: string;
  reference: number;
  referenceBits: 8 | 16;
  total: number;
}

export type Reassembly =
  | { kind: 'complete'; text: string; /** part ids in sequence order */ used: number[]; duplicates: number[] }
  | { kind: 'waiting'; /** ISO: earliest part's receivedAt + timeout */ until: string }
  | {
      kind: 'timed-out';
      text: string;
      used: number[];
      duplicates: number[];
      /** sequence numbers, ascending */
      missing: number[];
    };

export interface ReassembleOptions {
  /** ISO 8601 instant: the caller's clock. */
  now: string;
  /** How long an incomplete set waits, from its earliest part. */
  timeoutMs: number;
  /** Text standing in for a missing part; default `[part ${sequence} of ${total} missing]`. */
  missingMarker?: (sequence: number, total: number) => string;
}

/**
 * The concatenation element of a UDH, like `parseConcat`, except that an
 * element whose sequence lies outside 1..total (but whose total is at least
 * 1) is still returned when no valid element exists: such a part belongs to
 * its set as a stray (reported as a duplicate) rather than being delivered
 * on its own as a plain message.
 */
function concatElement(udh: string | null | undefined): ConcatInfo | undefined {
  if (udh === null || udh === undefined) return undefined;
  const valid = parseConcat(udh);
  if (valid) return valid;
  // parseConcat already rejected malformed headers the same way; only the
  // sequence check is relaxed here.
  if (udh.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(udh)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < udh.length; i += 2) bytes.push(parseInt(udh.slice(i, i + 2), 16));
  let found: ConcatInfo | undefined;
  for (let p = 0; p < bytes.length; ) {
    const iei = bytes[p]!;
    const len = bytes[p + 1];
    if (len === undefined || p + 2 + len > bytes.length) return undefined;
    const d = bytes.slice(p + 2, p + 2 + len);
    let info: ConcatInfo | undefined;
    if (iei === 0x00 && len === 3) {
      info = { reference: d[0]!, referenceBits: 8, total: d[1]!, sequence: d[2]! };
    } else if (iei === 0x08 && len === 4) {
      info = { reference: (d[0]! << 8) | d[1]!, referenceBits: 16, total: d[2]!, sequence: d[3]! };
    }
    if (info && info.total > 0) found = info;
    p += 2 + len;
  }
  return found;
}

/**
 * The set a part belongs to, or undefined when its UDH carries no usable
 * concatenation element (no UDH, a malformed one, no 00/08 element, or total
 * 0): then the part is a plain message. A part whose sequence is outside
 * 1..total still gets its set's key so `reassemble` can report it as a stray.
 */
export function concatKey(part: { oa: string; da: string; udh: string | null }): ConcatKey | undefined {
  const info = concatElement(part.udh);
  if (!info) return undefined;
  return { oa: part.oa, da: part.da, reference: info.reference, referenceBits: info.referenceBits, total: info.total };
}

/** A string naming the key, equal for equal keys and unambiguous (usable as a Map key); otherwise opaque. */
export function keyString(k: ConcatKey): string {
  return JSON.stringify([k.oa, k.da, k.referenceBits, k.reference, k.total]);
}

function sameKey(a: ConcatKey, b: ConcatKey): boolean {
  return (
    a.oa === b.oa &&
    a.da === b.da &&
    a.reference === b.reference &&
    a.referenceBits === b.referenceBits &&
    a.total === b.total
  );
}

function instant(iso: string, what: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new RangeError(`${what} is not a valid ISO instant: ${JSON.stringify(iso)}`);
  return ms;
}

export function defaultMissingMarker(sequence: number, total: number): string {
  return `[part ${sequence} of ${total} missing]`;
}

/**
 * Decides what to do with the parts held for ONE key.
 *
 * - The parts considered are those with the key of the earliest part (by
 *   receivedAt, then id) and received at most 2 × timeoutMs after it. Any
 *   other part (a reused reference much later; a part of another key or
 *   without a concatenation element, passed by mistake) is in neither `used`
 *   nor `duplicates`: the caller keeps it and handles it later.
 * - Among the considered parts, the first received for each sequence is
 *   used; a later one with the same sequence (whatever its text) and one
 *   whose sequence is outside 1..total is listed in `duplicates`.
 * - 'complete' as soon as every sequence 1..total is present, whatever the time.
 * - Otherwise 'waiting' while now < earliest receivedAt + timeoutMs, and
 *   'timed-out' from that instant on: the present parts joined in order with
 *   a marker for each missing one. A marker is separated from a neighbouring
 *   text (or marker) by one space, unless that text already has whitespace on
 *   that side.
 *
 * Throws RangeError when `parts` is empty, none has a concatenation element,
 * an instant is not valid ISO, or timeoutMs is not a finite number ≥ 0.
 */
export function reassemble(parts: readonly StoredPart[], options: ReassembleOptions): Reassembly {
  const { timeoutMs } = options;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new RangeError(`timeoutMs must be a finite number >= 0, not ${timeoutMs}`);
  const now = instant(options.now, 'now');
  const marker = options.missingMarker ?? defaultMissingMarker;

  const annotated = parts
    .map((part) => ({ part, at: instant(part.receivedAt, `receivedAt of part ${part.id}`), info: concatElement(part.udh) }))
    .filter((a): a is typeof a & { info: ConcatInfo } => a.info !== undefined)
    .sort((a, b) => a.at - b.at || a.part.id - b.part.id);
  const first = annotated[0];
  if (!first) {
    throw new RangeError(parts.length === 0 ? 'no parts to reassemble' : 'no part carries a concatenation element');
  }
  const key = concatKey(first.part)!;
  const earliest = first.at;
  const considered = annotated.filter((a) => a.at - earliest <= 2 * timeoutMs && sameKey(key, concatKey(a.part)!));

  const total = key.total;
  const bySequence = new Map<number, StoredPart>();
  const duplicates: number[] = [];
  for (const { part, info } of considered) {
    if (info.sequence < 1 || info.sequence > total || bySequence.has(info.sequence)) duplicates.push(part.id);
    else bySequence.set(info.sequence, part);
  }

  const used: number[] = [];
  const missing: number[] = [];
  const pieces: { text: string; marker: boolean }[] = [];
  for (let seq = 1; seq <= total; seq++) {
    const part = bySequence.get(seq);
    if (part) {
      used.push(part.id);
      pieces.push({ text: part.text, marker: false });
    } else {
      missing.push(seq);
      pieces.push({ text: marker(seq, total), marker: true });
    }
  }

  if (missing.length === 0) return { kind: 'complete', text: pieces.map((p) => p.text).join(''), used, duplicates };

  const deadline = earliest + timeoutMs;
  if (now < deadline) return { kind: 'waiting', until: new Date(deadline).toISOString() };

  let text = '';
  let afterMarker = false;
  for (const piece of pieces) {
    if (piece.text === '') continue;
    if ((piece.marker || afterMarker) && text !== '' && !/\s$/.test(text) && !/^\s/.test(piece.text)) text += ' ';
    text += piece.text;
    afterMarker = piece.marker;
  }
  return { kind: 'timed-out', text, used, duplicates, missing };
}
