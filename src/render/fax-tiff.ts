/**
 * Text → fax pages spandsp will send (SPEC §4): 1728 pixels wide, 1 bit,
 * min-is-white, 204 dpi across and 98/196/391 lines per inch down, CCITT G4
 * (sharp/libvips) or G3 (our own T.4 encoder below, libvips has none), one IFD
 * per page (tiff-tags.ts chains them, since libvips cannot store pages of
 * different heights in one file).
 *
 * Fax pixels are not square, so text is drawn by Pango at 408 dpi (square) and
 * scaled to 204 dpi across and the page's line density down: the printed page
 * then shows normal letter shapes. The 2× oversampling also gives clean 1-bit
 * edges after a fixed threshold (no dithering, whose noise fax coding hates).
 *
 * We wrap and paginate ourselves (monospace: a column count is exact), because
 * a whole message cannot be one Pango image (cairo stops at 32767 pixels) and
 * the page count must be known before the "page i/N" header is drawn.
 */
import type { Sharp } from 'sharp';
import { pageStrips, readTiff, writeBilevelTiff, type BilevelPage } from './tiff-tags.js';

// libvips is loaded with the first fax, not at start: about 14 MiB of RSS (measured: idle 80.6 → 66.5
// MiB, BENCHMARKS.md) that a daemon without fax recipients never needs. Every entry point awaits it.
let sharp: typeof import('sharp').default;
let loadingSharp: Promise<void> | undefined;
function loadSharp(): Promise<void> {
  loadingSharp ??= import('sharp').then((m) => {
    sharp = m.default;
  });
  return loadingSharp;
}

export type FaxResolution = 'standard' | 'fine' | 'superfine';
export const FAX_Y_DPI: Record<FaxResolution, number> = { standard: 98, fine: 196, superfine: 391 };
export const FAX_X_DPI = 204;
export const FAX_WIDTH = 1728;

/** A4 height (297 mm) in lines at each resolution: no page may be longer. */
export const FAX_A4_LINES: Record<FaxResolution, number> = {
  standard: Math.floor((297 / 25.4) * 98),
  fine: Math.floor((297 / 25.4) * 196),
  superfine: Math.floor((297 / 25.4) * 391),
};
/**
 * Our full page: 2000 lines at fine (259 mm), the same height at the other
 * resolutions. Shorter than A4 and US Letter, since some receivers shrink pages
 * taller than about 2000 lines (SPEC §4).
 */
export const FAX_PAGE_LINES: Record<FaxResolution, number> = {
  standard: Math.round((2000 * 98) / 196),
  fine: 2000,
  superfine: Math.round((2000 * 391) / 196),
};

export interface FaxRenderOptions {
  resolution: FaxResolution;
  /** g4 = CCITT T.6 (default), g3 = CCITT T.4 one-dimensional. */
  compression?: 'g4' | 'g3';
  /** One line, e.g. "Text message from 48600111222 sent 2026-11-22 04:16:58 (ref 5)". */
  header: string;
  fontFamily?: string;
}

export interface RenderedFax {
  tiff: Buffer;
  pages: number;
  pageHeights: number[];
}

/** One rendered page: 8-bit grey, only 0 (ink) and 255 (paper). */
export interface FaxPageBitmap {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/** Rendering failed (font system, libvips); `code` is stable for logs and .reason files. */
export class RenderError extends Error {
  readonly code = 'RENDER_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RenderError';
  }
}

// ---- layout ------------------------------------------------------------

const RENDER_DPI = 408; // 2 × 204: Pango draws square pixels, we scale down
const MM = 1 / 25.4;
const MARGIN_X = Math.round(10 * MM * FAX_X_DPI); // 10 mm left and right
const MARGIN_TOP_MM = 6; // the receiving machine prints its own line above
const MARGIN_BOTTOM_MM = 6;
const LINE_SPACING = 1.2; // × font size
/** Bigger type at standard resolution, where a letter gets only half the lines. */
const FONT_PT: Record<FaxResolution, number> = { standard: 12, fine: 11, superfine: 11 };
/** Grey level (0–255 ink coverage after scaling) from which a pixel is black. */
const INK_THRESHOLD = 100;
const DEFAULT_FONT = 'DejaVu Sans Mono';
/** Drawn at the top left of every Pango block: libvips crops text to its ink, this pins the origin. */
const ANCHOR = '\u2588';
const LRM = '\u200e';

export interface FaxLayout {
  resolution: FaxResolution;
  yDpi: number;
  fontPt: number;
  /** Characters per line. */
  columns: number;
  /** Text lines per page, below the header and its rule. */
  bodyLines: number;
  headerLines: number;
  pageLines: number;
  /** Vertical distance between two text lines, in output lines (fractional). */
  pitch: number;
  marginTop: number;
  marginBottom: number;
}

interface FontMetrics {
  /** Advance of one character cell, at RENDER_DPI. */
  advance: number;
  /** Ink size of the anchor (a full block: one whole character cell), at RENDER_DPI. */
  anchorWidth: number;
  anchorHeight: number;
}

const metricsCache = new Map<string, Promise<FontMetrics>>();

function fontDescription(family: string, pt: number): string {
  return `${family} ${pt}`;
}

/**
 * Line pitch in pixels at RENDER_DPI. Passed to Pango as an absolute
 * line_height (in 1024ths of a device pixel, as libvips sets up its layout), so
 * every line gets the same pitch whatever fallback font it needs, and a page
 * holds a known number of lines.
 */
function pitchRender(pt: number): number {
  return Math.round(((pt * RENDER_DPI) / 72) * LINE_SPACING);
}

async function fontMetrics(family: string, pt: number): Promise<FontMetrics> {
  const key = `${family}\0${pt}`;
  let m = metricsCache.get(key);
  if (!m) {
    m = (async () => {
      const one = await textImage(ANCHOR, family, pt, 0);
      const many = await textImage(ANCHOR.repeat(41), family, pt, 0);
      const advance = (many.width - one.width) / 40;
      if (!(advance > 0)) throw new RenderError(`font ${JSON.stringify(family)}: cannot measure a character cell`);
      return { advance, anchorWidth: one.width, anchorHeight: one.height };
    })();
    metricsCache.set(key, m);
    m.catch(() => metricsCache.delete(key));
  }
  return m;
}

/** The page geometry for these options: columns, lines per page, margins. */
export async function faxLayout(options: FaxRenderOptions): Promise<FaxLayout> {
  const yDpi = yDpiOf(options.resolution);
  const family = checkFamily(options.fontFamily);
  const fontPt = FONT_PT[options.resolution];
  const metrics = await fontMetrics(family, fontPt);
  const columns = Math.floor((FAX_WIDTH - 2 * MARGIN_X) / (metrics.advance * (FAX_X_DPI / RENDER_DPI)));
  const pitch = pitchRender(fontPt) * (yDpi / RENDER_DPI);
  const marginTop = Math.round(MARGIN_TOP_MM * MM * yDpi);
  const marginBottom = Math.round(MARGIN_BOTTOM_MM * MM * yDpi);
  const pageLines = FAX_PAGE_LINES[options.resolution];
  const headerLines = headerRows(options.header, columns, '').length;
  const bodyLines = Math.floor((pageLines - marginTop - marginBottom) / pitch) - headerLines - 1;
  return { resolution: options.resolution, yDpi, fontPt, columns, bodyLines, headerLines, pageLines, pitch, marginTop, marginBottom };
}

function yDpiOf(resolution: FaxResolution): number {
  // Checked at run time too: the value may come from a config file or a command line.
  if (!Object.hasOwn(FAX_Y_DPI, resolution)) throw new RenderError(`unknown fax resolution ${JSON.stringify(resolution)}`);
  return FAX_Y_DPI[resolution];
}

function checkFamily(family: string | undefined): string {
  const f = family ?? DEFAULT_FONT;
  // A Pango font description, not markup; a control character or an empty name is a config mistake.
  if (!f.trim() || /[\u0000-\u001f\u007f]/.test(f)) throw new RenderError(`invalid font family ${JSON.stringify(f)}`);
  return f;
}

// ---- text --------------------------------------------------------------

/** Pango markup escaping: `<script>&amp;` must print as those nine characters. */
export function escapePangoMarkup(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/**
 * Line breaks unified to \n (including the Unicode separators, which Pango
 * would break on behind our back); controls, lone surrogates and the two
 * characters XML forbids become U+FFFD, so nothing breaks the markup and
 * nothing vanishes without a trace.
 */
export function normalizeFaxText(text: string): string {
  return text
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
    .replace(/\r\n?|[\f\v\u0085\u2028\u2029]/g, '\n')
    .replace(/[\u0000-\u0008\u000e-\u001f\u007f-\u0084\u0086-\u009f\ufffe\uffff]/g, '\ufffd');
}

const segmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}]$/u;
// East Asian wide ranges, private use, and everything beyond the BMP (emoji,
// which the DejaVu fonts lack: Pango draws a hex box about two cells wide).
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\ue000-\uf8ff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u;

/** Character cells a grapheme takes in the monospace font. */
export function graphemeColumns(g: string): number {
  let w = 0;
  for (const ch of g) {
    if (ZERO_WIDTH.test(ch)) continue;
    w += ch.codePointAt(0)! > 0xffff || WIDE.test(ch) ? 2 : 1;
  }
  return w;
}

function isBreakingSpace(g: string): boolean {
  return g === ' ' || (/^\p{Zs}$/u.test(g) && g !== '\u00a0' && g !== '\u2007' && g !== '\u202f');
}

/**
 * Word wrap to `columns` cells: newlines kept, tabs to the next multiple of 8,
 * a word longer than a line broken between graphemes, spaces at a break
 * dropped, leading indentation kept.
 */
export function wrapFaxText(text: string, columns: number): string[] {
  const out: string[] = [];
  for (const paragraph of normalizeFaxText(text).split('\n')) {
    // Tokens: runs of spaces and runs of other graphemes, with their widths.
    const tokens: { text: string; width: number; space: boolean; parts: { g: string; w: number }[] }[] = [];
    let col = 0;
    for (const { segment } of segmenter.segment(paragraph)) {
      const g = segment === '\t' ? ' '.repeat(8 - (col % 8)) : segment;
      const space = segment === '\t' || isBreakingSpace(segment);
      const w = segment === '\t' ? g.length : graphemeColumns(g);
      col += w;
      const last = tokens[tokens.length - 1];
      if (last && last.space === space) {
        last.text += g;
        last.width += w;
        last.parts.push({ g, w });
      } else tokens.push({ text: g, width: w, space, parts: [{ g, w }] });
    }
    let line = '';
    let width = 0;
    let pendingSpace = '';
    let pendingWidth = 0;
    const flush = (): void => {
      out.push(line);
      line = '';
      width = 0;
    };
    tokens.forEach((t, i) => {
      if (t.space) {
        if (i === 0) {
          // Indentation at the start of a paragraph is kept (up to a line).
          line = t.text.slice(0, columns);
          width = Math.min(t.width, columns);
        } else {
          pendingSpace = t.text;
          pendingWidth = t.width;
        }
        return;
      }
      if (width + pendingWidth + t.width <= columns) {
        line += pendingSpace + t.text;
        width += pendingWidth + t.width;
      } else {
        if (line.trim() !== '') flush();
        else {
          line = '';
          width = 0;
        }
        for (const { g, w } of t.parts) {
          if (width + w > columns && width > 0) flush();
          line += g;
          width += w;
        }
      }
      pendingSpace = '';
      pendingWidth = 0;
    });
    out.push(line.trimEnd());
  }
  while (out.length > 0 && out[out.length - 1]!.trim() === '') out.pop();
  return out;
}

/** The header lines of one page: the header text, and "page i/N" at the right of its first line. */
function headerRows(header: string, columns: number, label: string): string[] {
  const labelWidth = 'page 999/999'.length + 2; // reserved whatever the page count, so every page has the same layout
  const rows = wrapFaxText(header.replace(/\n/g, ' '), Math.max(10, columns - labelWidth));
  if (rows.length === 0) rows.push('');
  if (label) {
    const first = rows[0]!;
    const firstWidth = [...segmenter.segment(first)].reduce((n, s) => n + graphemeColumns(s.segment), 0);
    rows[0] = first + ' '.repeat(Math.max(2, columns - firstWidth - label.length)) + label;
  }
  return rows;
}

// ---- drawing -----------------------------------------------------------

interface GreyImage {
  width: number;
  height: number;
  data: Buffer;
}

/** Pango markup rendered by libvips: one band, ink = 255, cropped to the ink. */
async function textImage(markup: string, family: string, pt: number, wrapWidth: number): Promise<GreyImage> {
  await loadSharp();
  try {
    const { data, info } = await sharp({
      text: {
        text: markup,
        font: fontDescription(family, pt),
        dpi: RENDER_DPI,
        ...(wrapWidth > 0 ? { width: wrapWidth, wrap: 'word-char' as const } : {}),
      },
    })
      .toColourspace('b-w')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, data };
  } catch (err) {
    throw new RenderError(`text rendering failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Render lines as one block under an anchor line, scaled to the fax pixel
 * grid. Returns the block (anchor erased) and how many lines Pango drew: more
 * than we gave when it had to wrap a line we thought fitted (a fallback glyph
 * wider than we assumed), and the caller then checks the page still holds it.
 */
async function renderBlock(
  lines: readonly string[],
  bold: boolean,
  family: string,
  layout: FaxLayout,
): Promise<{ image: GreyImage; drawnLines: number }> {
  await loadSharp();
  const metrics = await fontMetrics(family, layout.fontPt);
  const pitch = pitchRender(layout.fontPt);
  // Every line starts with a left-to-right mark: Pango picks each paragraph's direction from its
  // first strong letter, and an Arabic or Hebrew line would otherwise be set flush right (and
  // move the anchor). Right-to-left runs are still reordered within their line.
  // Empty lines get a space so that they carry the line-height attribute too.
  const body = lines.map((l) => LRM + (escapePangoMarkup(l) || ' ')).join('\n');
  const markup = `<span line_height="${pitch * 1024}">${LRM}${ANCHOR}\n${bold ? `<b>${body}</b>` : body}</span>`;
  const wrapWidth = Math.ceil((layout.columns + 0.5) * metrics.advance);
  const raw = await textImage(markup, family, layout.fontPt, wrapWidth);
  // The anchor is line 0, so the image ends in line n's cell: n × pitch plus that line's ink
  // depth, which is about one cell (a descender may overshoot it a little, a line of dots
  // stops short). Blank lines at the end leave no ink: hence the max.
  const drawnLines = Math.max(lines.length, Math.ceil((raw.height - metrics.anchorHeight - 0.3 * pitch) / pitch));
  // Erase the anchor before scaling (it is alone in the top-left cell).
  const leftInk = firstInkColumn(raw, Math.floor(metrics.anchorHeight / 2));
  for (let y = 0; y < Math.min(raw.height, metrics.anchorHeight); y++) {
    raw.data.fill(0, y * raw.width + leftInk, y * raw.width + Math.min(raw.width, leftInk + metrics.anchorWidth));
  }
  const sx = FAX_X_DPI / RENDER_DPI;
  const sy = layout.yDpi / RENDER_DPI;
  // Cut off anything left of the anchor (a glyph overhang) so the anchor's left edge is column 0.
  const width = Math.max(1, Math.round((raw.width - leftInk) * sx));
  const height = Math.max(1, Math.round(raw.height * sy));
  try {
    const data = await sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 1 } })
      .extract({ left: leftInk, top: 0, width: raw.width - leftInk, height: raw.height })
      .resize(width, height, { fit: 'fill', kernel: 'mitchell' })
      .toColourspace('b-w')
      .raw()
      .toBuffer();
    return { image: { width, height, data }, drawnLines };
  } catch (err) {
    throw new RenderError(`scaling text failed: ${(err as Error).message}`, { cause: err });
  }
}

function firstInkColumn(img: GreyImage, row: number): number {
  const at = Math.min(row, img.height - 1) * img.width;
  for (let x = 0; x < img.width; x++) if (img.data[at + x]! > 127) return x;
  return 0;
}

/** Threshold a scaled block onto the page: its anchor line's top at `top` (which may be above the page). */
function stamp(page: FaxPageBitmap, block: GreyImage, left: number, top: number): void {
  for (let y = 0; y < block.height; y++) {
    const py = top + y;
    if (py < 0 || py >= page.height) continue;
    const w = Math.min(block.width, page.width - left);
    for (let x = 0; x < w; x++) {
      if (block.data[y * block.width + x]! >= INK_THRESHOLD) page.pixels[py * page.width + left + x] = 0;
    }
  }
}

// ---- pages -------------------------------------------------------------

/** Lay out and draw every page; the bitmaps can then become a TIFF or PNGs. */
export async function renderFaxPages(text: string, options: FaxRenderOptions): Promise<FaxPageBitmap[]> {
  const family = checkFamily(options.fontFamily);
  const layout = await faxLayout(options);
  const lines = wrapFaxText(text, layout.columns);

  // Body blocks first: their number fixes N in "page i/N".
  const bodies: GreyImage[] = [];
  const counts: number[] = [];
  let next = 0;
  do {
    let take = Math.min(layout.bodyLines, lines.length - next);
    let block = await renderBlock(lines.slice(next, next + take), false, family, layout);
    // Pango wrapped more than our column count foresaw and the page overflows:
    // give lines back, in proportion to the excess, until it fits.
    while (block.drawnLines > layout.bodyLines && take > 1) {
      take = Math.max(1, Math.min(take - 1, Math.floor((take * layout.bodyLines) / block.drawnLines)));
      block = await renderBlock(lines.slice(next, next + take), false, family, layout);
    }
    bodies.push(block.image);
    counts.push(block.drawnLines);
    next += take;
  } while (next < lines.length);

  const total = bodies.length;
  const headers = await Promise.all(
    bodies.map((_, i) => renderBlock(headerRows(options.header, layout.columns, `page ${i + 1}/${total}`), true, family, layout)),
  );

  return bodies.map((body, i) => {
    const last = i === total - 1;
    const rowsAbove = layout.headerLines + 1; // header, then the line the rule sits in
    const usedLines = rowsAbove + counts[i]!;
    const height = last ? Math.min(layout.pageLines, Math.ceil(layout.marginTop + usedLines * layout.pitch + layout.marginBottom)) : layout.pageLines;
    const page: FaxPageBitmap = { width: FAX_WIDTH, height, pixels: new Uint8Array(FAX_WIDTH * height).fill(255) };
    stamp(page, headers[i]!.image, MARGIN_X, Math.round(layout.marginTop - layout.pitch));
    drawRule(page, layout);
    stamp(page, body, MARGIN_X, Math.round(layout.marginTop + (rowsAbove - 1) * layout.pitch));
    return page;
  });
}

/** A rule about 0.35 mm thick across the text width, in the middle of the line below the header. */
function drawRule(page: FaxPageBitmap, layout: FaxLayout): void {
  const thickness = Math.max(2, Math.round(0.35 * MM * layout.yDpi));
  const middle = layout.marginTop + layout.headerLines * layout.pitch + layout.pitch / 2;
  const top = Math.round(middle - thickness / 2);
  for (let y = top; y < top + thickness; y++) page.pixels.fill(0, y * page.width + MARGIN_X, y * page.width + page.width - MARGIN_X);
}

export async function renderFax(text: string, options: FaxRenderOptions): Promise<RenderedFax> {
  const pages = await renderFaxPages(text, options);
  const tiff = await encodeFaxTiff(pages, options);
  return { tiff, pages: pages.length, pageHeights: pages.map((p) => p.height) };
}

/** One PNG per page with exactly the fax's pixels (so standard resolution looks squashed on screen, as it is). */
export async function renderFaxPngs(text: string, options: FaxRenderOptions): Promise<Buffer[]> {
  return encodeFaxPngs(await renderFaxPages(text, options));
}

export async function encodeFaxPngs(pages: readonly FaxPageBitmap[]): Promise<Buffer[]> {
  await loadSharp();
  return Promise.all(pages.map((p) => sharpPage(p).png({ compressionLevel: 9 }).toBuffer()));
}

export async function encodeFaxTiff(pages: readonly FaxPageBitmap[], options: Pick<FaxRenderOptions, 'resolution' | 'compression'>): Promise<Buffer> {
  await loadSharp();
  const yDpi = yDpiOf(options.resolution);
  const compression = options.compression ?? 'g4';
  if (compression !== 'g4' && compression !== 'g3') throw new RenderError(`unknown fax compression ${JSON.stringify(compression)}`);
  const encoded: BilevelPage[] = await Promise.all(
    pages.map(async (p): Promise<BilevelPage> => {
      if (compression === 'g3') {
        return { width: p.width, height: p.height, compression: 3, t4Options: 4, rowsPerStrip: p.height, strips: [encodeT4MH(p)], xDpi: FAX_X_DPI, yDpi };
      }
      // libvips writes the G4 data; we keep its strips and write the IFDs ourselves.
      let single: Buffer;
      try {
        single = await sharpPage(p)
          .tiff({ compression: 'ccittfax4', bitdepth: 1, miniswhite: true, xres: FAX_X_DPI * MM, yres: yDpi * MM, resolutionUnit: 'inch' })
          .toBuffer();
      } catch (err) {
        throw new RenderError(`G4 encoding failed: ${(err as Error).message}`, { cause: err });
      }
      const [info] = readTiff(single).pages;
      if (!info || info.compression !== 4 || info.bitsPerSample !== 1 || info.width !== p.width || info.height !== p.height) {
        throw new RenderError('libvips did not write a 1-bit G4 page');
      }
      return { width: p.width, height: p.height, compression: 4, rowsPerStrip: info.rowsPerStrip, strips: pageStrips(single, info), xDpi: FAX_X_DPI, yDpi };
    }),
  );
  return writeBilevelTiff(encoded);
}

function sharpPage(p: FaxPageBitmap): Sharp {
  return sharp(p.pixels, { raw: { width: p.width, height: p.height, channels: 1 } }).toColourspace('b-w');
}

// ---- CCITT T.4 one-dimensional (Modified Huffman) ---------------------

// Code words as bit strings, index = run length (terminating 0–63) or run / 64 − 1 (make-up 64–1728).
const WHITE_TERM = '00110101 000111 0111 1000 1011 1100 1110 1111 10011 10100 00111 01000 001000 000011 110100 110101 101010 101011 0100111 0001100 0001000 0010111 0000011 0000100 0101000 0101011 0010011 0100100 0011000 00000010 00000011 00011010 00011011 00010010 00010011 00010100 00010101 00010110 00010111 00101000 00101001 00101010 00101011 00101100 00101101 00000100 00000101 00001010 00001011 01010010 01010011 01010100 01010101 00100100 00100101 01011000 01011001 01011010 01011011 01001010 01001011 00110010 00110011 00110100'.split(' ');
const BLACK_TERM = '0000110111 010 11 10 011 0011 0010 00011 000101 000100 0000100 0000101 0000111 00000100 00000111 000011000 0000010111 0000011000 0000001000 00001100111 00001101000 00001101100 00000110111 00000101000 00000010111 00000011000 000011001010 000011001011 000011001100 000011001101 000001101000 000001101001 000001101010 000001101011 000011010010 000011010011 000011010100 000011010101 000011010110 000011010111 000001101100 000001101101 000011011010 000011011011 000001010100 000001010101 000001010110 000001010111 000001100100 000001100101 000001010010 000001010011 000000100100 000000110111 000000111000 000000100111 000000101000 000001011000 000001011001 000000101011 000000101100 000001011010 000001100110 000001100111'.split(' ');
const WHITE_MAKEUP = '11011 10010 010111 0110111 00110110 00110111 01100100 01100101 01101000 01100111 011001100 011001101 011010010 011010011 011010100 011010101 011010110 011010111 011011000 011011001 011011010 011011011 010011000 010011001 010011010 011000 010011011'.split(' ');
const BLACK_MAKEUP = '0000001111 000011001000 000011001001 000001011011 000000110011 000000110100 000000110101 0000001101100 0000001101101 0000001001010 0000001001011 0000001001100 0000001001101 0000001110010 0000001110011 0000001110100 0000001110101 0000001110110 0000001110111 0000001010010 0000001010011 0000001010100 0000001010101 0000001011010 0000001011011 0000001100100 0000001100101'.split(' ');
const EOL = '000000000001';

class BitWriter {
  private bytes: number[] = [];
  private acc = 0;
  private n = 0;
  put(code: string): void {
    for (let i = 0; i < code.length; i++) {
      this.acc = (this.acc << 1) | (code.charCodeAt(i) - 48);
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  /** Zero bits up to the boundary where `bits` more bits end a byte (Group3Options bit 2: EOL ends on a byte). */
  alignFor(bits: number): void {
    while ((this.n + bits) % 8 !== 0) this.put('0');
  }
  finish(): Buffer {
    if (this.n) this.put('0'.repeat(8 - this.n));
    return Buffer.from(this.bytes);
  }
}

/**
 * Modified Huffman coding (T.4 1-D), as TIFF compression 3 with
 * Group3Options = 4: every row starts with an EOL ending on a byte boundary,
 * starts with a white run (of 0 if the row starts black), no RTC.
 */
export function encodeT4MH(page: FaxPageBitmap): Buffer {
  const out = new BitWriter();
  const runs = (length: number, white: boolean): void => {
    const term = white ? WHITE_TERM : BLACK_TERM;
    const makeup = white ? WHITE_MAKEUP : BLACK_MAKEUP;
    while (length >= 64) {
      const m = Math.min(Math.floor(length / 64), makeup.length); // 1728 is the longest make-up code, the widest row
      out.put(makeup[m - 1]!);
      length -= m * 64;
    }
    out.put(term[length]!);
  };
  for (let y = 0; y < page.height; y++) {
    out.alignFor(EOL.length);
    out.put(EOL);
    const row = y * page.width;
    let x = 0;
    let white = true;
    while (x < page.width) {
      let end = x;
      while (end < page.width && (page.pixels[row + end]! >= 128) === white) end++;
      runs(end - x, white);
      x = end;
      white = !white;
    }
  }
  return out.finish();
}

// ---- header ------------------------------------------------------------

/** Fill {from} {time} {ref} of a header template; other text is kept as is. */
export function faxHeader(template: string, values: { from: string; time: string; reference: string | number }): string {
  const map: Record<string, string> = { from: values.from, time: values.time, ref: String(values.reference) };
  return template.replace(/\{(from|time|ref)\}/g, (_, key: string) => map[key]!).replace(/[\r\n]+/g, ' ');
}
