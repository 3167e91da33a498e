import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import {
  FAX_A4_LINES,
  FAX_PAGE_LINES,
  FAX_Y_DPI,
  encodeFaxTiff,
  encodeT4MH,
  escapePangoMarkup,
  faxHeader,
  faxLayout,
  graphemeColumns,
  normalizeFaxText,
  renderFax,
  renderFaxPages,
  renderFaxPngs,
  wrapFaxText,
  type FaxPageBitmap,
  type FaxRenderOptions,
  type FaxResolution,
} from '../../src/render/fax-tiff.js';
import { readTiff, readTiffPages, writeBilevelTiff, TiffFormatError } from '../../src/render/tiff-tags.js';
import { runRenderFaxCommand } from '../../src/cli/render-fax.js';

const FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/fax/', import.meta.url));
const RESOLUTIONS: FaxResolution[] = ['standard', 'fine', 'superfine'];
const HEADER = 'Text message from 48600111222 sent 2026-11-22 04:16:58 (ref 5)';

/** Rows of a page that hold ink, from the decoded pixels (0 = black). */
function inkRows(p: { width: number; height: number; pixels: Uint8Array }): number[] {
  const rows: number[] = [];
  for (let y = 0; y < p.height; y++) {
    const row = p.pixels.subarray(y * p.width, (y + 1) * p.width);
    if (row.some((v) => v < 128)) rows.push(y);
  }
  return rows;
}

/** Ink rows below the rule under the header (the rule is the only row that is mostly black). */
function bodyRows(p: FaxPageBitmap): number[] {
  const rows = inkRows(p);
  const rule = rows.filter((y) => p.pixels.subarray(y * p.width, (y + 1) * p.width).filter((v) => v < 128).length > p.width * 0.8);
  assert.ok(rule.length > 0, 'a rule under the header');
  return rows.filter((y) => y > rule[rule.length - 1]!);
}

function inkCount(p: { pixels: Uint8Array }): number {
  let n = 0;
  for (const v of p.pixels) if (v < 128) n++;
  return n;
}

/** Decode one page of a TIFF or a PNG back to grey pixels with libvips/libtiff: never trust our own encoder. */
async function decode(image: Buffer, page = 0): Promise<FaxPageBitmap> {
  const { data, info } = await sharp(image, { page }).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 1);
  return { width: info.width, height: info.height, pixels: data };
}

function samePixels(a: FaxPageBitmap, b: FaxPageBitmap, what: string): void {
  assert.equal(a.width, b.width, `${what}: width`);
  assert.equal(a.height, b.height, `${what}: height`);
  let differ = 0;
  for (let i = 0; i < a.pixels.length; i++) if (a.pixels[i]! < 128 !== b.pixels[i]! < 128) differ++;
  assert.equal(differ, 0, `${what}: ${differ} pixels differ`);
}

/** A text of `lines` short numbered lines: one text line per body line, so page counts follow from the layout. */
function numberedLines(lines: number): string {
  return Array.from({ length: lines }, (_, i) => `Line ${i + 1}: zażółć gęślą jaźń, Größe, съешь ещё.`).join('\n');
}

// ---- tiff-tags.ts on the real files a real Asterisk sent, received and refused ----

test('the real 2-page G4 fixture reads as two 1728-wide fine pages', () => {
  const tiff = readTiff(readFileSync(path.join(FIXTURES, 'fax_good_2p_g4.tif')));
  assert.equal(tiff.ifdCount, 2);
  assert.equal(tiff.littleEndian, true);
  for (const p of tiff.pages) {
    assert.deepEqual(
      [p.width, p.bitsPerSample, p.samplesPerPixel, p.compression, p.photometric, p.xResolution, p.yResolution, p.resolutionUnit],
      [1728, 1, 1, 4, 0, 204, 196, 2],
    );
  }
});

test('the real 1-page G3 fixture reads as one page, T.4 with Group3Options 0', () => {
  const [page, ...rest] = readTiffPages(readFileSync(path.join(FIXTURES, 'fax_good_1p_g3.tif')));
  assert.equal(rest.length, 0);
  assert.equal(page!.compression, 3);
  assert.equal(page!.t4Options, 0);
  assert.equal(page!.width, 1728);
  assert.equal(page!.yResolution, 196);
});

test('the refused fixture reads as 800 pixels wide, 8-bit RGB', () => {
  const [page] = readTiffPages(readFileSync(path.join(FIXTURES, 'fax_bad_800x600_rgb.tif')));
  assert.equal(page!.width, 800);
  assert.equal(page!.height, 600);
  assert.equal(page!.bitsPerSample, 8);
  assert.equal(page!.samplesPerPixel, 3);
  assert.equal(page!.photometric, 2);
});

test('the TIFF spandsp received reads as libtiff described it (received_from_good_2p_g4.tiffinfo.txt)', () => {
  const info = readFileSync(path.join(FIXTURES, 'received_from_good_2p_g4.tiffinfo.txt'), 'utf8');
  const dirs = info.split(/=== TIFF directory \d+ ===/).slice(1);
  const pages = readTiffPages(readFileSync(path.join(FIXTURES, 'received_from_good_2p_g4.tif')));
  assert.equal(pages.length, dirs.length);
  dirs.forEach((d, i) => {
    const p = pages[i]!;
    const [, w, h] = /Image Width: (\d+) Image Length: (\d+)/.exec(d)!;
    const [, xr, yr] = /Resolution: (\d+), (\d+) pixels\/inch/.exec(d)!;
    const [, g3] = /Group 3 Options: .*\((\d+) =/.exec(d)!;
    assert.deepEqual([p.width, p.height, p.xResolution, p.yResolution, p.t4Options], [w, h, xr, yr, g3].map(Number));
    assert.equal(p.compression, /CCITT Group 3/.test(d) ? 3 : -1);
    assert.equal(p.fillOrder, /FillOrder: lsb-to-msb/.test(d) ? 2 : 1);
    assert.equal(p.photometric, /min-is-white/.test(d) ? 0 : -1);
    assert.equal(p.resolutionUnit, 2);
  });
});

test('a big-endian TIFF reads the same way', () => {
  // A hand-made MM file: one IFD with width, length, compression, photometric and an out-of-line rational.
  const b = Buffer.alloc(8 + 2 + 6 * 12 + 4 + 8);
  b.write('MM', 0, 'latin1');
  b.writeUInt16BE(42, 2);
  b.writeUInt32BE(8, 4);
  b.writeUInt16BE(6, 8);
  const rationalAt = 8 + 2 + 6 * 12 + 4;
  const entries: [number, number, number][] = [
    [256, 4, 1728], [257, 3, 1100], [258, 3, 1], [259, 3, 4], [262, 3, 0], [283, 5, rationalAt],
  ];
  entries.forEach(([tag, type, value], i) => {
    const e = 10 + i * 12;
    b.writeUInt16BE(tag, e);
    b.writeUInt16BE(type, e + 2);
    b.writeUInt32BE(1, e + 4);
    if (type === 3) b.writeUInt16BE(value, e + 8);
    else b.writeUInt32BE(value, e + 8);
  });
  b.writeUInt32BE(391, rationalAt);
  b.writeUInt32BE(1, rationalAt + 4);
  const tiff = readTiff(b);
  assert.equal(tiff.littleEndian, false);
  const p = tiff.pages[0]!;
  assert.deepEqual([p.width, p.height, p.compression, p.photometric, p.yResolution, p.resolutionUnit], [1728, 1100, 4, 0, 391, 2]);
});

test('what is not a TIFF is refused with TIFF_INVALID, never a crash or a hang', () => {
  const good = readFileSync(path.join(FIXTURES, 'fax_good_2p_g4.tif'));
  const loop = Buffer.from(good);
  // Point the second IFD's "next" back at the first.
  const first = loop.readUInt32LE(4);
  const second = loop.readUInt32LE(first + 2 + loop.readUInt16LE(first) * 12);
  loop.writeUInt32LE(first, second + 2 + loop.readUInt16LE(second) * 12);
  for (const bad of [Buffer.alloc(0), Buffer.from('GIF89a....'), good.subarray(0, 100), Buffer.from('II+\0\0\0\0\0'), loop]) {
    assert.throws(() => readTiff(bad), (err: unknown) => err instanceof TiffFormatError && err.code === 'TIFF_INVALID');
  }
});

// ---- rendered files: tags, pages, heights ----

for (const resolution of RESOLUTIONS) {
  for (const pageCount of [1, 3]) {
    for (const compression of ['g4', 'g3'] as const) {
      test(`${resolution}, ${pageCount} page(s), ${compression}: the TIFF tags spandsp checks, one IFD a page, decodable`, async () => {
        const options: FaxRenderOptions = { resolution, compression, header: HEADER };
        const layout = await faxLayout(options);
        const lines = pageCount === 1 ? 5 : layout.bodyLines * 2 + 3;
        const text = numberedLines(lines);
        const fax = await renderFax(text, options);
        assert.equal(fax.pages, pageCount);
        const tiff = readTiff(fax.tiff);
        assert.equal(tiff.ifdCount, pageCount);
        tiff.pages.forEach((p, i) => {
          assert.equal(p.width, 1728);
          assert.equal(p.height, fax.pageHeights[i]);
          assert.equal(p.bitsPerSample, 1);
          assert.equal(p.samplesPerPixel, 1);
          assert.equal(p.compression, compression === 'g4' ? 4 : 3);
          assert.equal(p.photometric, 0, 'min-is-white');
          assert.equal(p.xResolution, 204);
          assert.equal(p.yResolution, FAX_Y_DPI[resolution]);
          assert.equal(p.resolutionUnit, 2, 'inch');
          assert.ok(p.height <= FAX_A4_LINES[resolution], `page ${i + 1} is ${p.height} lines, longer than A4`);
          assert.ok(p.height <= FAX_PAGE_LINES[resolution]);
          if (i < pageCount - 1) assert.equal(p.height, FAX_PAGE_LINES[resolution], 'full pages are full height');
        });
        // The last page is trimmed: shorter than a full page, with a small blank margin under the last line.
        const last = await decode(fax.tiff, pageCount - 1);
        const rows = inkRows(last);
        const blankBelow = last.height - 1 - rows[rows.length - 1]!;
        const mm = FAX_Y_DPI[resolution] / 25.4;
        assert.ok(last.height < FAX_PAGE_LINES[resolution] * 0.5, `last page ${last.height} lines is not trimmed`);
        assert.ok(blankBelow >= 2 * mm && blankBelow <= 15 * mm, `blank bottom ${blankBelow} lines`);
        // Every page decodes (libtiff) to exactly the pixels of its PNG.
        const pngs = await renderFaxPngs(text, options);
        assert.equal(pngs.length, pageCount);
        for (let i = 0; i < pageCount; i++) samePixels(await decode(fax.tiff, i), await decode(pngs[i]!), `page ${i + 1}`);
      });
    }
  }
}

test('a full page holds its bodyLines lines, even with descenders and accents on every line', async () => {
  for (const resolution of RESOLUTIONS) {
    const options: FaxRenderOptions = { resolution, header: HEADER };
    const layout = await faxLayout(options);
    const text = Array.from({ length: layout.bodyLines * 2 }, () => 'ÅÉÖ ąęį gjpqy ДЦЩдцщ ,;_').join('\n');
    assert.equal((await renderFax(text, options)).pages, 2, resolution);
  }
});

test('the aspect is right at every resolution: the same text is as tall on paper', async () => {
  const inches: number[] = [];
  for (const resolution of RESOLUTIONS) {
    const [page] = await renderFaxPages('I\nI\nI\nI\nI\nI\nI\nI\nI\nI', { resolution, header: 'I' });
    const rows = inkRows(page!);
    inches.push((rows[rows.length - 1]! - rows[0]!) / FAX_Y_DPI[resolution]);
  }
  const [standard, fine, superfine] = inches as [number, number, number];
  // Standard uses a slightly larger type (fewer lines per letter); fine and superfine the same.
  assert.ok(Math.abs(fine - superfine) / fine < 0.02, `fine ${fine} in, superfine ${superfine} in`);
  assert.ok(standard / fine > 1 && standard / fine < 1.2, `standard ${standard} in, fine ${fine} in`);
});

// ---- text: escaping, characters, wrapping ----

test('Pango markup is escaped: <script>&amp; is text, not markup', async () => {
  assert.equal(escapePangoMarkup(`<script>&amp; "a" 'b'`), '&lt;script&gt;&amp;amp; &quot;a&quot; &apos;b&apos;');
  // Drawn literally: the ink spans 13 character cells, as 13 x's do.
  const right = async (text: string): Promise<number> => {
    const [png] = await renderFaxPngs(text, { resolution: 'fine', header: '' });
    const page = await decode(png!);
    let max = 0;
    for (const y of bodyRows(page)) {
      for (let x = page.width - 1; x > max; x--) if (page.pixels[y * page.width + x]! < 128) max = x;
    }
    return max;
  };
  const [markup, plain, short] = await Promise.all([right('<script>&amp;'), right('x'.repeat(13)), right('x'.repeat(12))]);
  assert.ok(markup > short, 'wider than 12 cells');
  assert.ok(Math.abs(markup - plain) < (plain - short) * 0.8, `ink ends at ${markup}, 13 cells end at ${plain}`);
});

test('Polish, German and Cyrillic letters, emoji and characters the font lacks all leave ink', async () => {
  const options: FaxRenderOptions = { resolution: 'fine', header: HEADER };
  const blank = inkCount((await renderFaxPages('', options))[0]!);
  const samples = ['ąćęłńóśźż ĄĆĘŁŃÓŚŹŻ', 'äöüß ÄÖÜ', 'Съешь же ещё', 'ą', 'ß', 'Ж', '😀', '👍🏽', '中', '\ue000', '\u{10fffd}', '\u0007', '\ud800'];
  const inks = await Promise.all(samples.map(async (s) => inkCount((await renderFaxPages(s, options))[0]!)));
  samples.forEach((s, i) => assert.ok(inks[i]! > blank + 50, `${JSON.stringify(s)} drew ${inks[i]! - blank} black pixels`));
});

test('lines Pango must wrap again (glyphs wider than a cell) move to the next page; nothing is clipped', async () => {
  const options: FaxRenderOptions = { resolution: 'fine', header: HEADER };
  const layout = await faxLayout(options);
  // U+FDFA is not in DejaVu Sans Mono: Pango draws hex boxes wider than a cell, so each of these lines takes two.
  const text = Array.from({ length: layout.bodyLines }, (_, i) => (i % 2 ? '\ufdfa'.repeat(layout.columns) : `line ${i}`)).join('\n');
  const pages = await renderFaxPages(text, options);
  assert.equal(pages.length, 2);
  const mm = FAX_Y_DPI.fine / 25.4;
  for (const page of pages) {
    const rows = bodyRows(page);
    assert.ok(page.height - 1 - rows[rows.length - 1]! > 3 * mm, 'ink stops above the bottom margin');
  }
});

test('a right-to-left line is set from the left margin like the others, whole', async () => {
  const spans: [number, number][] = [];
  // Same number of characters in each: the Latin line is the yardstick.
  for (const text of ['abcd efgh', 'שלום עולם', 'x\nשלום עולם', 'مرحبا بكم']) {
    const [page] = await renderFaxPages(text, { resolution: 'fine', header: HEADER });
    const p = page!;
    let left = p.width;
    let right = -1;
    for (const y of bodyRows(p)) {
      const row = p.pixels.subarray(y * p.width, (y + 1) * p.width);
      const first = row.findIndex((v) => v < 128);
      if (first < 0) continue;
      left = Math.min(left, first);
      for (let x = p.width - 1; x > right; x--) if (row[x]! < 128) right = x;
    }
    spans.push([left, right]);
  }
  const [[latinLeft, latinRight], ...rtl] = spans as [[number, number], ...[number, number][]];
  for (const [left, right] of rtl) {
    assert.ok(Math.abs(left - latinLeft) < 40, `ink starts at ${left}, Latin at ${latinLeft}`);
    assert.ok(right - left > 0.6 * (latinRight - latinLeft), `ink spans ${left}-${right}, Latin ${latinLeft}-${latinRight}`);
    assert.ok(right - left < 2 * (latinRight - latinLeft), `ink spans ${left}-${right}: not flush right`);
  }
});

test('text is normalised: line breaks unified, controls and lone surrogates made visible', () => {
  assert.equal(normalizeFaxText('a\r\nb\rc\u2028d\u2029e\ff\vg\u0085h'), 'a\nb\nc\nd\ne\nf\ng\nh');
  assert.equal(normalizeFaxText('a\u0000b\u001bc\u007fd\u009be\ud800f\ufffeg\tz'), 'a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf\ufffdg\tz');
  assert.equal(normalizeFaxText('😀 zażółć'), '😀 zażółć');
});

test('wrapping: word boundaries, newlines kept, long words broken, tabs expanded, no line too wide', () => {
  assert.deepEqual(wrapFaxText('one two three four', 9), ['one two', 'three', 'four']);
  assert.deepEqual(wrapFaxText('a\n\nb\n', 10), ['a', '', 'b']);
  assert.deepEqual(wrapFaxText('x abcdefghijklmnopqrstuvwxyz y', 10), ['x', 'abcdefghij', 'klmnopqrst', 'uvwxyz y']);
  assert.deepEqual(wrapFaxText('\tindented', 20), ['        indented']);
  assert.deepEqual(wrapFaxText('ab\tc', 20), ['ab      c']);
  assert.deepEqual(wrapFaxText('  keep indent', 40), ['  keep indent']);
  assert.deepEqual(wrapFaxText('中文中文中文', 5), ['中文', '中文', '中文']);
  const prose = 'Zażółć gęślą jaźń. Größe Übung. Съешь же ещё этих мягких французских булок. <script>&amp; 😀 ';
  const text = prose.repeat(30);
  for (const columns of [20, 76, 82]) {
    const lines = wrapFaxText(text, columns);
    for (const l of lines) {
      const width = [...new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(l)].reduce((n, s) => n + graphemeColumns(s.segment), 0);
      assert.ok(width <= columns, `${JSON.stringify(l)} is ${width} columns`);
    }
    assert.equal(lines.join(' ').split(/\s+/).join(' '), text.trim().split(/\s+/).join(' '), 'every word kept, in order');
  }
});

test('a 2,000-character text produces several pages, none longer than A4', async () => {
  let text = '';
  for (let i = 1; text.length < 2000; i++) text += `${i}. Zażółć gęślą jaźń\n`;
  text = text.slice(0, 2000);
  assert.equal(text.length, 2000);
  for (const resolution of RESOLUTIONS) {
    const fax = await renderFax(text, { resolution, header: HEADER });
    assert.ok(fax.pages >= 2, `${resolution}: ${fax.pages} page(s)`);
    assert.equal(readTiffPages(fax.tiff).length, fax.pages);
    for (const h of fax.pageHeights) assert.ok(h <= FAX_A4_LINES[resolution]);
  }
});

test('an empty text still gives one page with the header', async () => {
  const fax = await renderFax('', { resolution: 'standard', header: HEADER });
  assert.equal(fax.pages, 1);
  assert.ok(inkCount(await decode(fax.tiff)) > 0);
});

test('faxHeader fills {from} {time} {ref} and keeps one line', () => {
  assert.equal(
    faxHeader('Text message from {from} sent {time} (ref {ref}) {from} {other}', { from: '48600111222', time: '2026-11-22 04:16:58', reference: 5 }),
    'Text message from 48600111222 sent 2026-11-22 04:16:58 (ref 5) 48600111222 {other}',
  );
  assert.equal(faxHeader('a {from}\nb', { from: 'x\r\ny', time: '', reference: '' }), 'a x y b');
});

// ---- the encoders, checked by libtiff's decoder ----

test('the G3 (T.4 Modified Huffman) encoder codes every run length of both colours', async () => {
  const width = 1728;
  const height = width * 2;
  const pixels = new Uint8Array(width * height).fill(255);
  for (let r = 1; r <= width; r++) {
    const y = (r - 1) * 2;
    pixels.fill(0, y * width, y * width + r); // a black run r long at the start of the row
    pixels.fill(0, (y + 1) * width + r, (y + 2) * width); // a white run r long, then black
  }
  const page = { width, height, pixels };
  const g3 = writeBilevelTiff([{ width, height, compression: 3, t4Options: 4, rowsPerStrip: height, strips: [encodeT4MH(page)], xDpi: 204, yDpi: 196 }]);
  samePixels(await decode(g3), page, 'G3');
  const g4 = await encodeFaxTiff([page], { resolution: 'fine', compression: 'g4' });
  samePixels(await decode(g4), page, 'G4');
});

// ---- the CLI ----

test('render-fax writes the TIFF and one PNG per page; usage errors exit 2 with one line', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'render-fax-'));
  try {
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) };
    const layout = await faxLayout({ resolution: 'standard', header: 'Text message from 4860 sent 2026-01-01 00:00:00 (ref -)' });
    const code = await runRenderFaxCommand(
      ['--resolution', 'standard', '--compression', 'g3', '--out', path.join(dir, 'x.tif'), '--png', path.join(dir, 'png'), '--from', '4860'],
      io,
      async () => numberedLines(layout.bodyLines + 1),
    );
    assert.equal(code, 0, err.join(''));
    const pages = readTiffPages(readFileSync(path.join(dir, 'x.tif')));
    assert.equal(pages.length, 2);
    assert.ok(pages.every((p) => p.compression === 3 && p.yResolution === 98));
    assert.deepEqual(readdirSync(path.join(dir, 'png')).sort(), ['page-1.png', 'page-2.png']);
    assert.match(out.join(''), /2 pages/);
    assert.match(out.join(''), /x\.tif/);

    for (const bad of [['--bogus'], ['hello'], ['--resolution', 'ultra', '--out', 'y.tif'], ['--compression', 'g5', '--out', 'y.tif']]) {
      err.length = 0;
      assert.equal(await runRenderFaxCommand(bad, io, async () => 'x'), 2, bad.join(' '));
      assert.equal(err.length, 1);
      assert.equal(err[0]!.trimEnd().split('\n').length, 1, 'one line');
    }
    err.length = 0;
    assert.equal(await runRenderFaxCommand(['--out', path.join(dir, 'missing', 'x.tif'), 'hi'], io), 1);
    assert.equal(err.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
