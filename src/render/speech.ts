/**
 * Text to speech for route V: the WAV Asterisk's Playback reads out.
 *
 * Two engines. espeak-ng is local, always there (Debian package espeak-ng)
 * and the fallback. gtts (Google Translate's voice, via the npm package) sounds
 * better but needs the network and crashes the process that loads it when the
 * network is missing, so it only ever runs in a child process.
 *
 * Whatever the engine, the output goes through sox to the one WAV format
 * format_wav plays (16-bit signed PCM, mono, 8000 Hz: SPEC §5) with one second
 * of leading silence (the first words are otherwise lost while the line
 * settles), is checked, and only then renamed into place.
 *
 * Message text never meets a shell: it reaches espeak-ng and the gtts worker
 * on standard input, and every program runs from an argument array.
 */
import { SmsRouterError } from '../errors.js';
import { mkdtemp, readFile, rename, rm, open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProcessError, firstLine, minimalEnv, runProcess } from './exec.js';
import { isAsteriskWav, readWavInfo } from './wav.js';

export type EngineName = 'espeak' | 'gtts';

export interface SynthesisRequest {
  text: string;
  language: string;
  outFile: string;
  timeoutMs?: number;
}

export interface SynthesisResult {
  file: string;
  engine: EngineName;
  language: string;
  durationMs: number;
  /** What did not go as configured (engine or language replaced), for logs. */
  fellBack?: string;
}

export interface SpeechEngine {
  readonly name: EngineName;
  supports(language: string): Promise<boolean>;
  synthesize(req: SynthesisRequest): Promise<void>;
}

// ─── Errors ──────────────────────────────────────────────────────────────────

/**
 * SPEECH_ENGINE_MISSING: a program or package is not installed (the message names it);
 * SPEECH_FAILED: the engine ran and produced nothing usable;
 * SPEECH_TIMEOUT: the engine did not finish in time;
 * SPEECH_LANGUAGE: neither the language asked for nor the default can be spoken.
 */
export type SpeechErrorCode = 'SPEECH_ENGINE_MISSING' | 'SPEECH_FAILED' | 'SPEECH_TIMEOUT' | 'SPEECH_LANGUAGE';

export class SpeechError extends SmsRouterError {
  declare readonly code: SpeechErrorCode;
  constructor(code: SpeechErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The Debian package that provides each program we run, for "install …" messages. */
const DEBIAN_PACKAGE: Record<string, string> = { 'espeak-ng': 'espeak-ng', sox: 'sox' };

function asSpeechError(err: unknown, what: string): SpeechError {
  if (err instanceof SpeechError) return err;
  if (err instanceof ProcessError) {
    if (err.code === 'PROCESS_MISSING') {
      const pkg = DEBIAN_PACKAGE[path.basename(err.file)] ?? path.basename(err.file);
      return new SpeechError('SPEECH_ENGINE_MISSING', `${err.file} is not installed or not executable: install the Debian package ${pkg} (apt-get install ${pkg})`, { cause: err });
    }
    if (err.code === 'PROCESS_TIMEOUT') return new SpeechError('SPEECH_TIMEOUT', `${what}: ${err.message}`, { cause: err });
    return new SpeechError('SPEECH_FAILED', `${what}: ${err.message}`, { cause: err });
  }
  return new SpeechError('SPEECH_FAILED', `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

// ─── Shared plumbing ─────────────────────────────────────────────────────────

/** A BCP 47-ish tag; anything else (an option-looking "-x", a path) is never passed to a program. */
const LANGUAGE = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/;

/** The name a language has in `known` (lower-case): itself, else its base ("de-AT" → "de"). */
function resolveLanguage(language: string, known: ReadonlySet<string>): string | undefined {
  if (!LANGUAGE.test(language)) return undefined;
  const lower = language.toLowerCase();
  if (known.has(lower)) return lower;
  const base = lower.split('-')[0]!;
  return known.has(base) ? base : undefined;
}

/** Control characters other than line breaks become spaces: engines would read them as odd noises or stop. */
function cleanText(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, ' ');
}

/** Caches a successful lookup; a failed one is retried next time (someone may install the package). */
function cachedOnSuccess<T>(load: () => Promise<T>): () => Promise<T> {
  let cached: Promise<T> | undefined;
  return () => {
    cached ??= load().catch((err: unknown) => {
      cached = undefined;
      throw err;
    });
    return cached;
  };
}

function deadline(timeoutMs: number): () => number {
  const end = Date.now() + timeoutMs;
  return () => Math.max(1, end - Date.now());
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sms-router-speech-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * sox: any input it reads → 16-bit signed PCM mono 8 kHz WAV with 1 s of
 * leading silence, written beside `outFile` and renamed over it once checked.
 * `rate -v` is sox's very-high-quality resampler (speech at 22/24 kHz down to
 * 8 kHz must not alias); -G lowers the gain if resampling would clip.
 */
async function toTelephoneWav(soxBin: string, input: string, inputType: string, outFile: string, timeoutMs: number): Promise<void> {
  // Never a name starting with "-": it is always prefixed by a directory or a dot.
  const temp = path.join(path.dirname(outFile), `.${path.basename(outFile)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const r = await runProcess(
      soxBin,
      ['-q', '-V1', '-G', '-t', inputType, input, '-t', 'wav', '-e', 'signed-integer', '-b', '16', '-c', '1', '-r', '8000', temp, 'channels', '1', 'rate', '-v', '8000', 'pad', '1', '0'],
      { timeoutMs },
    );
    if (r.code !== 0) throw new SpeechError('SPEECH_FAILED', `sox exited with ${r.code ?? r.signal}: ${firstLine(r.stderr) || 'no message'}`);
    const info = readWavInfo(await readHead(temp));
    if (!isAsteriskWav(info)) throw new SpeechError('SPEECH_FAILED', 'sox did not produce a 16-bit mono 8000 Hz PCM WAV');
    await rename(temp, outFile);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** The whole file when small; WAV headers are at the start, so 1 MiB is plenty to check one. */
async function readHead(file: string, bytes = 1024 * 1024): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

// ─── espeak-ng ───────────────────────────────────────────────────────────────

export interface EspeakOptions {
  espeakBin?: string;
  soxBin?: string;
  /** An espeak-ng voice variant (e.g. "f3", "klatt"), appended to the language as espeak-ng expects ("pl+f3"). */
  voice?: string;
  /** Words per minute; espeak-ng's default (175) is a little fast over a phone line. */
  wordsPerMinute?: number;
  timeoutMs?: number;
}

/** `espeak-ng --voices`: language codes (column 2) and the "(en 2)" aliases of the last column. */
export function parseEspeakVoices(listing: string): Set<string> {
  const known = new Set<string>();
  for (const line of listing.split('\n').slice(1)) {
    const columns = line.trim().split(/\s+/);
    if (columns.length >= 2) known.add(columns[1]!.toLowerCase());
    for (const m of line.matchAll(/\(([A-Za-z0-9-]+)\s+\d+\)/g)) known.add(m[1]!.toLowerCase());
  }
  known.delete('');
  return known;
}

export function espeakEngine(options: EspeakOptions = {}): SpeechEngine {
  const espeakBin = options.espeakBin ?? 'espeak-ng';
  const soxBin = options.soxBin ?? 'sox';
  const defaultTimeout = options.timeoutMs ?? 30_000;
  if (options.voice !== undefined && !/^[A-Za-z0-9_-]{1,40}$/.test(options.voice)) throw new RangeError(`espeak-ng voice variant ${JSON.stringify(options.voice)}: letters, digits, - and _ only`);
  const wpm = String(Math.round(options.wordsPerMinute ?? 160));

  const voices = cachedOnSuccess(async () => {
    const r = await runProcess(espeakBin, ['--voices'], { timeoutMs: 10_000 }).catch((err: unknown) => {
      throw asSpeechError(err, 'espeak-ng --voices');
    });
    const known = parseEspeakVoices(r.stdout.toString('utf8'));
    if (r.code !== 0 || known.size === 0) throw new SpeechError('SPEECH_FAILED', `espeak-ng --voices listed no voices: ${firstLine(r.stderr)}`);
    return known;
  });

  return {
    name: 'espeak',
    async supports(language) {
      return resolveLanguage(language, await voices()) !== undefined;
    },
    async synthesize(req) {
      const remaining = deadline(req.timeoutMs ?? defaultTimeout);
      const voice = resolveLanguage(req.language, await voices());
      if (!voice) throw new SpeechError('SPEECH_LANGUAGE', `espeak-ng has no voice for ${JSON.stringify(req.language)}`);
      const text = cleanText(req.text);
      if (text.trim() === '') throw new SpeechError('SPEECH_FAILED', 'no text to speak');
      await withTempDir(async (dir) => {
        const raw = path.join(dir, 'espeak.wav');
        try {
          // -b 1: the input is UTF-8. --stdin: the text is data on a pipe, never an argument espeak-ng could read as an option.
          const args = ['-v', options.voice ? `${voice}+${options.voice}` : voice, '-s', wpm, '-b', '1', '-w', raw, '--stdin'];
          const r = await runProcess(espeakBin, args, { input: text, timeoutMs: remaining() });
          if (r.code !== 0) throw new SpeechError('SPEECH_FAILED', `espeak-ng exited with ${r.code ?? r.signal}: ${firstLine(r.stderr) || 'no message'}`);
          await toTelephoneWav(soxBin, raw, 'wav', req.outFile, remaining());
        } catch (err) {
          throw asSpeechError(err, 'espeak-ng');
        }
      });
    },
  };
}

// ─── gtts ────────────────────────────────────────────────────────────────────

export interface GttsOptions {
  /** For the whole of one message: fetching and converting. */
  timeoutMs?: number;
  soxBin?: string;
  /** Replaces Google's address (a local test server, an unroutable address). */
  url?: string;
  /** The worker script run with this Node (default: gtts-worker.js beside this file). */
  workerScript?: string;
}

const WORKER = fileURLToPath(new URL('./gtts-worker.js', import.meta.url));
const WORKER_EXIT_MISSING = 3;

/** The worker's environment: PATH, plus a proxy if the daemon has one (gtts's HTTP client honours them). */
function workerEnv(url: string | undefined): Record<string, string> {
  const env = minimalEnv();
  if (url === undefined) {
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy']) {
      const value = process.env[name];
      if (value !== undefined) env[name] = value;
    }
  }
  return env;
}

/** MP3 starts with an ID3 tag or an MPEG audio frame sync; an HTTP error page does neither. */
export function looksLikeMp3(buf: Buffer): boolean {
  if (buf.length < 128) return false;
  if (buf.toString('latin1', 0, 3) === 'ID3') return true;
  return buf[0] === 0xff && ((buf[1] ?? 0) & 0xe0) === 0xe0;
}

/**
 * Runs the gtts worker for one text and leaves a checked MP3 in `outFile`.
 * Every failure (no network, the package crashing, a hang, an error page)
 * is a rejected SpeechError; the calling process is never at risk.
 */
export async function fetchGttsMp3(text: string, language: string, outFile: string, options: GttsOptions & { timeoutMs: number }): Promise<void> {
  if (!LANGUAGE.test(language)) throw new SpeechError('SPEECH_LANGUAGE', `gtts: invalid language ${JSON.stringify(language)}`);
  const args = [options.workerScript ?? WORKER, 'fetch', language.toLowerCase(), outFile, ...(options.url ? [options.url] : [])];
  let r;
  try {
    r = await runProcess(process.execPath, args, { input: text, timeoutMs: options.timeoutMs, env: workerEnv(options.url) });
  } catch (err) {
    throw asSpeechError(err, 'gtts');
  }
  if (r.code === WORKER_EXIT_MISSING) throw new SpeechError('SPEECH_ENGINE_MISSING', `gtts: the npm package gtts is not installed (${firstLine(r.stderr)})`);
  if (r.code !== 0) {
    // Our worker says why on a "gtts-worker:" line; a crash before that leaves Node's "Error: …" line.
    const why = r.stderr.split('\n').find((l) => /^(gtts-worker: |\w*Error\b)/.test(l)) ?? firstLine(r.stderr);
    throw new SpeechError('SPEECH_FAILED', `gtts: ${why.replace(/^gtts-worker: /, '').trim().slice(0, 300) || `the worker exited with ${r.code ?? r.signal}`}`);
  }
  let head: Buffer;
  try {
    head = await readHead(outFile, 4096);
  } catch (err) {
    throw asSpeechError(err, 'gtts');
  }
  if (!looksLikeMp3(head)) throw new SpeechError('SPEECH_FAILED', 'gtts: the answer is not MP3 audio');
}

export function gttsEngine(options: GttsOptions = {}): SpeechEngine {
  const soxBin = options.soxBin ?? 'sox';
  const defaultTimeout = options.timeoutMs ?? 20_000;

  const languages = cachedOnSuccess(async () => {
    let r;
    try {
      r = await runProcess(process.execPath, [options.workerScript ?? WORKER, 'languages'], { timeoutMs: 10_000 });
    } catch (err) {
      throw asSpeechError(err, 'gtts');
    }
    if (r.code === WORKER_EXIT_MISSING) throw new SpeechError('SPEECH_ENGINE_MISSING', 'gtts: the npm package gtts is not installed');
    if (r.code !== 0) throw new SpeechError('SPEECH_FAILED', `gtts: cannot list languages: ${firstLine(r.stderr)}`);
    try {
      return new Set((JSON.parse(r.stdout.toString('utf8')) as string[]).map((l) => l.toLowerCase()));
    } catch {
      throw new SpeechError('SPEECH_FAILED', 'gtts: the language list is not JSON');
    }
  });

  // Checked before sending anything to Google: Debian's sox reads MP3 only with libsox-fmt-mp3,
  // and without it every message would leave the machine for nothing.
  const soxReadsMp3 = cachedOnSuccess(async () => {
    let r;
    try {
      r = await runProcess(soxBin, ['-h'], { timeoutMs: 10_000 });
    } catch (err) {
      throw asSpeechError(err, 'sox');
    }
    const formats = /AUDIO FILE FORMATS:(.*)/.exec(r.stdout.toString('utf8'))?.[1]?.trim().split(/\s+/) ?? [];
    return formats.includes('mp3');
  });

  return {
    name: 'gtts',
    async supports(language) {
      return resolveLanguage(language, await languages()) !== undefined;
    },
    async synthesize(req) {
      const remaining = deadline(req.timeoutMs ?? defaultTimeout);
      const lang = resolveLanguage(req.language, await languages());
      if (!lang) throw new SpeechError('SPEECH_LANGUAGE', `gtts has no voice for ${JSON.stringify(req.language)}`);
      const text = cleanText(req.text);
      if (text.trim() === '') throw new SpeechError('SPEECH_FAILED', 'no text to speak');
      if (!(await soxReadsMp3())) {
        throw new SpeechError('SPEECH_ENGINE_MISSING', 'gtts: sox cannot read MP3: install the Debian package libsox-fmt-mp3');
      }
      await withTempDir(async (dir) => {
        const mp3 = path.join(dir, 'gtts.mp3');
        await fetchGttsMp3(text, lang, mp3, { ...options, timeoutMs: remaining() });
        try {
          await toTelephoneWav(soxBin, mp3, 'mp3', req.outFile, remaining());
        } catch (err) {
          throw asSpeechError(err, 'gtts (sox)');
        }
      });
    },
  };
}

// ─── Choosing the engine and language ────────────────────────────────────────

export interface SpeechLog {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
}

export interface SpeechOptions {
  engine: EngineName;
  defaultLanguage: string;
  log: SpeechLog;
  engines?: Partial<Record<EngineName, SpeechEngine>>;
}

/**
 * The configured engine, and espeak-ng when it is gtts and gtts fails: a
 * message read by a plainer voice beats a message not delivered. An unknown
 * language is spoken in the default language rather than refused.
 */
export class Speech {
  private readonly engines: Record<EngineName, SpeechEngine>;

  constructor(private readonly options: SpeechOptions) {
    this.engines = {
      espeak: options.engines?.espeak ?? espeakEngine(),
      gtts: options.engines?.gtts ?? gttsEngine(),
    };
  }

  async synthesize(req: SynthesisRequest): Promise<SynthesisResult> {
    const order: SpeechEngine[] = this.options.engine === 'gtts' ? [this.engines.gtts, this.engines.espeak] : [this.engines.espeak];
    const notes: string[] = [];
    for (let i = 0; ; i++) {
      const engine = order[i]!;
      try {
        const language = await this.pickLanguage(engine, req.language, notes);
        await engine.synthesize({ ...req, language });
        // Checked here too: an injected engine is trusted no more than a program.
        const info = readWavInfo(await readFile(req.outFile));
        if (!isAsteriskWav(info)) throw new SpeechError('SPEECH_FAILED', `${engine.name} did not produce a 16-bit mono 8000 Hz PCM WAV`);
        return { file: req.outFile, engine: engine.name, language, durationMs: info.durationMs, ...(notes.length ? { fellBack: notes.join('; ') } : {}) };
      } catch (err) {
        const error = asSpeechError(err, engine.name);
        const next = order[i + 1];
        if (!next) throw error;
        this.options.log.warn({ engine: engine.name, fallback: next.name, code: error.code, err: error.message }, `speech: ${engine.name} failed, using ${next.name}`);
        notes.push(`${engine.name} failed (${error.message}), used ${next.name}`);
      }
    }
  }

  private async pickLanguage(engine: SpeechEngine, requested: string, notes: string[]): Promise<string> {
    const fallback = this.options.defaultLanguage;
    if (LANGUAGE.test(requested) && (await engine.supports(requested))) return requested;
    if (requested !== fallback && (await engine.supports(fallback))) {
      this.options.log.warn({ engine: engine.name, language: requested, defaultLanguage: fallback }, `speech: ${engine.name} cannot speak ${JSON.stringify(requested)}, using ${fallback}`);
      notes.push(`language ${JSON.stringify(requested)} unknown to ${engine.name}, used ${fallback}`);
      return fallback;
    }
    throw new SpeechError('SPEECH_LANGUAGE', `${engine.name} cannot speak ${JSON.stringify(requested)} nor the default language ${JSON.stringify(fallback)}`);
  }
}

// ─── What is said ────────────────────────────────────────────────────────────

export interface Wording {
  messageFrom: string;
  date?: string;
  reference?: string;
  pressOne: string;
  /** How a leading "+" of a number is read. */
  plus?: string;
}

export const DEFAULT_WORDING: Record<string, Wording> = {
  en: { messageFrom: 'Message from', date: 'Sent', reference: 'Reference', pressOne: 'Press 1 to hear it again.', plus: 'plus' },
  pl: { messageFrom: 'Wiadomość od', date: 'Wysłano', reference: 'Numer', pressOne: 'Naciśnij 1, aby odsłuchać ponownie.', plus: 'plus' },
  de: { messageFrom: 'Nachricht von', date: 'Gesendet', reference: 'Referenz', pressOne: 'Drücken Sie 1, um die Nachricht noch einmal zu hören.', plus: 'plus' },
};

export function wordingFor(language: string): Wording {
  const lower = language.toLowerCase();
  return DEFAULT_WORDING[lower] ?? DEFAULT_WORDING[lower.split('-')[0]!] ?? DEFAULT_WORDING.en!;
}

/**
 * A number read digit by digit ("4 8 6 0 …"): spaces between digits make every
 * engine say each digit instead of "four hundred eighty-six million…".
 * Anything that is not a number (an alphanumeric sender) is said as written.
 */
function sayNumber(value: string, wording: Wording): string {
  const m = /^(\+?)(\d+)$/.exec(value.replace(/[\s-]/g, ''));
  if (!m) return value.trim();
  const digits = m[2]!.split('').join(' ');
  return m[1] ? `${wording.plus ?? 'plus'} ${digits}` : digits;
}

export function spokenText(input: { from: string; text: string; language: string; wording?: Wording; date?: string; reference?: string | number }): string {
  const w = input.wording ?? wordingFor(input.language);
  const parts: string[] = [];
  if (input.from.trim() !== '') parts.push(`${w.messageFrom} ${sayNumber(input.from, w)}.`);
  if (input.date && w.date) parts.push(`${w.date} ${input.date}.`);
  if (input.reference !== undefined && String(input.reference) !== '' && w.reference) parts.push(`${w.reference} ${sayNumber(String(input.reference), w)}.`);
  parts.push(input.text);
  return parts.join(' ');
}
