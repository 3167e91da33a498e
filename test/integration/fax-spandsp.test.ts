/**
 * Rendered faxes through Debian's spandsp (the library res_fax_spandsp uses),
 * two endpoints back to back in memory (test/spandsp/fax-loopback.c): every
 * page must arrive, pixel for pixel. The harness is built on first use; if it
 * cannot be built the tests fail and name the packages to install.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { faxLayout, renderFax, type FaxRenderOptions, type FaxResolution } from '../../src/render/fax-tiff.js';
import { readTiffPages } from '../../src/render/tiff-tags.js';

const HARNESS_DIR = fileURLToPath(new URL('../../../test/spandsp/', import.meta.url));
const HARNESS = path.join(HARNESS_DIR, 'build', 'fax-loopback');
const FIXTURES = fileURLToPath(new URL('../../../spool-fixtures/fax/', import.meta.url));
const PACKAGES = 'libspandsp-dev libtiff-dev build-essential';

interface Outcome {
  code: number;
  tx_status: number;
  rx_status: number;
  pages_tx: number;
  pages_rx: number;
  rx_file: string;
  tx_reason: string;
  rx_reason: string;
}

function run(file: string, args: string[], timeout: number): Promise<{ code: number; stdout: string; stderr: string; error?: Error }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr, ...(error && typeof error.code !== 'number' ? { error } : {}) });
    });
  });
}

let work = '';

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'fax-spandsp-'));
  const source = path.join(HARNESS_DIR, 'fax-loopback.c');
  if (existsSync(HARNESS) && statSync(HARNESS).mtimeMs >= statSync(source).mtimeMs) return;
  const r = await run('make', ['-C', HARNESS_DIR], 120_000);
  if (r.code !== 0 || !existsSync(HARNESS)) {
    assert.fail(
      `cannot build the spandsp harness with "make -C test/spandsp" (${r.error?.message ?? `exit ${r.code}`}): ` +
        `install the Debian packages ${PACKAGES}\n${r.stderr}`,
    );
  }
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

let serial = 0;

async function send(tiff: string, extra: string[] = []): Promise<Outcome> {
  const rx = path.join(work, `rx-${++serial}.tif`);
  const r = await run(HARNESS, [...extra, tiff, rx], 120_000);
  assert.ok(r.error === undefined, `fax-loopback did not run: ${r.error?.message} ${r.stderr} (Debian packages: ${PACKAGES})`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let json: Omit<Outcome, 'code'>;
  try {
    json = JSON.parse(line) as Omit<Outcome, 'code'>;
  } catch {
    assert.fail(`fax-loopback printed no JSON (exit ${r.code}): ${r.stdout} ${r.stderr}`);
  }
  return { code: r.code, ...json };
}

/** Decoded pages (libtiff via libvips), 0 = black. */
async function pixels(file: string, pages: number): Promise<Buffer[]> {
  const bytes = await readFile(file);
  return Promise.all(
    Array.from({ length: pages }, async (_, page) => (await sharp(bytes, { page }).toColourspace('b-w').raw().toBuffer())),
  );
}

function sameInk(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]! < 128 !== b[i]! < 128) return false;
  return true;
}

for (const resolution of ['standard', 'fine', 'superfine'] as FaxResolution[]) {
  for (const pageCount of [1, 3]) {
    for (const compression of ['g4', 'g3'] as const) {
      test(`spandsp sends and receives a rendered ${resolution} ${compression} fax of ${pageCount} page(s), every page intact`, async () => {
        const options: FaxRenderOptions = { resolution, compression, header: 'Text message from 48600111222 sent 2026-11-22 04:16:58 (ref 5)' };
        const layout = await faxLayout(options);
        const lines = pageCount === 1 ? 8 : layout.bodyLines * 2 + 4;
        const text = Array.from({ length: lines }, (_, i) => `${i + 1}: Zażółć gęślą jaźń. Größe. Съешь же ещё. <script>&amp;`).join('\n');
        const fax = await renderFax(text, options);
        assert.equal(fax.pages, pageCount);
        const file = path.join(work, `${resolution}-${compression}-${pageCount}.tif`);
        writeFileSync(file, fax.tiff);

        const out = await send(file);
        assert.equal(out.tx_status, 0, `sender: ${out.tx_reason}`);
        assert.equal(out.rx_status, 0, `receiver: ${out.rx_reason}`);
        assert.equal(out.code, 0);
        assert.equal(out.pages_tx, pageCount);
        assert.equal(out.pages_rx, pageCount);

        // What arrived is what we drew: same page count, heights, resolution and pixels.
        const received = readTiffPages(await readFile(out.rx_file));
        assert.deepEqual(received.map((p) => p.height), fax.pageHeights);
        assert.ok(received.every((p) => p.width === 1728 && p.yResolution !== undefined && Math.round(p.yResolution) === Math.round(readTiffPages(fax.tiff)[0]!.yResolution!)));
        const [sent, got] = await Promise.all([pixels(file, pageCount), pixels(out.rx_file, pageCount)]);
        sent.forEach((p, i) => assert.ok(sameInk(p, got[i]!), `page ${i + 1} arrived changed`));
      });
    }
  }
}

test('without ECM (FAXOPT(ecm)=no: no T.6 on the line) a 3-page G4 fax still arrives whole', async () => {
  const options: FaxRenderOptions = { resolution: 'fine', header: 'no ECM' };
  const layout = await faxLayout(options);
  const fax = await renderFax(Array.from({ length: layout.bodyLines * 2 + 1 }, (_, i) => `line ${i}`).join('\n'), options);
  const file = path.join(work, 'no-ecm.tif');
  writeFileSync(file, fax.tiff);
  const out = await send(file, ['--no-ecm', '--header-info', 'sms-router']);
  assert.deepEqual([out.code, out.tx_status, out.rx_status, out.pages_tx, out.pages_rx], [0, 0, 0, 3, 3], `${out.tx_reason} / ${out.rx_reason}`);
});

test('the real 2-page G4 fixture goes through', async () => {
  const out = await send(path.join(FIXTURES, 'fax_good_2p_g4.tif'));
  assert.deepEqual([out.code, out.tx_status, out.rx_status, out.pages_tx, out.pages_rx], [0, 0, 0, 2, 2], `${out.tx_reason} / ${out.rx_reason}`);
  assert.equal(readTiffPages(await readFile(out.rx_file)).length, 2);
});

test('the real 1-page G3 fixture goes through', async () => {
  const out = await send(path.join(FIXTURES, 'fax_good_1p_g3.tif'));
  assert.deepEqual([out.code, out.tx_status, out.rx_status, out.pages_rx], [0, 0, 0, 1], `${out.tx_reason} / ${out.rx_reason}`);
});

test('the 800x600 RGB fixture is refused, as the real Asterisk refused it', async () => {
  const out = await send(path.join(FIXTURES, 'fax_bad_800x600_rgb.tif'));
  assert.notEqual(out.code, 0);
  assert.notEqual(out.tx_status, 0, 'the sender must fail');
  assert.equal(out.pages_rx, 0);
});
