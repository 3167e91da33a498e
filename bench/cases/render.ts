/**
 * Rendering for the F and V routes, in this process (as the daemon does it):
 * fax pages at fine resolution from 1-, 3- and 10-page texts, ms per page;
 * speech (espeak-ng + sox to an 8 kHz WAV) of a 160-character message.
 * Baseline (c): the original suite's fax pipeline, paps | gs -sDEVICE=tiffg3,
 * on the same texts, where Debian's paps and ghostscript are installed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { faxLayout, renderFax, wrapFaxText } from '../../src/render/fax-tiff.js';
import { Speech, spokenText } from '../../src/render/speech.js';
import { runProcess } from '../../src/render/exec.js';
import { mulberry32 } from '../lib/corpus.js';
import { monoMs } from '../lib/stats.js';
import type { Context } from './context.js';

export const FAX_PAGES = [1, 3, 10];
const HEADER = 'Text message from 48600111222 sent 2026-11-22 08:00:00 (ref 42)';
const WORDS = 'the meeting moved to Thursday at ten please bring the contract and two copies of the invoice dzień dobry zażółć gęślą jaźń spotkanie przeniesione na czwartek'.split(' ');

export function commandExists(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** A text of about `pages` fax pages at fine resolution: lines of words, the last page about half full. */
export async function faxText(pages: number): Promise<string> {
  const layout = await faxLayout({ resolution: 'fine', header: HEADER });
  const random = mulberry32(pages);
  const target = layout.bodyLines * (pages - 1) + Math.ceil(layout.bodyLines / 2);
  const lines: string[] = [];
  // Each line is a paragraph of its own, so the wrapped line counts add up.
  for (let wrapped = 0; wrapped < target; ) {
    let line = '';
    const width = Math.floor(layout.columns * (0.5 + random() * 0.45));
    while (line.length < width) line += (line ? ' ' : '') + WORDS[Math.floor(random() * WORDS.length)];
    lines.push(line);
    wrapped += wrapFaxText(line, layout.columns).length;
  }
  return lines.join('\n');
}

export interface FaxFigures {
  /** ms per page for each text, by pages asked for. */
  msPerPage: Map<number, number[]>;
  pagesRendered: Map<number, number>;
}

export async function benchFax(ctx: Context): Promise<Map<number, number[]>> {
  const reps = ctx.quick ? 2 : 5;
  await renderFax(await faxText(1), { resolution: 'fine', header: HEADER }); // fonts, metrics, libvips warm-up
  const out = new Map<number, number[]>();
  for (const pages of FAX_PAGES) {
    const text = await faxText(pages);
    const values: number[] = [];
    let rendered = 0;
    for (let i = 0; i < reps; i++) {
      const t = monoMs();
      const fax = await renderFax(text, { resolution: 'fine', header: HEADER, compression: 'g4' });
      values.push((monoMs() - t) / fax.pages);
      rendered = fax.pages;
    }
    ctx.progress(`fax: ${pages}-page text (${rendered} pages rendered, ${text.length} characters): ${values.map((v) => v.toFixed(1)).join(', ')} ms/page`);
    out.set(pages, values);
    ctx.results.add({
      id: `fax/${pages}/ms-per-page`,
      group: 'fax',
      label: `fax render, fine, ${pages}-page text (${rendered} pages), G4 TIFF`,
      unit: 'ms/page',
      values,
      targetMax: 50,
    });
  }
  return out;
}

export async function benchSpeech(ctx: Context): Promise<void> {
  if (!commandExists('espeak-ng') || !commandExists('sox')) {
    ctx.results.skip('speech', 'speech: 160-character message to an 8 kHz WAV', 'not installed (espeak-ng, sox)');
    return;
  }
  const reps = ctx.quick ? 3 : 7;
  const dir = mkdtempSync(path.join(tmpdir(), 'smsr-bench-speech-'));
  try {
    const log = { warn: () => undefined, info: () => undefined };
    const speech = new Speech({ engine: 'espeak', defaultLanguage: 'en', log });
    const random = mulberry32(160);
    let message = '';
    while (message.length < 160) message += (message ? ' ' : '') + WORDS.slice(0, 18)[Math.floor(random() * 18)];
    message = message.slice(0, 160);
    const text = spokenText({ from: '48600111222', text: message, language: 'en' });
    await speech.synthesize({ text, language: 'en', outFile: path.join(dir, 'warm.wav') });
    const values: number[] = [];
    let audioMs = 0;
    for (let i = 0; i < reps; i++) {
      const t = monoMs();
      const r = await speech.synthesize({ text, language: 'en', outFile: path.join(dir, `m${i}.wav`) });
      values.push(monoMs() - t);
      audioMs = r.durationMs;
    }
    ctx.progress(`speech: ${values.map((v) => v.toFixed(0)).join(', ')} ms per message (${(audioMs / 1000).toFixed(1)} s of audio)`);
    ctx.results.add({
      id: 'speech/160/ms',
      group: 'speech',
      label: `speech: 160-character message to an 8 kHz WAV (espeak-ng + sox, ${(audioMs / 1000).toFixed(0)} s of audio)`,
      unit: 'ms',
      values,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The original suite's tiffTools.textToTIFF: paps (Monospace 10, its margins) piped into gs -sDEVICE=tiffg3 -r204x196. */
export async function benchFaxBaseline(ctx: Context, ours: Map<number, number[]> | undefined): Promise<void> {
  const missing = ['paps', 'gs'].filter((c) => !commandExists(c));
  if (missing.length) {
    ctx.results.skip('baseline-fax', 'baseline (c): paps + gs fax pipeline', `not installed (${missing.join(', ')}: apt-get install paps ghostscript)`);
    return;
  }
  const reps = ctx.quick ? 2 : 5;
  const dir = mkdtempSync(path.join(tmpdir(), 'smsr-bench-paps-'));
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
  try {
    for (const pages of FAX_PAGES) {
      // The original prepended its header and a rule of dashes (smsToFax.generateHeader).
      const header = `${HEADER}\n${'-'.repeat(HEADER.length)}\n`;
      const text = header + (await faxText(pages));
      const values: number[] = [];
      let produced = 0;
      for (let i = 0; i < reps; i++) {
        const t = monoMs();
        const ps = await runProcess('paps', ['--font=Monospace 10', '--top-margin=6', '--bottom-margin=141'], { input: text, timeoutMs: 120_000, env, maxOutputBytes: 256 * 1024 * 1024 });
        if (ps.code !== 0) throw new Error(`paps failed: ${ps.stderr}`);
        const out = path.join(dir, `fax-${pages}-${i}.tiff`);
        const gs = await runProcess('gs', ['-sDEVICE=tiffg3', '-r204x196', `-sOutputFile=${out}`, '-dBATCH', '-dNOPAUSE', '-dSAFER', '-dQUIET', '-'], { input: ps.stdout, timeoutMs: 120_000, env });
        if (gs.code !== 0) throw new Error(`gs failed: ${gs.stderr}`);
        const elapsed = monoMs() - t;
        produced = Number(/%%Pages: (\d+)/.exec(ps.stdout.toString('latin1'))?.[1] ?? 1);
        values.push(elapsed / produced);
      }
      ctx.progress(`baseline (c) paps + gs: ${pages}-page text (${produced} pages): ${values.map((v) => v.toFixed(1)).join(', ')} ms/page`);
      const f = ctx.results.add({
        id: `baseline-fax/${pages}/ms-per-page`,
        group: 'baseline-fax',
        label: `baseline (c): paps + gs tiffg3, fine, ${pages}-page text (${produced} pages)`,
        unit: 'ms/page',
        values,
      });
      const mine = ours?.get(pages);
      if (mine) {
        const ratio = f.summary.median / ctx.results.get(`fax/${pages}/ms-per-page`)!.summary.median;
        ctx.results.ratios.push({ id: `ratio/fax/${pages}`, label: `fax ${pages}-page text: paps + gs ms/page ÷ ours`, value: ratio, meaning: ratio >= 1 ? `ours is ${ratio.toFixed(1)}× faster per page` : `ours is ${(1 / ratio).toFixed(1)}× slower per page` });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
