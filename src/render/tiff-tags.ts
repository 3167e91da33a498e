/**
 * A small pure TIFF reader and a bilevel multi-page TIFF writer.
 *
 * The reader walks every IFD of a classic TIFF (either byte order) and reports
 * what spandsp checks before it sends a page: size, bits, compression,
 * photometric, resolution and unit. Tests and the doctor read rendered files
 * with it instead of trusting the encoder's own word.
 *
 * The writer exists because libvips can neither write CCITT G3 nor put pages of
 * different heights into one file: fax-tiff.ts hands it already compressed
 * strips and it chains one IFD per page, with the exact tags a fax file wants.
 * No I/O here: bytes in, bytes out.
 */

export const TIFF_COMPRESSION = { none: 1, g3: 3, g4: 4 } as const;
export const TIFF_PHOTOMETRIC_MIN_IS_WHITE = 0;
export const TIFF_RESOLUTION_UNIT_INCH = 2;

/** One IFD (one page) as spandsp sees it. Missing tags take TIFF's defaults. */
export interface TiffPage {
  width: number;
  height: number;
  /** The first value of BitsPerSample (all samples of a fax page have the same). */
  bitsPerSample: number;
  samplesPerPixel: number;
  /** 1 = none, 3 = CCITT T.4 (G3), 4 = CCITT T.6 (G4), 5 = LZW … */
  compression: number;
  /** 0 = min-is-white, 1 = min-is-black, 2 = RGB; undefined when the tag is missing. */
  photometric: number | undefined;
  xResolution: number | undefined;
  yResolution: number | undefined;
  /** 1 = none, 2 = inch, 3 = centimetre (2 when the tag is missing). */
  resolutionUnit: number;
  fillOrder: number;
  /** Group3Options / Group4Options, when present. */
  t4Options: number | undefined;
  t6Options: number | undefined;
  rowsPerStrip: number;
  stripOffsets: number[];
  stripByteCounts: number[];
}

export interface TiffFile {
  littleEndian: boolean;
  /** Number of IFDs in the main chain: the page count. */
  ifdCount: number;
  pages: TiffPage[];
}

/** The bytes are not a TIFF this reader understands; `code` is stable for logs. */
export class TiffFormatError extends Error {
  readonly code = 'TIFF_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'TiffFormatError';
  }
}

// Bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL,
// SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD).
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4 };
/** A real page has a few dozen tags; far more means garbage, not a fax. */
const MAX_ENTRIES = 1000;
const MAX_IFDS = 10_000;

export function readTiff(bytes: Uint8Array): TiffFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) throw new TiffFormatError('too short to be a TIFF');
  const order = String.fromCharCode(bytes[0]!, bytes[1]!);
  if (order !== 'II' && order !== 'MM') throw new TiffFormatError('not a TIFF: no II/MM byte-order mark');
  const le = order === 'II';
  const magic = view.getUint16(2, le);
  if (magic === 43) throw new TiffFormatError('BigTIFF is not supported (spandsp cannot send it either)');
  if (magic !== 42) throw new TiffFormatError(`not a TIFF: magic ${magic}`);

  const u16 = (at: number): number => view.getUint16(at, le);
  const u32 = (at: number): number => view.getUint32(at, le);
  const need = (at: number, length: number, what: string): void => {
    if (at < 0 || at + length > bytes.length) throw new TiffFormatError(`${what} at ${at} lies outside the file (${bytes.length} bytes)`);
  };

  /** All values of one entry as numbers (rationals as quotients). */
  const values = (entry: number): number[] => {
    const type = u16(entry + 2);
    const count = u32(entry + 4);
    const size = TYPE_SIZE[type];
    if (size === undefined) return [];
    if (count > bytes.length) throw new TiffFormatError(`tag ${u16(entry)} claims ${count} values`);
    const at = size * count <= 4 ? entry + 8 : u32(entry + 8);
    need(at, size * count, `tag ${u16(entry)}`);
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const p = at + i * size;
      switch (type) {
        case 3: out.push(u16(p)); break;
        case 8: out.push(view.getInt16(p, le)); break;
        case 4: case 13: out.push(u32(p)); break;
        case 9: out.push(view.getInt32(p, le)); break;
        case 5: { const d = u32(p + 4); out.push(d === 0 ? NaN : u32(p) / d); break; }
        case 10: { const d = view.getInt32(p + 4, le); out.push(d === 0 ? NaN : view.getInt32(p, le) / d); break; }
        case 11: out.push(view.getFloat32(p, le)); break;
        case 12: out.push(view.getFloat64(p, le)); break;
        case 6: out.push(view.getInt8(p)); break;
        default: out.push(bytes[p]!);
      }
    }
    return out;
  };

  const pages: TiffPage[] = [];
  const seen = new Set<number>();
  let offset = u32(4);
  while (offset !== 0) {
    if (seen.has(offset)) throw new TiffFormatError(`IFD chain loops back to offset ${offset}`);
    if (seen.size >= MAX_IFDS) throw new TiffFormatError(`more than ${MAX_IFDS} IFDs`);
    seen.add(offset);
    need(offset, 2, 'IFD');
    const n = u16(offset);
    if (n === 0 || n > MAX_ENTRIES) throw new TiffFormatError(`IFD at ${offset} has ${n} entries`);
    need(offset + 2, n * 12 + 4, 'IFD');
    const tags = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const entry = offset + 2 + i * 12;
      tags.set(u16(entry), values(entry));
    }
    pages.push(pageOf(tags, pages.length));
    offset = u32(offset + 2 + n * 12);
  }
  if (pages.length === 0) throw new TiffFormatError('no IFD');
  return { littleEndian: le, ifdCount: pages.length, pages };
}

/** The pages of a TIFF (one per IFD); throws TiffFormatError on anything else. */
export function readTiffPages(bytes: Uint8Array): TiffPage[] {
  return readTiff(bytes).pages;
}

function pageOf(tags: Map<number, number[]>, index: number): TiffPage {
  const first = (tag: number): number | undefined => tags.get(tag)?.[0];
  const width = first(256);
  const height = first(257);
  if (width === undefined || height === undefined) throw new TiffFormatError(`page ${index + 1}: no ImageWidth/ImageLength`);
  return {
    width,
    height,
    bitsPerSample: first(258) ?? 1,
    samplesPerPixel: first(277) ?? 1,
    compression: first(259) ?? 1,
    photometric: first(262),
    xResolution: first(282),
    yResolution: first(283),
    resolutionUnit: first(296) ?? TIFF_RESOLUTION_UNIT_INCH,
    fillOrder: first(266) ?? 1,
    t4Options: first(292),
    t6Options: first(293),
    rowsPerStrip: Math.min(first(278) ?? height, height),
    stripOffsets: tags.get(273) ?? [],
    stripByteCounts: tags.get(279) ?? [],
  };
}

/** The compressed strips of one page, as stored (fill order msb-to-lsb). */
export function pageStrips(bytes: Uint8Array, page: TiffPage): Uint8Array[] {
  if (page.stripOffsets.length !== page.stripByteCounts.length) throw new TiffFormatError('StripOffsets and StripByteCounts differ in length');
  return page.stripOffsets.map((at, i) => {
    const length = page.stripByteCounts[i]!;
    if (at + length > bytes.length) throw new TiffFormatError(`strip ${i} lies outside the file`);
    return bytes.subarray(at, at + length);
  });
}

/** One page for writeBilevelTiff: already compressed strips plus what the tags must say. */
export interface BilevelPage {
  width: number;
  height: number;
  compression: 3 | 4;
  /** Group3Options (only for compression 3): bit 0 = 2-D coding, bit 2 = EOLs byte-aligned. */
  t4Options?: number;
  rowsPerStrip: number;
  strips: Uint8Array[];
  /** Pixels per inch. */
  xDpi: number;
  yDpi: number;
}

const enum Type {
  SHORT = 3,
  LONG = 4,
  RATIONAL = 5,
  ASCII = 2,
}

/**
 * A little-endian TIFF with one IFD per page: 1 bit, min-is-white, fill order
 * msb-to-lsb, resolution in inches, PageNumber n/N and NewSubfileType "page"
 * (as in a TIFF-F file). Layout: header, then for each page its strips and its
 * IFD, each IFD pointing to the next.
 */
export function writeBilevelTiff(pages: readonly BilevelPage[], software = 'sms-router'): Buffer {
  if (pages.length === 0) throw new RangeError('a TIFF needs at least one page');
  const chunks: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer): number => {
    const at = size;
    chunks.push(b);
    size += b.length;
    if (size % 2) {
      chunks.push(Buffer.alloc(1)); // TIFF wants word-aligned offsets
      size++;
    }
    return at;
  };
  const header = Buffer.from([0x49, 0x49, 42, 0, 0, 0, 0, 0]);
  push(header);
  let patchNext: { buf: Buffer; at: number } = { buf: header, at: 4 };
  const softwareBytes = Buffer.from(`${software}\0`, 'latin1');

  pages.forEach((page, index) => {
    const offsets = page.strips.map((s) => push(Buffer.from(s.buffer, s.byteOffset, s.byteLength)));
    const counts = page.strips.map((s) => s.byteLength);
    type Entry = [tag: number, type: Type, values: number[] | Buffer];
    const entries: Entry[] = [
      [254, Type.LONG, [2]], // NewSubfileType: one page of a multi-page document
      [256, Type.LONG, [page.width]],
      [257, Type.LONG, [page.height]],
      [258, Type.SHORT, [1]],
      [259, Type.SHORT, [page.compression]],
      [262, Type.SHORT, [TIFF_PHOTOMETRIC_MIN_IS_WHITE]],
      [266, Type.SHORT, [1]], // FillOrder msb-to-lsb
      [273, Type.LONG, offsets],
      [274, Type.SHORT, [1]],
      [277, Type.SHORT, [1]],
      [278, Type.LONG, [page.rowsPerStrip]],
      [279, Type.LONG, counts],
      [282, Type.RATIONAL, [page.xDpi]],
      [283, Type.RATIONAL, [page.yDpi]],
      [284, Type.SHORT, [1]],
      ...(page.compression === 3 ? ([[292, Type.LONG, [page.t4Options ?? 0]]] as Entry[]) : ([[293, Type.LONG, [0]]] as Entry[])),
      [296, Type.SHORT, [TIFF_RESOLUTION_UNIT_INCH]],
      [297, Type.SHORT, [index, pages.length]],
      [305, Type.ASCII, softwareBytes],
    ];
    // Values that do not fit in the 4-byte slot go after the IFD.
    const ifdSize = 2 + entries.length * 12 + 4;
    const ifdAt = size;
    const ifd = Buffer.alloc(ifdSize);
    const extra: Buffer[] = [];
    let extraAt = ifdAt + ifdSize;
    ifd.writeUInt16LE(entries.length, 0);
    entries.forEach(([tag, type, vals], i) => {
      const e = 2 + i * 12;
      const data = encodeValues(type, vals);
      const count = type === Type.ASCII ? data.length : (vals as number[]).length;
      ifd.writeUInt16LE(tag, e);
      ifd.writeUInt16LE(type, e + 2);
      ifd.writeUInt32LE(count, e + 4);
      if (data.length <= 4) {
        data.copy(ifd, e + 8);
      } else {
        ifd.writeUInt32LE(extraAt, e + 8);
        const padded = data.length % 2 ? Buffer.concat([data, Buffer.alloc(1)]) : data;
        extra.push(padded);
        extraAt += padded.length;
      }
    });
    patchNext.buf.writeUInt32LE(ifdAt, patchNext.at);
    push(ifd);
    for (const b of extra) push(b);
    patchNext = { buf: ifd, at: ifdSize - 4 };
  });
  return Buffer.concat(chunks, size);
}

function encodeValues(type: Type, vals: number[] | Buffer): Buffer {
  if (Buffer.isBuffer(vals)) return vals;
  if (type === Type.SHORT) {
    const b = Buffer.alloc(vals.length * 2);
    vals.forEach((v, i) => b.writeUInt16LE(v, i * 2));
    return b;
  }
  if (type === Type.LONG) {
    const b = Buffer.alloc(vals.length * 4);
    vals.forEach((v, i) => b.writeUInt32LE(v, i * 4));
    return b;
  }
  // RATIONAL: resolutions are whole or hundredths of a dot per inch.
  const b = Buffer.alloc(vals.length * 8);
  vals.forEach((v, i) => {
    const denominator = Number.isInteger(v) ? 1 : 100;
    b.writeUInt32LE(Math.round(v * denominator), i * 8);
    b.writeUInt32LE(denominator, i * 8 + 4);
  });
  return b;
}
